/* Helpers shared by the launchers in src/ops/. */
#ifndef LWS_OPS_COMMON_H
#define LWS_OPS_COMMON_H

#include "ops/ops.h"

/* Gets a pipeline or marks the command buffer failed and returns. */
#define LWS_OP_PIPELINE(cmd, name, spec, count, out)                                               \
    do {                                                                                           \
        lws_status lws_op_s_ = lws_pipeline_get(lws_cmd_context(cmd), name, spec, count, out);     \
        if (lws_op_s_ != LWS_OK) return lws_cmd_fail(cmd, lws_op_s_);                              \
    } while (0)

/* Fails the command buffer when a condition on the arguments does not hold. */
#define LWS_OP_REQUIRE(cmd, cond, ...)                                                             \
    do {                                                                                           \
        if (!(cond)) return lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID, __VA_ARGS__));             \
    } while (0)

/* The push constants of both matmul shaders (matmul.comp, matmul_coopmat.comp). */
typedef struct lws_matmul_push {
    uint64_t c, a, b;
    uint64_t stride_c, stride_a, stride_b; /* bytes */
    uint32_t m, n, k;
    uint32_t accumulate;
} lws_matmul_push;

static inline uint32_t lws_div_up(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

/* Declare bytes [offset, offset + bytes) of b as read or written by the next
 * dispatch (lws_cmd_reads, lws_cmd_writes); nothing when checking is off.
 * Launchers declare exactly what the shader touches, from the shapes. */
static inline void lws_op_reads(lws_cmd *cmd, lws_buffer b, uint64_t offset, uint64_t bytes) {
    lws_cmd_reads(cmd, lws_buffer_slice(b, offset, bytes));
}
static inline void lws_op_writes(lws_cmd *cmd, lws_buffer b, uint64_t offset, uint64_t bytes) {
    lws_cmd_writes(cmd, lws_buffer_slice(b, offset, bytes));
}
/* Reads and writes: an op that updates b in place (accumulation). */
static inline void lws_op_updates(lws_cmd *cmd, lws_buffer b, uint64_t offset, uint64_t bytes) {
    lws_op_reads(cmd, b, offset, bytes);
    lws_op_writes(cmd, b, offset, bytes);
}

#endif
