/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c, built and run by
 * scripts/fuzz.sh): a scratch directory of this process, files written into
 * it, and an input cut into parts at a separator line, so one input can be
 * a config and its base, or a vocabulary and a text. */
#ifndef LWS_FUZZ_H
#define LWS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parts of an input are separated by this line. */
#define FUZZ_SEPARATOR "\n#---\n"

static inline const char *fuzz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/lws-fuzz-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return dir;
}

/* Writes data as dir/name; returns the path (one of four rotating buffers). */
static inline const char *fuzz_write(const char *name, const void *data, size_t n) {
    static char paths[4][128];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        perror(path);
        abort();
    }
    fclose(f);
    return path;
}

/* Cuts data at FUZZ_SEPARATOR into at most max parts; returns the count (at
 * least 1: an input without the separator is one part). */
static inline size_t fuzz_split(const uint8_t *data, size_t n, const uint8_t **part, size_t *len,
                                size_t max) {
    const size_t sep = strlen(FUZZ_SEPARATOR);
    size_t count = 0, start = 0;
    for (size_t i = 0; i + sep <= n && count + 1 < max; i++)
        if (memcmp(data + i, FUZZ_SEPARATOR, sep) == 0) {
            part[count] = data + start, len[count++] = i - start;
            start = i + sep, i += sep - 1;
        }
    part[count] = data + start, len[count++] = n - start;
    return count;
}

/* A NUL-terminated copy (a NUL inside ends it early, as a C string would). */
static inline char *fuzz_text(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}

#endif
