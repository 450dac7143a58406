#version 460
#extension GL_GOOGLE_include_directive : require
// RMSNorm backward, the rows pass. With g = dy * w and s = rstd[r]
// (ds/dx_k = -s^3 x_k / cols):
//   dx[r, k] = s g_k - x_k s^3 (sum_j g_j x_j) / cols
//   dw[j]   += sum over rows of dy[r, j] x[r, j] s
// dw is summed in two fixed-order passes (bit-identical between runs): this
// one leaves each row group's sum in a partial row, rmsnorm_dw.comp adds the
// partials into dw (after a barrier, possibly with other norms' partials).
// One dispatch runs one or two problems over the same rows (q's and k's
// QK-norm: widths and pointers of their own): workgroups 0 .. blocks0 - 1
// take problem 0, the rest problem 1. Of a problem with T invocations per
// row (threads), R = workgroup / T row groups:
//   workgroup b owns rows b*rows_per_block .. of which its row group g takes
//   every R-th, in order; it writes (or adds to) dx and sums its rows' dw
//   terms into the problem's partial row b*R + g of (blocks*R, cols) in
//   scratch (problem 1's after problem 0's). Invocation `lane` of a group
//   owns columns lane, lane + T, ..., so each partial element has one
//   writer, adding in row order.
// ROPE = 1 (QK-norm with RoPE, rmsnorm.comp's ROPE): dy is the gradient of
// the rotated output, so the norm's output gradient is dy rotated back (by
// -angle, at position row % seq_len); an invocation then owns the pairs
// (j, j + half) of every head (cols / head_dim heads), j = lane, lane + T,
// ..., computing the angle of (row, j) once per pass over the row.
// dx, dy and x in fp32, or bf16 / fp16 storage; w, rstd, scratch fp32.
// variants: rmsnorm_bwd rmsnorm_bwd_bf16=ELEM_BF16 rmsnorm_bwd_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint ROPE = 0;

#include "rmsnorm.glsl"
#include "rope.glsl"

layout(push_constant, scalar) uniform Push {
    uint64_t dx[2];   // (rows, cols[p]) elements
    uint64_t dy[2];   // (rows, cols[p]) elements
    uint64_t x[2];    // (rows, cols[p]) elements
    uint64_t w[2];    // (cols[p]) fp32
    uint64_t rstd[2]; // (rows) fp32
    uint64_t scratch; // problem 0's partials, then problem 1's, fp32
    uint rows;
    uint cols[2];
    uint rows_per_block[2];
    // bits 0-15: blocks0; 16-19, 20-23: log2 of each problem's T;
    // 24, 25: each problem's accumulate_dx (1: dx += the gradient)
    uint split;
    uint seq_len; // ROPE = 1 only, from here
    uint head_dim;
    float ratio_hi; // theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
} pc;

// This workgroup's problem.
struct Problem {
    Elems dx, dy, x;
    Floats w, rstd, scratch;
    uint cols, threads;
    bool accumulate;
};
Problem pb;

// The norm's output gradient g at column c of the row at base: dx and this
// row's dw term into the partial row (the first row of a partial writes it).
void store_column(uint base, uint c, float g, float s, float coef, uint partial, bool first) {
    float xv = ELEM_LOAD(pb.x, base + c);
    float d = s * g * pb.w.v[c] - xv * coef;
    float term = g * xv * s;
    pb.scratch.v[partial + c] = first ? term : pb.scratch.v[partial + c] + term;
    ELEM_STORE(pb.dx, base + c, pb.accumulate ? ELEM_LOAD(pb.dx, base + c) + d : d);
}

// ROPE: the pair (c0, c1) of dy rotated back by the angle with (sin, cos) sc.
vec2 unrotated_dy(uint base, uint c0, uint c1, vec2 sc) {
    float d0 = ELEM_LOAD(pb.dy, base + c0), d1 = ELEM_LOAD(pb.dy, base + c1);
    return vec2(d0 * sc.y + d1 * sc.x, d1 * sc.y - d0 * sc.x);
}

// This invocation's part of sum_c g_c w_c x_c over the row at base.
float row_dot(uint row, uint base, uint lane) {
    float dot = 0.0;
    if (ROPE == 0) {
        for (uint c = lane; c < pb.cols; c += pb.threads)
            dot += ELEM_LOAD(pb.dy, base + c) * pb.w.v[c] * ELEM_LOAD(pb.x, base + c);
        return dot;
    }
    uint half_dim = pc.head_dim / 2, heads = pb.cols / pc.head_dim;
    for (uint j = lane; j < half_dim; j += pb.threads) {
        vec2 sc = rope_angle_sincos(row % pc.seq_len, j, pc.ratio_hi, pc.ratio_lo);
        for (uint h = 0; h < heads; h++) {
            uint c0 = h * pc.head_dim + j, c1 = c0 + half_dim;
            vec2 g = unrotated_dy(base, c0, c1, sc);
            dot += g.x * pb.w.v[c0] * ELEM_LOAD(pb.x, base + c0) +
                   g.y * pb.w.v[c1] * ELEM_LOAD(pb.x, base + c1);
        }
    }
    return dot;
}

// dx and the dw terms of this invocation's columns of the row at base.
void store_row(uint row, uint base, uint lane, float s, float coef, uint partial, bool first) {
    if (ROPE == 0) {
        for (uint c = lane; c < pb.cols; c += pb.threads)
            store_column(base, c, ELEM_LOAD(pb.dy, base + c), s, coef, partial, first);
        return;
    }
    uint half_dim = pc.head_dim / 2, heads = pb.cols / pc.head_dim;
    for (uint j = lane; j < half_dim; j += pb.threads) {
        vec2 sc = rope_angle_sincos(row % pc.seq_len, j, pc.ratio_hi, pc.ratio_lo);
        for (uint h = 0; h < heads; h++) {
            uint c0 = h * pc.head_dim + j, c1 = c0 + half_dim;
            vec2 g = unrotated_dy(base, c0, c1, sc);
            store_column(base, c0, g.x, s, coef, partial, first);
            store_column(base, c1, g.y, s, coef, partial, first);
        }
    }
}

// Problem p's workgroup-uniform description; its partials start at `skip`
// floats into scratch.
Problem problem(uint p, uint skip) {
    return Problem(Elems(pc.dx[p]), Elems(pc.dy[p]), Elems(pc.x[p]), Floats(pc.w[p]),
                   Floats(pc.rstd[p]), Floats(pc.scratch + 4ul * skip), pc.cols[p],
                   1u << ((pc.split >> (16 + 4 * p)) & 15u), ((pc.split >> (24 + p)) & 1u) != 0);
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint blocks0 = pc.split & 0xFFFFu;
    uint p = gl_WorkGroupID.x < blocks0 ? 0 : 1;
    uint block = gl_WorkGroupID.x - p * blocks0;
    // problem 1's partials follow problem 0's blocks0 * R0 rows of cols[0]
    uint R0 = gl_WorkGroupSize.x >> ((pc.split >> 16) & 15u);
    pb = problem(p, p * blocks0 * R0 * pc.cols[0]);
    const uint R = gl_WorkGroupSize.x / pb.threads;
    uint lane = lid % pb.threads, group = lid / pb.threads;
    uint rows_per_block = pc.rows_per_block[p];
    uint first = block * rows_per_block;
    uint last = min(first + rows_per_block, pc.rows);
    uint partial = (block * R + group) * pb.cols;
    // A group without rows still leaves zeros for the sum.
    if (first + group >= last)
        for (uint c = lane; c < pb.cols; c += pb.threads) pb.scratch.v[partial + c] = 0.0;
    // Every group runs the same number of rounds (the barriers are uniform).
    for (uint k = first; k < last; k += R) {
        uint row = k + group;
        bool valid = row < last;
        uint base = valid ? row * pb.cols : 0;
        float s = valid ? pb.rstd.v[row] : 0.0;
        float dot = valid ? row_dot(row, base, lane) : 0.0;
        float coef = s * s * s * rmsnorm_row_sum_over(dot, pb.threads) / float(pb.cols);
        if (!valid) continue;
        store_row(row, base, lane, s, coef, partial, k == first);
    }
}
