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
#include <sys/mman.h>
#include <unistd.h>

#include "lws/data.h"
#include "util/files.h"

#define LLMC_MAGIC_U16    20240520 /* GPT-2 shards: uint16 tokens */
#define LLMC_MAGIC_U32    20240801 /* Llama 3 shards: uint32 tokens */
#define LLMC_HEADER_BYTES 1024
#define NPY_MAGIC         "\x93NUMPY"
#define NPY_MAX_DIMS      32

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

static void check_half_width(lws_tokens *t) {
    if (t->token_bytes != 2 && t->token_bytes != 4) return;
    parity_zeros z = count_parity_zeros(t->data, t->token_bytes, t->count);
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
    int32_t magic = (int32_t)le32(m), count = (int32_t)le32(m + 8);
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

static lws_status parse_npy_header(lws_tokens *t, const uint8_t *m, size_t size, uint64_t *offset,
                                   int *is_signed) {
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
    if (start + len > size)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: .npy header is truncated: it says %" PRIu64
                        " header bytes, the file has %zu in all",
                        t->path, len, size);
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

/* ---- open / close ------------------------------------------------------ */

static lws_status check_tokens(lws_tokens *t, uint32_t model_vocab, int is_signed) {
    /* A header's vocab_size (<= the model's, checked before) is the tighter bound. */
    uint64_t limit = t->vocab_size ? t->vocab_size : model_vocab;
    const char *whose = t->vocab_size ? "the file header's" : "the model's";
    if (is_signed && t->token_bytes == 4 && limit > INT32_MAX) limit = (uint64_t)INT32_MAX + 1;
    uint64_t max = max_raw_token(t->data, t->token_bytes, t->count);
    if (max < limit) {
        t->max_token = (uint32_t)max;
        return LWS_OK;
    }
    for (uint64_t i = 0; i < t->count; i++) {
        uint64_t v = raw_token(t->data, t->token_bytes, i);
        if (v < limit) continue;
        int64_t sv = t->token_bytes == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
        if (is_signed && sv < 0)
            return lws_fail(LWS_ERR_DATA,
                            "file %s: token at position %" PRIu64 " is %" PRId64
                            ", negative; token ids must be in [0, %" PRIu64 ")",
                            t->path, i, sv, limit);
        return lws_fail(LWS_ERR_DATA,
                        "file %s: token at position %" PRIu64 " is %" PRIu64
                        ", not below %s vocab_size %" PRIu64 "; %s",
                        t->path, i, v, whose, limit,
                        t->vocab_size ? "the file is corrupt"
                                      : "the data was tokenized for a larger vocabulary than "
                                        "this model has");
    }
    return LWS_OK; /* not reached: max >= limit means some token is */
}

lws_status lws_tokens_open(const char *path, uint32_t model_vocab, const char *expect_tokenizer,
                           lws_tokens *out) {
    memset(out, 0, sizeof *out);
    if (model_vocab == 0)
        return lws_fail(LWS_ERR_INVALID, "file %s: model vocab_size 0 is not allowed", path);
    lws_tokens t = {0};
    t.path = strdup(path);
    if (!t.path) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    int fd;
    size_t size = 0;
    lws_status s = lws_open_regular(path, O_RDONLY, &fd, &size);
    if (s != LWS_OK) goto fail;
    if (size == 0) {
        close(fd);
        s = lws_fail(LWS_ERR_DATA, "file %s: empty file, no recognised header; %s", path,
                     accepted_formats);
        goto fail;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        s = lws_fail(LWS_ERR_IO, "file %s: mmap of %zu bytes failed: %s", path, size,
                     strerror(errno));
        goto fail;
    }
    t.map = map, t.map_bytes = size;
    const uint8_t *m = map;
    uint64_t offset = 0;
    int is_signed = 0;
    if (size >= 8 && memcmp(m, LWS_TOKENS_MAGIC, 8) == 0)
        s = parse_lws_header(&t, m, size, &offset);
    else if (size >= 6 && memcmp(m, NPY_MAGIC, 6) == 0)
        s = parse_npy_header(&t, m, size, &offset, &is_signed);
    else if (size >= 4 && (le32(m) == LLMC_MAGIC_U16 || le32(m) == LLMC_MAGIC_U32))
        s = parse_llmc_header(&t, m, size, &offset);
    else
        s = lws_fail(LWS_ERR_DATA, "file %s: no recognised token-file header; %s", path,
                     accepted_formats);
    if (s != LWS_OK) goto fail;

    const char *format = lws_token_format_name(t.format);
    if (t.count > (UINT64_MAX - offset) / t.token_bytes ||
        offset + t.count * t.token_bytes != size) {
        uint64_t payload = size - offset;
        char hint[160] = "";
        if (payload == 2 * t.count * t.token_bytes)
            snprintf(hint, sizeof hint,
                     " (the tokens take exactly twice the bytes: were they written as %u-byte "
                     "values?)",
                     2 * t.token_bytes);
        s = lws_fail(LWS_ERR_DATA,
                     "file %s: size disagrees with the %s header: %" PRIu64
                     " tokens of %u bytes after a %" PRIu64 "-byte header need %" PRIu64
                     " bytes, the file has %zu%s",
                     path, format, t.count, t.token_bytes, offset, offset + t.count * t.token_bytes,
                     size, hint);
        goto fail;
    }
    t.data = m + offset;
    if (t.vocab_size > model_vocab) {
        s = lws_fail(LWS_ERR_DATA,
                     "file %s: header vocab_size %" PRIu32
                     " is larger than the model's vocab_size %" PRIu32
                     "; use a model with vocab_size >= %" PRIu32,
                     path, t.vocab_size, model_vocab, t.vocab_size);
        goto fail;
    }
    if (expect_tokenizer && t.format == LWS_TOKENS_LWS && strcmp(t.tokenizer, expect_tokenizer)) {
        s = lws_fail(LWS_ERR_DATA,
                     "file %s: tokenizer is '%s' but '%s' is expected; prepare the data with "
                     "--tokenizer %s",
                     path, t.tokenizer, expect_tokenizer, expect_tokenizer);
        goto fail;
    }
    s = check_tokens(&t, model_vocab, is_signed);
    if (s != LWS_OK) goto fail;
    check_half_width(&t);
    *out = t;
    return LWS_OK;
fail:
    lws_tokens_close(&t);
    return s;
}

void lws_tokens_close(lws_tokens *t) {
    if (t->map) munmap(t->map, t->map_bytes);
    free(t->path);
    memset(t, 0, sizeof *t);
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
