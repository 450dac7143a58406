// lws-test: plain timeout=60
/* File helpers (src/util/files.h): mkdir -p, whole-file reads that refuse
 * what is not a regular file (without hanging on a FIFO or reading
 * /dev/zero forever) and anything over the limit, reads of descriptors,
 * atomic writes that leave no temporary file behind. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"
#include "lws/data.h"
#include "util/files.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    chmod(path, 0755); /* a locked directory of an earlier run */
    return remove(path);
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The message of a failure that was expected, checked for every part. */
static void check_refused(lws_status s, const char *what, const char *const *parts, int n) {
    CHECK(s != LWS_OK, "%s: accepted", what);
    if (s == LWS_OK) return;
    for (int i = 0; i < n; i++)
        CHECK(test_contains(lws_error_message(), parts[i]), "%s: message lacks '%s': %s", what,
              parts[i], lws_error_message());
    printf("refused %s: %s\n", what, lws_error_message());
}
#define REFUSED(s, what, ...)                                                                      \
    do {                                                                                           \
        const char *parts_[] = {__VA_ARGS__};                                                      \
        check_refused(s, what, parts_, (int)(sizeof parts_ / sizeof *parts_));                     \
    } while (0)

static void mkdir_p(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s", test_path("tree/a/b/c"));
    CHECK_OK(lws_mkdir_p(path));
    CHECK(is_dir(path), "%s was not made", path);
    CHECK_OK(lws_mkdir_p(path));              /* exists already */
    CHECK_OK(lws_mkdir_p(test_path("tree"))); /* a prefix of it */
    snprintf(path, sizeof path, "%s", test_path("tree//x///y/"));
    CHECK_OK(lws_mkdir_p(path));
    CHECK(is_dir(test_path("tree/x/y")), "repeated and trailing slashes");
    struct stat st;
    CHECK(stat(test_path("tree/x/y"), &st) == 0 && (st.st_mode & 0700) == 0700,
          "mode 0755 less the umask keeps the owner's rwx: %o", (unsigned)st.st_mode);

    write_bytes(test_path("tree/file"), "x", 1);
    char file[1024];
    snprintf(file, sizeof file, "%s", test_path("tree/file"));
    snprintf(path, sizeof path, "%s", test_path("tree/file/sub/deeper"));
    REFUSED(lws_mkdir_p(path), "a directory through a regular file", path, file,
            "is a regular file, not a directory");
    CHECK(!is_dir(test_path("tree/file/sub")), "nothing made under a file");
    REFUSED(lws_mkdir_p(file), "a path that is a regular file", file, "it is a regular file");

    char name[400];
    memset(name, 'n', 300);
    name[300] = 0;
    snprintf(path, sizeof path, "%s/%s/below", test_path("tree"), name);
    REFUSED(lws_mkdir_p(path), "a component of 300 bytes", strerror(ENAMETOOLONG), name);
    REFUSED(lws_mkdir_p(""), "an empty path", "empty path");

    if (geteuid() == 0) {
        printf("SKIP mkdir -p in a read-only directory: running as root, which ignores "
               "permissions\n");
    } else {
        char locked[768];
        snprintf(locked, sizeof locked, "%s", test_path("locked"));
        CHECK(mkdir(locked, 0555) == 0, "cannot make %s: %s", locked, strerror(errno));
        snprintf(path, sizeof path, "%s/a/b", locked);
        char first[1100];
        snprintf(first, sizeof first, "%s/a", locked);
        REFUSED(lws_mkdir_p(path), "a directory inside a read-only one", path, first,
                strerror(EACCES));
        chmod(locked, 0755);
    }
}

/* A NUL inside: the length, not strlen, says where the data ends. */
static const char data[] = "SECRET-CONTENT\0after the NUL\n";
#define DATA_BYTES (sizeof data - 1)

static void read_file(void) {
    char *text = NULL;
    size_t len = 99;
    const size_t n = DATA_BYTES;
    const char *path = test_path("data.bin");
    write_bytes(path, data, n);
    CHECK_OK(lws_read_file(path, 1024, &text, &len));
    CHECK(text && len == n && memcmp(text, data, n) == 0 && text[n] == 0,
          "regular file: %zu bytes read, want %zu", len, n);
    free(text);
    CHECK_OK(lws_read_file(path, n, &text, &len)); /* exactly at the limit */
    CHECK(text && len == n, "a file of exactly the limit");
    free(text);

    char size_text[32], limit_text[32];
    snprintf(size_text, sizeof size_text, "%zu bytes", n);
    snprintf(limit_text, sizeof limit_text, "the %zu allowed", n - 1);
    REFUSED(lws_read_file(path, n - 1, &text, &len), "a file over the limit", path, size_text,
            limit_text);
    CHECK(text == NULL && len == 0, "a refused read leaves *out NULL and *len 0");
    CHECK(!test_contains(lws_error_message(), "SECRET"), "the message echoes the contents");

    path = test_path("empty.txt");
    write_bytes(path, "", 0);
    CHECK_OK(lws_read_file(path, 0, &text, &len));
    CHECK(text && len == 0 && text[0] == 0, "an empty file is an empty string");
    free(text);

    path = test_path("fifo");
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s: %s", path, strerror(errno));
    /* Without O_NONBLOCK the open would wait for a writer forever. */
    alarm(20);
    REFUSED(lws_read_file(path, 1024, &text, &len), "a FIFO", path, "FIFO", "not a regular file");
    int fd = 7;
    REFUSED(lws_open_regular(path, O_RDONLY, &fd, NULL), "a FIFO opened for streaming", path,
            "FIFO");
    CHECK(fd == -1, "a refused open leaves *fd -1");
    alarm(0);

    REFUSED(lws_read_file(test_path("tree"), 1024, &text, &len), "a directory", "a directory",
            "not a regular file");
    REFUSED(lws_read_file("/dev/zero", 1u << 20, &text, &len), "/dev/zero", "/dev/zero",
            "character device");
    REFUSED(lws_read_file(test_path("missing.json"), 1024, &text, &len), "a missing file",
            "missing.json", "cannot open", strerror(ENOENT));

    /* /proc files say they are empty; the read goes on to the end, and stops
     * one byte past the limit. */
    CHECK_OK(lws_read_file("/proc/self/status", 1u << 20, &text, &len));
    CHECK(text && len > 16 && strncmp(text, "Name:", 5) == 0 && strlen(text) == len,
          "/proc/self/status: %zu bytes", len);
    free(text);
    REFUSED(lws_read_file("/proc/self/status", 16, &text, &len), "a /proc file over the limit",
            "/proc/self/status", "more than the 16 bytes allowed");
}

static void open_and_read_fd(void) {
    int fd = -1;
    size_t size = 0;
    CHECK_OK(lws_open_regular(test_path("data.bin"), O_RDONLY, &fd, &size));
    CHECK(fd >= 0 && size == DATA_BYTES, "lws_open_regular: fd %d, size %zu", fd, size);
    int flags = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    CHECK(flags >= 0 && !(flags & O_NONBLOCK), "O_NONBLOCK is cleared after the open");
    CHECK(fd < 0 || (fcntl(fd, F_GETFD) & FD_CLOEXEC), "the descriptor is close-on-exec");
    if (fd >= 0) close(fd);

    int p[2];
    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    CHECK(write(p[1], "hello, pipe", 11) == 11, "write to the pipe");
    close(p[1]);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lws_read_fd("the pipe", p[0], 11, &text, &len));
    CHECK(text && len == 11 && strcmp(text, "hello, pipe") == 0, "a pipe read to its end");
    free(text);
    close(p[0]);

    CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
    CHECK(write(p[1], "hello, pipe", 11) == 11, "write to the pipe");
    close(p[1]);
    REFUSED(lws_read_fd("the pipe", p[0], 10, &text, &len), "a pipe over the limit", "the pipe",
            "more than the 10 bytes allowed");
    close(p[0]);
}

/* Entries of dir whose name contains ".tmp". */
static int temporaries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".tmp")) {
            printf("left behind: %s/%s\n", dir, e->d_name);
            n++;
        }
    if (d) closedir(d);
    return n;
}

static void write_atomic(void) {
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s", test_path("out"));
    CHECK_OK(lws_mkdir_p(dir));
    snprintf(path, sizeof path, "%s/state.json", dir);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(lws_write_file_atomic(path, "first version, longer\n", 22));
    CHECK_OK(lws_write_file_atomic(path, "second\n", 7)); /* replaces, never appends */
    CHECK_OK(lws_read_file(path, 1024, &text, &len));
    CHECK(text && len == 7 && strcmp(text, "second\n") == 0, "the file holds the last write");
    free(text);
    CHECK_OK(lws_write_file_atomic(path, "", 0));
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 0, "an empty write leaves an empty file");

    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", 42);
    CHECK_OK(lws_write_json_atomic(path, o));
    cJSON_Delete(o);
    CHECK_OK(lws_read_file(path, 1024, &text, &len));
    cJSON *back = text ? cJSON_Parse(text) : NULL;
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(back, "step");
    CHECK(len > 0 && text[len - 1] == '\n' && cJSON_IsNumber(step) && step->valuedouble == 42,
          "JSON written and read back: %s", text ? text : "(nothing)");
    cJSON_Delete(back);
    free(text);

    char bad[1200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/file", dir);
    REFUSED(lws_write_file_atomic(bad, "x", 1), "a file in a missing directory", bad,
            "cannot create", strerror(ENOENT));
    snprintf(bad, sizeof bad, "%s/sub", dir);
    CHECK_OK(lws_mkdir_p(bad));
    REFUSED(lws_write_file_atomic(bad, "x", 1), "a file over a directory", bad, "cannot rename");
    CHECK(is_dir(bad), "the directory survives");

    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/weights.bin.tmp", dir);
    write_bytes(tmp, "committed", 9);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    CHECK_OK(lws_file_commit(tmp, path));
    CHECK(access(tmp, F_OK) != 0, "lws_file_commit leaves no temporary file");
    CHECK_OK(lws_read_file(path, 1024, &text, &len));
    CHECK(text && strcmp(text, "committed") == 0, "lws_file_commit moved the data");
    free(text);
    CHECK(temporaries(dir) == 0, "no .tmp file is left behind");
}

int main(void) {
    const char *dir = test_dir("test_files");
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    test_dir("test_files");
    mkdir_p();
    read_file();
    open_and_read_fd();
    write_atomic();
    return test_finish(NULL);
}
