/* AdamW over the optimizer table (shaders/adamw.comp), one dispatch. */
#include <stddef.h>

#include "ops/common.h"

typedef struct adamw_push {
    uint64_t hyper, table;
    uint32_t n_tensors, total_chunks, chunk;
} adamw_push;

/* The shaders read both structures as laid out here (shaders/common/adamw.glsl). */
_Static_assert(sizeof(lws_optim_hyper) == 64, "lws_optim_hyper is 16 floats");
_Static_assert(sizeof(lws_optim_entry) == 48, "lws_optim_entry is 4 addresses and 4 uints");

lws_status lws_op_adamw(lws_cmd *cmd, lws_buffer hyper, lws_buffer table, uint32_t n_tensors,
                        uint32_t total_chunks) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    LWS_OP_REQUIRE(cmd, n_tensors >= 1, "adamw: the table needs at least one tensor");
    LWS_OP_REQUIRE(cmd, hyper.size >= sizeof(lws_optim_hyper),
                   "adamw: hyper has %llu bytes, needs sizeof(lws_optim_hyper) = %zu",
                   (unsigned long long)hyper.size, sizeof(lws_optim_hyper));
    LWS_OP_REQUIRE(cmd, table.size >= (uint64_t)n_tensors * sizeof(lws_optim_entry),
                   "adamw: table has %llu bytes, needs n_tensors = %u entries of %zu",
                   (unsigned long long)table.size, n_tensors, sizeof(lws_optim_entry));
    uint32_t spec[1] = {t.elementwise_wg};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "adamw", spec, 1, &pipe);
    adamw_push push = {hyper.addr, table.addr, n_tensors, total_chunks, LWS_OPTIM_CHUNK};
    /* Parameters, gradients and moments are reached through the device
     * table's addresses: declared as a read and write of the whole arena
     * (see lws_op_grad_norm). The hyperparameters up to clip_scale. */
    lws_op_reads(cmd, table, 0, (uint64_t)n_tensors * sizeof(lws_optim_entry));
    lws_op_reads(cmd, hyper, 0, offsetof(lws_optim_hyper, clip_scale) + 4);
    lws_cmd_accesses_arena(cmd, 1, "the parameters, gradients and moments of the optimizer table");
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, total_chunks, 1, 1);
    return LWS_OK;
}
