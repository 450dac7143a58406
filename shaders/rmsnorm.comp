#version 460
#extension GL_GOOGLE_include_directive : require
// RMSNorm forward, one workgroup per row:
//   y[r, :] = x[r, :] * rstd[r] * w,   rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps)
// x, y (rows, cols); w (cols); rstd (rows), saved for the backward. y may alias
// x: each element is read and written by the same invocation, after the sum.
#include "lws.glsl"

layout(local_size_x_id = 0) in;

#include "rmsnorm.glsl"

layout(push_constant, scalar) uniform Push {
    Floats y;
    Floats rstd;
    Floats x;
    Floats w;
    uint rows;
    uint cols;
    float eps;
} pc;

void main() {
    uint row = gl_WorkGroupID.x; // the grid is exactly `rows` workgroups
    uint lid = gl_LocalInvocationID.x;
    uint base = row * pc.cols;
    float acc = 0.0;
    for (uint c = lid; c < pc.cols; c += gl_WorkGroupSize.x) {
        float v = pc.x.v[base + c];
        acc += v * v;
    }
    float r = inversesqrt(rmsnorm_workgroup_sum(acc) / float(pc.cols) + pc.eps);
    for (uint c = lid; c < pc.cols; c += gl_WorkGroupSize.x)
        pc.y.v[base + c] = pc.x.v[base + c] * r * pc.w.v[c];
    if (lid == 0) pc.rstd.v[row] = r;
}
