/* SwiGLU gate forward and backward (shaders/swiglu.comp, shaders/swiglu_bwd.comp). */
#include "ops/common.h"

typedef struct swiglu_push {
    uint64_t h, a, b;
    uint32_t n;
} swiglu_push;

typedef struct swiglu_bwd_push {
    uint64_t da, db, dh, a, b;
    uint32_t n;
} swiglu_bwd_push;

lws_status lws_op_swiglu_fwd(lws_cmd *cmd, lws_buffer h, lws_buffer a, lws_buffer b, uint32_t n) {
    lws_dtype type;
    LWS_OP_ELEM(cmd, "swiglu_fwd", &type, "h, a, b", h, a, b);
    uint64_t bytes = (uint64_t)lws_dtype_bytes(type) * n;
    LWS_OP_REQUIRE(cmd, h.size >= bytes && a.size >= bytes && b.size >= bytes,
                   "swiglu_fwd: h, a or b holds fewer than n = %u elements of %s", n,
                   lws_dtype_name(type));
    lws_pipeline *pipe;
    uint32_t groups;
    LWS_TRY(lws_op_elementwise(cmd, "swiglu", type, n, &pipe, &groups));
    swiglu_push push = {h.addr, a.addr, b.addr, n};
    lws_op_reads(cmd, a, 0, bytes);
    lws_op_reads(cmd, b, 0, bytes);
    lws_op_writes(cmd, h, 0, bytes);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}

lws_status lws_op_swiglu_bwd(lws_cmd *cmd, lws_buffer da, lws_buffer db, lws_buffer dh,
                             lws_buffer a, lws_buffer b, uint32_t n) {
    lws_dtype type;
    LWS_OP_ELEM(cmd, "swiglu_bwd", &type, "da, db, dh, a, b", da, db, dh, a, b);
    uint64_t bytes = (uint64_t)lws_dtype_bytes(type) * n;
    LWS_OP_REQUIRE(cmd,
                   da.size >= bytes && db.size >= bytes && dh.size >= bytes && a.size >= bytes &&
                       b.size >= bytes,
                   "swiglu_bwd: da, db, dh, a or b holds fewer than n = %u elements of %s", n,
                   lws_dtype_name(type));
    lws_pipeline *pipe;
    uint32_t groups;
    LWS_TRY(lws_op_elementwise(cmd, "swiglu_bwd", type, n, &pipe, &groups));
    swiglu_bwd_push push = {da.addr, db.addr, dh.addr, a.addr, b.addr, n};
    lws_op_reads(cmd, dh, 0, bytes);
    lws_op_reads(cmd, a, 0, bytes);
    lws_op_reads(cmd, b, 0, bytes);
    lws_op_writes(cmd, da, 0, bytes);
    lws_op_writes(cmd, db, 0, bytes);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}
