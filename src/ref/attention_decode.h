/* fp64 reference of one decode step of causal GQA attention: one query row
 * per head against the cached keys and values 0..pos.
 *   q, o              (q_heads, head_dim)
 *   k_cache, v_cache  (>= pos + 1 rows, kv_heads * head_dim)
 * Query head h reads KV head h / (q_heads / kv_heads). */
#ifndef LWS_REF_ATTENTION_DECODE_H
#define LWS_REF_ATTENTION_DECODE_H
#include <stdint.h>

/* o[h] = sum_{j <= pos} softmax_j(scale * q[h] . k[j]) v[j]. Returns 0, or -1
 * when host memory runs out. */
int ref_attention_decode(double *o, const double *q, const double *k_cache, const double *v_cache,
                         uint32_t pos, uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim,
                         double scale);

#endif
