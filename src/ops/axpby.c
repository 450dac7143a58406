/* out = alpha * x + beta * y (shaders/axpby.comp). */
#include "ops/common.h"

typedef struct axpby_push {
    uint64_t out, x, y;
    uint32_t n;
    float alpha, beta;
} axpby_push;

lws_status lws_op_axpby(lws_cmd *cmd, lws_buffer out, lws_buffer x, lws_buffer y, float alpha,
                        float beta, uint32_t n) {
    lws_dtype type;
    LWS_OP_ELEM(cmd, "axpby", &type, "out, x, y", out, x, y);
    uint64_t bytes = (uint64_t)lws_dtype_bytes(type) * n;
    LWS_OP_REQUIRE(cmd, out.size >= bytes && x.size >= bytes && y.size >= bytes,
                   "axpby: buffers smaller than n = %u elements of %s", n, lws_dtype_name(type));
    lws_pipeline *pipe;
    uint32_t groups;
    LWS_TRY(lws_op_elementwise(cmd, "axpby", type, n, &pipe, &groups));
    axpby_push push = {out.addr, x.addr, y.addr, n, alpha, beta};
    lws_op_reads(cmd, x, 0, bytes);
    lws_op_reads(cmd, y, 0, bytes);
    lws_op_writes(cmd, out, 0, bytes);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}
