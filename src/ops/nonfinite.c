/* Non-finite parameters over the optimizer table (shaders/nonfinite.comp),
 * two passes, exact. */
#include "ops/common.h"
#include "ops/nonfinite.h"

typedef struct nonfinite_push {
    uint64_t count, table, partials;
    uint32_t n_tensors, total_chunks, chunk;
} nonfinite_push;

lws_status lws_op_count_nonfinite(lws_cmd *cmd, lws_buffer count, lws_buffer table,
                                  uint32_t n_tensors, uint32_t total_chunks, lws_buffer scratch) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    LWS_OP_REQUIRE(cmd, n_tensors >= 1, "count_nonfinite: the table needs at least one tensor");
    LWS_OP_REQUIRE(cmd, count.size >= sizeof(float),
                   "count_nonfinite: count has %llu bytes, needs one float",
                   (unsigned long long)count.size);
    LWS_OP_REQUIRE(cmd, table.size >= (uint64_t)n_tensors * sizeof(lws_optim_entry),
                   "count_nonfinite: table has %llu bytes, needs n_tensors = %u entries of %zu",
                   (unsigned long long)table.size, n_tensors, sizeof(lws_optim_entry));
    LWS_OP_REQUIRE(cmd, scratch.size >= 4ull * total_chunks,
                   "count_nonfinite: scratch has %llu bytes, needs total_chunks = %u floats",
                   (unsigned long long)scratch.size, total_chunks);
    uint32_t spec0[2] = {t.reduce_wg, 0}, spec1[2] = {t.reduce_wg, 1};
    lws_pipeline *pass0, *pass1;
    LWS_OP_PIPELINE(cmd, "nonfinite", spec0, 2, &pass0);
    LWS_OP_PIPELINE(cmd, "nonfinite", spec1, 2, &pass1);
    nonfinite_push push = {count.addr, table.addr,   scratch.addr,
                           n_tensors,  total_chunks, LWS_OPTIM_CHUNK};
    /* The parameters are reached through addresses in the device table:
     * pass 0 declares a read of the whole arena, as lws_op_grad_norm does
     * for the gradients. */
    lws_op_reads(cmd, table, 0, (uint64_t)n_tensors * sizeof(lws_optim_entry));
    lws_cmd_accesses_arena(cmd, 0, "the parameters of the optimizer table");
    lws_op_writes(cmd, scratch, 0, 4ull * total_chunks);
    lws_cmd_dispatch(cmd, pass0, &push, sizeof push, total_chunks, 1, 1);
    lws_cmd_barrier(cmd);
    lws_op_reads(cmd, scratch, 0, 4ull * total_chunks);
    lws_op_writes(cmd, count, 0, sizeof(float));
    lws_cmd_dispatch(cmd, pass1, &push, sizeof push, 1, 1, 1);
    return LWS_OK;
}
