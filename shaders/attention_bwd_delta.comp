#version 460
#extension GL_GOOGLE_include_directive : require
// First pass of the attention backward: delta[b, h, i] = dout_i . o_i over
// head h's columns (the row sum of dO * O that dS = P * (dP - delta) needs).
// One invocation per (sequence, query head, row), summing in a fixed order.
#include "lws.glsl"
#include "attention.glsl"

void main() {
    uint row = gl_GlobalInvocationID.x; // ((b * q_heads) + h) * seq + i
    if (row >= pc.batch * pc.q_heads * pc.seq) return;
    uint i = row % pc.seq, h = (row / pc.seq) % pc.q_heads, b = row / (pc.seq * pc.q_heads);
    uint at = attn_index(b, i, pc.q_heads, h, 0);
    float sum = 0.0;
    for (uint d = 0; d < DV; d++) sum += dot(pc.dout.v[at + d], pc.o.v[at + d]);
    pc.delta.v[row] = sum;
}
