/* Tokenizers by name. Each entry builds its state and its vocabulary hash;
 * `lws prepare` and the loaders only see the lws_tokenizer interface. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lws/bpe.h"
#include "lws/data.h"

/* FNV-1a 64 over the vocabulary, token by token as (u32 length, bytes), so
 * the hash changes when any token's bytes or the order of tokens changes. */
typedef struct vocab_hash {
    uint64_t h;
} vocab_hash;

static void hash_bytes(vocab_hash *v, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) v->h = (v->h ^ p[i]) * 1099511628211ull;
}

static void hash_token(vocab_hash *v, const uint8_t *bytes, uint32_t n) {
    uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    hash_bytes(v, len, 4);
    hash_bytes(v, bytes, n);
}

static lws_status grow(uint32_t **tokens, size_t *capacity, size_t need) {
    if (need <= *capacity) return LWS_OK;
    size_t cap = *capacity ? *capacity : 4096;
    while (cap < need) cap *= 2;
    uint32_t *p = realloc(*tokens, cap * sizeof *p);
    if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for %zu tokens", cap);
    *tokens = p, *capacity = cap;
    return LWS_OK;
}

/* ---- bytes: token = byte value, vocabulary 256 ------------------------- */

static lws_status bytes_encode(const lws_tokenizer *tok, const uint8_t *text, size_t n,
                               uint32_t **tokens, size_t *count, size_t *capacity) {
    (void)tok;
    LWS_TRY(grow(tokens, capacity, *count + n));
    uint32_t *out = *tokens + *count;
    for (size_t i = 0; i < n; i++) out[i] = text[i];
    *count += n;
    return LWS_OK;
}

static lws_status bytes_create(lws_tokenizer *tok) {
    vocab_hash v = {1469598103934665603ull};
    for (uint32_t i = 0; i < 256; i++) {
        uint8_t b = (uint8_t)i;
        hash_token(&v, &b, 1);
    }
    tok->vocab_size = 256;
    tok->encode = bytes_encode;
    snprintf(tok->hash, sizeof tok->hash, "%016" PRIx64, v.h);
    return LWS_OK;
}

/* ---- the registry ------------------------------------------------------ */

/* Tokenizers by name, then byte-level BPE vocabularies by file: "gpt2:DIR"
 * (GPT-2's encoder.json + vocab.bpe) or a path ending in ".json" (an lws-bpe
 * file); those are named by their vocabulary ("gpt2", "bpe:<hash>"), see
 * lws/bpe.h. */
static const struct tokenizer_entry {
    const char *name;
    lws_status (*create)(lws_tokenizer *tok);
} tokenizers[] = {
    {"bytes", bytes_create},
};

static const char *const file_tokenizers = "gpt2:DIR (GPT-2's encoder.json and vocab.bpe in DIR), "
                                           "FILE.json (made by `lws tokenizer train`)";

const char *lws_tokenizer_names(void) {
    static char names[256];
    if (!names[0]) {
        for (size_t i = 0; i < sizeof tokenizers / sizeof *tokenizers; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s, ",
                     tokenizers[i].name);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s", file_tokenizers);
    }
    return names;
}

lws_status lws_tokenizer_create(const char *name, lws_tokenizer *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof tokenizers / sizeof *tokenizers; i++) {
        if (strcmp(name, tokenizers[i].name) != 0) continue;
        out->name = tokenizers[i].name;
        return tokenizers[i].create(out);
    }
    if (lws_bpe_is_spec(name)) return lws_bpe_tokenizer_create(name, out);
    return lws_fail(LWS_ERR_INVALID, "tokenizer '%s' is not known; known tokenizers: %s", name,
                    lws_tokenizer_names());
}

void lws_tokenizer_destroy(lws_tokenizer *tok) {
    if (tok->destroy)
        tok->destroy(tok);
    else
        free(tok->state);
    memset(tok, 0, sizeof *tok);
}
