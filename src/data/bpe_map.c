/* A hash map from byte strings to 64-bit values: the trainer's word counts,
 * the readers' token ids and the encoder's piece cache. */
#include <stdlib.h>
#include <string.h>

#include "data/bpe_internal.h"

uint64_t bpe_hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    /* FNV's low bits mix poorly for short keys; the slot index uses them. */
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

bpe_map_entry *bpe_map_find(const bpe_map *m, const uint8_t *key, size_t len, uint64_t hash) {
    if (!m->slots) return NULL;
    for (size_t s = hash & m->slot_mask;; s = (s + 1) & m->slot_mask) {
        uint32_t i = m->slots[s];
        if (!i) return NULL;
        bpe_map_entry *e = &m->entries[i - 1];
        if (e->hash == hash && e->len == len && memcmp(m->keys + e->offset, key, len) == 0)
            return e;
    }
}

static lws_status grow_slots(bpe_map *m) {
    size_t n = m->slots ? 2 * (m->slot_mask + 1) : 1024;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu map slots", n);
    for (size_t i = 0; i < m->count; i++) {
        size_t s = m->entries[i].hash & (n - 1);
        while (slots[s]) s = (s + 1) & (n - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = slots, m->slot_mask = n - 1;
    return LWS_OK;
}

lws_status bpe_map_insert(bpe_map *m, const uint8_t *key, size_t len, uint64_t hash, uint64_t value,
                          bpe_map_entry **out) {
    /* At most half the slots in use keeps probe runs short. */
    if (!m->slots || 2 * (m->count + 1) > m->slot_mask + 1) LWS_TRY(grow_slots(m));
    if (m->count == m->capacity) {
        size_t cap = m->capacity ? 2 * m->capacity : 256;
        bpe_map_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu entries", cap);
        m->entries = e, m->capacity = cap;
    }
    if (m->keys_len + len > UINT32_MAX)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY,
                        "bpe: more than 4 GiB of distinct pieces; train on less text");
    if (m->keys_len + len > m->keys_capacity) {
        size_t cap = m->keys_capacity ? 2 * m->keys_capacity : 4096;
        while (cap < m->keys_len + len) cap *= 2;
        uint8_t *k = realloc(m->keys, cap);
        if (!k) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory for %zu key bytes", cap);
        m->keys = k, m->keys_capacity = cap;
    }
    if (len) memcpy(m->keys + m->keys_len, key, len);
    bpe_map_entry *e = &m->entries[m->count];
    *e = (bpe_map_entry){hash, value, (uint32_t)m->keys_len, (uint32_t)len};
    m->keys_len += len;
    size_t s = hash & m->slot_mask;
    while (m->slots[s]) s = (s + 1) & m->slot_mask;
    m->slots[s] = (uint32_t)++m->count;
    if (out) *out = e;
    return LWS_OK;
}

void bpe_map_clear(bpe_map *m) {
    if (m->slots) memset(m->slots, 0, (m->slot_mask + 1) * sizeof *m->slots);
    m->count = 0, m->keys_len = 0;
}

void bpe_map_free(bpe_map *m) {
    free(m->entries), free(m->slots), free(m->keys);
    memset(m, 0, sizeof *m);
}
