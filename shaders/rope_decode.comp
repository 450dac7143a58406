#version 460
#extension GL_GOOGLE_include_directive : require
// One new token's heads, written to row `pos` of y, where pos is read from a
// device buffer: the decode path records its commands once and replays them
// at every position. With rotate = 1 the heads are rotated by RoPE at pos
// (rotate-half pairing, the angle of rope.comp to the bit):
//   y[pos, h, j]        = x[h, j] cos - x[h, j + half] sin
//   y[pos, h, j + half] = x[h, j + half] cos + x[h, j] sin
// with rotate = 0 they are copied as they are (the value row of a KV cache).
// x (heads, head_dim); y (rows, row_stride) with row_stride 0 for an in-place
// rotation of x (y == x: each pair is read, then written, by one invocation).
// The row written is min(pos, max_row), so a wrong position never writes out
// of bounds; the angle is that of pos.
#include "lws.glsl"
#include "rope.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Floats y;
    Floats x;
    Uints pos; // pos.v[0]: the position of the token
    uint heads;
    uint head_dim;
    uint row_stride; // floats between rows of y
    uint max_row;
    float ratio_hi; // r = theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
    uint rotate;
} pc;

void main() {
    uint i = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    uint p = pc.pos.v[0];
    uint row = min(p, pc.max_row) * pc.row_stride;
    if (pc.rotate == 0) {
        // One invocation per element.
        if (i < pc.heads * pc.head_dim) pc.y.v[row + i] = pc.x.v[i];
        return;
    }
    // One invocation per pair j: the angle depends only on (pos, j), so it
    // is computed once and applied to every head.
    uint half_dim = pc.head_dim / 2;
    if (i >= half_dim) return;
    vec2 sc = rope_angle_sincos(p, i, pc.ratio_hi, pc.ratio_lo);
    float s = sc.x, c = sc.y;
    for (uint h = 0; h < pc.heads; h++) {
        uint at = h * pc.head_dim + i;
        float x0 = pc.x.v[at], x1 = pc.x.v[at + half_dim];
        pc.y.v[row + at] = x0 * c - x1 * s;
        pc.y.v[row + at + half_dim] = x1 * c + x0 * s;
    }
}
