#version 460
#extension GL_GOOGLE_include_directive : require
// Causal GQA attention forward, GPU form (attention_lanes.glsl): the math of
// attention_fwd.comp, one workgroup per (query block, query head, sequence),
// with LANES invocations per query row. Per key block:
//   1. lane t: scores of its rows against keys c = t, t + LANES, ...;
//      its partial max over them to `part`;
//   2. every lane of a row: the row max from the LANES partials (fixed
//      order), the rescale alpha of its accumulator columns and of its
//      partial sum l, its probabilities to p_tile;
//   3. lane t: acc[:, j] += sum_c p[c] v[c, j] for its columns j.
// At the end the LANES partial sums l make the row's sum (fixed order).
// variants: attention_fwd_lanes attention_fwd_lanes_bf16=ELEM_BF16 attention_fwd_lanes_f16=ELEM_F16
#include "lws.glsl"
#include "attention.glsl"
#include "attention_lanes.glsl"

const uint OWNED = BLOCK_Q / GROUPS;     // query rows per row group
const uint KEYS = BLOCK_KV / LANES;      // keys per lane in a block
const uint P_ROW = BLOCK_KV + LANES;     // p_tile row stride: rows of a warp in different banks

shared vec4 q_tile[BLOCK_Q * ROW];       // (BLOCK_Q, head_dim)
shared vec4 k_tile[BLOCK_KV * ROW];      // (BLOCK_KV, head_dim)
shared vec4 v_tile[BLOCK_KV * ROW];      // (BLOCK_KV, head_dim)
shared float p_tile[BLOCK_Q * P_ROW];    // (BLOCK_Q, BLOCK_KV) probabilities
shared float part[BLOCK_Q * LANES];      // (BLOCK_Q, LANES) partial max, then sum

void main() {
    uint g = gl_LocalInvocationIndex / LANES, t = gl_LocalInvocationIndex % LANES;
    uint q0 = gl_WorkGroupID.x * BLOCK_Q;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    uint kvh = h / (pc.q_heads / pc.kv_heads);

    ATTN_LOAD_TILE(q_tile, pc.q, pc.q_heads, h, b, q0, BLOCK_Q);
    float m[OWNED], l[OWNED]; // running max (same in every lane), partial sum
    vec4 acc[OWNED * ACC];    // unnormalised output, columns t + a * LANES
    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        m[i] = MASKED;
        l[i] = 0.0;
        [[unroll]] for (uint a = 0; a < ACC; a++) acc[i * ACC + a] = vec4(0.0);
    }

    // Keys after the block's last query row are masked for all of its rows.
    uint kv_end = min(pc.seq, q0 + BLOCK_Q);
    for (uint kv0 = 0; kv0 < kv_end; kv0 += BLOCK_KV) {
        barrier(); // the previous block has finished reading k_tile, v_tile, p_tile
        ATTN_LOAD_TILE(k_tile, pc.k, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        ATTN_LOAD_TILE(v_tile, pc.v, pc.kv_heads, kvh, b, kv0, BLOCK_KV);
        barrier();

        float s[OWNED * KEYS]; // q_r . k_(t + c * LANES)
        [[unroll]] for (uint e = 0; e < OWNED * KEYS; e++) s[e] = 0.0;
        [[dont_unroll]] for (uint j = 0; j < DV; j++) {
            [[unroll]] for (uint i = 0; i < OWNED; i++) {
                vec4 q = q_tile[(g + i * GROUPS) * ROW + j];
                [[unroll]] for (uint c = 0; c < KEYS; c++)
                    s[i * KEYS + c] += dot(q, k_tile[(t + c * LANES) * ROW + j]);
            }
        }
        [[unroll]] for (uint i = 0; i < OWNED; i++) {
            uint r = g + i * GROUPS;
            float m_lane = MASKED;
            [[unroll]] for (uint c = 0; c < KEYS; c++)
                if (kv0 + t + c * LANES <= q0 + r) m_lane = max(m_lane, s[i * KEYS + c] * pc.scale);
            part[r * LANES + t] = m_lane;
        }
        barrier();
        [[unroll]] for (uint i = 0; i < OWNED; i++) {
            uint r = g + i * GROUPS;
            float m_new = m[i];
            for (uint x = 0; x < LANES; x++) m_new = max(m_new, part[r * LANES + x]);
            // While no key was visible m = m_new = MASKED and alpha = 1
            // rescales l = 0 and acc = 0; the first visible key gives
            // alpha = exp(-huge) = 0.
            float alpha = exp(m[i] - m_new);
            l[i] *= alpha;
            [[unroll]] for (uint a = 0; a < ACC; a++) acc[i * ACC + a] *= alpha;
            [[unroll]] for (uint c = 0; c < KEYS; c++) {
                uint key = t + c * LANES;
                float p = kv0 + key <= q0 + r ? exp(s[i * KEYS + c] * pc.scale - m_new) : 0.0;
                p_tile[r * P_ROW + key] = p;
                l[i] += p;
            }
            m[i] = m_new;
        }
        barrier();
        [[dont_unroll]] for (uint c = 0; c < BLOCK_KV; c++) {
            [[unroll]] for (uint i = 0; i < OWNED; i++) {
                float p = p_tile[(g + i * GROUPS) * P_ROW + c];
                [[unroll]] for (uint a = 0; a < ACC; a++)
                    if (t + a * LANES < DV) acc[i * ACC + a] += p * v_tile[c * ROW + t + a * LANES];
            }
        }
    }

    // The loop's last barrier follows every read of the partial maxima.
    [[unroll]] for (uint i = 0; i < OWNED; i++) part[(g + i * GROUPS) * LANES + t] = l[i];
    barrier();
    // Key 0 is visible to every row, so the row's sum is >= 1 here.
    [[unroll]] for (uint i = 0; i < OWNED; i++) {
        uint r = g + i * GROUPS;
        if (q0 + r >= pc.seq) continue;
        float sum = 0.0;
        for (uint x = 0; x < LANES; x++) sum += part[r * LANES + x];
        [[unroll]] for (uint a = 0; a < ACC; a++) {
            uint j = t + a * LANES;
            if (j < DV) ELEM4_STORE(pc.o, attn_index(b, q0 + r, pc.q_heads, h, j), acc[i * ACC + a] / sum);
        }
        if (t == 0) pc.lse.v[attn_row_index(b, h, q0 + r)] = m[i] + log(sum);
    }
}
