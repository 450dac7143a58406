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
// ROPE = 1 (QK-norm with RoPE, rmsnorm.comp's ROPE): dy is the gradient of
// the rotated output, so the norm's output gradient is dy rotated back (by
// -angle, at position row % seq_len); an invocation then owns the pairs
// (j, j + half) of every head, j = lane, lane + ROW_THREADS, ..., computing
// the angle of (row, j) once per pass over the row.
// dx, dy and x in fp32, or bf16 / fp16 storage; w, dw, rstd, scratch fp32.
// variants: rmsnorm_bwd rmsnorm_bwd_bf16=ELEM_BF16 rmsnorm_bwd_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint PASS = 0;
layout(constant_id = 3) const uint ROPE = 0;

#include "rmsnorm.glsl"
#include "rope.glsl"

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
    uint seq_len; // ROPE = 1 only, from here
    uint heads;
    uint head_dim;
    float ratio_hi; // theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
} pc;

// The norm's output gradient g at column c of the row at base: dx and this
// row's dw term into scratch (the first row of a partial writes it).
void store_column(uint base, uint c, float g, float s, float coef, uint partial, bool first) {
    float xv = ELEM_LOAD(pc.x, base + c);
    float d = s * g * pc.w.v[c] - xv * coef;
    float term = g * xv * s;
    pc.scratch.v[partial + c] = first ? term : pc.scratch.v[partial + c] + term;
    ELEM_STORE(pc.dx, base + c, pc.accumulate_dx != 0 ? ELEM_LOAD(pc.dx, base + c) + d : d);
}

// ROPE: the pair (c0, c1) of dy rotated back by the angle with (sin, cos) sc.
vec2 unrotated_dy(uint base, uint c0, uint c1, vec2 sc) {
    float d0 = ELEM_LOAD(pc.dy, base + c0), d1 = ELEM_LOAD(pc.dy, base + c1);
    return vec2(d0 * sc.y + d1 * sc.x, d1 * sc.y - d0 * sc.x);
}

// This invocation's part of sum_c g_c w_c x_c over the row at base.
float row_dot(uint row, uint base, uint lane) {
    float dot = 0.0;
    if (ROPE == 0) {
        for (uint c = lane; c < pc.cols; c += ROW_THREADS)
            dot += ELEM_LOAD(pc.dy, base + c) * pc.w.v[c] * ELEM_LOAD(pc.x, base + c);
        return dot;
    }
    uint half_dim = pc.head_dim / 2;
    for (uint j = lane; j < half_dim; j += ROW_THREADS) {
        vec2 sc = rope_angle_sincos(row % pc.seq_len, j, pc.ratio_hi, pc.ratio_lo);
        for (uint h = 0; h < pc.heads; h++) {
            uint c0 = h * pc.head_dim + j, c1 = c0 + half_dim;
            vec2 g = unrotated_dy(base, c0, c1, sc);
            dot += g.x * pc.w.v[c0] * ELEM_LOAD(pc.x, base + c0) +
                   g.y * pc.w.v[c1] * ELEM_LOAD(pc.x, base + c1);
        }
    }
    return dot;
}

// dx and the dw terms of this invocation's columns of the row at base.
void store_row(uint row, uint base, uint lane, float s, float coef, uint partial, bool first) {
    if (ROPE == 0) {
        for (uint c = lane; c < pc.cols; c += ROW_THREADS)
            store_column(base, c, ELEM_LOAD(pc.dy, base + c), s, coef, partial, first);
        return;
    }
    uint half_dim = pc.head_dim / 2;
    for (uint j = lane; j < half_dim; j += ROW_THREADS) {
        vec2 sc = rope_angle_sincos(row % pc.seq_len, j, pc.ratio_hi, pc.ratio_lo);
        for (uint h = 0; h < pc.heads; h++) {
            uint c0 = h * pc.head_dim + j, c1 = c0 + half_dim;
            vec2 g = unrotated_dy(base, c0, c1, sc);
            store_column(base, c0, g.x, s, coef, partial, first);
            store_column(base, c1, g.y, s, coef, partial, first);
        }
    }
}

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
        float dot = valid ? row_dot(row, base, lane) : 0.0;
        float coef = s * s * s * rmsnorm_row_sum(dot) / float(pc.cols);
        if (!valid) continue;
        store_row(row, base, lane, s, coef, partial, k == first);
    }
}
