#version 460
#extension GL_GOOGLE_include_directive : require
// RMSNorm forward:
//   y[r, :] = x[r, :] * rstd[r] * w,   rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps)
// x, y (rows, cols); w (cols); rstd (rows), saved for the backward. y may alias
// x: each element is read and written by the same invocation, after the sum.
// Workgroup g holds rows g * R .. g * R + R - 1, R = workgroup / ROW_THREADS.
// x and y in fp32, or bf16 / fp16 storage; w, rstd and the sums in fp32.
// variants: rmsnorm rmsnorm_bf16=ELEM_BF16 rmsnorm_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;

#include "rmsnorm.glsl"

layout(push_constant, scalar) uniform Push {
    Elems y;
    Floats rstd;
    Elems x;
    Floats w;
    uint rows;
    uint cols;
    float eps;
} pc;

void main() {
    uint lid = gl_LocalInvocationID.x, lane = lid % ROW_THREADS;
    uint row = gl_WorkGroupID.x * (gl_WorkGroupSize.x / ROW_THREADS) + lid / ROW_THREADS;
    bool valid = row < pc.rows; // the last workgroup's spare rows still join the barriers
    uint base = valid ? row * pc.cols : 0;
    float acc = 0.0;
    if (valid)
        for (uint c = lane; c < pc.cols; c += ROW_THREADS) {
            float v = ELEM_LOAD(pc.x, base + c);
            acc += v * v;
        }
    float r = inversesqrt(rmsnorm_row_sum(acc) / float(pc.cols) + pc.eps);
    if (!valid) return;
    for (uint c = lane; c < pc.cols; c += ROW_THREADS)
        ELEM_STORE(pc.y, base + c, ELEM_LOAD(pc.x, base + c) * r * pc.w.v[c]);
    if (lane == 0) pc.rstd.v[row] = r;
}
