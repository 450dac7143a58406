#version 460
#extension GL_GOOGLE_include_directive : require
// Causal GQA attention forward, FlashAttention-2 style: one workgroup per
// (query block, query head, sequence) walks the key/value blocks at or before
// its last query row, keeping a running max m, sum l and output accumulator
// per row (online softmax), so no seq x seq matrix exists.
//   o[i]   = sum_j softmax_j(scale * q_i . k_j) v_j   over j <= i
//   lse[i] = m + log(l)                               (for the backward)
// Invocation u owns query rows u, u + WG, ... (OWNED of them): their q and
// accumulator rows in shared memory, their scores against the key block in
// registers.
// variants: attention_fwd attention_fwd_bf16=ELEM_BF16 attention_fwd_f16=ELEM_F16
#include "lws.glsl"
#include "attention.glsl"

shared vec4 q_tile[BLOCK_Q * ROW];   // (BLOCK_Q, head_dim), rows owned as above
shared vec4 acc_tile[BLOCK_Q * ROW]; // (BLOCK_Q, head_dim), unnormalised output rows
shared vec4 k_tile[BLOCK_KV * ROW];  // (BLOCK_KV, head_dim)
shared vec4 v_tile[BLOCK_KV * ROW];  // (BLOCK_KV, head_dim)

const uint OWNED = BLOCK_Q / WG; // query rows per invocation

void main() {
    uint u = gl_LocalInvocationIndex;
    uint q0 = gl_WorkGroupID.x * BLOCK_Q;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint kvh = h / (pc.q_heads / pc.kv_heads);

    float m[OWNED], l[OWNED];
    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = u + i * WG;
        ATTN_LOAD_ROW(q_tile, r, pc.q, pc.q_heads, h, b, q0 + r);
        ATTN_ZERO_ROW(acc_tile, r);
        m[i] = MASKED;
        l[i] = 0.0;
    }

    // Keys after the block's last query row are masked for all of its rows.
    uint kv_end = min(pc.seq, q0 + BLOCK_Q);
    for (uint kv0 = 0; kv0 < kv_end; kv0 += BLOCK_KV) {
        barrier(); // the previous block has finished reading k_tile, v_tile
        ATTN_LOAD_TILE(k_tile, pc.k, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        ATTN_LOAD_TILE(v_tile, pc.v, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        barrier();

        float s[OWNED * BLOCK_KV]; // q_i . k_c, then the probabilities
        [[unroll]] for (uint e = 0; e < OWNED * BLOCK_KV; e++) s[e] = 0.0;
        [[dont_unroll]] for (uint j = 0; j < DV; j++) {
            vec4 q[OWNED];
            [[unroll]] for (uint i = 0; i < OWNED; i++) q[i] = q_tile[(u + i * WG) * ROW + j];
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
                vec4 k = k_tile[c * ROW + j];
                [[unroll]] for (uint i = 0; i < OWNED; i++) s[i * BLOCK_KV + c] += dot(q[i], k);
            }
        }

        float alpha[OWNED];
        [[unroll]] for (uint i = 0; i < OWNED; i++) {
            uint q_idx = q0 + u + i * WG;
            float m_new = m[i];
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++)
                if (kv0 + c <= q_idx) m_new = max(m_new, s[i * BLOCK_KV + c] * pc.scale);
            // While no key was visible m = m_new = MASKED and alpha = 1
            // rescales l = 0 and acc = 0; the first visible key gives
            // alpha = exp(-huge) = 0.
            alpha[i] = exp(m[i] - m_new);
            l[i] *= alpha[i];
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
                float p = kv0 + c <= q_idx ? exp(s[i * BLOCK_KV + c] * pc.scale - m_new) : 0.0;
                s[i * BLOCK_KV + c] = p;
                l[i] += p;
            }
            m[i] = m_new;
        }
        [[dont_unroll]] for (uint j = 0; j < DV; j++) {
            vec4 acc[OWNED];
            [[unroll]] for (uint i = 0; i < OWNED; i++)
                acc[i] = acc_tile[(u + i * WG) * ROW + j] * alpha[i];
            [[unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
                vec4 v = v_tile[c * ROW + j];
                [[unroll]] for (uint i = 0; i < OWNED; i++) acc[i] += s[i * BLOCK_KV + c] * v;
            }
            [[unroll]] for (uint i = 0; i < OWNED; i++) acc_tile[(u + i * WG) * ROW + j] = acc[i];
        }
    }

    // Key 0 is visible to every row, so l >= 1 here.
    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = u + i * WG;
        if (q0 + r < pc.seq) {
            ATTN_STORE_ROW(pc.o, acc_tile, r, pc.q_heads, h, b, q0 + r, 1.0 / l[i]);
            pc.lse.v[attn_row_index(b, h, q0 + r)] = m[i] + log(l[i]);
        }
    }
}
