#version 460
#extension GL_GOOGLE_include_directive : require
// out[i] = alpha * x[i] + beta * y[i] for i < n. out may alias x or y.
// Elements in fp32, or bf16 / fp16 storage (lws.glsl); the sum in fp32.
// variants: axpby axpby_bf16=ELEM_BF16 axpby_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Elems out_;
    Elems x;
    Elems y;
    uint n;
    float alpha;
    float beta;
} pc;

void main() {
    // Grid-stride loop: the host caps the grid (max_groups_1d, below any
    // device's workgroup-count limit, so it is never split).
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride)
        ELEM_STORE(pc.out_, i, pc.alpha * ELEM_LOAD(pc.x, i) + pc.beta * ELEM_LOAD(pc.y, i));
}
