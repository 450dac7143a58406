#version 460
#extension GL_GOOGLE_include_directive : require
// SwiGLU backward, elementwise over n, with s = sigmoid(a):
//   da = dh * b * silu'(a),  silu'(a) = s + a s (1 - s) = s (1 + a (1 - s))
//   db = dh * silu(a)
// da and db may alias dh, a or b: each element is read before it is written.
#include "lws.glsl"
#include "swiglu.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Floats da;
    Floats db;
    Floats dh;
    Floats a;
    Floats b;
    uint n;
} pc;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float a = pc.a.v[i], b = pc.b.v[i], dh = pc.dh.v[i];
        float s = swiglu_sigmoid(a);
        pc.da.v[i] = dh * b * (s * (1.0 + a * (1.0 - s)));
        pc.db.v[i] = dh * (a * s);
    }
}
