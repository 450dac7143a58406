/* Training a byte-level BPE vocabulary.
 *
 * The text is cut into pre-tokenizer pieces and each distinct piece (a
 * "word") is counted once, so the work scales with the distinct words, not
 * the text. Every adjacent pair of symbols has a count (the sum of the
 * counts of the words it occurs in, with multiplicity) and a list of the
 * words it may occur in. A merge rewrites only those words and updates the
 * counts of the pairs around each merge site; a max-heap with lazy deletion
 * (a stale entry is re-queued with the current count when it comes up)
 * finds the next pair. Ties go to the lowest (left id, right id), so the
 * result never depends on hash order. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe_internal.h"

struct lws_bpe_trainer {
    bpe_map words; /* piece bytes -> occurrences */
    uint64_t bytes;
};

lws_status lws_bpe_trainer_create(lws_bpe_trainer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory");
    return LWS_OK;
}

void lws_bpe_trainer_free(lws_bpe_trainer *t) {
    if (!t) return;
    bpe_map_free(&t->words);
    free(t);
}

uint64_t lws_bpe_trainer_bytes(const lws_bpe_trainer *t) {
    return t->bytes;
}

lws_status lws_bpe_trainer_add(lws_bpe_trainer *t, const uint8_t *text, size_t n) {
    for (size_t pos = 0; pos < n;) {
        size_t end = lws_pretokenize_next(text, n, pos);
        uint64_t h = bpe_hash_bytes(text + pos, end - pos);
        bpe_map_entry *e = bpe_map_find(&t->words, text + pos, end - pos, h);
        if (e)
            e->value++;
        else
            LWS_TRY(bpe_map_insert(&t->words, text + pos, end - pos, h, 1, NULL));
        pos = end;
    }
    t->bytes += n;
    return LWS_OK;
}

/* ---- pairs ----------------------------------------------------------------- */

typedef struct pair {
    uint32_t left, right;
    int64_t count;
    uint32_t *words; /* words the pair was seen in (may no longer hold it) */
    uint32_t n_words, words_capacity;
    uint32_t touched; /* the last merge step that raised the count, + 1 */
} pair;

typedef struct queued {
    int64_t count;
    uint32_t pair;
} queued;

typedef struct training {
    pair *pairs;
    size_t n_pairs, pairs_capacity;
    uint32_t *slots; /* pair index + 1, by hash of (left, right) */
    size_t slot_mask;
    queued *heap;
    size_t n_heap, heap_capacity;
    uint32_t *raised; /* pairs whose count went up in this step */
    size_t n_raised, raised_capacity;
} training;

static inline size_t pair_hash(uint32_t left, uint32_t right) {
    return (size_t)((((uint64_t)left << 32 | right) * 0x9E3779B97F4A7C15ull) >> 17);
}

static lws_status grow(void **p, size_t *capacity, size_t need, size_t size) {
    if (need <= *capacity) return LWS_OK;
    size_t cap = *capacity ? *capacity : 1024;
    while (cap < need) cap *= 2;
    void *q = realloc(*p, cap * size);
    if (!q) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe train: out of memory");
    *p = q, *capacity = cap;
    return LWS_OK;
}

static lws_status find_pair(training *tr, uint32_t left, uint32_t right, uint32_t *index) {
    if (!tr->slots || 2 * (tr->n_pairs + 1) > tr->slot_mask + 1) {
        size_t n = tr->slots ? 2 * (tr->slot_mask + 1) : 1 << 16;
        uint32_t *slots = calloc(n, sizeof *slots);
        if (!slots) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe train: out of memory");
        for (size_t i = 0; i < tr->n_pairs; i++) {
            size_t s = pair_hash(tr->pairs[i].left, tr->pairs[i].right) & (n - 1);
            while (slots[s]) s = (s + 1) & (n - 1);
            slots[s] = (uint32_t)(i + 1);
        }
        free(tr->slots);
        tr->slots = slots, tr->slot_mask = n - 1;
    }
    size_t s = pair_hash(left, right) & tr->slot_mask;
    for (; tr->slots[s]; s = (s + 1) & tr->slot_mask) {
        const pair *p = &tr->pairs[tr->slots[s] - 1];
        if (p->left == left && p->right == right) {
            *index = tr->slots[s] - 1;
            return LWS_OK;
        }
    }
    LWS_TRY(grow((void **)&tr->pairs, &tr->pairs_capacity, tr->n_pairs + 1, sizeof *tr->pairs));
    tr->pairs[tr->n_pairs] = (pair){left, right, 0, NULL, 0, 0, 0};
    tr->slots[s] = (uint32_t)++tr->n_pairs;
    *index = (uint32_t)(tr->n_pairs - 1);
    return LWS_OK;
}

/* Adds delta to the pair's count; a rise records word w and, once per step,
 * the pair for re-queueing. */
static lws_status count_pair(training *tr, uint32_t left, uint32_t right, int64_t delta, uint32_t w,
                             uint32_t step) {
    uint32_t i;
    LWS_TRY(find_pair(tr, left, right, &i));
    pair *p = &tr->pairs[i];
    p->count += delta;
    if (delta <= 0) return LWS_OK;
    if (!p->n_words || p->words[p->n_words - 1] != w) {
        size_t cap = p->words_capacity;
        if (p->n_words == cap) {
            LWS_TRY(grow((void **)&p->words, &cap, cap + 1, sizeof *p->words));
            p->words_capacity = (uint32_t)cap;
        }
        p->words[p->n_words++] = w;
    }
    if (p->touched != step + 1) {
        p->touched = step + 1;
        LWS_TRY(
            grow((void **)&tr->raised, &tr->raised_capacity, tr->n_raised + 1, sizeof *tr->raised));
        tr->raised[tr->n_raised++] = i;
    }
    return LWS_OK;
}

/* Heap order: the higher count first, then the lower (left, right). */
static inline int above(const training *tr, queued a, queued b) {
    if (a.count != b.count) return a.count > b.count;
    const pair *p = &tr->pairs[a.pair], *q = &tr->pairs[b.pair];
    return p->left != q->left ? p->left < q->left : p->right < q->right;
}

static lws_status queue_push(training *tr, uint32_t index) {
    LWS_TRY(grow((void **)&tr->heap, &tr->heap_capacity, tr->n_heap + 1, sizeof *tr->heap));
    queued q = {tr->pairs[index].count, index};
    size_t i = tr->n_heap++;
    while (i > 0 && above(tr, q, tr->heap[(i - 1) / 2])) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = q;
    return LWS_OK;
}

static queued queue_pop(training *tr) {
    queued top = tr->heap[0], last = tr->heap[--tr->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= tr->n_heap) break;
        if (c + 1 < tr->n_heap && above(tr, tr->heap[c + 1], tr->heap[c])) c++;
        if (!above(tr, tr->heap[c], last)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (tr->n_heap) tr->heap[i] = last;
    return top;
}

/* ---- training ---------------------------------------------------------------- */

typedef struct words {
    uint32_t *symbols; /* all words' symbols, each word at start[w] */
    size_t *start;
    uint32_t *len;
    uint64_t *count;
    size_t n;
} words;

/* Rewrites word w with every (left, right), left to right, replaced by
 * merged, and moves the counts of the pairs around each site. */
static lws_status merge_word(training *tr, words *ws, uint32_t w, uint32_t left, uint32_t right,
                             uint32_t merged, uint32_t step) {
    uint32_t *sym = ws->symbols + ws->start[w];
    uint32_t len = ws->len[w], out = 0;
    int64_t c = (int64_t)ws->count[w];
    for (uint32_t i = 0; i < len;) {
        if (i + 1 < len && sym[i] == left && sym[i + 1] == right) {
            /* The left neighbour is already rewritten (it may be merged
             * too); the right one is not yet. */
            if (out > 0) {
                LWS_TRY(count_pair(tr, sym[out - 1], left, -c, w, step));
                LWS_TRY(count_pair(tr, sym[out - 1], merged, c, w, step));
            }
            if (i + 2 < len) {
                LWS_TRY(count_pair(tr, right, sym[i + 2], -c, w, step));
                LWS_TRY(count_pair(tr, merged, sym[i + 2], c, w, step));
            }
            LWS_TRY(count_pair(tr, left, right, -c, w, step));
            sym[out++] = merged;
            i += 2;
        } else {
            sym[out++] = sym[i++];
        }
    }
    ws->len[w] = out;
    return LWS_OK;
}

static lws_status check_specials(uint32_t vocab_size, const char *const *specials,
                                 size_t n_specials) {
    if (vocab_size < 256 + n_specials)
        return lws_fail(LWS_ERR_INVALID,
                        "vocabulary size %" PRIu32 " is too small: the 256 byte tokens and %zu "
                        "special token%s need at least %zu",
                        vocab_size, n_specials, n_specials == 1 ? "" : "s", 256 + n_specials);
    for (size_t i = 0; i < n_specials; i++) {
        const uint8_t *s = (const uint8_t *)specials[i];
        size_t n = strlen(specials[i]);
        if (!n) return lws_fail(LWS_ERR_INVALID, "special token %zu is empty", i + 1);
        for (size_t pos = 0; pos < n;) {
            lws_char_class cls;
            size_t l = lws_utf8_char(s + pos, n - pos, &cls);
            if (l == 1 && s[pos] >= 0x80)
                return lws_fail(LWS_ERR_INVALID,
                                "special token %zu is not UTF-8 text (byte 0x%02x at %zu)", i + 1,
                                s[pos], pos);
            pos += l;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(specials[i], specials[j]) == 0)
                return lws_fail(LWS_ERR_INVALID, "special token '%s' is given twice", specials[i]);
    }
    return LWS_OK;
}

static lws_status run(lws_bpe_trainer *t, uint32_t n_ordinary, words *ws, training *tr,
                      bpe_vocab *v) {
    /* Words and the 256 byte tokens (id = byte value). */
    const bpe_map *m = &t->words;
    ws->n = m->count;
    ws->symbols = malloc((m->keys_len ? m->keys_len : 1) * sizeof *ws->symbols);
    ws->start = malloc(ws->n * sizeof *ws->start);
    ws->len = malloc(ws->n * sizeof *ws->len);
    ws->count = malloc(ws->n * sizeof *ws->count);
    if (!ws->symbols || !ws->start || !ws->len || !ws->count)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe train: out of memory for %zu words", ws->n);
    size_t at = 0;
    for (size_t w = 0; w < ws->n; w++) {
        const bpe_map_entry *e = &m->entries[w];
        const uint8_t *key = bpe_map_key(m, e);
        ws->start[w] = at, ws->len[w] = e->len, ws->count[w] = e->value;
        for (uint32_t i = 0; i < e->len; i++) ws->symbols[at++] = key[i];
    }
    lws_status s = LWS_OK;
    for (int b = 0; b < 256 && s == LWS_OK; b++) {
        uint8_t byte = (uint8_t)b;
        s = bpe_vocab_add_token(v, &byte, 1);
    }
    /* Initial pair counts. */
    for (size_t w = 0; w < ws->n && s == LWS_OK; w++) {
        const uint32_t *sym = ws->symbols + ws->start[w];
        for (uint32_t i = 0; i + 1 < ws->len[w] && s == LWS_OK; i++)
            s = count_pair(tr, sym[i], sym[i + 1], (int64_t)ws->count[w], (uint32_t)w, 0);
    }
    for (size_t i = 0; i < tr->n_pairs && s == LWS_OK; i++) s = queue_push(tr, (uint32_t)i);
    tr->n_raised = 0;
    uint8_t *joined = NULL;
    size_t joined_capacity = 0;
    for (uint32_t step = 1; s == LWS_OK && v->n_tokens < n_ordinary && tr->n_heap;) {
        queued top = queue_pop(tr);
        pair *p = &tr->pairs[top.pair];
        if (top.count != p->count) { /* stale: re-queue at the current count */
            if (p->count > 0) s = queue_push(tr, top.pair);
            continue;
        }
        if (p->count <= 0) break; /* the best pair occurs nowhere: no pairs left */
        /* Each merge makes a new token. A span of a word that is whole
         * symbols was only ever merged inside itself, the same way wherever
         * it occurs; so two pairs never spell the same bytes, and a merged
         * pair never comes back (tests/test_bpe.c checks both against the
         * plain trainer). */
        uint32_t left = p->left, right = p->right, merged = v->n_tokens, ll, rl;
        const uint8_t *l = bpe_vocab_token(v, left, &ll), *r = bpe_vocab_token(v, right, &rl);
        if ((s = grow((void **)&joined, &joined_capacity, ll + rl, 1)) != LWS_OK) break;
        memcpy(joined, l, ll);
        memcpy(joined + ll, r, rl);
        if ((s = bpe_vocab_add_token(v, joined, ll + rl)) != LWS_OK) break;
        if ((s = bpe_vocab_add_merge(v, left, right, merged)) != LWS_OK) break;
        /* Only pairs with the merged token gain words, so this list stays
         * as it is while it is walked. */
        const uint32_t *list = p->words;
        uint32_t n_list = p->n_words;
        for (uint32_t k = 0; k < n_list && s == LWS_OK; k++)
            s = merge_word(tr, ws, list[k], left, right, merged, step);
        pair *done = &tr->pairs[top.pair];
        free(done->words);
        done->words = NULL, done->n_words = done->words_capacity = 0;
        for (size_t k = 0; k < tr->n_raised && s == LWS_OK; k++)
            if (tr->pairs[tr->raised[k]].count > 0) s = queue_push(tr, tr->raised[k]);
        tr->n_raised = 0;
        step++;
    }
    free(joined);
    return s;
}

lws_status lws_bpe_train(lws_bpe_trainer *t, uint32_t vocab_size, const char *const *specials,
                         size_t n_specials, lws_bpe **out) {
    *out = NULL;
    LWS_TRY(check_specials(vocab_size, specials, n_specials));
    if (t->words.count == 0)
        return lws_fail(LWS_ERR_INVALID, "no text to train on: the inputs are empty");
    words ws = {0};
    training tr = {0};
    bpe_vocab v = {0};
    lws_status s = run(t, vocab_size - (uint32_t)n_specials, &ws, &tr, &v);
    for (size_t i = 0; i < n_specials && s == LWS_OK; i++) {
        s = bpe_vocab_add_token(&v, (const uint8_t *)specials[i], strlen(specials[i]));
        v.n_specials++;
    }
    for (size_t i = 0; i < tr.n_pairs; i++) free(tr.pairs[i].words);
    free(tr.pairs), free(tr.slots), free(tr.heap), free(tr.raised);
    free(ws.symbols), free(ws.start), free(ws.len), free(ws.count);
    if (s != LWS_OK) {
        bpe_vocab_free(&v);
        return s;
    }
    return bpe_create(&v, out);
}
