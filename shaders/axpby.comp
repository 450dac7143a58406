#version 460
#extension GL_GOOGLE_include_directive : require
// out[i] = alpha * x[i] + beta * y[i] for i < n. out may alias x or y.
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Floats out_;
    Floats x;
    Floats y;
    uint n;
    float alpha;
    float beta;
} pc;

void main() {
    // Grid-stride loop: the host caps the grid (max_groups_1d, below any
    // device's workgroup-count limit, so it is never split).
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride)
        pc.out_.v[i] = pc.alpha * pc.x.v[i] + pc.beta * pc.y.v[i];
}
