#version 460
#extension GL_GOOGLE_include_directive : require
// out[i] = in[i] in another element type, i < n: fp32 to bf16 / fp16 (TO_ELEM:
// the matmuls' 16-bit copy of the fp32 master weights, rounded to nearest
// even) or back (a 16-bit activation into an fp32 buffer, exact).
// variants: cast_f32_bf16=ELEM_BF16,TO_ELEM cast_f32_f16=ELEM_F16,TO_ELEM cast_bf16_f32=ELEM_BF16 cast_f16_f32=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    uint64_t out_;
    uint64_t in_;
    uint n;
} pc;

void main() {
    // Grid-stride loop over a grid capped by the host (max_groups_1d).
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
#if defined(TO_ELEM)
        ELEM_STORE(Elems(pc.out_), i, Floats(pc.in_).v[i]);
#else
        Floats(pc.out_).v[i] = ELEM_LOAD(Elems(pc.in_), i);
#endif
    }
}
