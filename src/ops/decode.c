/* Decode kernels (shaders/matvec.comp, shaders/rope_decode.comp,
 * shaders/attention_decode.comp). */
#include <math.h>
#include <stdlib.h>

#include "ops/common.h"
#include "ops/decode_ops.h"

/* Matches the push-constant block of shaders/matvec.comp. */
typedef struct matvec_push {
    uint64_t y, w, x;
    uint32_t n, k;
} matvec_push;

/* Invocations sharing one output row (lws_tuning.matvec_threads);
 * LWS_MATVEC_THREADS=n forces the power of two <= n (tests run every path). */
static uint32_t matvec_threads(lws_context *ctx) {
    const char *force = getenv("LWS_MATVEC_THREADS");
    if (force && *force) {
        long n = strtol(force, NULL, 10);
        uint32_t p = 1;
        while (p * 2 <= (uint32_t)(n < 1 ? 1 : n > 256 ? 256 : n)) p *= 2;
        return p;
    }
    return lws_tuning_get(ctx).matvec_threads;
}

lws_status lws_op_matvec(lws_cmd *cmd, lws_buffer y, lws_buffer w, lws_buffer x, uint32_t n,
                         uint32_t k) {
    LWS_OP_REQUIRE(cmd, n >= 1 && k >= 1, "matvec: n = %u, k = %u; both must be >= 1", n, k);
    LWS_OP_REQUIRE(cmd, (uint64_t)n * k <= UINT32_MAX,
                   "matvec: n * k = %llu; at most 2^32 - 1 weights are allowed",
                   (unsigned long long)n * k);
    LWS_OP_REQUIRE(cmd, y.size >= 4ull * n && w.size >= 4ull * n * k && x.size >= 4ull * k,
                   "matvec n=%u k=%u: buffers of %llu, %llu, %llu bytes (y, W, x) are smaller "
                   "than the shape needs",
                   n, k, (unsigned long long)y.size, (unsigned long long)w.size,
                   (unsigned long long)x.size);
    const lws_device_caps *caps = lws_context_caps(lws_cmd_context(cmd));
    /* 256 invocations where the device allows (Vulkan promises 128); a
     * power of two, so whole rows fit. */
    uint32_t max_wg = 256;
    while (max_wg > caps->max_workgroup_invocations) max_wg /= 2;
    uint32_t threads = matvec_threads(lws_cmd_context(cmd));
    while (threads > max_wg) threads /= 2;
    uint32_t wg = max_wg;
    uint32_t vec4 = k % 4 == 0 && (w.addr | x.addr) % 16 == 0;
    uint32_t spec[3] = {wg, threads, vec4};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "matvec", spec, 3, &pipe);
    matvec_push push = {y.addr, w.addr, x.addr, n, k};
    lws_op_reads(cmd, w, 0, 4ull * n * k);
    lws_op_reads(cmd, x, 0, 4ull * k);
    lws_op_writes(cmd, y, 0, 4ull * n);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(n, wg / threads), 1, 1);
    return LWS_OK;
}

/* Matches the push-constant block of shaders/rope_decode.comp. */
typedef struct rope_decode_push {
    uint64_t y, x, pos;
    uint32_t heads, head_dim, row_stride, max_row;
    float ratio_hi, ratio_lo;
    uint32_t rotate;
} rope_decode_push;

/* Matches the push-constant block of shaders/attention_decode.comp. */
typedef struct attention_decode_push {
    uint64_t o, q, k, v, pos;
    uint32_t q_heads, kv_heads, head_dim, max_seq;
    float scale;
} attention_decode_push;

/* The highest row of y that holds `width` floats at row_stride. */
static int rows_fit(lws_buffer y, uint32_t width, uint32_t row_stride, uint32_t max_row) {
    return (uint64_t)max_row * row_stride + width <= y.size / 4;
}

static lws_status rope_decode(lws_cmd *cmd, const char *what, lws_buffer y, lws_buffer x,
                              lws_buffer pos, uint32_t heads, uint32_t head_dim,
                              uint32_t row_stride, uint32_t max_row, float theta, int rotate) {
    uint64_t width = (uint64_t)heads * head_dim;
    LWS_OP_REQUIRE(cmd, heads >= 1 && head_dim >= 1 && width <= UINT32_MAX,
                   "%s: heads = %u, head_dim = %u; both must be >= 1", what, heads, head_dim);
    LWS_OP_REQUIRE(cmd, !rotate || head_dim % 2 == 0,
                   "%s: head_dim = %u; it must be even (element j pairs with j + head_dim/2)", what,
                   head_dim);
    LWS_OP_REQUIRE(cmd, row_stride == 0 || row_stride >= width,
                   "%s: row_stride %u is smaller than a row of %llu floats", what, row_stride,
                   (unsigned long long)width);
    /* Positions are converted to float exactly below 2^24. */
    LWS_OP_REQUIRE(cmd, max_row < (1u << 24), "%s: max_row = %u; allowed 0 .. 16777215", what,
                   max_row);
    LWS_OP_REQUIRE(cmd, (uint64_t)max_row * row_stride + width <= UINT32_MAX,
                   "%s: %u rows of %u floats exceed 2^32 elements", what, max_row + 1, row_stride);
    LWS_OP_REQUIRE(cmd, x.size >= 4 * width && rows_fit(y, (uint32_t)width, row_stride, max_row),
                   "%s: x holds fewer than %llu floats or y fewer than %u rows of %u floats", what,
                   (unsigned long long)width, max_row + 1, row_stride);
    LWS_OP_REQUIRE(cmd, pos.size >= 4, "%s: the position buffer is empty", what);
    LWS_OP_REQUIRE(cmd, !rotate || (theta > 1.0f && isfinite(theta)),
                   "%s: theta = %g; it must be finite and > 1 (the paper uses 500000)", what,
                   (double)theta);
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    uint32_t spec[1] = {t.elementwise_wg};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "rope_decode", spec, 1, &pipe);
    /* r = theta^(-2/head_dim) in fp64, passed as a float pair (as lws_op_rope). */
    float ratio_hi = 0.0f, ratio_lo = 0.0f;
    if (rotate) lws_rope_ratio(theta, head_dim, &ratio_hi, &ratio_lo);
    rope_decode_push push = {y.addr,     x.addr,  pos.addr, heads,    head_dim,
                             row_stride, max_row, ratio_hi, ratio_lo, rotate ? 1u : 0u};
    uint32_t invocations = rotate ? head_dim / 2 : (uint32_t)width;
    /* The row written depends on the position, read on the device: any of
     * rows 0 .. max_row. */
    lws_op_reads(cmd, pos, 0, 4);
    lws_op_reads(cmd, x, 0, 4 * width);
    lws_op_writes(cmd, y, 0, 4 * ((uint64_t)max_row * row_stride + width));
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(invocations, t.elementwise_wg), 1,
                     1);
    return LWS_OK;
}

lws_status lws_op_rope_decode(lws_cmd *cmd, lws_buffer y, lws_buffer x, lws_buffer pos,
                              uint32_t heads, uint32_t head_dim, uint32_t row_stride,
                              uint32_t max_row, float theta) {
    return rope_decode(cmd, "rope_decode", y, x, pos, heads, head_dim, row_stride, max_row, theta,
                       1);
}

lws_status lws_op_store_row(lws_cmd *cmd, lws_buffer y, lws_buffer x, lws_buffer pos, uint32_t n,
                            uint32_t row_stride, uint32_t max_row) {
    return rope_decode(cmd, "store_row", y, x, pos, 1, n, row_stride, max_row, 0.0f, 0);
}

lws_status lws_op_attention_decode(lws_cmd *cmd, lws_buffer o, lws_buffer q, lws_buffer k_cache,
                                   lws_buffer v_cache, lws_buffer pos, uint32_t max_seq,
                                   uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim,
                                   float scale) {
    LWS_OP_REQUIRE(cmd, head_dim >= 1 && head_dim <= 128,
                   "attention_decode: head_dim %u is not supported; allowed 1 .. 128", head_dim);
    LWS_OP_REQUIRE(cmd, kv_heads >= 1 && q_heads >= kv_heads && q_heads % kv_heads == 0,
                   "attention_decode: q_heads %u is not a multiple of kv_heads %u; every KV head "
                   "must serve the same number of query heads",
                   q_heads, kv_heads);
    LWS_OP_REQUIRE(cmd, max_seq >= 1, "attention_decode: max_seq must be at least 1");
    uint64_t cache = (uint64_t)max_seq * kv_heads * head_dim;
    LWS_OP_REQUIRE(cmd, cache <= UINT32_MAX,
                   "attention_decode: a cache of %u x %u floats exceeds 2^32 elements", max_seq,
                   kv_heads * head_dim);
    LWS_OP_REQUIRE(cmd,
                   q.size >= 4ull * q_heads * head_dim && o.size >= 4ull * q_heads * head_dim &&
                       k_cache.size >= 4 * cache && v_cache.size >= 4 * cache && pos.size >= 4,
                   "attention_decode: q or o holds fewer than %u floats, or a cache fewer than "
                   "%llu, or the position buffer is empty",
                   q_heads * head_dim, (unsigned long long)cache);
    /* At least one invocation per output element (head_dim <= 128), and no
     * fewer than 64 so the 128 scores of a chunk take at most two passes;
     * 128 keys per chunk keep the scores in 512 bytes of shared memory. */
    uint32_t wg = head_dim > 64 ? 128 : 64;
    uint32_t spec[2] = {wg, 128};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "attention_decode", spec, 2, &pipe);
    attention_decode_push push = {o.addr,  q.addr,   k_cache.addr, v_cache.addr, pos.addr,
                                  q_heads, kv_heads, head_dim,     max_seq,      scale};
    /* Keys 0 .. pos, pos read on the device: any cached row. */
    lws_op_reads(cmd, pos, 0, 4);
    lws_op_reads(cmd, q, 0, 4ull * q_heads * head_dim);
    lws_op_reads(cmd, k_cache, 0, 4 * cache);
    lws_op_reads(cmd, v_cache, 0, 4 * cache);
    lws_op_writes(cmd, o, 0, 4ull * q_heads * head_dim);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, q_heads, 1, 1);
    return LWS_OK;
}
