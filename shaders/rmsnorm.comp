#version 460
#extension GL_GOOGLE_include_directive : require
// RMSNorm forward:
//   y[r, :] = x[r, :] * rstd[r] * w,   rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps)
// x, y (rows, cols); w (cols); rstd (rows), saved for the backward. y may alias
// x: each element is read and written by the same invocation, after the sum.
// ROPE = 1 (QK-norm with RoPE): row r is token r of (rows, heads, head_dim),
// cols = heads * head_dim, and y is the normalised row rotated as rope.comp
// does at position r % seq_len; an invocation then writes pairs (j, j + half)
// of every head, the angle of (r, j) computed once (rope.glsl).
// Workgroup g holds rows g * R .. g * R + R - 1, R = workgroup / ROW_THREADS.
// PAIR (with ROPE = 1): two such problems over the same rows, seq_len and eps
// in one dispatch (q's and k's QK-norm with RoPE, each with its own width,
// weights and buffers): workgroup (g, p) does rows g * R.. of problem p.
// x and y in fp32, or bf16 / fp16 storage; w, rstd and the sums in fp32.
// variants: rmsnorm rmsnorm_bf16=ELEM_BF16 rmsnorm_f16=ELEM_F16 rmsnorm_pair=PAIR rmsnorm_pair_bf16=PAIR,ELEM_BF16 rmsnorm_pair_f16=PAIR,ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint ROPE = 0;

#include "rmsnorm.glsl"
#include "rope.glsl"

// One problem's operands and shape (cols = heads * head_dim with RoPE).
struct Problem {
    Elems y;
    Floats rstd;
    Elems x;
    Floats w;
    uint cols;
    uint heads; // ROPE = 1 only, from here
    uint head_dim;
    float ratio_hi; // theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
    uint pad; // 56 bytes, a multiple of the addresses' alignment (pairs are an array)
};

#if defined(PAIR)
layout(push_constant, scalar) uniform Push {
    Problem p[2];
    uint rows;
    float eps;
    uint seq_len;
} pc;
#else
layout(push_constant, scalar) uniform Push {
    Elems y;
    Floats rstd;
    Elems x;
    Floats w;
    uint rows;
    uint cols;
    float eps;
    uint seq_len; // ROPE = 1 only, from here
    uint heads;
    uint head_dim;
    float ratio_hi; // theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
} pc;
#endif

// Normalises (and rotates) this invocation's row of problem q.
void norm_rows(Problem q, uint rows, float eps, uint seq_len) {
    uint lid = gl_LocalInvocationID.x, lane = lid % ROW_THREADS;
    uint row = gl_WorkGroupID.x * (gl_WorkGroupSize.x / ROW_THREADS) + lid / ROW_THREADS;
    bool valid = row < rows; // the last workgroup's spare rows still join the barriers
    uint base = valid ? row * q.cols : 0;
    float acc = 0.0;
    if (valid)
        for (uint c = lane; c < q.cols; c += ROW_THREADS) {
            float v = ELEM_LOAD(q.x, base + c);
            acc += v * v;
        }
    float r = inversesqrt(rmsnorm_row_sum(acc) / float(q.cols) + eps);
    if (!valid) return;
    if (ROPE != 0) {
        uint half_dim = q.head_dim / 2;
        for (uint j = lane; j < half_dim; j += ROW_THREADS) {
            vec2 sc = rope_angle_sincos(row % seq_len, j, q.ratio_hi, q.ratio_lo);
            for (uint h = 0; h < q.heads; h++) {
                uint c0 = h * q.head_dim + j, c1 = c0 + half_dim;
                float n0 = ELEM_LOAD(q.x, base + c0) * r * q.w.v[c0];
                float n1 = ELEM_LOAD(q.x, base + c1) * r * q.w.v[c1];
                ELEM_STORE(q.y, base + c0, n0 * sc.y - n1 * sc.x);
                ELEM_STORE(q.y, base + c1, n1 * sc.y + n0 * sc.x);
            }
        }
    } else {
        for (uint c = lane; c < q.cols; c += ROW_THREADS)
            ELEM_STORE(q.y, base + c, ELEM_LOAD(q.x, base + c) * r * q.w.v[c]);
    }
    if (lane == 0) q.rstd.v[row] = r;
}

void main() {
#if defined(PAIR)
    norm_rows(pc.p[gl_WorkGroupID.y], pc.rows, pc.eps, pc.seq_len);
#else
    Problem q = Problem(pc.y, pc.rstd, pc.x, pc.w, pc.cols, pc.heads, pc.head_dim, pc.ratio_hi,
                        pc.ratio_lo, 0);
    norm_rows(q, pc.rows, pc.eps, pc.seq_len);
#endif
}
