/* Byte-level BPE: building a tokenizer from a vocabulary, encoding text
 * (pre-tokenizer pieces, each merged by rank, recent pieces cached) and
 * decoding tokens back to bytes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe_internal.h"

/* Pieces up to this many bytes are cached; longer ones are rare and cheap
 * to hold back. The cache is emptied when it reaches either limit, which
 * bounds its memory (about 40 MiB) on text with endless distinct pieces. */
#define CACHE_MAX_PIECE  64
#define CACHE_MAX_PIECES (1u << 19)
#define CACHE_MAX_TOKENS (1u << 22)

/* ---- GPT-2's byte-to-character map --------------------------------------- */

/* Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves;
 * the other 68, in byte order, for U+0100 onwards: 0x00..0x20 first, then
 * 0x7F..0xA0, then 0xAD. */
uint32_t bpe_byte_char(uint8_t b) {
    if (b <= 0x20) return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0) return 0x100 + 33 + (b - 0x7F);
    if (b == 0xAD) return 0x100 + 33 + 34;
    return b;
}

int bpe_char_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp < 0x100 + 33) return (int)(cp - 0x100);
    if (cp >= 0x100 + 33 && cp < 0x100 + 33 + 34) return (int)(0x7F + cp - 0x100 - 33);
    if (cp == 0x100 + 33 + 34) return 0xAD;
    return -1;
}

/* ---- vocabulary contents -------------------------------------------------- */

lws_status bpe_vocab_add_token(bpe_vocab *v, const uint8_t *bytes, size_t len) {
    if (v->n_tokens + 2 > v->offsets_capacity) {
        size_t cap = v->offsets_capacity ? 2 * v->offsets_capacity : 1024;
        uint32_t *o = realloc(v->offsets, cap * sizeof *o);
        if (!o) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu tokens", cap);
        if (!v->offsets) o[0] = 0;
        v->offsets = o, v->offsets_capacity = cap;
    }
    size_t used = v->offsets[v->n_tokens];
    if (used + len > UINT32_MAX)
        return lws_fail(LWS_ERR_DATA, "bpe: the tokens hold more than 4 GiB of bytes");
    if (used + len > v->bytes_capacity) {
        size_t cap = v->bytes_capacity ? 2 * v->bytes_capacity : 16384;
        while (cap < used + len) cap *= 2;
        uint8_t *b = realloc(v->bytes, cap);
        if (!b) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu bytes", cap);
        v->bytes = b, v->bytes_capacity = cap;
    }
    if (len) memcpy(v->bytes + used, bytes, len);
    v->offsets[++v->n_tokens] = (uint32_t)(used + len);
    return LWS_OK;
}

lws_status bpe_vocab_add_merge(bpe_vocab *v, uint32_t left, uint32_t right, uint32_t result) {
    if (3 * ((size_t)v->n_merges + 1) > v->merges_capacity) {
        size_t cap = v->merges_capacity ? 2 * v->merges_capacity : 3 * 1024;
        uint32_t *m = realloc(v->merges, cap * sizeof *m);
        if (!m) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu merges", cap);
        v->merges = m, v->merges_capacity = cap;
    }
    uint32_t *m = v->merges + 3 * (size_t)v->n_merges++;
    m[0] = left, m[1] = right, m[2] = result;
    return LWS_OK;
}

void bpe_vocab_free(bpe_vocab *v) {
    free(v->offsets), free(v->bytes), free(v->merges);
    memset(v, 0, sizeof *v);
}

/* ---- building ------------------------------------------------------------- */

static inline uint64_t pair_key(uint32_t left, uint32_t right) {
    return (uint64_t)left << 32 | right;
}

static inline size_t pair_slot(uint64_t key, uint64_t mask) {
    return (size_t)(((key * 0x9E3779B97F4A7C15ull) >> 20) & mask);
}

static inline const bpe_merge_slot *find_merge(const lws_bpe *b, uint32_t left, uint32_t right) {
    uint64_t key = pair_key(left, right);
    for (size_t s = pair_slot(key, b->merge_mask);; s = (s + 1) & b->merge_mask) {
        const bpe_merge_slot *m = &b->merge_slots[s];
        if (m->pair == key) return m;
        if (m->pair == BPE_EMPTY_PAIR) return NULL;
    }
}

lws_status bpe_create(bpe_vocab *v, lws_bpe **out) {
    *out = NULL;
    lws_bpe *b = calloc(1, sizeof *b);
    if (!b) {
        bpe_vocab_free(v);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory");
    }
    b->vocab = *v;
    memset(v, 0, sizeof *v);
    const bpe_vocab *voc = &b->vocab;
    lws_status s = LWS_OK;
    for (int i = 0; i < 256; i++) b->byte_token[i] = BPE_NONE;
    uint32_t n_ordinary = voc->n_tokens - voc->n_specials;
    for (uint32_t id = 0; id < n_ordinary; id++) {
        uint32_t len;
        const uint8_t *t = bpe_vocab_token(voc, id, &len);
        if (len == 1 && b->byte_token[t[0]] == BPE_NONE) b->byte_token[t[0]] = id;
    }
    for (int i = 0; i < 256 && s == LWS_OK; i++)
        if (b->byte_token[i] == BPE_NONE)
            s = lws_fail(LWS_ERR_DATA,
                         "no token for the byte 0x%02x: a byte-level vocabulary needs a token "
                         "for each of the 256 bytes",
                         i);
    size_t slots = 16;
    while (slots < 2 * (size_t)voc->n_merges) slots *= 2;
    if (s == LWS_OK && !(b->merge_slots = malloc(slots * sizeof *b->merge_slots)))
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %u merges", voc->n_merges);
    if (s == LWS_OK) {
        b->merge_mask = slots - 1;
        for (size_t i = 0; i < slots; i++) b->merge_slots[i].pair = BPE_EMPTY_PAIR;
    }
    for (uint32_t k = 0; k < voc->n_merges && s == LWS_OK; k++) {
        const uint32_t *m = voc->merges + 3 * (size_t)k;
        uint32_t ll, rl, pl;
        if (m[0] >= n_ordinary || m[1] >= n_ordinary || m[2] >= n_ordinary) {
            s = lws_fail(LWS_ERR_DATA, "merge %u: token id out of range", k);
            break;
        }
        const uint8_t *l = bpe_vocab_token(voc, m[0], &ll), *r = bpe_vocab_token(voc, m[1], &rl),
                      *p = bpe_vocab_token(voc, m[2], &pl);
        if (pl != ll + rl || memcmp(p, l, ll) != 0 || memcmp(p + ll, r, rl) != 0) {
            s = lws_fail(LWS_ERR_DATA, "merge %u: token %u is not token %u followed by token %u", k,
                         m[2], m[0], m[1]);
            break;
        }
        uint64_t key = pair_key(m[0], m[1]);
        size_t slot = pair_slot(key, b->merge_mask);
        while (b->merge_slots[slot].pair != BPE_EMPTY_PAIR && b->merge_slots[slot].pair != key)
            slot = (slot + 1) & b->merge_mask;
        b->merge_slots[slot] = (bpe_merge_slot){key, k, m[2]}; /* a repeat keeps the last rank */
    }
    if (s != LWS_OK) {
        lws_bpe_free(b);
        return s;
    }
    /* The vocabulary hash of data.h: FNV-1a 64 over (u32 length, bytes). */
    uint64_t h = 1469598103934665603ull;
    for (uint32_t id = 0; id < voc->n_tokens; id++) {
        uint32_t len;
        const uint8_t *t = bpe_vocab_token(voc, id, &len);
        uint8_t le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
        for (int i = 0; i < 4; i++) h = (h ^ le[i]) * 1099511628211ull;
        for (uint32_t i = 0; i < len; i++) h = (h ^ t[i]) * 1099511628211ull;
    }
    snprintf(b->hash, sizeof b->hash, "%016" PRIx64, h);
    if (strcmp(b->hash, LWS_GPT2_VOCAB_HASH) == 0)
        snprintf(b->name, sizeof b->name, "gpt2");
    else
        snprintf(b->name, sizeof b->name, "bpe:%.16s", b->hash);
    *out = b;
    return LWS_OK;
}

void lws_bpe_free(lws_bpe *b) {
    if (!b) return;
    bpe_vocab_free(&b->vocab);
    bpe_map_free(&b->cache);
    free(b->merge_slots), free(b->cache_tokens);
    free(b->symbol), free(b->next), free(b->prev), free(b->heap), free(b->batch);
    free(b);
}

const char *lws_bpe_name(const lws_bpe *b) {
    return b->name;
}
const char *lws_bpe_hash(const lws_bpe *b) {
    return b->hash;
}
uint32_t lws_bpe_vocab_size(const lws_bpe *b) {
    return b->vocab.n_tokens;
}
uint32_t lws_bpe_merge_count(const lws_bpe *b) {
    return b->vocab.n_merges;
}
uint32_t lws_bpe_special_count(const lws_bpe *b) {
    return b->vocab.n_specials;
}

void lws_bpe_merge(const lws_bpe *b, uint32_t rank, uint32_t *left, uint32_t *right,
                   uint32_t *result) {
    const uint32_t *m = b->vocab.merges + 3 * (size_t)rank;
    *left = m[0], *right = m[1], *result = m[2];
}

const uint8_t *lws_bpe_token(const lws_bpe *b, uint32_t id, uint32_t *len) {
    return bpe_vocab_token(&b->vocab, id, len);
}

/* ---- encoding one piece --------------------------------------------------- */

/* Candidates are ordered by (rank, pos): the lowest rank first and, within
 * a rank, left to right. */
static inline int before(const bpe_candidate *a, const bpe_candidate *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_candidate *heap, size_t *n, bpe_candidate c) {
    size_t i = (*n)++;
    while (i > 0 && before(&c, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = c;
}

static bpe_candidate heap_pop(bpe_candidate *heap, size_t *n) {
    bpe_candidate top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && before(&heap[c + 1], &heap[c])) c++;
        if (!before(&heap[c], &last)) break;
        heap[i] = heap[c];
        i = c;
    }
    if (*n) heap[i] = last;
    return top;
}

static lws_status reserve_scratch(lws_bpe *b, size_t n) {
    if (n <= b->symbols_capacity) return LWS_OK;
    size_t cap = b->symbols_capacity ? b->symbols_capacity : 256;
    while (cap < n) cap *= 2;
    free(b->symbol), free(b->next), free(b->prev), free(b->heap), free(b->batch);
    b->symbol = malloc(cap * sizeof *b->symbol);
    b->next = malloc(cap * sizeof *b->next);
    b->prev = malloc(cap * sizeof *b->prev);
    /* Each merge adds at most two candidates to the n - 1 initial ones. */
    b->heap = malloc(3 * cap * sizeof *b->heap);
    b->batch = malloc(3 * cap * sizeof *b->batch);
    b->symbols_capacity = cap;
    if (!b->symbol || !b->next || !b->prev || !b->heap || !b->batch) {
        b->symbols_capacity = 0;
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for a piece of %zu bytes", n);
    }
    return LWS_OK;
}

static inline void push_pair(lws_bpe *b, size_t *n_heap, uint32_t left_pos, uint32_t right_pos) {
    const bpe_merge_slot *m = find_merge(b, b->symbol[left_pos], b->symbol[right_pos]);
    if (m)
        heap_push(b->heap, n_heap,
                  (bpe_candidate){m->rank, left_pos, b->symbol[left_pos], b->symbol[right_pos],
                                  m->result});
}

/* GPT-2's merge loop: while some adjacent pair has a rank, merge every
 * occurrence of the lowest-ranked pair, left to right, each symbol in at
 * most one merge. Symbols are a linked list over the piece's byte positions
 * (a merged symbol keeps its left position), and candidate pairs wait in a
 * heap; all candidates of one rank are taken out together and applied left
 * to right, each only if both its symbols are still as they were, so the
 * result is the same as rescanning the piece after every merge. Writes at
 * most n tokens to out and returns how many. */
static lws_status encode_piece(lws_bpe *b, const uint8_t *piece, size_t n, uint32_t *out,
                               size_t *n_out) {
    LWS_TRY(reserve_scratch(b, n));
    uint32_t *symbol = b->symbol, *next = b->next, *prev = b->prev;
    for (size_t i = 0; i < n; i++) {
        symbol[i] = b->byte_token[piece[i]];
        next[i] = (uint32_t)(i + 1);
        prev[i] = i ? (uint32_t)(i - 1) : BPE_NONE;
    }
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(b, &n_heap, (uint32_t)i, (uint32_t)(i + 1));
    while (n_heap) {
        uint32_t rank = b->heap[0].rank;
        size_t n_batch = 0;
        while (n_heap && b->heap[0].rank == rank) b->batch[n_batch++] = heap_pop(b->heap, &n_heap);
        for (size_t k = 0; k < n_batch; k++) {
            const bpe_candidate *c = &b->batch[k];
            uint32_t pos = c->pos, right = next[pos];
            if (symbol[pos] != c->left || right >= n || symbol[right] != c->right) continue;
            symbol[pos] = c->result;
            symbol[right] = BPE_NONE;
            next[pos] = next[right];
            if (next[pos] < n) prev[next[pos]] = pos;
            if (prev[pos] != BPE_NONE) push_pair(b, &n_heap, prev[pos], pos);
            if (next[pos] < n) push_pair(b, &n_heap, pos, next[pos]);
        }
    }
    size_t count = 0;
    for (uint32_t i = 0; i < n; i = next[i]) out[count++] = symbol[i];
    *n_out = count;
    return LWS_OK;
}

/* ---- encoding and decoding text ------------------------------------------- */

static lws_status grow_tokens(uint32_t **tokens, size_t *capacity, size_t need) {
    if (need <= *capacity) return LWS_OK;
    size_t cap = *capacity ? *capacity : 4096;
    while (cap < need) cap *= 2;
    uint32_t *p = realloc(*tokens, cap * sizeof *p);
    if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu tokens", cap);
    *tokens = p, *capacity = cap;
    return LWS_OK;
}

/* Remembers the tokens of a piece; a full cache starts over. */
static lws_status cache_put(lws_bpe *b, const uint8_t *piece, size_t n, uint64_t hash,
                            const uint32_t *tokens, size_t count) {
    if (b->cache.count >= CACHE_MAX_PIECES || b->cache_tokens_len + count > CACHE_MAX_TOKENS) {
        bpe_map_clear(&b->cache);
        b->cache_tokens_len = 0;
    }
    LWS_TRY(grow_tokens(&b->cache_tokens, &b->cache_tokens_capacity, b->cache_tokens_len + count));
    memcpy(b->cache_tokens + b->cache_tokens_len, tokens, count * sizeof *tokens);
    LWS_TRY(bpe_map_insert(&b->cache, piece, n, hash, (uint64_t)b->cache_tokens_len << 16 | count,
                           NULL));
    b->cache_tokens_len += count;
    return LWS_OK;
}

lws_status lws_bpe_encode(lws_bpe *b, const uint8_t *text, size_t n, uint32_t **tokens,
                          size_t *count, size_t *capacity) {
    for (size_t pos = 0; pos < n;) {
        size_t end = lws_pretokenize_next(text, n, pos), len = end - pos;
        const uint8_t *piece = text + pos;
        pos = end;
        /* A piece never gives more tokens than it has bytes. */
        LWS_TRY(grow_tokens(tokens, capacity, *count + len));
        uint32_t *out = *tokens + *count;
        if (len == 1) {
            out[0] = b->byte_token[piece[0]];
            *count += 1;
            continue;
        }
        size_t got;
        if (len > CACHE_MAX_PIECE) {
            LWS_TRY(encode_piece(b, piece, len, out, &got));
            *count += got;
            continue;
        }
        uint64_t hash = bpe_hash_bytes(piece, len);
        const bpe_map_entry *e = bpe_map_find(&b->cache, piece, len, hash);
        if (e) {
            got = e->value & 0xFFFF;
            memcpy(out, b->cache_tokens + (e->value >> 16), got * sizeof *out);
        } else {
            LWS_TRY(encode_piece(b, piece, len, out, &got));
            LWS_TRY(cache_put(b, piece, len, hash, out, got));
        }
        *count += got;
    }
    return LWS_OK;
}

lws_status lws_bpe_decode(const lws_bpe *b, const uint32_t *tokens, size_t n, uint8_t **bytes,
                          size_t *len, size_t *capacity) {
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] >= b->vocab.n_tokens)
            return lws_fail(LWS_ERR_INVALID,
                            "token %zu: id %" PRIu32 " is not below the vocabulary size %" PRIu32
                            " of tokenizer %s",
                            i, tokens[i], b->vocab.n_tokens, b->name);
        uint32_t tl;
        const uint8_t *t = bpe_vocab_token(&b->vocab, tokens[i], &tl);
        if (*len + tl > *capacity) {
            size_t cap = *capacity ? *capacity : 4096;
            while (cap < *len + tl) cap *= 2;
            uint8_t *p = realloc(*bytes, cap);
            if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu bytes", cap);
            *bytes = p, *capacity = cap;
        }
        memcpy(*bytes + *len, t, tl);
        *len += tl;
    }
    return LWS_OK;
}

/* ---- specs and the lws_tokenizer interface --------------------------------- */

int lws_bpe_is_spec(const char *spec) {
    size_t n = strlen(spec);
    return strncmp(spec, "gpt2:", 5) == 0 || (n > 5 && strcmp(spec + n - 5, ".json") == 0);
}

lws_status lws_bpe_open(const char *spec, lws_bpe **out) {
    *out = NULL;
    if (strncmp(spec, "gpt2:", 5) == 0) {
        if (!spec[5])
            return lws_fail(LWS_ERR_INVALID,
                            "tokenizer 'gpt2:' names no directory; use gpt2:DIR with "
                            "DIR/encoder.json and DIR/vocab.bpe");
        return lws_bpe_load_gpt2(spec + 5, out);
    }
    if (lws_bpe_is_spec(spec)) return lws_bpe_load(spec, out);
    return lws_fail(LWS_ERR_INVALID,
                    "tokenizer '%s' is not a BPE vocabulary; use gpt2:DIR or a .json file made "
                    "by `lws tokenizer train`",
                    spec);
}

static lws_status tokenizer_encode(const lws_tokenizer *tok, const uint8_t *text, size_t n,
                                   uint32_t **tokens, size_t *count, size_t *capacity) {
    return lws_bpe_encode(tok->state, text, n, tokens, count, capacity);
}

static void tokenizer_destroy(lws_tokenizer *tok) {
    lws_bpe_free(tok->state);
}

lws_status lws_bpe_tokenizer_create(const char *spec, lws_tokenizer *out) {
    memset(out, 0, sizeof *out);
    lws_bpe *b;
    LWS_TRY(lws_bpe_open(spec, &b));
    out->name = b->name;
    out->vocab_size = b->vocab.n_tokens;
    snprintf(out->hash, sizeof out->hash, "%s", b->hash);
    out->encode = tokenizer_encode;
    out->destroy = tokenizer_destroy;
    out->state = b;
    return LWS_OK;
}

uint32_t *lws_bpe_token_lengths(const lws_bpe *b, uint32_t vocab) {
    uint32_t *len = calloc(vocab ? vocab : 1, sizeof *len);
    if (!len) return NULL;
    uint32_t n = lws_bpe_vocab_size(b), text = n - lws_bpe_special_count(b);
    for (uint32_t id = 0; id < text && id < vocab; id++) lws_bpe_token(b, id, &len[id]);
    return len;
}
