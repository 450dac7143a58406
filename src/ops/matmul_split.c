/* A weight gradient split over k (the tokens): dW[M, N] (+)= A[K, M]^T .
 * B[K, N] with few tiles is recorded as `slices` products over consecutive
 * slices of K, one batched dispatch (and one more for a shorter last slice)
 * writing fp32 partial sums into the command buffer's scratch, and a sum of
 * the slices in a fixed order (shaders/sum_slices.comp) deferred to after the
 * caller's next barrier (lws_cmd_defer): it runs beside whatever the caller
 * records next, so the split costs no barrier of its own. The products go
 * through the fast path like any other (the batch entries are the slices),
 * so the matrix units' large tiles get the workgroups they lack. */
#include <stdlib.h>

#include "ops/common.h"

typedef struct sum_slices_push {
    uint64_t out, parts;
    uint32_t n, slices, accumulate;
} sum_slices_push;

lws_status lws_op_sum_slices(lws_cmd *cmd, lws_buffer out, lws_buffer parts, uint32_t slices,
                             uint32_t n, int accumulate) {
    LWS_OP_REQUIRE(cmd, parts.dtype == LWS_F32 && out.dtype != LWS_U32,
                   "sum_slices: parts are %s and out %s; parts must be f32, out f32, bf16 or f16",
                   lws_dtype_name(parts.dtype), lws_dtype_name(out.dtype));
    uint64_t out_bytes = (uint64_t)lws_dtype_bytes(out.dtype) * n, part_bytes = 4ull * slices * n;
    LWS_OP_REQUIRE(cmd, n >= 1 && slices >= 1 && (uint64_t)slices * n < (1ull << 32),
                   "sum_slices: %u slices of %u elements; each must be >= 1 and their product "
                   "below 2^32",
                   slices, n);
    LWS_OP_REQUIRE(cmd, out.size >= out_bytes && parts.size >= part_bytes,
                   "sum_slices: buffers of %llu (out) and %llu (parts) bytes are smaller than the "
                   "%llu and %llu that %u slices of %u elements need",
                   (unsigned long long)out.size, (unsigned long long)parts.size,
                   (unsigned long long)out_bytes, (unsigned long long)part_bytes, slices, n);
    LWS_OP_REQUIRE(cmd, !lws_buffers_overlap(out, out_bytes, parts, part_bytes),
                   "sum_slices: out overlaps the parts; the output must be a separate range");
    lws_pipeline *pipe;
    uint32_t groups;
    LWS_TRY(lws_op_elementwise(cmd, "sum_slices", out.dtype, n, &pipe, &groups));
    sum_slices_push push = {out.addr, parts.addr, n, slices, accumulate ? 1u : 0u};
    lws_op_reads(cmd, parts, 0, part_bytes);
    if (accumulate)
        lws_op_updates(cmd, out, 0, out_bytes);
    else
        lws_op_writes(cmd, out, 0, out_bytes);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}

/* ---- the choice ------------------------------------------------------------ */

/* LWS_MATMUL_SPLIT_K=MAX[xDEPTH] replaces the tuning's mm_split_k_max (and
 * mm_split_k_depth), so tests split their models' small products the way a
 * GPU's table splits large ones (1: never). 0 when it is not of that form. */
static int split_env(lws_tuning *t) {
    const char *env = getenv("LWS_MATMUL_SPLIT_K");
    if (!env || !*env) return 1;
    char *end = NULL;
    unsigned long max = strtoul(env, &end, 10), depth = t->mm_split_k_depth;
    if (end == env || env[0] == '-' || max < 1 || max > 64) return 0;
    if (*end == 'x') {
        const char *d = end + 1;
        depth = strtoul(d, &end, 10);
        if (end == d || d[0] == '-' || depth < 1 || depth > (1ul << 20)) return 0;
    }
    if (*end) return 0;
    t->mm_split_k_max = (uint32_t)max, t->mm_split_k_depth = (uint32_t)depth;
    return 1;
}

/* Workgroups of an M x N output on the fast path's tiles, or on the portable
 * matmul's smallest (4 x 4 outputs per invocation: lws_mm_tile goes down to
 * them when the workgroups are short). */
static uint64_t groups_of(lws_context *ctx, const lws_tuning *t, uint32_t m, uint32_t n, int fast) {
    uint32_t tile_m = 4 * t->mm_wg_y, tile_n = 4 * t->mm_wg_x;
    if (fast) {
        lws_coopmat_shape shape; /* a test's stand-in fast path: the common 16x16x16 */
        if (lws_context_coopmat(ctx, &shape) == LWS_COOPMAT_NONE)
            shape = (lws_coopmat_shape){16, 16, 16};
        lws_coopmat_tiles tiles;
        if (lws_coopmat_tiles_for(lws_context_caps(ctx), shape, m, n, &tiles) != LWS_OK)
            return UINT64_MAX; /* the fast path will not take it */
        tile_m = tiles.tile_m, tile_n = tiles.tile_n;
    }
    return (uint64_t)lws_div_up(m, tile_m) * lws_div_up(n, tile_n);
}

/* The depth of each slice for `slices` wanted: whole multiples of 16 (the
 * four-wide path's alignment and any tile depth), the last slice shorter. */
static uint32_t slice_depth(uint32_t k, uint32_t slices) {
    return (lws_div_up(k, slices) + 15) / 16 * 16;
}

uint32_t lws_matmul_split_slices(lws_context *ctx, const lws_matmul_args *p, int fast) {
    lws_tuning t = lws_tuning_get(ctx);
    if (!split_env(&t) || t.mm_split_k_max < 2 || p->layout != LWS_MM_TN || p->batch != 1 ||
        !p->m || !p->n || !p->k || !t.mm_split_k_depth)
        return 1;
    uint64_t limit = lws_matmul_max_elements();
    if ((uint64_t)p->m * p->n > limit || (uint64_t)p->m * p->k > limit ||
        (uint64_t)p->n * p->k > limit)
        return 1; /* pieces (ops/matmul.c) */
    uint64_t groups = groups_of(ctx, &t, p->m, p->n, fast);
    if (groups >= t.mm_min_groups) return 1;
    uint64_t want = (t.mm_min_groups + groups - 1) / groups;
    if (want > t.mm_split_k_max) want = t.mm_split_k_max;
    if (want > p->k / t.mm_split_k_depth) want = p->k / t.mm_split_k_depth;
    if (want < 2) return 1;
    return lws_div_up(p->k, slice_depth(p->k, (uint32_t)want));
}

uint64_t lws_matmul_split_bytes(lws_context *ctx, uint32_t m, uint32_t n, uint32_t k) {
    lws_matmul_args p = {.layout = LWS_MM_TN, .m = m, .n = n, .k = k, .batch = 1};
    uint32_t slices = lws_matmul_split_slices(ctx, &p, 0);
    if (lws_matmul_fast_possible(ctx)) {
        uint32_t fast = lws_matmul_split_slices(ctx, &p, 1);
        if (fast > slices) slices = fast;
    }
    if (slices < 2) return 0;
    /* the region, and its alignment in the scratch (lws_cmd_scratch_take) */
    return (4ull * slices * m * n + 255) / 256 * 256 + 256;
}

/* ---- the recording --------------------------------------------------------- */

typedef struct deferred_sum {
    lws_buffer out, parts;
    uint32_t slices, n;
    int accumulate;
} deferred_sum;
_Static_assert(sizeof(deferred_sum) <= LWS_DEFERRED_ARG_BYTES,
               "the sum's arguments fit lws_cmd_defer's");

static void record_sum(lws_cmd *cmd, const void *arg) {
    const deferred_sum *s = arg;
    /* a failure is kept in cmd and returned by lws_cmd_end */
    lws_op_sum_slices(cmd, s->out, s->parts, s->slices, s->n, s->accumulate);
}

lws_status lws_matmul_split_with(lws_cmd *cmd, const lws_matmul_args *p, uint32_t slices,
                                 int *handled) {
    *handled = 0;
    if (slices < 2 || p->layout != LWS_MM_TN || p->batch != 1 || p->k < slices) return LWS_OK;
    /* as the whole product would be checked: the products write into scratch */
    LWS_TRY(lws_matmul_check_args(cmd, p));
    uint32_t depth = slice_depth(p->k, slices);
    uint32_t whole = p->k / depth, rest = p->k - whole * depth;
    slices = whole + (rest > 0);
    uint64_t mn = (uint64_t)p->m * p->n;
    lws_buffer parts;
    if (slices < 2 || slices * mn >= (1ull << 32) ||
        !lws_cmd_scratch_take(cmd, 4 * slices * mn, 2, &parts))
        return LWS_OK;
    parts.dtype = LWS_F32;
    /* Slice s: rows s*depth.. of A [K, M] and B [K, N] into parts[s]. */
    lws_matmul_args slice = {LWS_MM_TN,
                             parts,
                             p->a,
                             p->b,
                             p->m,
                             p->n,
                             depth,
                             0,
                             whole,
                             mn,
                             (uint64_t)depth * p->m,
                             (uint64_t)depth * p->n};
    LWS_TRY(lws_matmul_whole(cmd, &slice));
    if (rest) {
        /* (lws_matmul_check_args found room for all K rows of A and B) */
        uint64_t at_a = (uint64_t)lws_dtype_bytes(p->a.dtype) * whole * depth * p->m,
                 at_b = (uint64_t)lws_dtype_bytes(p->b.dtype) * whole * depth * p->n;
        slice.c = lws_buffer_slice(parts, 4 * whole * mn, 4 * mn);
        slice.a = lws_buffer_slice(p->a, at_a, p->a.size - at_a);
        slice.b = lws_buffer_slice(p->b, at_b, p->b.size - at_b);
        slice.k = rest, slice.batch = 1;
        LWS_TRY(lws_matmul_whole(cmd, &slice));
    }
    deferred_sum sum = {p->c, parts, slices, (uint32_t)mn, p->accumulate};
    *handled = 1;
    return lws_cmd_defer(cmd, record_sum, &sum, sizeof sum);
}

lws_status lws_matmul_split_k(lws_cmd *cmd, const lws_matmul_args *p, int *handled) {
    *handled = 0;
    lws_tuning t = {0};
    LWS_OP_REQUIRE(cmd, split_env(&t),
                   "LWS_MATMUL_SPLIT_K = '%s' is not a split: give MAX or MAXxDEPTH, the most "
                   "slices (1 .. 64; 1: never split) and the least depth of one (1 .. 1048576), "
                   "e.g. 4x16",
                   getenv("LWS_MATMUL_SPLIT_K"));
    VkDeviceSize room = lws_cmd_scratch_room(cmd);
    if (!room || p->layout != LWS_MM_TN || p->batch != 1) return LWS_OK;
    lws_context *ctx = lws_cmd_context(cmd);
    uint32_t slices = lws_matmul_split_slices(ctx, p, lws_matmul_fast_takes(ctx, p));
    uint64_t mn = (uint64_t)p->m * p->n;
    if (slices < 2 || mn * 4 * 2 > room) return LWS_OK;
    /* fewer slices where the scratch is short (each deeper) */
    if (4 * mn * slices > room) slices = (uint32_t)(room / (4 * mn));
    return lws_matmul_split_with(cmd, p, slices, handled);
}
