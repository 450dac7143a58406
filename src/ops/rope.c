/* Rotary position embedding (shaders/rope.comp), forward and inverse. */
#include <math.h>

#include "ops/common.h"

typedef struct rope_push {
    uint64_t y, x;
    uint32_t n_tokens, seq_len, heads, head_dim;
    float ratio_hi, ratio_lo;
    uint32_t inverse;
} rope_push;

lws_status lws_rope_check(lws_cmd *cmd, const char *op, uint32_t n_tokens, lws_rope_shape r) {
    LWS_OP_REQUIRE(cmd, n_tokens >= 1 && r.heads >= 1,
                   "%s: n_tokens = %u, heads = %u; both must be >= 1", op, n_tokens, r.heads);
    LWS_OP_REQUIRE(cmd, r.head_dim >= 2 && r.head_dim % 2 == 0,
                   "%s: head_dim = %u; it must be even and >= 2 (element j pairs with "
                   "j + head_dim/2)",
                   op, r.head_dim);
    /* Positions are converted to float exactly below 2^24. */
    LWS_OP_REQUIRE(cmd, r.seq_len >= 1 && r.seq_len <= (1u << 24),
                   "%s: seq_len = %u; allowed 1 .. 16777216", op, r.seq_len);
    LWS_OP_REQUIRE(cmd, r.theta > 1.0f && isfinite(r.theta),
                   "%s: theta = %g; it must be finite and > 1 (the paper uses 500000)", op,
                   (double)r.theta);
    uint64_t n = (uint64_t)n_tokens * r.heads * r.head_dim;
    LWS_OP_REQUIRE(cmd, n <= UINT32_MAX,
                   "%s: n_tokens * heads * head_dim = %llu; at most 2^32 - 1 are allowed", op,
                   (unsigned long long)n);
    return LWS_OK;
}

void lws_rope_ratio(float theta, uint32_t head_dim, float *hi, float *lo) {
    double ratio = pow((double)theta, -2.0 / (double)head_dim);
    *hi = (float)ratio;
    *lo = (float)(ratio - (double)*hi);
}

lws_status lws_op_rope(lws_cmd *cmd, lws_buffer y, lws_buffer x, uint32_t n_tokens,
                       uint32_t seq_len, uint32_t heads, uint32_t head_dim, float theta,
                       int inverse) {
    lws_rope_shape shape = {seq_len, heads, head_dim, theta};
    LWS_TRY(lws_rope_check(cmd, "rope", n_tokens, shape));
    uint64_t n = (uint64_t)n_tokens * heads * head_dim;
    lws_dtype type;
    LWS_OP_ELEM(cmd, "rope", &type, "y, x", y, x);
    uint64_t bytes = lws_dtype_bytes(type) * n;
    LWS_OP_REQUIRE(cmd, x.size >= bytes && y.size >= bytes,
                   "rope: x or y holds fewer than n_tokens * heads * head_dim = %llu elements of "
                   "%s",
                   (unsigned long long)n, lws_dtype_name(type));
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    uint32_t spec[1] = {t.elementwise_wg};
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, "rope", type), spec, 1, &pipe);
    /* The shader raises r = theta^(-2/head_dim) to the j-th power in
     * double-float arithmetic; r itself comes from fp64 here. */
    float ratio_hi, ratio_lo;
    lws_rope_ratio(theta, head_dim, &ratio_hi, &ratio_lo);
    rope_push push = {y.addr,   x.addr,   n_tokens, seq_len,          heads,
                      head_dim, ratio_hi, ratio_lo, inverse ? 1u : 0u};
    uint32_t pairs = n_tokens * (head_dim / 2);
    lws_op_reads(cmd, x, 0, bytes);
    lws_op_writes(cmd, y, 0, bytes);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(pairs, t.elementwise_wg), 1, 1);
    return LWS_OK;
}
