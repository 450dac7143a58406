/* Element-type conversion (shaders/cast.comp). */
#include "ops/common.h"

typedef struct cast_push {
    uint64_t out, in;
    uint32_t n;
} cast_push;

lws_status lws_op_cast(lws_cmd *cmd, lws_buffer out, lws_buffer in, uint64_t n) {
    lws_dtype to = out.dtype, from = in.dtype;
    int narrowing = from == LWS_F32 && (to == LWS_BF16 || to == LWS_F16);
    int widening = to == LWS_F32 && (from == LWS_BF16 || from == LWS_F16);
    LWS_OP_REQUIRE(cmd, narrowing || widening,
                   "cast: %s to %s is not a conversion lws has; it converts f32 to bf16 or f16 "
                   "and back",
                   lws_dtype_name(from), lws_dtype_name(to));
    LWS_OP_REQUIRE(cmd, n <= UINT32_MAX, "cast: n = %llu elements; at most 2^32 - 1 are allowed",
                   (unsigned long long)n);
    uint64_t out_bytes = lws_dtype_bytes(to) * n, in_bytes = lws_dtype_bytes(from) * n;
    LWS_OP_REQUIRE(cmd, out.size >= out_bytes && in.size >= in_bytes,
                   "cast: out (%llu bytes) or in (%llu bytes) holds fewer than n = %llu elements",
                   (unsigned long long)out.size, (unsigned long long)in.size,
                   (unsigned long long)n);
    static const char *const names[2][2] = {{"cast_f32_bf16", "cast_f32_f16"},
                                            {"cast_bf16_f32", "cast_f16_f32"}};
    const char *shader = names[widening][(narrowing ? to : from) == LWS_F16];
    lws_pipeline *pipe;
    uint32_t groups;
    LWS_TRY(lws_op_elementwise(cmd, shader, LWS_F32, n, &pipe, &groups));
    cast_push push = {out.addr, in.addr, (uint32_t)n};
    lws_op_reads(cmd, in, 0, in_bytes);
    lws_op_writes(cmd, out, 0, out_bytes);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}
