#version 460
#extension GL_GOOGLE_include_directive : require
// Attention backward, dk and dv, GPU form (attention_lanes.glsl): the math
// of attention_bwd_dkdv.comp, one workgroup per (key block, KV head,
// sequence) walking every query head of its group and every query block at
// or after the key block (dk and dv sum over the group in a fixed order, no
// atomics), with LANES invocations per key row. Per query block:
//   1. lane t: k . q and v . dout of its key rows against query rows
//      r = t, t + LANES, ..., turned into P and dS (attention_bwd.glsl), to
//      p_tile and ds_tile;
//   2. lane t: dv[:, j] += sum_r P[r] dout[r, j] and
//      dk[:, j] += sum_r dS[r] q[r, j] for its columns j.
// variants: attention_bwd_dkdv_lanes attention_bwd_dkdv_lanes_bf16=ELEM_BF16 attention_bwd_dkdv_lanes_f16=ELEM_F16
#include "lws.glsl"
#include "attention_bwd.glsl"
#include "attention_lanes.glsl"

const uint OWNED = BLOCK_KV / GROUPS; // key rows per row group
const uint QUERIES = BLOCK_Q / LANES; // query rows per lane in a block
const uint S_ROW = BLOCK_Q + LANES;   // p_tile, ds_tile row stride: rows of a warp in different banks

shared vec4 q_tile[BLOCK_Q * ROW];      // (BLOCK_Q, head_dim)
shared vec4 do_tile[BLOCK_Q * ROW];     // (BLOCK_Q, head_dim)
shared float lse_tile[BLOCK_Q];
shared float delta_tile[BLOCK_Q];
shared vec4 k_tile[BLOCK_KV * ROW];     // (BLOCK_KV, head_dim)
shared vec4 v_tile[BLOCK_KV * ROW];     // (BLOCK_KV, head_dim)
shared float p_tile[BLOCK_KV * S_ROW];  // (BLOCK_KV, BLOCK_Q) P
shared float ds_tile[BLOCK_KV * S_ROW]; // (BLOCK_KV, BLOCK_Q) dS

void main() {
    uint g = gl_LocalInvocationIndex / LANES, t = gl_LocalInvocationIndex % LANES;
    uint kv0 = gl_WorkGroupID.x * BLOCK_KV;
    uint kvh = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint group = pc.q_heads / pc.kv_heads;

    ATTN_LOAD_TILE(k_tile, pc.k, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
    ATTN_LOAD_TILE(v_tile, pc.v, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
    vec4 dk[OWNED * ACC], dv[OWNED * ACC]; // columns t + a * LANES
    [[unroll]] for (uint e = 0; e < OWNED * ACC; e++) dk[e] = dv[e] = vec4(0.0);

    for (uint h = kvh * group; h < (kvh + 1) * group; h++) {
        // Query blocks that end before kv0 see none of these keys.
        for (uint q0 = kv0 / BLOCK_Q * BLOCK_Q; q0 < pc.seq; q0 += BLOCK_Q) {
            barrier(); // the previous block has finished reading the query tiles, P and dS
            ATTN_LOAD_TILE(q_tile, pc.q, pc.q_heads, h, b, q0, BLOCK_Q);
            ATTN_LOAD_TILE(do_tile, pc.dout, pc.q_heads, h, b, q0, BLOCK_Q);
            ATTN_LOAD_ROWS(lse_tile, pc.lse, b, h, q0, BLOCK_Q);
            ATTN_LOAD_ROWS(delta_tile, pc.delta, b, h, q0, BLOCK_Q);
            barrier();

            // (OWNED, QUERIES): the dot products, then P and dS
            float qk[OWNED * QUERIES], dov[OWNED * QUERIES];
            [[unroll]] for (uint e = 0; e < OWNED * QUERIES; e++) qk[e] = dov[e] = 0.0;
            [[dont_unroll]] for (uint j = 0; j < DV; j++) {
                [[unroll]] for (uint i = 0; i < OWNED; i++) {
                    uint c = g + i * GROUPS;
                    vec4 k = k_tile[c * ROW + j], v = v_tile[c * ROW + j];
                    [[unroll]] for (uint x = 0; x < QUERIES; x++) {
                        uint r = t + x * LANES;
                        qk[i * QUERIES + x] += dot(k, q_tile[r * ROW + j]);
                        dov[i * QUERIES + x] += dot(v, do_tile[r * ROW + j]);
                    }
                }
            }
            // Query rows past seq see no key; keys past seq are never seen.
            [[unroll]] for (uint i = 0; i < OWNED; i++) {
                uint c = g + i * GROUPS;
                [[unroll]] for (uint x = 0; x < QUERIES; x++) {
                    uint r = t + x * LANES;
                    attn_grad(kv0 + c <= q0 + r && q0 + r < pc.seq, lse_tile[r], delta_tile[r],
                              qk[i * QUERIES + x], dov[i * QUERIES + x]);
                    p_tile[c * S_ROW + r] = qk[i * QUERIES + x];
                    ds_tile[c * S_ROW + r] = dov[i * QUERIES + x];
                }
            }
            barrier();
            [[dont_unroll]] for (uint r = 0; r < BLOCK_Q; r++) {
                [[unroll]] for (uint i = 0; i < OWNED; i++) {
                    uint c = g + i * GROUPS;
                    float p = p_tile[c * S_ROW + r], ds = ds_tile[c * S_ROW + r];
                    [[unroll]] for (uint a = 0; a < ACC; a++) {
                        uint j = t + a * LANES;
                        if (j < DV) {
                            dv[i * ACC + a] += p * do_tile[r * ROW + j];
                            dk[i * ACC + a] += ds * q_tile[r * ROW + j];
                        }
                    }
                }
            }
        }
    }

    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint c = g + i * GROUPS;
        if (kv0 + c >= pc.seq) continue;
        [[unroll]] for (uint a = 0; a < ACC; a++) {
            uint j = t + a * LANES;
            if (j >= DV) continue;
            ELEM4_STORE(pc.dk, attn_index(b, kv0 + c, pc.kv_heads, kvh, j), dk[i * ACC + a] * pc.scale);
            ELEM4_STORE(pc.dv, attn_index(b, kv0 + c, pc.kv_heads, kvh, j), dv[i * ACC + a]);
        }
    }
}
