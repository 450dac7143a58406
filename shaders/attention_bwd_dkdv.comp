#version 460
#extension GL_GOOGLE_include_directive : require
// Attention backward, dk and dv: one workgroup per (key block, KV head,
// sequence) walks every query head of its group and every query block at or
// after the key block, so dk and dv sum over the group in a fixed order (no
// atomics). Invocation u owns key rows u, u + WG, ... (OWNED of them): their
// k, v, dk and dv rows in shared memory, their P and dS against the query
// block in registers. See attention_bwd.glsl for the math.
// variants: attention_bwd_dkdv attention_bwd_dkdv_bf16=ELEM_BF16 attention_bwd_dkdv_f16=ELEM_F16
#include "lws.glsl"
#include "attention_bwd.glsl"

shared vec4 q_tile[BLOCK_Q * ROW];   // (BLOCK_Q, head_dim)
shared vec4 do_tile[BLOCK_Q * ROW];  // (BLOCK_Q, head_dim)
shared float lse_tile[BLOCK_Q];
shared float delta_tile[BLOCK_Q];
shared vec4 k_tile[BLOCK_KV * ROW];  // (BLOCK_KV, head_dim), rows owned as above
shared vec4 v_tile[BLOCK_KV * ROW];  // (BLOCK_KV, head_dim), likewise
shared vec4 dk_tile[BLOCK_KV * ROW]; // (BLOCK_KV, head_dim), likewise
shared vec4 dv_tile[BLOCK_KV * ROW]; // (BLOCK_KV, head_dim), likewise

const uint OWNED = BLOCK_KV / WG; // key rows per invocation

void main() {
    uint u = gl_LocalInvocationIndex;
    uint kv0 = gl_WorkGroupID.x * BLOCK_KV;
    uint kvh = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint group = pc.q_heads / pc.kv_heads;

    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint c = u + i * WG;
        ATTN_LOAD_ROW(k_tile, c, pc.k, pc.kv_heads, kvh, b, kv0 + c);
        ATTN_LOAD_ROW(v_tile, c, pc.v, pc.kv_heads, kvh, b, kv0 + c);
        ATTN_ZERO_ROW(dk_tile, c);
        ATTN_ZERO_ROW(dv_tile, c);
    }

    for (uint h = kvh * group; h < (kvh + 1) * group; h++) {
        // Query blocks that end before kv0 see none of these keys.
        for (uint q0 = kv0 / BLOCK_Q * BLOCK_Q; q0 < pc.seq; q0 += BLOCK_Q) {
            barrier(); // the previous block has finished reading the query tiles
            ATTN_LOAD_TILE(q_tile, pc.q, pc.q_heads, h, b, q0, BLOCK_Q);
            ATTN_LOAD_TILE(do_tile, pc.dout, pc.q_heads, h, b, q0, BLOCK_Q);
            ATTN_LOAD_ROWS(lse_tile, pc.lse, b, h, q0, BLOCK_Q);
            ATTN_LOAD_ROWS(delta_tile, pc.delta, b, h, q0, BLOCK_Q);
            barrier();

            // (OWNED, BLOCK_Q): the dot products, then P and dS
            float qk[OWNED * BLOCK_Q], dov[OWNED * BLOCK_Q];
            [[unroll]] for (uint e = 0; e < OWNED * BLOCK_Q; e++) qk[e] = dov[e] = 0.0;
            [[dont_unroll]] for (uint j = 0; j < DV; j++) {
                vec4 k[OWNED], v[OWNED];
                [[unroll]] for (uint i = 0; i < OWNED; i++) {
                    k[i] = k_tile[(u + i * WG) * ROW + j];
                    v[i] = v_tile[(u + i * WG) * ROW + j];
                }
                [[unroll]] for (uint r = 0; r < BLOCK_Q; r++) {
                    vec4 q = q_tile[r * ROW + j], dout = do_tile[r * ROW + j];
                    [[unroll]] for (uint i = 0; i < OWNED; i++) {
                        qk[i * BLOCK_Q + r] += dot(k[i], q);
                        dov[i * BLOCK_Q + r] += dot(v[i], dout);
                    }
                }
            }
            // Query rows past seq see no key; keys past seq are never seen.
            [[unroll]] for (uint i = 0; i < OWNED; i++)
                [[unroll]] for (uint r = 0; r < BLOCK_Q; r++)
                    attn_grad(kv0 + u + i * WG <= q0 + r && q0 + r < pc.seq, lse_tile[r],
                              delta_tile[r], qk[i * BLOCK_Q + r], dov[i * BLOCK_Q + r]);
            [[dont_unroll]] for (uint j = 0; j < DV; j++) {
                vec4 dk[OWNED], dv[OWNED];
                [[unroll]] for (uint i = 0; i < OWNED; i++) {
                    dk[i] = dk_tile[(u + i * WG) * ROW + j];
                    dv[i] = dv_tile[(u + i * WG) * ROW + j];
                }
                [[unroll]] for (uint r = 0; r < BLOCK_Q; r++) {
                    vec4 q = q_tile[r * ROW + j], dout = do_tile[r * ROW + j];
                    [[unroll]] for (uint i = 0; i < OWNED; i++) {
                        dv[i] += qk[i * BLOCK_Q + r] * dout;
                        dk[i] += dov[i * BLOCK_Q + r] * q;
                    }
                }
                [[unroll]] for (uint i = 0; i < OWNED; i++) {
                    dk_tile[(u + i * WG) * ROW + j] = dk[i];
                    dv_tile[(u + i * WG) * ROW + j] = dv[i];
                }
            }
        }
    }

    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint c = u + i * WG;
        if (kv0 + c < pc.seq) {
            ATTN_STORE_ROW(pc.dk, dk_tile, c, pc.kv_heads, kvh, b, kv0 + c, pc.scale);
            ATTN_STORE_ROW(pc.dv, dv_tile, c, pc.kv_heads, kvh, b, kv0 + c, 1.0);
        }
    }
}
