/* The count of parameters that are not finite (ops/nonfinite.c). */
#ifndef LWS_OPS_NONFINITE_H
#define LWS_OPS_NONFINITE_H

#include "ops/ops.h"

/* Counts the NaN and infinite values among the parameters of every tensor
 * of the optimizer table (lws_optim_entry.param, n elements each) into
 * count[0], a float (exact up to 2^24, never 0 when some value is not
 * finite). scratch: total_chunks floats, as lws_op_grad_norm's. Two
 * passes with a barrier between; the caller puts a barrier between the
 * update that wrote the parameters and this. */
lws_status lws_op_count_nonfinite(lws_cmd *cmd, lws_buffer count, lws_buffer table,
                                  uint32_t n_tensors, uint32_t total_chunks, lws_buffer scratch);

#endif
