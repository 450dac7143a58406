/* fp64 reference of causal GQA softmax attention: naive, one score row at a
 * time, for the kernel tests.
 *   q, o, dout, dq  [batch*seq, q_heads*head_dim]
 *   k, v, dk, dv    [batch*seq, kv_heads*head_dim]
 *   lse             [batch, q_heads, seq]
 * Query head h reads KV head h / (q_heads / kv_heads); row i sees keys j <= i. */
#ifndef LWS_REF_ATTENTION_H
#define LWS_REF_ATTENTION_H
#include <stdint.h>

/* o_i = sum_j softmax_j(scale * q_i . k_j) v_j; lse_i = log sum_j exp(scale * q_i . k_j).
 * lse may be NULL. Returns 0, or -1 when host memory runs out. */
int ref_attention_fwd(double *o, double *lse, const double *q, const double *k, const double *v,
                      uint32_t batch, uint32_t seq, uint32_t q_heads, uint32_t kv_heads,
                      uint32_t head_dim, double scale);

/* The analytic gradient of sum(o * dout) with respect to q, k and v (written,
 * not accumulated). Returns 0, or -1 when host memory runs out. */
int ref_attention_bwd(double *dq, double *dk, double *dv, const double *dout, const double *q,
                      const double *k, const double *v, uint32_t batch, uint32_t seq,
                      uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim, double scale);

#endif
