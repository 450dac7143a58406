/* Non-finite parameters over the optimizer table (shaders/nonfinite.comp),
 * two passes, exact. */
#include "ops/common.h"
#include "ops/nonfinite.h"

lws_status lws_op_count_nonfinite(lws_cmd *cmd, lws_buffer count, lws_buffer table,
                                  uint32_t n_tensors, uint32_t total_chunks, lws_buffer scratch) {
    LWS_OP_REQUIRE(cmd, count.size >= sizeof(float),
                   "count_nonfinite: count has %llu bytes, needs one float",
                   (unsigned long long)count.size);
    lws_pipeline *pass1;
    lws_table_reduce_push push;
    LWS_TRY(lws_op_table_reduce(cmd, "nonfinite", "the parameters of the optimizer table",
                                count.addr, table, n_tensors, total_chunks, scratch, &pass1,
                                &push));
    lws_op_writes(cmd, count, 0, sizeof(float));
    lws_cmd_dispatch(cmd, pass1, &push, sizeof push, 1, 1, 1);
    return LWS_OK;
}
