#version 460
#extension GL_GOOGLE_include_directive : require
// SwiGLU backward, elementwise over n (swiglu.glsl's swiglu_backward):
//   da = dh * b * silu'(a),  db = dh * silu(a)
// da and db may alias dh, a or b: each element is read before it is written.
// Elements in fp32, or bf16 / fp16 storage.
// variants: swiglu_bwd swiglu_bwd_bf16=ELEM_BF16 swiglu_bwd_f16=ELEM_F16
#include "lws.glsl"
#include "swiglu.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Elems da;
    Elems db;
    Elems dh;
    Elems a;
    Elems b;
    uint n;
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float a = ELEM_LOAD(pc.a, i), b = ELEM_LOAD(pc.b, i), dh = ELEM_LOAD(pc.dh, i);
        float da, db;
        swiglu_backward(dh, a, b, da, db);
        ELEM_STORE(pc.da, i, da);
        ELEM_STORE(pc.db, i, db);
    }
}
