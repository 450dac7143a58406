/* Provisional: replaced by the full helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lws/data.h"
#include "util/files.h"

lws_status lws_mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return lws_fail(LWS_ERR_IO, "cannot create directory %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return lws_fail(LWS_ERR_IO, "cannot create directory %s: %s", tmp, strerror(errno));
    return LWS_OK;
}

lws_status lws_read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return lws_fail(LWS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(max_bytes + 1);
    size_t n = buf ? fread(buf, 1, max_bytes + 1, f) : 0;
    fclose(f);
    if (!buf) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
    if (n > max_bytes) {
        free(buf);
        return lws_fail(LWS_ERR_IO, "%s: larger than %zu bytes", path, max_bytes);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return LWS_OK;
}

lws_status lws_write_file_atomic(const char *path, const void *data, size_t n) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return lws_fail(LWS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    int ok = fwrite(data, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok) {
        remove(tmp);
        return lws_fail(LWS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    }
    return lws_file_commit(tmp, path);
}
