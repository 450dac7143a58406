/* lws — training data: token files, tokenizers, batch sampling.
 *
 * A token file is checked once on open: its dtype comes from its header
 * (never guessed), its size must match the header, and every token must be
 * below the model's vocabulary size. It is then read window by window.
 *
 * Three formats are read, recognised by their first bytes (not by name):
 *
 * 1. The lws token file (written by `lws prepare` and lws_token_writer),
 *    a fixed 256-byte little-endian header followed by the tokens:
 *
 *      offset size  field
 *           0    8  magic "LWSTOKNS"
 *           8    4  u32 version (1)
 *          12    4  u32 dtype: bytes per token, 2 (uint16) or 4 (uint32)
 *          16    4  u32 vocab_size (every token is < vocab_size)
 *          20    4  u32 header_bytes (256)
 *          24    8  u64 token_count
 *          32   64  char tokenizer[64], NUL-terminated name, e.g. "bytes"
 *          96   64  char tokenizer_hash[64], NUL-terminated hex, may be empty
 *         160   96  zero
 *         256       token_count tokens, little-endian, dtype bytes each
 *
 *    The writer uses uint16 when vocab_size <= 65536, else uint32.
 *
 * 2. llm.c `.bin` shards: 256 little-endian int32 (1024 bytes), [0] magic
 *    20240520 (uint16 tokens, GPT-2) or 20240801 (uint32 tokens, Llama 3),
 *    [1] version, [2] token count; the tokens follow at byte 1024.
 *
 * 3. NumPy `.npy` arrays (format versions 1, 2, 3) with dtype '<u2', '<u4',
 *    '<i4' or '<i8' (signed tokens must be non-negative), 1-D or C-order
 *    (read flattened).
 *
 * llm.c shards and .npy arrays carry no vocabulary size and no tokenizer
 * name: only the token scan checks them against the model's vocabulary. */
#ifndef LWS_DATA_H
#define LWS_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "lws/status.h"

/* ---- random numbers ---------------------------------------------------- */

/* splitmix64 (Steele, Lea & Flood 2014): draw k of the stream seeded with
 * `seed` is mix(seed + k * golden), so any draw is computable from (seed, k)
 * and a stream's whole state is one number. */
static inline uint64_t lws_splitmix64_at(uint64_t seed, uint64_t k) {
    uint64_t z = seed + k * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The next draw of the stream whose state is *state. */
static inline uint64_t lws_splitmix64(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    return lws_splitmix64_at(*state, 0);
}

/* ---- token files ------------------------------------------------------ */

#define LWS_TOKENS_MAGIC        "LWSTOKNS"
#define LWS_TOKENS_VERSION      1
#define LWS_TOKENS_HEADER_BYTES 256
#define LWS_TOKENIZER_NAME_MAX  64 /* bytes, with the terminating NUL */

typedef enum lws_token_format {
    LWS_TOKENS_LWS,  /* lws token file */
    LWS_TOKENS_LLMC, /* llm.c .bin shard */
    LWS_TOKENS_NPY,  /* NumPy .npy array */
} lws_token_format;

typedef struct lws_tokens {
    char *path;
    lws_token_format format;
    uint64_t count;                              /* tokens */
    uint32_t token_bytes;                        /* 2, 4 or 8 (npy '<i8') */
    uint32_t vocab_size;                         /* from the header; 0 when the format has none */
    uint32_t max_token;                          /* largest token in the file (0 when empty) */
    char tokenizer[LWS_TOKENIZER_NAME_MAX];      /* "" when the format has none */
    char tokenizer_hash[LWS_TOKENIZER_NAME_MAX]; /* "" when unknown */
    /* Set when the file looks like wide tokens read at half their width (see
     * lws_tokens_half_width_zeros); a WARNING was printed. */
    int half_width_zeros;
    /* The file is read (lws_tokens_read), never mapped: one truncated or
     * rewritten while in use is an error naming it, not a SIGBUS. */
    int fd;              /* -1 when closed */
    uint64_t offset;     /* byte offset of the first token */
    uint64_t file_bytes; /* size and modification time when opened */
    int64_t mtime_ns;
    uint32_t limit; /* every token is below it (the vocabulary checked on open) */
} lws_tokens;

/* Opens and checks a token file: every token is read once. model_vocab: the
 * model's vocabulary size; every token must be below it, and an lws header's
 * vocab_size must not exceed it. expect_tokenizer: the tokenizer name the
 * file must carry, and the vocabulary hash that name stands for when the
 * file records one (NULL: not checked; files whose format has no name,
 * llm.c and .npy, pass). On failure *out is zeroed (fd -1) and the message
 * names the file and the problem. */
lws_status lws_tokens_open(const char *path, uint32_t model_vocab, const char *expect_tokenizer,
                           lws_tokens *out);
void lws_tokens_close(lws_tokens *t);

/* Tokens [first, first + n) into out. Fails naming the file when they are
 * not inside it, or when the file changed since it was opened (its size or
 * modification time, a short read, a token now out of range). */
lws_status lws_tokens_read(const lws_tokens *t, uint64_t first, uint64_t n, uint32_t *out);

/* The signature of tokens of twice the width read at half width (int32
 * tokens read as uint16: every other value is a zero high half). Looks at
 * the first min(count, 1M) tokens: returns 1 when at least 90% of the even
 * or of the odd positions are zero while at most 10% of the other parity
 * are, over at least 64 tokens. */
int lws_tokens_half_width_zeros(const uint8_t *data, uint32_t token_bytes, uint64_t count);

const char *lws_token_format_name(lws_token_format f);

/* Writes an lws token file atomically: to path.tmp, fsync, rename. Tokens
 * are appended in pieces; the header is completed by close. */
typedef struct lws_token_writer {
    void *file; /* FILE * */
    char *path, *tmp_path;
    uint32_t vocab_size, token_bytes;
    uint64_t count;
    char tokenizer[LWS_TOKENIZER_NAME_MAX];
    char tokenizer_hash[LWS_TOKENIZER_NAME_MAX];
} lws_token_writer;

/* tokenizer: 1..63 characters; hash: 0..63 characters (NULL = ""). */
lws_status lws_token_writer_open(lws_token_writer *w, const char *path, uint32_t vocab_size,
                                 const char *tokenizer, const char *hash);
/* Every token must be < vocab_size. After a failure, call abort. */
lws_status lws_token_writer_append(lws_token_writer *w, const uint32_t *tokens, size_t n);
/* Completes the header, fsyncs, renames to path. Frees w either way. */
lws_status lws_token_writer_close(lws_token_writer *w);
/* Removes path.tmp and frees w (after a failure). */
void lws_token_writer_abort(lws_token_writer *w);

/* The whole file in one call. */
lws_status lws_tokens_write(const char *path, const uint32_t *tokens, uint64_t n,
                            uint32_t vocab_size, const char *tokenizer, const char *hash);

/* Makes a finished temporary file the real one: fsyncs tmp_path, renames it
 * over path and fsyncs the directory, so a crash leaves the old file or the
 * new one, never a torn one. */
lws_status lws_file_commit(const char *tmp_path, const char *path);

/* ---- ranges, training windows, validation windows ---------------------- */

/* Tokens [begin, end) of one file. */
typedef struct lws_token_range {
    uint64_t begin, end;
} lws_token_range;

static inline lws_token_range lws_tokens_all(const lws_tokens *t) {
    return (lws_token_range){0, t->count};
}

/* Held-out split of one file: the last held_out tokens are validation, the
 * rest training. Fails when held_out >= t->count. */
lws_status lws_tokens_split(const lws_tokens *t, uint64_t held_out, lws_token_range *train,
                            lws_token_range *val);

/* Random training windows. The state is (seed, counter): draw k is
 * splitmix64's k-th output for the seed, so saving both in a checkpoint and
 * restoring them continues the exact sequence. */
typedef struct lws_sampler {
    uint64_t seed;
    uint64_t counter; /* random draws made so far */
    lws_token_range range;
} lws_sampler;

/* A window of seq_len + 1 tokens lies entirely inside range, so no token
 * outside it (e.g. the held-out tail) is ever read. */
lws_status lws_sampler_init(lws_sampler *s, lws_token_range range, uint64_t seed);
/* Fills inputs and targets (batch, seq_len) each: row b is the window
 * starting at a uniformly drawn position p, inputs[b][j] = token p + j,
 * targets[b][j] = token p + j + 1. With inputs NULL it only draws the
 * positions, reading nothing: the sampler moves past a micro-batch that
 * another rank of a distributed run takes. */
lws_status lws_sampler_next(lws_sampler *s, const lws_tokens *t, uint32_t batch, uint32_t seq_len,
                            uint32_t *inputs, uint32_t *targets);

/* Validation: consecutive, non-overlapping windows, no randomness. Window w
 * has inputs at range.begin + w * seq_len + [0, seq_len) and the targets one
 * further on, so every token after the first is predicted exactly once;
 * there are (n - 1) / seq_len whole windows for n tokens (a partial last
 * window is dropped). */
uint64_t lws_eval_window_count(lws_token_range range, uint32_t seq_len);
/* Fills up to batch rows (batch, seq_len) from window *cursor on, advances
 * *cursor, and sets *rows to the rows filled: 0 once the windows are
 * exhausted, and 0 for a range that is not inside t (ranges from
 * lws_tokens_all and lws_tokens_split always are). Fails as
 * lws_tokens_read does. */
lws_status lws_eval_windows(const lws_tokens *t, lws_token_range range, uint32_t seq_len,
                            uint32_t batch, uint64_t *cursor, uint32_t *inputs, uint32_t *targets,
                            uint32_t *rows);

/* ---- tokenizers -------------------------------------------------------- */

/* Tokenizers are chosen by name. The hash identifies the exact vocabulary:
 * 16 hex digits of FNV-1a 64 over every token as (u32 length, bytes), so two
 * files with the same name and hash were made with the same tokenizer. */
typedef struct lws_tokenizer {
    const char *name;
    uint32_t vocab_size;
    char hash[LWS_TOKENIZER_NAME_MAX];
    /* Appends the tokens of text to *tokens (realloc'd; *count and *capacity
     * in tokens). */
    lws_status (*encode)(const struct lws_tokenizer *tok, const uint8_t *text, size_t n,
                         uint32_t **tokens, size_t *count, size_t *capacity);
    void (*destroy)(struct lws_tokenizer *tok); /* frees state; NULL: free(state) */
    void *state;
} lws_tokenizer;

/* Fails for an unknown name, listing the known ones. */
lws_status lws_tokenizer_create(const char *name, lws_tokenizer *out);
void lws_tokenizer_destroy(lws_tokenizer *tok);
/* The known names, comma separated, e.g. "bytes". */
const char *lws_tokenizer_names(void);

#endif
