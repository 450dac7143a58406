#version 460
#extension GL_GOOGLE_include_directive : require
// Attention backward, dq: one workgroup per (query block, query head,
// sequence) walks the key/value blocks at or before its last query row.
// Invocation u owns query rows u, u + WG, ... (OWNED of them): their q, dout
// and dq rows in shared memory, their P and dS against the key block in
// registers. It also computes its rows' delta (dout . o) and writes it to
// pc.delta for the dk/dv kernel. See attention_bwd.glsl for the math.
// variants: attention_bwd_dq attention_bwd_dq_bf16=ELEM_BF16 attention_bwd_dq_f16=ELEM_F16
#include "lws.glsl"
#include "attention_bwd.glsl"

shared vec4 q_tile[BLOCK_Q * ROW];  // (BLOCK_Q, head_dim), rows owned as above
shared vec4 do_tile[BLOCK_Q * ROW]; // (BLOCK_Q, head_dim), likewise
shared vec4 dq_tile[BLOCK_Q * ROW]; // (BLOCK_Q, head_dim), likewise
shared vec4 k_tile[BLOCK_KV * ROW]; // (BLOCK_KV, head_dim)
shared vec4 v_tile[BLOCK_KV * ROW]; // (BLOCK_KV, head_dim)

const uint OWNED = BLOCK_Q / WG; // query rows per invocation

void main() {
    uint u = gl_LocalInvocationIndex;
    uint q0 = gl_WorkGroupID.x * BLOCK_Q;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint kvh = h / (pc.q_heads / pc.kv_heads);

    float lse[OWNED], delta[OWNED];
    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = u + i * WG;
        ATTN_LOAD_ROW(q_tile, r, pc.q, pc.q_heads, h, b, q0 + r);
        ATTN_LOAD_ROW(do_tile, r, pc.dout, pc.q_heads, h, b, q0 + r);
        ATTN_ZERO_ROW(dq_tile, r);
        lse[i] = delta[i] = 0.0;
        if (q0 + r < pc.seq) {
            uint row = attn_row_index(b, h, q0 + r);
            lse[i] = pc.lse.v[row];
            delta[i] = attn_delta(b, h, q0 + r);
            pc.delta.v[row] = delta[i];
        }
    }

    uint kv_end = min(pc.seq, q0 + BLOCK_Q);
    for (uint kv0 = 0; kv0 < kv_end; kv0 += BLOCK_KV) {
        barrier(); // the previous block has finished reading k_tile, v_tile
        ATTN_LOAD_TILE(k_tile, pc.k, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        ATTN_LOAD_TILE(v_tile, pc.v, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        barrier();

        // (OWNED, BLOCK_KV): the dot products, then P and dS
        float qk[OWNED * BLOCK_KV], dov[OWNED * BLOCK_KV];
        [[unroll]] for (uint e = 0; e < OWNED * BLOCK_KV; e++) qk[e] = dov[e] = 0.0;
        [[dont_unroll]] for (uint j = 0; j < DV; j++) {
            vec4 q[OWNED], dout[OWNED];
            [[unroll]] for (uint i = 0; i < OWNED; i++) {
                q[i] = q_tile[(u + i * WG) * ROW + j];
                dout[i] = do_tile[(u + i * WG) * ROW + j];
            }
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
                vec4 k = k_tile[c * ROW + j], v = v_tile[c * ROW + j];
                [[unroll]] for (uint i = 0; i < OWNED; i++) {
                    qk[i * BLOCK_KV + c] += dot(q[i], k);
                    dov[i * BLOCK_KV + c] += dot(dout[i], v);
                }
            }
        }
        [[unroll]] for (uint i = 0; i < OWNED; i++)
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++)
                attn_grad(kv0 + c <= q0 + u + i * WG, lse[i], delta[i], qk[i * BLOCK_KV + c],
                          dov[i * BLOCK_KV + c]);
        [[dont_unroll]] for (uint j = 0; j < DV; j++) {
            vec4 dq[OWNED];
            [[unroll]] for (uint i = 0; i < OWNED; i++) dq[i] = dq_tile[(u + i * WG) * ROW + j];
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
                vec4 k = k_tile[c * ROW + j];
                [[unroll]] for (uint i = 0; i < OWNED; i++) dq[i] += dov[i * BLOCK_KV + c] * k;
            }
            [[unroll]] for (uint i = 0; i < OWNED; i++) dq_tile[(u + i * WG) * ROW + j] = dq[i];
        }
    }

    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = u + i * WG;
        if (q0 + r < pc.seq) ATTN_STORE_ROW(pc.dq, dq_tile, r, pc.q_heads, h, b, q0 + r, pc.scale);
    }
}
