#version 460
#extension GL_GOOGLE_include_directive : require
// RMSNorm backward. With g = dy * w and s = rstd[r] (ds/dx_k = -s^3 x_k / cols):
//   dx[r, k] = s g_k - x_k s^3 (sum_j g_j x_j) / cols
//   dw[j]   += sum over rows of dy[r, j] x[r, j] s
// Two passes, so dw is summed in a fixed order (bit-identical between runs):
//   PASS 0: workgroup b owns rows b*rows_per_block .. of which its row group
//           g (R = workgroup / ROW_THREADS groups) takes every R-th, in order;
//           it writes (or adds to) dx and sums its rows' dw terms into
//           scratch[b*R + g, :] (partials, cols). Invocation `lane` of a group
//           owns columns lane, lane + ROW_THREADS, ..., so each scratch
//           element has one writer, adding in row order.
//   PASS 1: invocation c sums scratch[0.., c] over the partials in order and
//           adds the sum to dw[c] (dw accumulates over micro-batches).
// dx, dy and x in fp32, or bf16 / fp16 storage; w, dw, rstd, scratch fp32.
// variants: rmsnorm_bwd rmsnorm_bwd_bf16=ELEM_BF16 rmsnorm_bwd_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint PASS = 0;

#include "rmsnorm.glsl"

layout(push_constant, scalar) uniform Push {
    Elems dx;       // (rows, cols)
    Floats dw;      // (cols)
    Elems dy;       // (rows, cols)
    Elems x;        // (rows, cols)
    Floats w;       // (cols)
    Floats rstd;    // (rows)
    Floats scratch; // (partials, cols)
    uint rows;
    uint cols;
    uint rows_per_block;
    uint partials;  // blocks * R
    uint accumulate_dx;
} pc;

void main() {
    uint lid = gl_LocalInvocationID.x;
    if (PASS == 1) {
        uint c = gl_WorkGroupID.x * gl_WorkGroupSize.x + lid;
        if (c >= pc.cols) return;
        float sum = 0.0;
        for (uint b = 0; b < pc.partials; b++) sum += pc.scratch.v[b * pc.cols + c];
        pc.dw.v[c] += sum;
        return;
    }
    const uint R = gl_WorkGroupSize.x / ROW_THREADS;
    uint lane = lid % ROW_THREADS, group = lid / ROW_THREADS;
    uint first = gl_WorkGroupID.x * pc.rows_per_block;
    uint last = min(first + pc.rows_per_block, pc.rows);
    uint partial = (gl_WorkGroupID.x * R + group) * pc.cols;
    // A group without rows still leaves zeros for pass 1.
    if (first + group >= last)
        for (uint c = lane; c < pc.cols; c += ROW_THREADS) pc.scratch.v[partial + c] = 0.0;
    // Every group runs the same number of rounds (the barriers are uniform).
    for (uint k = first; k < last; k += R) {
        uint row = k + group;
        bool valid = row < last;
        uint base = valid ? row * pc.cols : 0;
        float s = valid ? pc.rstd.v[row] : 0.0;
        float dot = 0.0;
        if (valid)
            for (uint c = lane; c < pc.cols; c += ROW_THREADS)
                dot += ELEM_LOAD(pc.dy, base + c) * pc.w.v[c] * ELEM_LOAD(pc.x, base + c);
        float coef = s * s * s * rmsnorm_row_sum(dot) / float(pc.cols);
        if (!valid) continue;
        for (uint c = lane; c < pc.cols; c += ROW_THREADS) {
            float dy = ELEM_LOAD(pc.dy, base + c), xv = ELEM_LOAD(pc.x, base + c);
            float d = s * dy * pc.w.v[c] - xv * coef;
            float term = dy * xv * s;
            pc.scratch.v[partial + c] = k == first ? term : pc.scratch.v[partial + c] + term;
            ELEM_STORE(pc.dx, base + c, pc.accumulate_dx != 0 ? ELEM_LOAD(pc.dx, base + c) + d : d);
        }
    }
}
