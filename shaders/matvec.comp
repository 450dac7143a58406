#version 460
#extension GL_GOOGLE_include_directive : require
// y[n] = W[n, :] . x  for W [N, K] (out, in features) and one vector x [K]:
// the decode step's projections, matmul's NT layout with M = 1. matmul.comp
// computes a whole TILE_M-row tile for that one row (64 to 128 times the
// work); here THREADS invocations share each output row instead: invocation t
// sums k = t, t + THREADS, ... in order (one vec4 at a time on the VEC4 path),
// then the partial sums meet in a fixed halving tree in shared memory, so the
// result does not depend on the subgroup size and is the same every run.
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint THREADS = 8; // invocations per row: a power of two
// VEC4: K is a multiple of 4 and W and x are 16-byte aligned.
layout(constant_id = 2) const bool VEC4 = false;

layout(buffer_reference, scalar, buffer_reference_align = 16) buffer Vec4s { vec4 v[]; };

layout(push_constant, scalar) uniform Push {
    uint64_t y, w, x;
    uint n, k;
} pc;

const uint WG = gl_WorkGroupSize.x;
const uint ROWS = WG / THREADS; // rows per workgroup
shared float partial[WG];

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint t = lid % THREADS;
    uint row = gl_WorkGroupID.x * ROWS + lid / THREADS;
    float s = 0.0;
    if (row < pc.n) {
        if (VEC4) {
            Vec4s w = Vec4s(pc.w), x = Vec4s(pc.x);
            uint k4 = pc.k / 4, at = row * k4;
            vec4 acc = vec4(0.0);
            for (uint j = t; j < k4; j += THREADS) acc += w.v[at + j] * x.v[j];
            s = (acc.x + acc.y) + (acc.z + acc.w);
        } else {
            Floats w = Floats(pc.w), x = Floats(pc.x);
            uint at = row * pc.k;
            for (uint j = t; j < pc.k; j += THREADS) s += w.v[at + j] * x.v[j];
        }
    }
    partial[lid] = s;
    barrier();
    for (uint half_ = THREADS / 2; half_ > 0; half_ /= 2) {
        if (t < half_) partial[lid] += partial[lid + half_];
        barrier();
    }
    if (t == 0 && row < pc.n) Floats(pc.y).v[row] = partial[lid];
}
