#version 460
#extension GL_GOOGLE_include_directive : require
// First pass of the attention backward: delta[b, h, i] = dout_i . o_i over
// head h's columns (the row sum of dO * O that dS = P * (dP - delta) needs).
// One invocation per (sequence, query head, row), summing in a fixed order.
// variants: attention_bwd_delta attention_bwd_delta_bf16=ELEM_BF16 attention_bwd_delta_f16=ELEM_F16
#include "lws.glsl"
#include "attention.glsl"

void main() {
    uint row = gl_GlobalInvocationID.x; // ((b * q_heads) + h) * seq + i
    if (row >= pc.batch * pc.q_heads * pc.seq) return;
    uint i = row % pc.seq, h = (row / pc.seq) % pc.q_heads, b = row / (pc.seq * pc.q_heads);
    uint at = attn_index(b, i, pc.q_heads, h, 0);
    float sum = 0.0;
    for (uint d = 0; d < DV; d++) sum += dot(ELEM4_LOAD(pc.dout, at + d), ELEM4_LOAD(pc.o, at + d));
    pc.delta.v[row] = sum;
}
