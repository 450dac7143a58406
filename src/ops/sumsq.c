/* Deterministic sum of squares (shaders/sumsq.comp), two passes. */
#include "ops/common.h"

typedef struct sumsq_push {
    uint64_t x, partials, out;
    uint32_t n, chunk, slot, accumulate;
} sumsq_push;

uint32_t lws_sumsq_scratch_floats(lws_context *ctx, uint32_t n) {
    lws_tuning t = lws_tuning_get(ctx);
    uint32_t groups = lws_div_up(n, t.reduce_chunk);
    return groups ? groups : 1;
}

lws_status lws_op_sumsq(lws_cmd *cmd, lws_buffer out, uint32_t slot, lws_buffer x, uint32_t n,
                        lws_buffer scratch, int accumulate) {
    lws_context *ctx = lws_cmd_context(cmd);
    lws_tuning t = lws_tuning_get(ctx);
    uint32_t groups = lws_sumsq_scratch_floats(ctx, n);
    LWS_OP_REQUIRE(cmd, x.size >= 4ull * n, "sumsq: x holds fewer than n = %u floats", n);
    LWS_OP_REQUIRE(cmd, scratch.size >= 4ull * groups,
                   "sumsq: scratch needs %u floats, has %llu bytes", groups,
                   (unsigned long long)scratch.size);
    LWS_OP_REQUIRE(cmd, out.size >= 4ull * (slot + 1), "sumsq: slot %u is outside out", slot);
    uint32_t spec0[2] = {t.reduce_wg, 0}, spec1[2] = {t.reduce_wg, 1};
    lws_pipeline *pass0, *pass1;
    LWS_OP_PIPELINE(cmd, "sumsq", spec0, 2, &pass0);
    LWS_OP_PIPELINE(cmd, "sumsq", spec1, 2, &pass1);
    sumsq_push push = {x.addr, scratch.addr, out.addr, n, t.reduce_chunk, slot, 0};
    lws_op_reads(cmd, x, 0, 4ull * n);
    lws_op_writes(cmd, scratch, 0, 4ull * groups);
    lws_cmd_dispatch(cmd, pass0, &push, sizeof push, groups, 1, 1);
    lws_cmd_barrier(cmd);
    sumsq_push final = {scratch.addr, 0, out.addr, groups, 0, slot, accumulate ? 1u : 0u};
    lws_op_reads(cmd, scratch, 0, 4ull * groups);
    if (accumulate) lws_op_reads(cmd, out, 4ull * slot, 4);
    lws_op_writes(cmd, out, 4ull * slot, 4);
    lws_cmd_dispatch(cmd, pass1, &final, sizeof final, 1, 1, 1);
    return LWS_OK;
}
