/* The recorder's hazard checker (see lws_cmd_begin in lws/vk.h): the byte
 * ranges read and written since the last barrier, the op that touched each,
 * conflicts between ops, barriers with nothing to order, and the names of
 * ranges for messages.
 *
 * Lavapipe runs dispatches one after another, so a missing barrier changes
 * no result there, and shaders reach memory through device addresses, which
 * the validation layers do not see. The launchers therefore declare the
 * bytes of each dispatch, and this file checks them on the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/internal.h"

#define NO_LABEL UINT32_MAX

/* Bytes begin + i * stride + [0, len) of a buffer for i < count: one range
 * (count 1), or the matrices of a strided batch, or a column block of a
 * row-major matrix. */
typedef struct access {
    VkBuffer buffer;
    VkDeviceSize begin, len, stride;
    uint64_t count;
    const char *note; /* names arena-wide accesses in messages */
    uint32_t op;      /* index in the interval's ops */
    int write;
} access;

static VkDeviceSize span_end(const access *a) {
    return a->begin + (a->count - 1) * a->stride + a->len;
}

typedef struct op_info {
    const char *what; /* the shader, "copy" or "fill" (pipelines live as long as the context) */
    uint32_t number;  /* 1, 2, ... in recording order */
    uint32_t label;   /* index in labels */
} op_info;

/* The ops and accesses between two barriers. */
typedef struct interval {
    access *acc;
    uint32_t n_acc, cap_acc;
    op_info *ops;
    uint32_t n_ops, cap_ops;
} interval;

struct lws_hazards {
    lws_context *ctx;
    interval cur, prev; /* since the last barrier; before it */
    int judge_pending;  /* an lws_cmd_barrier separates prev and cur */
    interval pending;   /* the next dispatch's declarations (ops unused) */
    char **labels;
    uint32_t n_labels, cap_labels, label;
    uint32_t ops, barriers, unneeded;
    int out_of_memory;
};

/* Makes room for `need` elements of `size` bytes in *items. */
static int reserve(void **items, uint32_t *cap, uint32_t need, size_t size) {
    if (need <= *cap) return 1;
    uint32_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *grown = realloc(*items, (size_t)n * size);
    if (!grown) return 0;
    *items = grown;
    *cap = n;
    return 1;
}

static int push_access(lws_hazards *hz, interval *iv, access a) {
    if (!reserve((void **)&iv->acc, &iv->cap_acc, iv->n_acc + 1, sizeof *iv->acc)) {
        hz->out_of_memory = 1;
        return 0;
    }
    iv->acc[iv->n_acc++] = a;
    return 1;
}

static void interval_free(interval *iv) {
    free(iv->acc);
    free(iv->ops);
    memset(iv, 0, sizeof *iv);
}

lws_status lws_hazards_create(lws_context *ctx, lws_hazards **out) {
    *out = NULL;
    if (!ctx->check_hazards) return LWS_OK;
    lws_hazards *hz = calloc(1, sizeof *hz);
    if (!hz) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    hz->ctx = ctx;
    hz->label = NO_LABEL;
    *out = hz;
    return LWS_OK;
}

void lws_hazards_destroy(lws_hazards *hz) {
    if (!hz) return;
    interval_free(&hz->cur);
    interval_free(&hz->prev);
    interval_free(&hz->pending);
    for (uint32_t i = 0; i < hz->n_labels; i++) free(hz->labels[i]);
    free(hz->labels);
    free(hz);
}

static access range_access(lws_buffer range, int write, const char *note) {
    access a = {range.buffer, range.offset, range.size, range.size, 1, note, 0, write};
    return a;
}

void lws_hazards_declare(lws_hazards *hz, lws_buffer range, int write, const char *note) {
    if (range.size == 0) return;
    push_access(hz, &hz->pending, range_access(range, write, note));
}

void lws_hazards_declare_strided(lws_hazards *hz, lws_buffer first, VkDeviceSize stride,
                                 uint64_t count, int write) {
    if (first.size == 0 || count == 0) return;
    access a = range_access(first, write, NULL);
    /* Ranges that touch or overlap make one range. */
    if (count > 1 && stride > first.size) {
        a.stride = stride;
        a.count = count;
    } else {
        a.len = (count - 1) * stride + first.size;
    }
    push_access(hz, &hz->pending, a);
}

void lws_hazards_declare_arena(lws_hazards *hz, int write, const char *what) {
    const lws_context *ctx = hz->ctx;
    for (uint32_t i = 0; i < ctx->block_count; i++) {
        lws_buffer whole = {ctx->blocks[i].buffer, 0, ctx->blocks[i].size, ctx->blocks[i].addr};
        lws_hazards_declare(hz, whole, 0, what);
        if (write) lws_hazards_declare(hz, whole, 1, what);
    }
}

void lws_hazards_label(lws_hazards *hz, const char *label) {
    if (hz->label != NO_LABEL && strcmp(hz->labels[hz->label], label) == 0) return;
    char *copy = malloc(strlen(label) + 1);
    if (!copy ||
        !reserve((void **)&hz->labels, &hz->cap_labels, hz->n_labels + 1, sizeof *hz->labels)) {
        free(copy);
        hz->out_of_memory = 1;
        return;
    }
    strcpy(copy, label);
    hz->label = hz->n_labels;
    hz->labels[hz->n_labels++] = copy;
}

/* ---- names ---------------------------------------------------------------- */

void lws_buffer_name(lws_context *ctx, lws_buffer range, const char *name) {
    if (!ctx->check_hazards || range.size == 0) return;
    VkDeviceSize begin = range.offset, end = range.offset + range.size;
    for (uint32_t i = 0; i < ctx->name_count; i++) {
        lws_range_name *n = &ctx->names[i];
        if (n->buffer == range.buffer && n->begin == begin && n->end == end) {
            char *copy = malloc(strlen(name) + 1);
            if (!copy) return;
            strcpy(copy, name);
            free(n->name);
            n->name = copy;
            return;
        }
    }
    char *copy = malloc(strlen(name) + 1);
    if (!copy || !reserve((void **)&ctx->names, &ctx->name_capacity, ctx->name_count + 1,
                          sizeof *ctx->names)) {
        free(copy);
        return; /* a name is only for messages: go on without it */
    }
    strcpy(copy, name);
    ctx->names[ctx->name_count++] = (lws_range_name){range.buffer, begin, end, copy};
}

void lws_names_release(lws_context *ctx, VkBuffer buffer, VkDeviceSize from) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < ctx->name_count; i++) {
        lws_range_name n = ctx->names[i];
        if (n.buffer == buffer && n.begin >= from)
            free(n.name);
        else
            ctx->names[kept++] = n;
    }
    ctx->name_count = kept;
}

void lws_names_destroy(lws_context *ctx) {
    for (uint32_t i = 0; i < ctx->name_count; i++) free(ctx->names[i].name);
    free(ctx->names);
    ctx->names = NULL;
    ctx->name_count = ctx->name_capacity = 0;
}

/* The smallest named range holding byte `at` of buffer. */
static const lws_range_name *name_of(const lws_context *ctx, VkBuffer buffer, VkDeviceSize at) {
    const lws_range_name *best = NULL;
    for (uint32_t i = 0; i < ctx->name_count; i++) {
        const lws_range_name *n = &ctx->names[i];
        if (n->buffer == buffer && n->begin <= at && at < n->end &&
            (!best || n->end - n->begin < best->end - best->begin))
            best = n;
    }
    return best;
}

/* "layers.3.q, buffer+0x1000 (4096 bytes)", "layers.3.q bytes 64..127,
 * buffer+0x1040 (64 bytes)" for part of a named range, or "buffer+0x1000
 * (4096 bytes)"; strided accesses add their count and stride. */
static void describe(const lws_context *ctx, const access *a, VkDeviceSize begin, VkDeviceSize end,
                     char *out, size_t size) {
    const lws_range_name *n = name_of(ctx, a->buffer, begin);
    const char *note = a->note; /* arena-wide: no one tensor's name */
    char where[160];
    int w = snprintf(where, sizeof where, "buffer+0x%llx (%llu bytes", (unsigned long long)begin,
                     (unsigned long long)(end - begin));
    if (a->count > 1 && end - begin == a->len)
        snprintf(where + w, sizeof where - w, ", %llu such ranges %llu bytes apart)",
                 (unsigned long long)a->count, (unsigned long long)a->stride);
    else
        snprintf(where + w, sizeof where - w, ")");
    if (note)
        snprintf(out, size, "%s, %s", note, where);
    else if (n && n->begin == begin && n->end == end)
        snprintf(out, size, "%s, %s", n->name, where);
    else if (n)
        snprintf(out, size, "%s bytes %llu..%llu, %s", n->name,
                 (unsigned long long)(begin - n->begin), (unsigned long long)(end - n->begin - 1),
                 where);
    else
        snprintf(out, size, "%s", where);
}

/* ---- conflicts ------------------------------------------------------------------ */

/* The first range of `a` that meets bytes [p, e), or -1. */
static int64_t first_meeting(const access *a, VkDeviceSize p, VkDeviceSize e) {
    if (e <= a->begin) return -1;
    uint64_t lo = p >= a->begin + a->len ? (p - a->begin - a->len) / a->stride + 1 : 0;
    uint64_t hi = (e - 1 - a->begin) / a->stride;
    if (hi > a->count - 1) hi = a->count - 1;
    return lo <= hi ? (int64_t)lo : -1;
}

/* Whether a and b touch a common byte and one of them writes; *lo, *hi: the
 * first common bytes found. */
static int overlap(const access *a, const access *b, VkDeviceSize *lo, VkDeviceSize *hi) {
    if (a->buffer != b->buffer || !(a->write || b->write)) return 0;
    if (a->begin >= span_end(b) || b->begin >= span_end(a)) return 0;
    const access *few = a->count <= b->count ? a : b, *many = few == a ? b : a;
    for (uint64_t i = 0; i < few->count; i++) {
        VkDeviceSize p = few->begin + i * few->stride, e = p + few->len;
        int64_t j = first_meeting(many, p, e);
        if (j < 0) continue;
        VkDeviceSize q = many->begin + (uint64_t)j * many->stride, f = q + many->len;
        *lo = p > q ? p : q;
        *hi = e < f ? e : f;
        return 1;
    }
    return 0;
}

static void op_name(const lws_hazards *hz, const op_info *op, char *out, size_t size) {
    if (op->label == NO_LABEL)
        snprintf(out, size, "op %u (%s)", op->number, op->what);
    else
        snprintf(out, size, "op %u (%s, at \"%s\")", op->number, op->what, hz->labels[op->label]);
}

/* The message for `later` (of the op being added) meeting `earlier`. */
static lws_status report(const lws_hazards *hz, const access *earlier, const access *later,
                         const op_info *later_op, VkDeviceSize lo, VkDeviceSize hi) {
    const op_info *earlier_op = &hz->cur.ops[earlier->op];
    const char *kind = !earlier->write ? "write after read"
                       : later->write  ? "write after write"
                                       : "read after write";
    char a[160], b[160], ra[512], rb[512], common[512];
    op_name(hz, later_op, a, sizeof a);
    op_name(hz, earlier_op, b, sizeof b);
    describe(hz->ctx, later, later->begin, later->begin + later->len, ra, sizeof ra);
    describe(hz->ctx, earlier, earlier->begin, earlier->begin + earlier->len, rb, sizeof rb);
    access plain = *later;
    plain.count = 1;
    plain.note = NULL;
    describe(hz->ctx, &plain, lo, hi, common, sizeof common);
    return lws_fail(LWS_ERR_INVALID,
                    "hazard (%s) with no barrier between: %s %s %s, which %s %s %s since the "
                    "last barrier; overlapping bytes: %s. Record lws_cmd_barrier() between the "
                    "two ops",
                    kind, a, later->write ? "writes" : "reads", ra, b,
                    earlier->write ? "wrote" : "read", rb, common);
}

static lws_status out_of_memory(lws_hazards *hz) {
    hz->out_of_memory = 0;
    return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory checking hazards");
}

/* Checks the accesses of a new op against the interval, then adds them. */
static lws_status add_op(lws_hazards *hz, const char *what, const access *acc, uint32_t n) {
    if (hz->out_of_memory) return out_of_memory(hz);
    interval *cur = &hz->cur;
    op_info op = {what, ++hz->ops, hz->label};
    VkDeviceSize lo, hi;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < cur->n_acc; j++)
            if (overlap(&cur->acc[j], &acc[i], &lo, &hi))
                return report(hz, &cur->acc[j], &acc[i], &op, lo, hi);
    if (!reserve((void **)&cur->ops, &cur->cap_ops, cur->n_ops + 1, sizeof *cur->ops))
        return out_of_memory(hz);
    uint32_t index = cur->n_ops++;
    cur->ops[index] = op;
    for (uint32_t i = 0; i < n; i++) {
        access a = acc[i];
        a.op = index;
        if (!push_access(hz, cur, a)) return out_of_memory(hz);
    }
    return LWS_OK;
}

void lws_hazards_clear_pending(lws_hazards *hz) {
    hz->pending.n_acc = 0;
}

lws_status lws_hazards_dispatch(lws_hazards *hz, const char *shader) {
    uint32_t n = hz->pending.n_acc, writes = 0;
    for (uint32_t i = 0; i < n; i++) writes += hz->pending.acc[i].write != 0;
    hz->pending.n_acc = 0;
    if (n == 0)
        return lws_fail(LWS_ERR_INVALID,
                        "kernel %s declared no accesses: its launcher must declare the bytes the "
                        "dispatch reads and writes (lws_cmd_reads, lws_cmd_writes) before "
                        "lws_cmd_dispatch, or hazards around it cannot be checked",
                        shader);
    if (writes == 0)
        return lws_fail(LWS_ERR_INVALID,
                        "kernel %s declared no writes: a dispatch that writes nothing does "
                        "nothing; its launcher must declare the bytes it writes "
                        "(lws_cmd_writes)",
                        shader);
    return add_op(hz, shader, hz->pending.acc, n);
}

lws_status lws_hazards_transfer(lws_hazards *hz, const char *what, const lws_buffer *read,
                                lws_buffer write) {
    access acc[2];
    uint32_t n = 0;
    if (read && read->size) acc[n++] = range_access(*read, 0, NULL);
    if (write.size) acc[n++] = range_access(write, 1, NULL);
    return add_op(hz, what, acc, n);
}

/* Whether an access after the barrier conflicts with one before it. */
static int barrier_needed(const lws_hazards *hz) {
    VkDeviceSize lo, hi;
    for (uint32_t i = 0; i < hz->cur.n_acc; i++)
        for (uint32_t j = 0; j < hz->prev.n_acc; j++)
            if (overlap(&hz->prev.acc[j], &hz->cur.acc[i], &lo, &hi)) return 1;
    return 0;
}

static lws_status close_interval(lws_hazards *hz, const char *at) {
    if (hz->out_of_memory) return out_of_memory(hz);
    if (hz->judge_pending && !barrier_needed(hz)) hz->unneeded++;
    if (hz->pending.n_acc) {
        hz->pending.n_acc = 0;
        return lws_fail(LWS_ERR_INVALID,
                        "accesses were declared (lws_cmd_reads, lws_cmd_writes) but no dispatch "
                        "followed them before %s: declarations belong to the next dispatch",
                        at);
    }
    return LWS_OK;
}

lws_status lws_hazards_barrier(lws_hazards *hz) {
    lws_status s = close_interval(hz, "a barrier");
    hz->barriers++;
    hz->judge_pending = 1;
    interval spare = hz->prev;
    hz->prev = hz->cur;
    hz->cur = spare;
    hz->cur.n_acc = 0;
    hz->cur.n_ops = 0;
    return s;
}

lws_status lws_hazards_end(lws_hazards *hz) {
    lws_status s = close_interval(hz, "the end of the command buffer");
    hz->judge_pending = 0;
    return s;
}

void lws_hazards_stats(const lws_hazards *hz, uint32_t *total, uint32_t *unneeded) {
    *total = hz->barriers;
    *unneeded = hz->unneeded;
}
