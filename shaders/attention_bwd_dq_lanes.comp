#version 460
#extension GL_GOOGLE_include_directive : require
// Attention backward, dq, GPU form (attention_lanes.glsl): the math of
// attention_bwd_dq.comp, one workgroup per (query block, query head,
// sequence), with LANES invocations per query row. Per key block:
//   1. lane t: q . k and dout . v of its rows against keys c = t, t + LANES,
//      ..., turned into dS (attention_bwd.glsl), to ds_tile;
//   2. lane t: dq[:, j] += sum_c dS[c] k[c, j] for its columns j.
// No reduction across lanes: lse comes from the forward, and each lane of a
// row computes the row's delta (dout . o) whole, in attn_delta's order; lane
// 0 writes it to pc.delta for the dk/dv kernel.
// variants: attention_bwd_dq_lanes attention_bwd_dq_lanes_bf16=ELEM_BF16 attention_bwd_dq_lanes_f16=ELEM_F16
#include "lws.glsl"
#include "attention_bwd.glsl"
#include "attention_lanes.glsl"

const uint OWNED = BLOCK_Q / GROUPS; // query rows per row group
const uint KEYS = BLOCK_KV / LANES;  // keys per lane in a block
const uint S_ROW = BLOCK_KV + LANES; // ds_tile row stride: rows of a warp in different banks

shared vec4 q_tile[BLOCK_Q * ROW];    // (BLOCK_Q, head_dim)
shared vec4 do_tile[BLOCK_Q * ROW];   // (BLOCK_Q, head_dim)
shared vec4 k_tile[BLOCK_KV * ROW];   // (BLOCK_KV, head_dim)
shared vec4 v_tile[BLOCK_KV * ROW];   // (BLOCK_KV, head_dim)
shared float ds_tile[BLOCK_Q * S_ROW]; // (BLOCK_Q, BLOCK_KV) dS

void main() {
    uint g = gl_LocalInvocationIndex / LANES, t = gl_LocalInvocationIndex % LANES;
    uint q0 = gl_WorkGroupID.x * BLOCK_Q;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint kvh = h / (pc.q_heads / pc.kv_heads);

    ATTN_LOAD_TILE(q_tile, pc.q, pc.q_heads, h, b, q0, BLOCK_Q);
    ATTN_LOAD_TILE(do_tile, pc.dout, pc.q_heads, h, b, q0, BLOCK_Q);
    float lse[OWNED], delta[OWNED];
    vec4 dq[OWNED * ACC]; // columns t + a * LANES
    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = g + i * GROUPS;
        lse[i] = delta[i] = 0.0;
        if (q0 + r < pc.seq) {
            uint row = attn_row_index(b, h, q0 + r);
            lse[i] = pc.lse.v[row];
            delta[i] = attn_delta(b, h, q0 + r); // every lane, the same sum
            if (t == 0) pc.delta.v[row] = delta[i];
        }
        [[unroll]] for (uint a = 0; a < ACC; a++) dq[i * ACC + a] = vec4(0.0);
    }

    uint kv_end = min(pc.seq, q0 + BLOCK_Q);
    for (uint kv0 = 0; kv0 < kv_end; kv0 += BLOCK_KV) {
        barrier(); // the previous block has finished reading k_tile, v_tile, ds_tile
        ATTN_LOAD_TILE(k_tile, pc.k, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        ATTN_LOAD_TILE(v_tile, pc.v, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        barrier();

        // (OWNED, KEYS): the dot products, then P and dS
        float qk[OWNED * KEYS], dov[OWNED * KEYS];
        [[unroll]] for (uint e = 0; e < OWNED * KEYS; e++) qk[e] = dov[e] = 0.0;
        [[dont_unroll]] for (uint j = 0; j < DV; j++) {
            [[unroll]] for (uint i = 0; i < OWNED; i++) {
                uint r = g + i * GROUPS;
                vec4 q = q_tile[r * ROW + j], dout = do_tile[r * ROW + j];
                [[unroll]] for (uint c = 0; c < KEYS; c++) {
                    uint key = t + c * LANES;
                    qk[i * KEYS + c] += dot(q, k_tile[key * ROW + j]);
                    dov[i * KEYS + c] += dot(dout, v_tile[key * ROW + j]);
                }
            }
        }
        [[unroll]] for (uint i = 0; i < OWNED; i++) {
            uint r = g + i * GROUPS;
            [[unroll]] for (uint c = 0; c < KEYS; c++) {
                uint key = t + c * LANES;
                attn_grad(kv0 + key <= q0 + r, lse[i], delta[i], qk[i * KEYS + c],
                          dov[i * KEYS + c]);
                ds_tile[r * S_ROW + key] = dov[i * KEYS + c];
            }
        }
        barrier();
        [[dont_unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
            [[unroll]] for (uint i = 0; i < OWNED; i++) {
                float ds = ds_tile[(g + i * GROUPS) * S_ROW + c];
                [[unroll]] for (uint a = 0; a < ACC; a++)
                    if (t + a * LANES < DV) dq[i * ACC + a] += ds * k_tile[c * ROW + t + a * LANES];
            }
        }
    }

    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = g + i * GROUPS;
        if (q0 + r >= pc.seq) continue;
        [[unroll]] for (uint a = 0; a < ACC; a++) {
            uint j = t + a * LANES;
            if (j < DV) ELEM4_STORE(pc.dq, attn_index(b, q0 + r, pc.q_heads, h, j), dq[i * ACC + a] * pc.scale);
        }
    }
}
