/* C (+)= op(A) . op(B) in the NT, NN and TN layouts (shaders/matmul.comp). */
#include "ops/common.h"

typedef struct matmul_push {
    uint64_t c, a, b;
    uint64_t stride_c, stride_a, stride_b; /* bytes */
    uint32_t m, n, k;
    uint32_t accumulate;
} matmul_push;

static const char *const layout_names[] = {"NT", "NN", "TN"};
static const char *const shader_names[] = {"matmul_nt", "matmul_nn", "matmul_tn"};

/* Whether the first x_bytes of x and the first y_bytes of y share memory. */
static int overlaps(lws_buffer x, uint64_t x_bytes, lws_buffer y, uint64_t y_bytes) {
    return x.buffer == y.buffer && x.offset < y.offset + y_bytes && y.offset < x.offset + x_bytes;
}

lws_status lws_op_matmul_batched(lws_cmd *cmd, lws_mm_layout layout, lws_buffer c, lws_buffer a,
                                 lws_buffer b, uint32_t m, uint32_t n, uint32_t k, int accumulate,
                                 uint32_t batch, uint64_t stride_c, uint64_t stride_a,
                                 uint64_t stride_b) {
    LWS_OP_REQUIRE(cmd, (unsigned)layout <= LWS_MM_TN,
                   "matmul: layout %d is not one of LWS_MM_NT, LWS_MM_NN, LWS_MM_TN", (int)layout);
    const char *name = layout_names[layout];
    LWS_OP_REQUIRE(cmd, m >= 1 && n >= 1 && k >= 1 && batch >= 1,
                   "matmul %s: shape M=%u N=%u K=%u batch=%u has a zero; every size must be >= 1",
                   name, m, n, k, batch);
    /* The shader indexes each matrix with 32-bit element offsets, which the
     * drivers sign-extend: one matrix must stay below 2^31 elements. Larger
     * problems are split by the caller, e.g. as a batch. */
    const uint64_t limit = 1ull << 31;
    uint64_t c_elems = (uint64_t)m * n, a_elems = (uint64_t)m * k, b_elems = (uint64_t)n * k;
    LWS_OP_REQUIRE(cmd, c_elems < limit && a_elems < limit && b_elems < limit,
                   "matmul %s: M=%u N=%u K=%u gives a matrix of 2^31 or more elements; split it "
                   "into a batch",
                   name, m, n, k);
    LWS_OP_REQUIRE(cmd, batch == 1 || stride_c >= c_elems,
                   "matmul %s: stride_c %llu is smaller than one C matrix (M*N = %llu), so batch "
                   "entries would overwrite each other",
                   name, (unsigned long long)stride_c, (unsigned long long)c_elems);
    /* Bytes each operand spans, from its first matrix to the end of its last. */
    uint64_t c_bytes = 4 * ((uint64_t)(batch - 1) * stride_c + c_elems);
    uint64_t a_bytes = 4 * ((uint64_t)(batch - 1) * stride_a + a_elems);
    uint64_t b_bytes = 4 * ((uint64_t)(batch - 1) * stride_b + b_elems);
    LWS_OP_REQUIRE(cmd, c.size >= c_bytes && a.size >= a_bytes && b.size >= b_bytes,
                   "matmul %s M=%u N=%u K=%u batch=%u: buffers of %llu, %llu, %llu bytes (C, A, "
                   "B) are smaller than the %llu, %llu, %llu the shape and strides need",
                   name, m, n, k, batch, (unsigned long long)c.size, (unsigned long long)a.size,
                   (unsigned long long)b.size, (unsigned long long)c_bytes,
                   (unsigned long long)a_bytes, (unsigned long long)b_bytes);
    LWS_OP_REQUIRE(cmd, !overlaps(c, c_bytes, a, a_bytes) && !overlaps(c, c_bytes, b, b_bytes),
                   "matmul %s: C overlaps A or B; the output must be a separate buffer range",
                   name);

    lws_context *ctx = lws_cmd_context(cmd);
    lws_tuning t = lws_tuning_get(ctx);
    /* Invariants of the tuning table that the shader relies on: whole
     * register blocks, and tile sides in whole vec4s. */
    LWS_OP_REQUIRE(cmd,
                   t.mm_wg_x && t.mm_wg_y && t.mm_tile_m % (4 * t.mm_wg_y) == 0 &&
                       t.mm_tile_n % (4 * t.mm_wg_x) == 0 && t.mm_tile_k % 4 == 0 && t.mm_tile_m &&
                       t.mm_tile_n && t.mm_tile_k,
                   "matmul: tuning tile %ux%ux%u with workgroup %ux%u: tile_m must be a multiple "
                   "of 4*wg_y, tile_n of 4*wg_x, tile_k of 4",
                   t.mm_tile_m, t.mm_tile_n, t.mm_tile_k, t.mm_wg_x, t.mm_wg_y);
    uint32_t shared_bytes = 4 * t.mm_tile_k * (t.mm_tile_m + 4 + t.mm_tile_n + 4);
    LWS_OP_REQUIRE(cmd, shared_bytes <= lws_context_caps(ctx)->max_shared_memory,
                   "matmul: tuning tiles %ux%ux%u need %u bytes of shared memory; the device has "
                   "%u",
                   t.mm_tile_m, t.mm_tile_n, t.mm_tile_k, shared_bytes,
                   lws_context_caps(ctx)->max_shared_memory);

    /* The four-wide path: groups of 4 elements never straddle a matrix edge
     * and every access is 16-byte aligned. */
    uint32_t vec4 = m % 4 == 0 && n % 4 == 0 && k % 4 == 0 &&
                    (c.addr | a.addr | b.addr) % 16 == 0 &&
                    (batch == 1 || (stride_c | stride_a | stride_b) % 4 == 0);
    /* The tuning's tile is the largest; small outputs get smaller tiles (same
     * workgroup, smaller register blocks). A tile far wider than the matrix
     * computes padding (d_model 64 under a 128-wide tile wastes half), and too
     * few workgroups leave cores idle: a weight gradient dW[64, 64] summed
     * over 2048 tokens is one 128x128 workgroup, so one core of many. */
    uint32_t tile_m = t.mm_tile_m, tile_n = t.mm_tile_n;
    uint32_t min_m = 4 * t.mm_wg_y, min_n = 4 * t.mm_wg_x;
    while (tile_m > min_m && m <= tile_m / 2) tile_m /= 2;
    while (tile_n > min_n && n <= tile_n / 2) tile_n /= 2;
    while ((uint64_t)lws_div_up(m, tile_m) * lws_div_up(n, tile_n) * batch < t.mm_min_groups) {
        if (tile_m >= tile_n && tile_m > min_m) tile_m /= 2;
        else if (tile_n > min_n) tile_n /= 2;
        else if (tile_m > min_m) tile_m /= 2;
        else break;
    }
    uint32_t spec[7] = {t.mm_wg_x, t.mm_wg_y, 1, tile_m, tile_n, t.mm_tile_k, vec4};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, shader_names[layout], spec, 7, &pipe);
    matmul_push push = {c.addr, a.addr, b.addr, 4 * stride_c,        4 * stride_a, 4 * stride_b,
                        m,      n,      k,      accumulate ? 1u : 0u};
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(n, tile_n), lws_div_up(m, tile_m),
                     batch);
    return LWS_OK;
}

lws_status lws_op_matmul(lws_cmd *cmd, lws_mm_layout layout, lws_buffer c, lws_buffer a,
                         lws_buffer b, uint32_t m, uint32_t n, uint32_t k, int accumulate) {
    return lws_op_matmul_batched(cmd, layout, c, a, b, m, n, k, accumulate, 1, 0, 0, 0);
}
