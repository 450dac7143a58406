/* Reading token files: format detection from the first bytes, header checks,
 * the size check, one scan of every token against the vocabulary, and the
 * half-width warning (formats described in include/lws/data.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lws/bpe.h" /* LWS_GPT2_VOCAB_HASH, lws_bpe_is_spec */
#include "lws/data.h"
#include "util/files.h"

#define LLMC_MAGIC_U16    20240520 /* GPT-2 shards: uint16 tokens */
#define LLMC_MAGIC_U32    20240801 /* Llama 3 shards: uint32 tokens */
#define LLMC_VERSION_U16  1
#define LLMC_VERSION_U32  7
#define LLMC_HEADER_BYTES 1024
#define NPY_MAGIC         "\x93NUMPY"
#define NPY_MAX_DIMS      32
/* Headers are read from the first bytes: lws 256, llm.c 1024, .npy (a
 * Python dict literal of a few dozen bytes, padded to 64) at most this. */
#define HEADER_READ_BYTES 65536

static const char accepted_formats[] =
    "accepted formats: lws token file (magic \"LWSTOKNS\", written by `lws prepare`), "
    "llm.c .bin shard (int32 magic 20240520 or 20240801), "
    "NumPy .npy array (dtype <u2, <u4, <i4 or <i8)";

/* Little-endian loads that do not need alignment (they compile to one load). */
static uint16_t le16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) {
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint64_t raw_token(const uint8_t *d, uint32_t bytes, uint64_t i) {
    switch (bytes) {
    case 2:
        return le16(d + 2 * i);
    case 4:
        return le32(d + 4 * i);
    default:
        return le64(d + 8 * i);
    }
}

/* The largest token, as an unsigned value of its width (a negative signed
 * token shows up as a huge one). */
static uint64_t max_raw_token(const uint8_t *d, uint32_t bytes, uint64_t n) {
    uint64_t m = 0;
    if (bytes == 2) {
        uint16_t m16 = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint16_t v = le16(d + 2 * i);
            m16 = v > m16 ? v : m16;
        }
        m = m16;
    } else if (bytes == 4) {
        uint32_t m32 = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint32_t v = le32(d + 4 * i);
            m32 = v > m32 ? v : m32;
        }
        m = m32;
    } else {
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = le64(d + 8 * i);
            m = v > m ? v : m;
        }
    }
    return m;
}

/* ---- the half-width signature ----------------------------------------- */

typedef struct parity_zeros {
    uint64_t sampled;
    double even, odd; /* fraction of zero tokens at even / odd positions */
} parity_zeros;

static parity_zeros count_parity_zeros(const uint8_t *d, uint32_t bytes, uint64_t count) {
    parity_zeros z = {count < (1u << 20) ? count : (1u << 20), 0, 0};
    uint64_t zeros[2] = {0, 0};
    for (uint64_t i = 0; i < z.sampled; i++) zeros[i & 1] += raw_token(d, bytes, i) == 0;
    uint64_t n_even = (z.sampled + 1) / 2, n_odd = z.sampled / 2;
    z.even = n_even ? (double)zeros[0] / (double)n_even : 0;
    z.odd = n_odd ? (double)zeros[1] / (double)n_odd : 0;
    return z;
}

static int half_width_signature(parity_zeros z) {
    /* Below 64 tokens a chance pattern is too likely to mean anything. */
    if (z.sampled < 64) return 0;
    return (z.even >= 0.9 && z.odd <= 0.1) || (z.odd >= 0.9 && z.even <= 0.1);
}

int lws_tokens_half_width_zeros(const uint8_t *data, uint32_t token_bytes, uint64_t count) {
    if (token_bytes != 2 && token_bytes != 4) return 0;
    return half_width_signature(count_parity_zeros(data, token_bytes, count));
}

/* Once per file per process: the paths (resolved) already warned about. */
static int first_warning(const char *path) {
    static uint64_t warned[256];
    static unsigned n_warned;
    char *real = realpath(path, NULL);
    const char *key = real ? real : path;
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (const char *c = key; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    free(real);
    unsigned n = n_warned < 256 ? n_warned : 256;
    for (unsigned i = 0; i < n; i++)
        if (warned[i] == h) return 0;
    warned[n_warned++ % 256] = h;
    return 1;
}

/* first: the first min(count, 1M) tokens of the file, raw. */
static void check_half_width(lws_tokens *t, const uint8_t *first, uint64_t n) {
    parity_zeros z = count_parity_zeros(first, t->token_bytes, n);
    t->half_width_zeros = half_width_signature(z);
    if (!t->half_width_zeros || !first_warning(t->path)) return;
    int bits = 8 * (int)t->token_bytes;
    int zero_even = z.even >= 0.9;
    fprintf(stderr,
            "WARNING: file %s: %.1f%% of the %s positions hold token 0 but only %.1f%% of the "
            "%s positions do (first %" PRIu64 " tokens). That is what %d-bit tokens read as "
            "%d-bit look like: every other token would be a zero high half. Check how this "
            "file was written before training on it.\n",
            t->path, 100 * (zero_even ? z.even : z.odd), zero_even ? "even" : "odd",
            100 * (zero_even ? z.odd : z.even), zero_even ? "odd" : "even", z.sampled, 2 * bits,
            bits);
}

/* ---- headers ----------------------------------------------------------- */

static lws_status parse_lws_header(lws_tokens *t, const uint8_t *m, size_t size, uint64_t *offset) {
    if (size < LWS_TOKENS_HEADER_BYTES)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: lws token header is truncated: the file has %zu bytes, the "
                        "header alone is %d",
                        t->path, size, LWS_TOKENS_HEADER_BYTES);
    uint32_t version = le32(m + 8), dtype = le32(m + 12), vocab = le32(m + 16);
    uint32_t header_bytes = le32(m + 20);
    if (version != LWS_TOKENS_VERSION)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: lws token file version %" PRIu32
                        " is not supported; this lws reads version %d",
                        t->path, version, LWS_TOKENS_VERSION);
    if (header_bytes != LWS_TOKENS_HEADER_BYTES)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: header_bytes is %" PRIu32 "; version 1 headers are %d bytes",
                        t->path, header_bytes, LWS_TOKENS_HEADER_BYTES);
    if (dtype != 2 && dtype != 4)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: dtype %" PRIu32
                        " is not allowed; use 2 (uint16 tokens) or 4 (uint32 tokens)",
                        t->path, dtype);
    if (vocab == 0)
        return lws_fail(LWS_ERR_DATA, "file %s: header vocab_size is 0; it must be >= 1", t->path);
    if (dtype == 2 && vocab > 65536)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: dtype 2 (uint16) cannot hold vocab_size %" PRIu32
                        " (> 65536); the file was written wrongly",
                        t->path, vocab);
    if (!memchr(m + 32, 0, LWS_TOKENIZER_NAME_MAX) || !memchr(m + 96, 0, LWS_TOKENIZER_NAME_MAX))
        return lws_fail(LWS_ERR_DATA,
                        "file %s: the tokenizer name or hash is not NUL-terminated within %d "
                        "bytes; the header is corrupt",
                        t->path, LWS_TOKENIZER_NAME_MAX);
    t->format = LWS_TOKENS_LWS;
    t->token_bytes = dtype;
    t->vocab_size = vocab;
    t->count = le64(m + 24);
    memcpy(t->tokenizer, m + 32, LWS_TOKENIZER_NAME_MAX);
    memcpy(t->tokenizer_hash, m + 96, LWS_TOKENIZER_NAME_MAX);
    *offset = LWS_TOKENS_HEADER_BYTES;
    return LWS_OK;
}

static lws_status parse_llmc_header(lws_tokens *t, const uint8_t *m, size_t size,
                                    uint64_t *offset) {
    if (size < LLMC_HEADER_BYTES)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: llm.c shard header is truncated: the file has %zu bytes, the "
                        "header alone is %d",
                        t->path, size, LLMC_HEADER_BYTES);
    int32_t magic = (int32_t)le32(m), version = (int32_t)le32(m + 4), count = (int32_t)le32(m + 8);
    /* llm.c's writer (dev/data/data_common.py) pairs each magic with one version. */
    int32_t want = magic == LLMC_MAGIC_U16 ? LLMC_VERSION_U16 : LLMC_VERSION_U32;
    if (version != want)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: llm.c shard version %" PRId32 " is not known for magic %" PRId32
                        "; llm.c writes version %" PRId32 " with it",
                        t->path, version, magic, want);
    if (count < 0)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: llm.c shard token count is %" PRId32 "; it must be >= 0", t->path,
                        count);
    t->format = LWS_TOKENS_LLMC;
    t->token_bytes = magic == LLMC_MAGIC_U16 ? 2 : 4;
    t->count = (uint64_t)count;
    *offset = LLMC_HEADER_BYTES;
    return LWS_OK;
}

/* .npy: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2
 * and v3), then a Python dict literal such as
 * {'descr': '<u2', 'fortran_order': False, 'shape': (1000,), } */
typedef struct npy_text {
    const char *p, *begin, *end;
    const char *path;
} npy_text;

static lws_status npy_malformed(const npy_text *c, const char *expected) {
    return lws_fail(LWS_ERR_DATA,
                    "file %s: .npy header is malformed at character %td: expected %s (header: "
                    "%.*s)",
                    c->path, c->p - c->begin, expected, (int)(c->end - c->begin), c->begin);
}

static void npy_skip(npy_text *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t')) c->p++;
}

static lws_status npy_string(npy_text *c, char *out, size_t cap) {
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return npy_malformed(c, "a string");
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= cap) return npy_malformed(c, "a shorter string");
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return npy_malformed(c, "a closing quote");
    c->p++;
    out[n] = 0;
    return LWS_OK;
}

static lws_status npy_shape(npy_text *c, uint64_t *dims, uint32_t *ndim) {
    if (c->p >= c->end || *c->p != '(') return npy_malformed(c, "a shape tuple '('");
    c->p++;
    *ndim = 0;
    for (;;) {
        npy_skip(c);
        if (c->p < c->end && *c->p == ')') break;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return npy_malformed(c, "a dimension");
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (UINT64_MAX - 9) / 10) return npy_malformed(c, "a smaller dimension");
            v = v * 10 + (uint64_t)(*c->p++ - '0');
        }
        if (*ndim == NPY_MAX_DIMS) return npy_malformed(c, "at most 32 dimensions");
        dims[(*ndim)++] = v;
        npy_skip(c);
        if (c->p < c->end && *c->p == ',')
            c->p++;
        else if (c->p >= c->end || *c->p != ')')
            return npy_malformed(c, "',' or ')'");
    }
    c->p++;
    return LWS_OK;
}

static const struct npy_dtype {
    const char *descr;
    uint32_t bytes;
    int is_signed;
} npy_dtypes[] = {{"<u2", 2, 0}, {"<u4", 4, 0}, {"<i4", 4, 1}, {"<i8", 8, 1}};

/* m: the first `size` bytes of a file of file_size bytes. */
static lws_status parse_npy_header(lws_tokens *t, const uint8_t *m, size_t size, uint64_t file_size,
                                   uint64_t *offset, int *is_signed) {
    if (size < 10)
        return lws_fail(LWS_ERR_DATA, "file %s: .npy header is truncated (%zu bytes)", t->path,
                        size);
    uint8_t major = m[6];
    uint64_t start, len;
    if (major == 1)
        start = 10, len = le16(m + 8);
    else if (major == 2 || major == 3)
        start = 12, len = size >= 12 ? le32(m + 8) : 0;
    else
        return lws_fail(LWS_ERR_DATA,
                        "file %s: .npy format version %u.%u is not supported; use 1, 2 or 3",
                        t->path, major, m[7]);
    if (start + len > file_size)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: .npy header is truncated: it says %" PRIu64
                        " header bytes, the file has %" PRIu64 " in all",
                        t->path, len, file_size);
    if (start + len > size)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: .npy header of %" PRIu64 " bytes; lws reads headers of up to "
                        "%zu (NumPy writes a few dozen)",
                        t->path, len, size - start);
    npy_text c = {(const char *)m + start, (const char *)m + start, (const char *)m + start + len,
                  t->path};
    char descr[16] = "", key[32];
    int fortran = -1, have_shape = 0;
    uint64_t dims[NPY_MAX_DIMS];
    uint32_t ndim = 0;
    npy_skip(&c);
    if (c.p >= c.end || *c.p != '{') return npy_malformed(&c, "'{'");
    c.p++;
    for (;;) {
        npy_skip(&c);
        if (c.p < c.end && *c.p == '}') break;
        LWS_TRY(npy_string(&c, key, sizeof key));
        npy_skip(&c);
        if (c.p >= c.end || *c.p != ':') return npy_malformed(&c, "':'");
        c.p++;
        npy_skip(&c);
        if (strcmp(key, "descr") == 0) {
            if (c.p < c.end && *c.p == '[')
                return lws_fail(LWS_ERR_DATA,
                                "file %s: .npy holds a structured array; tokens must be a plain "
                                "array of <u2, <u4, <i4 or <i8",
                                t->path);
            LWS_TRY(npy_string(&c, descr, sizeof descr));
        } else if (strcmp(key, "fortran_order") == 0) {
            size_t left = (size_t)(c.end - c.p);
            if (left >= 4 && memcmp(c.p, "True", 4) == 0)
                fortran = 1, c.p += 4;
            else if (left >= 5 && memcmp(c.p, "False", 5) == 0)
                fortran = 0, c.p += 5;
            else
                return npy_malformed(&c, "True or False");
        } else if (strcmp(key, "shape") == 0) {
            LWS_TRY(npy_shape(&c, dims, &ndim));
            have_shape = 1;
        } else {
            return npy_malformed(&c, "only the keys 'descr', 'fortran_order' and 'shape'");
        }
        npy_skip(&c);
        if (c.p < c.end && *c.p == ',')
            c.p++;
        else if (c.p >= c.end || *c.p != '}')
            return npy_malformed(&c, "',' or '}'");
    }
    if (!descr[0] || fortran < 0 || !have_shape)
        return npy_malformed(&c, "all of 'descr', 'fortran_order' and 'shape'");
    const struct npy_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof npy_dtypes / sizeof *npy_dtypes; i++)
        if (strcmp(descr, npy_dtypes[i].descr) == 0) dt = &npy_dtypes[i];
    if (!dt)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: .npy dtype '%s' is not accepted; use one of <u2 (uint16), <u4 "
                        "(uint32), <i4 (int32, non-negative), <i8 (int64, non-negative), e.g. "
                        "np.save(path, tokens.astype(np.uint16))",
                        t->path, descr);
    if (ndim == 0)
        return lws_fail(LWS_ERR_DATA, "file %s: .npy holds a 0-d scalar; tokens must be an array",
                        t->path);
    uint64_t count = 1;
    uint32_t long_dims = 0;
    for (uint32_t i = 0; i < ndim; i++) {
        if (dims[i] && count > UINT64_MAX / dims[i])
            return lws_fail(LWS_ERR_DATA, "file %s: .npy shape overflows 64 bits", t->path);
        count *= dims[i];
        long_dims += dims[i] > 1;
    }
    /* Fortran order differs from C order only when two dimensions exceed 1. */
    if (fortran && long_dims > 1)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: .npy array is in Fortran order; tokens are read in C order. "
                        "Save it with np.save(path, np.ascontiguousarray(tokens))",
                        t->path);
    t->format = LWS_TOKENS_NPY;
    t->token_bytes = dt->bytes;
    t->count = count;
    *is_signed = dt->is_signed;
    *offset = start + len;
    return LWS_OK;
}

/* ---- reading ----------------------------------------------------------- */

/* The file is read, never mapped: a file truncated or rewritten while it is
 * in use then gives an error naming it, where a mapping would give SIGBUS
 * or silently changed tokens. */

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Refuses a file that is no longer as it was opened. */
static lws_status check_unchanged(const lws_tokens *t) {
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return lws_fail(LWS_ERR_IO, "file %s: cannot stat: %s", t->path, strerror(errno));
    if ((uint64_t)st.st_size == t->file_bytes && mtime_ns(&st) == t->mtime_ns) return LWS_OK;
    return lws_fail(LWS_ERR_DATA,
                    "file %s: changed while in use (%" PRIu64 " bytes when opened, %lld now%s): "
                    "it was truncated, rewritten or appended to; a token file must stay as it "
                    "is while lws reads it (write a new one beside it and rename it into place)",
                    t->path, t->file_bytes, (long long)st.st_size,
                    (uint64_t)st.st_size == t->file_bytes ? ", modified in place" : "");
}

/* bytes bytes at byte offset `at` of the file. */
static lws_status read_at(const lws_tokens *t, uint64_t at, void *buf, size_t bytes) {
    for (size_t done = 0; done < bytes;) {
        ssize_t got = pread(t->fd, (uint8_t *)buf + done, bytes - done, (off_t)(at + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            return lws_fail(LWS_ERR_IO, "file %s: read failed: %s", t->path, strerror(errno));
        if (got == 0)
            return lws_fail(LWS_ERR_DATA,
                            "file %s: ends at byte %" PRIu64 ", before the %" PRIu64
                            " bytes it had when opened: it was truncated while in use",
                            t->path, at + done, t->file_bytes);
        done += (size_t)got;
    }
    return LWS_OK;
}

/* Tokens per read while scanning a file (1 MiB of uint32 tokens). */
#define SCAN_TOKENS ((uint64_t)1 << 18)

lws_status lws_tokens_read(const lws_tokens *t, uint64_t first, uint64_t n, uint32_t *out) {
    if (first > t->count || n > t->count - first)
        return lws_fail(LWS_ERR_INVALID,
                        "file %s: tokens [%" PRIu64 ", %" PRIu64 ") are not inside its %" PRIu64,
                        t->path, first, first + n, t->count);
    LWS_TRY(check_unchanged(t));
    /* Read in place: the raw tokens fit in out when they are at most 4
     * bytes, and are widened from the end; 8-byte ones go through a buffer. */
    uint8_t buf[8 * 512];
    for (uint64_t done = 0; done < n;) {
        uint64_t k = n - done;
        uint8_t *raw = (uint8_t *)(out + done);
        if (t->token_bytes == 8) {
            if (k > sizeof buf / 8) k = sizeof buf / 8;
            raw = buf;
        }
        LWS_TRY(read_at(t, t->offset + (first + done) * t->token_bytes, raw,
                        (size_t)(k * t->token_bytes)));
        for (uint64_t i = k; i-- > 0;) {
            uint64_t v = raw_token(raw, t->token_bytes, i);
            if (v >= t->limit)
                return lws_fail(LWS_ERR_DATA,
                                "file %s: token at position %" PRIu64 " is now %" PRIu64
                                ", not below %" PRIu32 ": the file changed since it was opened",
                                t->path, first + done + i, v, t->limit);
            out[done + i] = (uint32_t)v;
        }
        done += k;
    }
    return LWS_OK;
}

/* ---- open / close ------------------------------------------------------ */

/* Every token below the vocabulary, read in pieces: the largest, or the
 * first one out of range named by its position. */
static lws_status check_tokens(lws_tokens *t, uint32_t model_vocab, int is_signed) {
    /* A header's vocab_size (<= the model's, checked before) is the tighter bound. */
    uint64_t limit = t->vocab_size ? t->vocab_size : model_vocab;
    const char *whose = t->vocab_size ? "the file header's" : "the model's";
    if (is_signed && t->token_bytes == 4 && limit > INT32_MAX) limit = (uint64_t)INT32_MAX + 1;
    t->limit = (uint32_t)(limit < model_vocab ? limit : model_vocab);
    uint8_t *buf = malloc(SCAN_TOKENS * t->token_bytes);
    if (!buf) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", t->path);
    uint64_t max = 0;
    lws_status s = LWS_OK;
    for (uint64_t at = 0; at < t->count && s == LWS_OK; at += SCAN_TOKENS) {
        uint64_t n = t->count - at < SCAN_TOKENS ? t->count - at : SCAN_TOKENS;
        s = read_at(t, t->offset + at * t->token_bytes, buf, (size_t)(n * t->token_bytes));
        uint64_t m = s == LWS_OK ? max_raw_token(buf, t->token_bytes, n) : 0;
        max = m > max ? m : max;
        for (uint64_t i = 0; s == LWS_OK && m >= limit && i < n; i++) {
            uint64_t v = raw_token(buf, t->token_bytes, i);
            if (v < limit) continue;
            int64_t sv = t->token_bytes == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
            if (is_signed && sv < 0)
                s = lws_fail(LWS_ERR_DATA,
                             "file %s: token at position %" PRIu64 " is %" PRId64
                             ", negative; token ids must be in [0, %" PRIu64 ")",
                             t->path, at + i, sv, limit);
            else
                s = lws_fail(LWS_ERR_DATA,
                             "file %s: token at position %" PRIu64 " is %" PRIu64
                             ", not below %s vocab_size %" PRIu64 "; %s",
                             t->path, at + i, v, whose, limit,
                             t->vocab_size ? "the file is corrupt"
                                           : "the data was tokenized for a larger vocabulary "
                                             "than this model has");
        }
    }
    free(buf);
    if (s == LWS_OK) t->max_token = (uint32_t)max;
    return s;
}

/* The half-width signature over the first tokens (see check_half_width). */
static lws_status sample_half_width(lws_tokens *t) {
    if (t->token_bytes != 2 && t->token_bytes != 4) return LWS_OK;
    uint64_t n = t->count < (1u << 20) ? t->count : (1u << 20);
    uint8_t *buf = malloc(n * t->token_bytes + 1);
    if (!buf) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", t->path);
    lws_status s = read_at(t, t->offset, buf, (size_t)(n * t->token_bytes));
    if (s == LWS_OK) check_half_width(t, buf, n);
    free(buf);
    return s;
}

/* The vocabulary hash a tokenizer name stands for, when the name fixes it:
 * a built-in tokenizer's (made to read it), GPT-2's, or the one a
 * "bpe:<hash>" name spells. Returns 0 for a name that does not. */
static int hash_of_name(const char *name, char hash[LWS_TOKENIZER_NAME_MAX]) {
    if (strncmp(name, "bpe:", 4) == 0) {
        snprintf(hash, LWS_TOKENIZER_NAME_MAX, "%s", name + 4);
        return 1;
    }
    if (strcmp(name, "gpt2") == 0) {
        snprintf(hash, LWS_TOKENIZER_NAME_MAX, "%s", LWS_GPT2_VOCAB_HASH);
        return 1;
    }
    lws_tokenizer tok;
    if (lws_bpe_is_spec(name) || lws_tokenizer_create(name, &tok) != LWS_OK) {
        lws_error_clear();
        return 0;
    }
    snprintf(hash, LWS_TOKENIZER_NAME_MAX, "%s", tok.hash);
    lws_tokenizer_destroy(&tok);
    return 1;
}

/* An lws file's tokenizer: the name expected, and the hash that name
 * stands for (a vocabulary of the same name but other tokens is refused). */
static lws_status check_tokenizer(const lws_tokens *t, const char *expect) {
    if (!expect || t->format != LWS_TOKENS_LWS) return LWS_OK;
    if (strcmp(t->tokenizer, expect) != 0)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tokenizer is '%s' but '%s' is expected; prepare the data with "
                        "--tokenizer %s",
                        t->path, t->tokenizer, expect, expect);
    char want[LWS_TOKENIZER_NAME_MAX];
    if (t->tokenizer_hash[0] && hash_of_name(expect, want) && strcmp(t->tokenizer_hash, want))
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tokenizer '%s' with vocabulary hash '%s', but the model's '%s' "
                        "has hash '%s': the tokens were made with another vocabulary of that "
                        "name; prepare the data again",
                        t->path, t->tokenizer, t->tokenizer_hash, expect, want);
    return LWS_OK;
}

/* Reads and checks the header; sets the format fields and t->offset. */
static lws_status read_header(lws_tokens *t, size_t size, int *is_signed) {
    uint8_t head[HEADER_READ_BYTES];
    size_t avail = size < sizeof head ? size : sizeof head;
    LWS_TRY(read_at(t, 0, head, avail));
    const uint8_t *m = head;
    if (avail >= 8 && memcmp(m, LWS_TOKENS_MAGIC, 8) == 0)
        return parse_lws_header(t, m, avail, &t->offset);
    if (avail >= 6 && memcmp(m, NPY_MAGIC, 6) == 0)
        return parse_npy_header(t, m, avail, size, &t->offset, is_signed);
    if (avail >= 4 && (le32(m) == LLMC_MAGIC_U16 || le32(m) == LLMC_MAGIC_U32))
        return parse_llmc_header(t, m, avail, &t->offset);
    return lws_fail(LWS_ERR_DATA, "file %s: no recognised token-file header; %s", t->path,
                    accepted_formats);
}

static lws_status check_size(const lws_tokens *t, size_t size) {
    uint64_t offset = t->offset;
    if (t->count <= (UINT64_MAX - offset) / t->token_bytes &&
        offset + t->count * t->token_bytes == size)
        return LWS_OK;
    uint64_t payload = size - offset;
    char hint[160] = "";
    if (payload == 2 * t->count * t->token_bytes)
        snprintf(hint, sizeof hint,
                 " (the tokens take exactly twice the bytes: were they written as %u-byte "
                 "values?)",
                 2 * t->token_bytes);
    return lws_fail(LWS_ERR_DATA,
                    "file %s: size disagrees with the %s header: %" PRIu64
                    " tokens of %u bytes after a %" PRIu64 "-byte header need %" PRIu64
                    " bytes, the file has %zu%s",
                    t->path, lws_token_format_name(t->format), t->count, t->token_bytes, offset,
                    offset + t->count * t->token_bytes, size, hint);
}

static lws_status open_checked(lws_tokens *t, uint32_t model_vocab, const char *expect_tokenizer) {
    size_t size = 0;
    LWS_TRY(lws_open_regular(t->path, O_RDONLY, &t->fd, &size));
    struct stat st;
    if (fstat(t->fd, &st) != 0)
        return lws_fail(LWS_ERR_IO, "file %s: cannot stat: %s", t->path, strerror(errno));
    t->file_bytes = size;
    t->mtime_ns = mtime_ns(&st);
    if (size == 0)
        return lws_fail(LWS_ERR_DATA, "file %s: empty file, no recognised header; %s", t->path,
                        accepted_formats);
    int is_signed = 0;
    LWS_TRY(read_header(t, size, &is_signed));
    LWS_TRY(check_size(t, size));
    if (t->vocab_size > model_vocab)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: header vocab_size %" PRIu32
                        " is larger than the model's vocab_size %" PRIu32
                        "; use a model with vocab_size >= %" PRIu32,
                        t->path, t->vocab_size, model_vocab, t->vocab_size);
    LWS_TRY(check_tokenizer(t, expect_tokenizer));
    LWS_TRY(check_tokens(t, model_vocab, is_signed));
    return sample_half_width(t);
}

lws_status lws_tokens_open(const char *path, uint32_t model_vocab, const char *expect_tokenizer,
                           lws_tokens *out) {
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (model_vocab == 0)
        return lws_fail(LWS_ERR_INVALID, "file %s: model vocab_size 0 is not allowed", path);
    lws_tokens t = {.fd = -1};
    t.path = strdup(path);
    if (!t.path) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    lws_status s = open_checked(&t, model_vocab, expect_tokenizer);
    if (s != LWS_OK) {
        lws_tokens_close(&t);
        return s;
    }
    *out = t;
    return LWS_OK;
}

void lws_tokens_close(lws_tokens *t) {
    if (t->fd >= 0 && t->path) close(t->fd);
    free(t->path);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

const char *lws_token_format_name(lws_token_format f) {
    switch (f) {
    case LWS_TOKENS_LWS:
        return "lws token file";
    case LWS_TOKENS_LLMC:
        return "llm.c shard";
    case LWS_TOKENS_NPY:
        return ".npy";
    }
    return "unknown";
}
