/* One description of the device memory a model (or a decoder) needs: a
 * table of named buffers with their element type, element count and
 * lifetime. The printed plan is the table summed; the allocation is the
 * table carved from the arena, entry by entry, into the fields the entries
 * point at. The two cannot disagree. */
#ifndef LWS_MODEL_MEMTABLE_H
#define LWS_MODEL_MEMTABLE_H

#include "lws/model.h"

typedef struct lws_mem_entry {
    char name[64];
    lws_mem_kind kind;
    lws_dtype dtype;
    uint64_t elems;
    /* Elements of the largest matrix a matmul reads or writes in this
     * buffer (0: no matmul touches it); the kernels index one matrix with
     * 32-bit offsets. */
    uint64_t operand_elems;
    lws_buffer *out;            /* receives the allocation (may be NULL when planning) */
    const lws_buffer *alias_of; /* a view of an earlier entry: no memory of its own */
} lws_mem_entry;

typedef struct lws_mem_table {
    lws_mem_entry *entries;
    uint32_t count, capacity;
    lws_status status; /* the first failure while adding (out of host memory) */
} lws_mem_table;

/* Adds an entry like `proto`, named by fmt (printf-style). */
void lws_mem_push(lws_mem_table *t, lws_mem_entry proto, const char *fmt, ...) LWS_PRINTF(3, 4);
/* A buffer of `elems` elements of `dtype`. */
#define lws_mem_add(t, kind_, dtype_, elems_, operand_, out_, ...)                                 \
    lws_mem_push(t,                                                                                \
                 (lws_mem_entry){.kind = (kind_), .dtype = (dtype_), .elems = (elems_),            \
                                 .operand_elems = (operand_), .out = (out_)},                      \
                 __VA_ARGS__)
/* `out` will be the same range as `of` (which must be an earlier entry's). */
#define lws_mem_alias(t, out_, of_, ...)                                                           \
    lws_mem_push(t, (lws_mem_entry){.out = (out_), .alias_of = (of_)}, __VA_ARGS__)
/* Bytes an entry takes in the arena (rounded up to its alignment). */
uint64_t lws_mem_entry_bytes(const lws_mem_entry *e);
/* The plan: bytes by kind, the largest allocation and matmul operand. */
void lws_mem_plan(const lws_mem_table *t, lws_memory_plan *plan);
/* Allocates every entry in order and fills the aliases. */
lws_status lws_mem_allocate(lws_context *ctx, const lws_mem_table *t);
void lws_mem_free(lws_mem_table *t);

#endif
