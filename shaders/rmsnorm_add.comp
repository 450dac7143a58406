#version 460
#extension GL_GOOGLE_include_directive : require
// A residual add fused with RMSNorm, in one pass over each row (r = rstd[r]):
//   ADD_FIRST = 0 (post-norm):  sum[r, :] = res + y * r * w,   r from y's row
//   ADD_FIRST = 1 (pre-norm):   sum[r, :] = res + y,  normed[r, :] = sum * r * w,
//                               r from sum's row as stored (rounded to a 16-bit
//                               type), so the backward sees the same row
// rstd[r] = 1 / sqrt(mean(row^2) + eps), saved for the backward. res, y, sum,
// normed (rows, cols); w (cols); rstd (rows). sum may alias res or y: each
// element is read and written by one invocation, its reads first.
// Workgroup g holds rows g * R .. g * R + R - 1, R = workgroup / ROW_THREADS.
// res, y, sum and normed in fp32, or bf16 / fp16 storage; w, rstd and the
// sums in fp32.
// variants: rmsnorm_add rmsnorm_add_bf16=ELEM_BF16 rmsnorm_add_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint ADD_FIRST = 0;

#include "rmsnorm.glsl"

layout(push_constant, scalar) uniform Push {
    Elems sum;
    Elems normed; // ADD_FIRST = 1 only
    Floats rstd;
    Elems res;
    Elems y;
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
            float v;
            if (ADD_FIRST != 0) {
                float sum = ELEM_LOAD(pc.res, base + c) + ELEM_LOAD(pc.y, base + c);
                ELEM_STORE(pc.sum, base + c, sum);
                v = ELEM_LOAD(pc.sum, base + c); // as stored
            } else {
                v = ELEM_LOAD(pc.y, base + c);
            }
            acc += v * v;
        }
    float r = inversesqrt(rmsnorm_row_sum(acc) / float(pc.cols) + pc.eps);
    if (!valid) return;
    for (uint c = lane; c < pc.cols; c += ROW_THREADS) {
        if (ADD_FIRST != 0)
            ELEM_STORE(pc.normed, base + c, ELEM_LOAD(pc.sum, base + c) * r * pc.w.v[c]);
        else
            ELEM_STORE(pc.sum, base + c,
                       ELEM_LOAD(pc.res, base + c) + ELEM_LOAD(pc.y, base + c) * r * pc.w.v[c]);
    }
    if (lane == 0) pc.rstd.v[row] = r;
}
