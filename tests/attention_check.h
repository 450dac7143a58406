/* One attention forward through lws_op_attention_fwd against the fp64
 * reference (src/ref/attention.c), for the tests of its matrix-unit form
 * (test_attention_select.c, test_attention_coopmat.c). */
#ifndef LWS_TEST_ATTENTION_CHECK_H
#define LWS_TEST_ATTENTION_CHECK_H

#include "harness.h"
#include "ops/ops.h"

typedef struct attention_shape {
    uint32_t batch, seq, q_heads, kv_heads, head_dim;
    double qk_std, v_std; /* of the inputs; 0 for 1 */
} attention_shape;

/* Records lws_op_attention_fwd of an lws_attention_fwd_args (test_run's form). */
void record_attention_forward(lws_cmd *cmd, void *arg);

/* N(0, std) q, k, v of type t rounded to it, o and lse poisoned with NaN
 * inside NaN guards that must stay untouched. o_u: the allowed error of o
 * in units of max |v| (0: the fp32 forms' 3e-5); lse_abs: lse's; rel: the
 * relative L2 bound (plus a 16-bit o's rounding). want_match 0 expects o to
 * miss the tolerance (a stand-in that is wrong on purpose ran). */
void check_attention_forward(lws_context *ctx, test_rng *rng, attention_shape s, lws_dtype t,
                             double o_u, double lse_abs, double rel, int want_match);

#endif
