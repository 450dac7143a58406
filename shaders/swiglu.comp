#version 460
#extension GL_GOOGLE_include_directive : require
// SwiGLU gate, elementwise over n: h = silu(a) * b, silu(a) = a * sigmoid(a).
// h may alias a or b. Elements in fp32, or bf16 / fp16 storage.
// variants: swiglu swiglu_bf16=ELEM_BF16 swiglu_f16=ELEM_F16
#include "lws.glsl"
#include "swiglu.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Elems h;
    Elems a;
    Elems b;
    uint n;
} pc;

void main() {
    // Grid-stride loop over a grid capped by the host (max_groups_1d).
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float a = ELEM_LOAD(pc.a, i);
        ELEM_STORE(pc.h, i, swiglu_forward(a, ELEM_LOAD(pc.b, i)));
    }
}
