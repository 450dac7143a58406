/* Atomic replacement of a file: write elsewhere, fsync, rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lws/data.h"

lws_status lws_file_commit(const char *tmp_path, const char *path) {
    int fd = open(tmp_path, O_RDONLY);
    if (fd < 0)
        return lws_fail(LWS_ERR_IO, "file %s: cannot reopen to sync: %s", tmp_path,
                        strerror(errno));
    int synced = fsync(fd);
    int err = errno;
    close(fd);
    if (synced != 0)
        return lws_fail(LWS_ERR_IO, "file %s: fsync failed: %s (is the disk full?)", tmp_path,
                        strerror(err));
    if (rename(tmp_path, path) != 0)
        return lws_fail(LWS_ERR_IO, "file %s: cannot rename %s over it: %s", path, tmp_path,
                        strerror(errno));
    /* The rename itself is durable only once the directory entry is synced. */
    char *dir = strdup(path);
    if (!dir) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        /* Some file systems refuse fsync on a directory; the data is safe either way. */
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    return LWS_OK;
}
