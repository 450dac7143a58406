/* Byte-level BPE inside src/data/: the vocabulary contents shared by the
 * trainer and the file readers, the lws_bpe state, and a byte-string hash
 * map. The public API is include/lws/bpe.h. */
#ifndef LWS_BPE_INTERNAL_H
#define LWS_BPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "lws/bpe.h"

#define BPE_NONE UINT32_MAX

/* ---- byte-string hash map (bpe_map.c) ----------------------------------- */

typedef struct bpe_map_entry {
    uint64_t hash, value;
    uint32_t offset, len; /* the key, in keys */
} bpe_map_entry;

/* Open addressing over entries in insertion order; keys are copied into one
 * arena. */
typedef struct bpe_map {
    bpe_map_entry *entries;
    size_t count, capacity;
    uint32_t *slots; /* entry index + 1; 0 = empty; slot_mask + 1 slots */
    size_t slot_mask;
    uint8_t *keys;
    size_t keys_len, keys_capacity;
} bpe_map;

uint64_t bpe_hash_bytes(const uint8_t *p, size_t n);
bpe_map_entry *bpe_map_find(const bpe_map *m, const uint8_t *key, size_t len, uint64_t hash);
/* Adds a key that is not in the map. */
lws_status bpe_map_insert(bpe_map *m, const uint8_t *key, size_t len, uint64_t hash, uint64_t value,
                          bpe_map_entry **out);
static inline const uint8_t *bpe_map_key(const bpe_map *m, const bpe_map_entry *e) {
    return m->keys + e->offset;
}
void bpe_map_clear(bpe_map *m); /* keeps the memory */
void bpe_map_free(bpe_map *m);

/* ---- vocabulary contents ------------------------------------------------ */

/* Tokens in id order (the special tokens last) and merges in rank order. */
typedef struct bpe_vocab {
    uint32_t n_tokens, n_specials;
    uint32_t *offsets; /* n_tokens + 1: token i is bytes[offsets[i], offsets[i+1]) */
    uint8_t *bytes;
    size_t bytes_capacity, offsets_capacity;
    uint32_t n_merges;
    uint32_t *merges; /* 3 per merge: left id, right id, result id */
    size_t merges_capacity;
} bpe_vocab;

lws_status bpe_vocab_add_token(bpe_vocab *v, const uint8_t *bytes, size_t len);
lws_status bpe_vocab_add_merge(bpe_vocab *v, uint32_t left, uint32_t right, uint32_t result);
void bpe_vocab_free(bpe_vocab *v);
/* The bytes of token id; valid until the next bpe_vocab_add_token. */
static inline const uint8_t *bpe_vocab_token(const bpe_vocab *v, uint32_t id, uint32_t *len) {
    *len = v->offsets[id + 1] - v->offsets[id];
    return v->bytes + v->offsets[id];
}

/* GPT-2's bytes_to_unicode: the character that stands for byte b in token
 * strings, and back (-1 for a character that stands for no byte). */
uint32_t bpe_byte_char(uint8_t b);
int bpe_char_byte(uint32_t cp);

/* ---- the tokenizer ------------------------------------------------------ */

typedef struct bpe_merge_slot {
    uint64_t pair; /* left << 32 | right; BPE_EMPTY_PAIR when free */
    uint32_t rank, result;
} bpe_merge_slot;

#define BPE_EMPTY_PAIR UINT64_MAX

/* One heap entry of the piece encoder: the pair that starts at symbol pos. */
typedef struct bpe_candidate {
    uint32_t rank, pos, left, right, result;
} bpe_candidate;

struct lws_bpe {
    char name[LWS_TOKENIZER_NAME_MAX];
    char hash[LWS_TOKENIZER_NAME_MAX];
    bpe_vocab vocab;
    uint32_t byte_token[256];
    bpe_merge_slot *merge_slots; /* merge_mask + 1 slots */
    uint64_t merge_mask;
    /* Tokens of recent pieces: value = offset in cache_tokens << 16 | count. */
    bpe_map cache;
    uint32_t *cache_tokens;
    size_t cache_tokens_len, cache_tokens_capacity;
    /* Scratch for one piece: symbols and candidate pairs. */
    uint32_t *symbol, *next, *prev;
    size_t symbols_capacity;
    bpe_candidate *heap, *batch;
    size_t heap_capacity;
};

/* Builds the tokenizer from v (taken over, zeroed, also on failure): finds
 * each byte's token, indexes the merges (a pair listed twice keeps its last
 * rank), and computes the hash and the name. Fails naming what is missing;
 * the caller adds the file as context. */
lws_status bpe_create(bpe_vocab *v, lws_bpe **out);

#endif
