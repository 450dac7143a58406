#version 460
#extension GL_GOOGLE_include_directive : require
// RMSNorm backward. With g = dy * w and s = rstd[r] (ds/dx_k = -s^3 x_k / cols):
//   dx[r, k] = s g_k - x_k s^3 (sum_j g_j x_j) / cols
//   dw[j]   += sum over rows of dy[r, j] x[r, j] s
// Two passes, so dw is summed in a fixed order (bit-identical between runs):
//   PASS 0: workgroup b owns rows b*rows_per_block ..; for each row in order it
//           writes (or adds to) dx and adds that row's dw term into
//           scratch[b, :] (blocks, cols); invocation i owns columns i, i+WG, ..
//           throughout, so each scratch element has one writer, in row order.
//   PASS 1: invocation c sums scratch[0.., c] over the blocks in order and adds
//           the sum to dw[c] (dw accumulates over micro-batches).
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint PASS = 0;

#include "rmsnorm.glsl"

layout(push_constant, scalar) uniform Push {
    Floats dx;      // (rows, cols)
    Floats dw;      // (cols)
    Floats dy;      // (rows, cols)
    Floats x;       // (rows, cols)
    Floats w;       // (cols)
    Floats rstd;    // (rows)
    Floats scratch; // (blocks, cols)
    uint rows;
    uint cols;
    uint rows_per_block;
    uint blocks;
    uint accumulate_dx;
} pc;

void main() {
    uint lid = gl_LocalInvocationID.x;
    if (PASS == 1) {
        uint c = gl_WorkGroupID.x * gl_WorkGroupSize.x + lid;
        if (c >= pc.cols) return;
        float sum = 0.0;
        for (uint b = 0; b < pc.blocks; b++) sum += pc.scratch.v[b * pc.cols + c];
        pc.dw.v[c] += sum;
        return;
    }
    uint block = gl_WorkGroupID.x;
    uint first = block * pc.rows_per_block;
    uint last = min(first + pc.rows_per_block, pc.rows);
    uint partial = block * pc.cols;
    for (uint row = first; row < last; row++) {
        uint base = row * pc.cols;
        float s = pc.rstd.v[row];
        float dot = 0.0;
        for (uint c = lid; c < pc.cols; c += gl_WorkGroupSize.x)
            dot += pc.dy.v[base + c] * pc.w.v[c] * pc.x.v[base + c];
        float coef = s * s * s * rmsnorm_workgroup_sum(dot) / float(pc.cols);
        for (uint c = lid; c < pc.cols; c += gl_WorkGroupSize.x) {
            float dy = pc.dy.v[base + c], xv = pc.x.v[base + c];
            float d = s * dy * pc.w.v[c] - xv * coef;
            float term = dy * xv * s;
            pc.scratch.v[partial + c] = row == first ? term : pc.scratch.v[partial + c] + term;
            pc.dx.v[base + c] = pc.accumulate_dx != 0 ? pc.dx.v[base + c] + d : d;
        }
    }
}
