/* The memory table (see memtable.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/memtable.h"

/* The arena's alignment: every allocation is rounded up to it. */
#define MEM_ALIGN 256

void lws_mem_push(lws_mem_table *t, lws_mem_entry proto, const char *fmt, ...) {
    if (t->status != LWS_OK) return;
    if (t->count == t->capacity) {
        uint32_t cap = t->capacity ? 2 * t->capacity : 64;
        lws_mem_entry *e = realloc(t->entries, cap * sizeof *e);
        if (!e) {
            t->status = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for the memory plan");
            return;
        }
        t->entries = e;
        t->capacity = cap;
    }
    lws_mem_entry *e = &t->entries[t->count++];
    *e = proto;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
}

uint64_t lws_mem_entry_bytes(const lws_mem_entry *e) {
    if (e->alias_of) return 0;
    uint64_t bytes = e->elems * lws_dtype_bytes(e->dtype);
    if (bytes == 0) bytes = 4; /* the arena never hands out an empty range */
    return (bytes + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN;
}

void lws_mem_plan(const lws_mem_table *t, lws_memory_plan *p) {
    memset(p, 0, sizeof *p);
    uint64_t *by_kind[LWS_MEM_KINDS] = {&p->params, &p->grads, &p->optimizer, &p->activations,
                                        &p->scratch};
    for (uint32_t i = 0; i < t->count; i++) {
        const lws_mem_entry *e = &t->entries[i];
        if (e->alias_of) continue;
        uint64_t bytes = lws_mem_entry_bytes(e);
        *by_kind[e->kind] += bytes;
        p->total += bytes;
        p->tensors++;
        if (bytes > p->largest) {
            p->largest = bytes;
            snprintf(p->largest_name, sizeof p->largest_name, "%s", e->name);
        }
        if (e->operand_elems > p->largest_operand) {
            p->largest_operand = e->operand_elems;
            snprintf(p->largest_operand_name, sizeof p->largest_operand_name, "%s", e->name);
        }
    }
}

lws_status lws_mem_allocate(lws_context *ctx, const lws_mem_table *t) {
    LWS_TRY(t->status);
    for (uint32_t i = 0; i < t->count; i++) {
        const lws_mem_entry *e = &t->entries[i];
        if (!e->out) continue;
        if (e->alias_of) {
            *e->out = *e->alias_of;
            continue;
        }
        lws_status s = lws_alloc(ctx, e->elems * lws_dtype_bytes(e->dtype), e->out);
        if (s != LWS_OK) {
            lws_error_context("allocating %s (%llu x %s)", e->name, (unsigned long long)e->elems,
                              lws_dtype_name(e->dtype));
            return s;
        }
        e->out->dtype = e->dtype;
        lws_buffer_name(ctx, *e->out, e->name); /* for the hazard checker's messages */
    }
    return LWS_OK;
}

void lws_mem_free(lws_mem_table *t) {
    free(t->entries);
    memset(t, 0, sizeof *t);
}
