#version 460
#extension GL_GOOGLE_include_directive : require
// Causal GQA attention of one new query row per head against a KV cache:
// the decode step at position p = pos.v[0] (read from the device, so the same
// recorded dispatch serves every position) sees keys 0..p.
//   o[h] = sum_{j <= p} softmax_j(scale * q[h] . k[j, kvh]) v[j, kvh],  kvh = h / group
// q, o (q_heads, head_dim); k, v caches (max_seq, kv_heads * head_dim), row p
// already holding the new token's key and value.
//
// One workgroup per query head walks the keys in chunks of CHUNK: the
// invocations compute the chunk's scores (one key each, the whole dot
// product) into shared memory; then invocation d < head_dim owns output
// element d and folds the chunk in with an online softmax (running max m, sum
// l, accumulator acc), rescaling by exp(m_old - m_new) when the max grows.
// Every invocation walks the same scores in the same order, so m and l agree
// across the workgroup, and no sum depends on the subgroup size.
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CHUNK = 128; // keys per step
const uint WG = gl_WorkGroupSize.x;             // >= head_dim (the host ensures it)
const uint MAX_HEAD_DIM = 128;

// The running max starts at this finite value, so exp(m_old - m_new) of the
// first chunk is exp(-huge) = 0 and no -inf - -inf (NaN) can arise.
const float MASKED = -1.0e30;

layout(push_constant, scalar) uniform Push {
    Floats o;
    Floats q;
    Floats k;
    Floats v;
    Uints pos;
    uint q_heads;
    uint kv_heads;
    uint head_dim;
    uint max_seq;
    float scale;
} pc;

shared float q_row[MAX_HEAD_DIM];
shared float scores[CHUNK];

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint h = gl_WorkGroupID.x;
    uint hd = pc.head_dim;
    uint kvh = h / (pc.q_heads / pc.kv_heads);
    uint row_width = pc.kv_heads * hd;   // floats per cache row
    uint head_offset = kvh * hd;         // of this KV head within a row
    uint n_keys = min(pc.pos.v[0], pc.max_seq - 1) + 1;

    for (uint d = tid; d < hd; d += WG) q_row[d] = pc.q.v[h * hd + d];
    barrier();

    float m = MASKED, l = 0.0, acc = 0.0;
    for (uint c0 = 0; c0 < n_keys; c0 += CHUNK) {
        uint count = min(CHUNK, n_keys - c0);
        for (uint c = tid; c < count; c += WG) {
            uint at = (c0 + c) * row_width + head_offset;
            float s = 0.0;
            for (uint d = 0; d < hd; d++) s += q_row[d] * pc.k.v[at + d];
            scores[c] = s * pc.scale;
        }
        barrier();
        if (tid < hd) {
            float m_new = m;
            for (uint c = 0; c < count; c++) m_new = max(m_new, scores[c]);
            float alpha = exp(m - m_new);
            l *= alpha;
            acc *= alpha;
            uint at = c0 * row_width + head_offset + tid;
            for (uint c = 0; c < count; c++) {
                float p = exp(scores[c] - m_new);
                l += p;
                acc += p * pc.v.v[at + c * row_width];
            }
            m = m_new;
        }
        barrier(); // every invocation is done with the scores before the next chunk
    }
    // Key 0 is always visible, so l >= 1.
    if (tid < hd) pc.o.v[h * hd + tid] = acc / l;
}
