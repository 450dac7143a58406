#version 460
#extension GL_GOOGLE_include_directive : require
// out[i] (+)= parts[0][i] + parts[1][i] + ... + parts[slices-1][i], i < n:
// the fp32 partial sums of a matmul split over k (ops/matmul_split.c), one
// [n] matrix per slice, summed in slice order in fp32 (so the result is
// bit-identical from run to run) and added to out when accumulating, as the
// matmul's epilogue adds its sum. out in fp32, or bf16 / fp16 storage.
// variants: sum_slices sum_slices_bf16=ELEM_BF16 sum_slices_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Elems out_;
    Floats parts; // [slices, n]; slices * n < 2^32 (checked by the host)
    uint n;
    uint slices;
    uint accumulate;
} pc;

void main() {
    // Grid-stride loop over a grid capped by the host (max_groups_1d).
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float sum = pc.parts.v[i];
        for (uint s = 1; s < pc.slices; s++) sum += pc.parts.v[s * pc.n + i];
        if (pc.accumulate != 0u) sum = ELEM_LOAD(pc.out_, i) + sum;
        ELEM_STORE(pc.out_, i, sum);
    }
}
