/* Global gradient norm and clip scale over the optimizer table
 * (shaders/grad_norm.comp), two passes, deterministic; the two-pass table
 * reduction it shares with ops/nonfinite.c. */
#include <stddef.h>

#include "ops/common.h"

lws_status lws_op_table_reduce(lws_cmd *cmd, const char *shader, const char *what, uint64_t out,
                               lws_buffer table, uint32_t n_tensors, uint32_t total_chunks,
                               lws_buffer scratch, lws_pipeline **pass1,
                               lws_table_reduce_push *push) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    LWS_OP_REQUIRE(cmd, n_tensors >= 1, "%s: the table needs at least one tensor", shader);
    LWS_OP_REQUIRE(cmd, table.size >= (uint64_t)n_tensors * sizeof(lws_optim_entry),
                   "%s: table has %llu bytes, needs n_tensors = %u entries of %zu", shader,
                   (unsigned long long)table.size, n_tensors, sizeof(lws_optim_entry));
    LWS_OP_REQUIRE(cmd, scratch.size >= 4ull * total_chunks,
                   "%s: scratch has %llu bytes, needs total_chunks = %u floats", shader,
                   (unsigned long long)scratch.size, total_chunks);
    uint32_t spec0[2] = {t.reduce_wg, 0}, spec1[2] = {t.reduce_wg, 1};
    lws_pipeline *pass0;
    LWS_OP_PIPELINE(cmd, shader, spec0, 2, &pass0);
    LWS_OP_PIPELINE(cmd, shader, spec1, 2, pass1);
    *push = (lws_table_reduce_push){out,       table.addr,   scratch.addr,
                                    n_tensors, total_chunks, LWS_OPTIM_CHUNK};
    /* The tensors are reached through addresses in the device table, which
     * the host does not read back: pass 0 declares a read of the whole arena
     * (sound: any op since the barrier that wrote one of them, or anything
     * else, is caught; the table's tensors are arena ranges). */
    lws_op_reads(cmd, table, 0, (uint64_t)n_tensors * sizeof(lws_optim_entry));
    lws_cmd_accesses_arena(cmd, 0, what);
    lws_op_writes(cmd, scratch, 0, 4ull * total_chunks);
    lws_cmd_dispatch(cmd, pass0, push, sizeof *push, total_chunks, 1, 1);
    lws_cmd_barrier(cmd);
    lws_op_reads(cmd, scratch, 0, 4ull * total_chunks);
    return LWS_OK;
}

lws_status lws_op_grad_norm(lws_cmd *cmd, lws_buffer hyper, lws_buffer table, uint32_t n_tensors,
                            uint32_t total_chunks, lws_buffer scratch) {
    LWS_OP_REQUIRE(cmd, hyper.size >= sizeof(lws_optim_hyper),
                   "grad_norm: hyper has %llu bytes, needs sizeof(lws_optim_hyper) = %zu",
                   (unsigned long long)hyper.size, sizeof(lws_optim_hyper));
    lws_pipeline *pass1;
    lws_table_reduce_push push;
    LWS_TRY(lws_op_table_reduce(cmd, "grad_norm", "the gradients of the optimizer table",
                                hyper.addr, table, n_tensors, total_chunks, scratch, &pass1,
                                &push));
    lws_op_reads(cmd, hyper, offsetof(lws_optim_hyper, max_grad_norm), 4);
    lws_op_reads(cmd, hyper, offsetof(lws_optim_hyper, loss_scale), 4);
    lws_op_writes(cmd, hyper, offsetof(lws_optim_hyper, grad_norm), 8);
    lws_cmd_dispatch(cmd, pass1, &push, sizeof push, 1, 1, 1);
    return LWS_OK;
}
