/* Launchers of the decode kernels: one new token per step, its position read
 * from a device buffer (uint32 pos.v[0]) so that command buffers recorded
 * once serve every position (src/model/decode.c). Same conventions as ops.h. */
#ifndef LWS_OPS_DECODE_OPS_H
#define LWS_OPS_DECODE_OPS_H

#include "ops/ops.h"

/* y[n] = W[n, :] . x for W [n, k] and x [k]: lws_op_matmul's NT layout with
 * M = 1 (a decode step's projections), without a whole tile of rows for the
 * one row. Deterministic: fixed summation order, any subgroup size. */
lws_status lws_op_matvec(lws_cmd *cmd, lws_buffer y, lws_buffer w, lws_buffer x, uint32_t n,
                         uint32_t k);

/* y[row, :] = RoPE_pos(x) for one token, pos = pos_buf[0], row = min(pos,
 * max_row): x (heads, head_dim), y rows of row_stride floats (0: one row,
 * rotated in place when y == x). The angle is lws_op_rope's at position pos. */
lws_status lws_op_rope_decode(lws_cmd *cmd, lws_buffer y, lws_buffer x, lws_buffer pos,
                              uint32_t heads, uint32_t head_dim, uint32_t row_stride,
                              uint32_t max_row, float theta);

/* y[pos, 0:n] = x[0:n], pos = min(pos_buf[0], max_row): stores a value row
 * into a KV cache (row_stride floats per row, >= n). */
lws_status lws_op_store_row(lws_cmd *cmd, lws_buffer y, lws_buffer x, lws_buffer pos, uint32_t n,
                            uint32_t row_stride, uint32_t max_row);

/* One query row per head against cached keys 0..p, p = min(pos_buf[0],
 * max_seq - 1): q, o (q_heads, head_dim); k_cache, v_cache (max_seq,
 * kv_heads * head_dim); query head h reads KV head h / (q_heads / kv_heads).
 * Any head_dim from 1 to 128. */
lws_status lws_op_attention_decode(lws_cmd *cmd, lws_buffer o, lws_buffer q, lws_buffer k_cache,
                                   lws_buffer v_cache, lws_buffer pos, uint32_t max_seq,
                                   uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim,
                                   float scale);

#endif
