/* File helpers (see util/files.h) and lws_file_commit (lws/data.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lws/data.h"
#include "util/files.h"

const char *lws_file_kind(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

/* ---- directories --------------------------------------------------------- */

/* Makes one component; an existing directory is success. */
static lws_status mkdir_one(const char *full, const char *prefix) {
    if (mkdir(prefix, 0755) == 0) return LWS_OK;
    int err = errno;
    /* Whatever mkdir said (EEXIST, but also EROFS or EACCES for a directory
     * that is there), an existing directory is what was asked for. */
    struct stat st;
    if (stat(prefix, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return LWS_OK;
        if (strcmp(full, prefix) == 0)
            return lws_fail(LWS_ERR_IO, "cannot create directory %s: it is %s", full,
                            lws_file_kind(st.st_mode));
        return lws_fail(LWS_ERR_IO, "cannot create directory %s: %s is %s, not a directory", full,
                        prefix, lws_file_kind(st.st_mode));
    }
    if (strcmp(full, prefix) == 0)
        return lws_fail(LWS_ERR_IO, "cannot create directory %s: %s", full, strerror(err));
    return lws_fail(LWS_ERR_IO, "cannot create directory %s: cannot create %s: %s", full, prefix,
                    strerror(err));
}

lws_status lws_mkdir_p(const char *path) {
    if (!path || !*path) return lws_fail(LWS_ERR_INVALID, "cannot create a directory: empty path");
    char *p = strdup(path);
    if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "directory %s: out of memory", path);
    lws_status s = LWS_OK;
    /* Each prefix that ends a component ("a", "a/b", ...), then the whole path;
     * repeated and trailing slashes make no empty components. */
    for (char *c = p + 1; s == LWS_OK && *c; c++) {
        if (*c != '/' || c[-1] == '/') continue;
        *c = 0;
        s = mkdir_one(path, p);
        *c = '/';
    }
    if (s == LWS_OK) s = mkdir_one(path, p);
    free(p);
    return s;
}

/* ---- reading --------------------------------------------------------------- */

lws_status lws_open_regular(const char *path, int flags, int *fd, size_t *size) {
    *fd = -1;
    int f = open(path, flags | O_NONBLOCK | O_CLOEXEC, 0666);
    if (f < 0) return lws_fail(LWS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int err = errno;
        close(f);
        return lws_fail(LWS_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return lws_fail(LWS_ERR_IO, "%s: is %s, not a regular file", path,
                        lws_file_kind(st.st_mode));
    }
    if ((unsigned long long)st.st_size > SIZE_MAX) {
        close(f);
        return lws_fail(LWS_ERR_IO, "%s: %lld bytes is more than this machine can address", path,
                        (long long)st.st_size);
    }
    /* Regular files ignore O_NONBLOCK, but a descriptor handed on (fdopen,
     * read loops) should behave as an ordinary blocking one. */
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(f);
        return lws_fail(LWS_ERR_IO, "%s: cannot set the descriptor's flags: %s", path,
                        strerror(err));
    }
    *fd = f;
    if (size) *size = (size_t)st.st_size;
    return LWS_OK;
}

/* Reads fd to its end or to limit + 1 bytes into *buf (capacity *cap, grown
 * by doubling, always one byte more than the data for the NUL). */
static lws_status read_to_end(const char *path, int fd, size_t limit, char **buf, size_t *cap,
                              size_t *len) {
    for (;;) {
        if (*len + 1 == *cap) {
            if (*len > limit) return LWS_OK; /* over the limit: the caller refuses */
            size_t grown = *cap - 1 > limit / 2 ? limit + 2 : 2 * (*cap - 1) + 1;
            char *p = realloc(*buf, grown);
            if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory reading it", path);
            *buf = p, *cap = grown;
        }
        ssize_t got = read(fd, *buf + *len, *cap - 1 - *len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return lws_fail(LWS_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (got == 0) return LWS_OK;
        *len += (size_t)got;
    }
}

/* The bytes of fd up to its end into a new buffer; size_hint: the expected
 * size (0: unknown). Refuses more than max_bytes. */
static lws_status read_fd(const char *name, int fd, size_t size_hint, size_t max_bytes, char **out,
                          size_t *len) {
    *out = NULL, *len = 0;
    if (max_bytes > SIZE_MAX / 2) max_bytes = SIZE_MAX / 2; /* room for the byte over and the NUL */
    /* + 1: room to see the end at the expected size, + 1: the NUL. */
    size_t cap = size_hint < max_bytes ? size_hint + 2 : max_bytes + 2, n = 0;
    if (cap < 4097) cap = max_bytes < 4095 ? max_bytes + 2 : 4097;
    char *buf = malloc(cap);
    lws_status s = buf ? read_to_end(name, fd, max_bytes, &buf, &cap, &n)
                       : lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory reading it", name);
    if (s == LWS_OK && n > max_bytes)
        s = lws_fail(LWS_ERR_IO, "%s: more than the %zu bytes allowed", name, max_bytes);
    if (s != LWS_OK) {
        free(buf);
        return s;
    }
    buf[n] = 0;
    *out = buf, *len = n;
    return LWS_OK;
}

lws_status lws_read_fd(const char *name, int fd, size_t max_bytes, char **out, size_t *len) {
    return read_fd(name, fd, 0, max_bytes, out, len);
}

lws_status lws_read_file(const char *path, size_t max_bytes, char **out, size_t *len) {
    *out = NULL, *len = 0;
    int fd;
    size_t size = 0;
    LWS_TRY(lws_open_regular(path, O_RDONLY, &fd, &size));
    lws_status s;
    if (size > max_bytes)
        s = lws_fail(LWS_ERR_IO, "%s: %zu bytes is larger than the %zu allowed", path, size,
                     max_bytes);
    else /* the size is only a first guess for the buffer (files in /proc say 0) */
        s = read_fd(path, fd, size, max_bytes, out, len);
    close(fd);
    return s;
}

/* ---- atomic writes ----------------------------------------------------------- */

/* Renames tmp_path over path, then fsyncs the directory: the rename itself
 * is durable only once the directory entry is on disk. */
static lws_status rename_durable(const char *tmp_path, const char *path) {
    if (rename(tmp_path, path) != 0)
        return lws_fail(LWS_ERR_IO, "file %s: cannot rename %s over it: %s", path, tmp_path,
                        strerror(errno));
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        /* Some file systems refuse fsync on a directory; the data is safe either way. */
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    return LWS_OK;
}

static lws_status sync_fd(const char *name, int fd) {
    if (fsync(fd) != 0)
        return lws_fail(LWS_ERR_IO, "file %s: fsync failed: %s (is the disk full?)", name,
                        strerror(errno));
    return LWS_OK;
}

lws_status lws_file_commit(const char *tmp_path, const char *path) {
    int fd = open(tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lws_fail(LWS_ERR_IO, "file %s: cannot reopen to sync: %s", tmp_path,
                        strerror(errno));
    lws_status s = sync_fd(tmp_path, fd);
    close(fd);
    return s == LWS_OK ? rename_durable(tmp_path, path) : s;
}

static lws_status write_all(const char *tmp, int fd, const void *data, size_t n) {
    for (size_t done = 0; done < n;) {
        ssize_t put = write(fd, (const char *)data + done, n - done);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return lws_fail(LWS_ERR_IO, "file %s: write failed: %s", tmp, strerror(errno));
        done += (size_t)put;
    }
    return sync_fd(tmp, fd);
}

lws_status lws_write_file_atomic(const char *path, const void *data, size_t n) {
    static atomic_uint serial;
    size_t tmp_size = strlen(path) + 48;
    char *tmp = malloc(tmp_size);
    if (!tmp) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    snprintf(tmp, tmp_size, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&serial, 1u));
    lws_status s = LWS_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        s = lws_fail(LWS_ERR_IO, "file %s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return s;
    }
    s = write_all(tmp, fd, data, n);
    if (close(fd) != 0 && s == LWS_OK)
        s = lws_fail(LWS_ERR_IO, "file %s: close failed: %s", tmp, strerror(errno));
    if (s == LWS_OK) s = rename_durable(tmp, path);
    if (s != LWS_OK) unlink(tmp);
    free(tmp);
    return s;
}

lws_status lws_write_json_atomic(const char *path, const struct cJSON *json) {
    char *text = cJSON_Print(json);
    size_t n = text ? strlen(text) : 0;
    char *line = text ? realloc(text, n + 2) : NULL; /* the text, a newline, the NUL */
    if (!line) {
        free(text);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory printing its JSON", path);
    }
    line[n] = '\n', line[n + 1] = 0;
    lws_status s = lws_write_file_atomic(path, line, n + 1);
    free(line);
    return s;
}

lws_status lws_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT
                   ? LWS_OK
                   : lws_fail(LWS_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return lws_fail(LWS_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        struct dirent *e;
        lws_status s = LWS_OK;
        char sub[4096];
        while (s == LWS_OK && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= sizeof sub)
                s = lws_fail(LWS_ERR_IO, "cannot remove %s/%s: the path is too long", path,
                             e->d_name);
            else
                s = lws_remove_tree(sub);
        }
        closedir(d);
        LWS_TRY(s);
        if (rmdir(path) != 0)
            return lws_fail(LWS_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        return LWS_OK;
    }
    if (unlink(path) != 0)
        return lws_fail(LWS_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    return LWS_OK;
}

int lws_cache_dir(char *out, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(out, n, "%s/lws", xdg);
    else if (home && *home)
        snprintf(out, n, "%s/.cache/lws", home);
    else if (n)
        out[0] = 0;
    return n && out[0] != 0;
}
