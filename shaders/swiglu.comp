#version 460
#extension GL_GOOGLE_include_directive : require
// SwiGLU gate, elementwise over n: h = silu(a) * b, silu(a) = a * sigmoid(a).
// h may alias a or b.
#include "lws.glsl"
#include "swiglu.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Floats h;
    Floats a;
    Floats b;
    uint n;
} pc;

void main() {
    // Grid-stride loop over a grid capped by the host (max_groups_1d).
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float a = pc.a.v[i];
        pc.h.v[i] = a * swiglu_sigmoid(a) * pc.b.v[i];
    }
}
