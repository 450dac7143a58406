#version 460
#extension GL_GOOGLE_include_directive : require
// Global gradient norm over every tensor of the optimizer table, in two passes:
//   pass 0: workgroup c sums the squares of chunk c (LWS_OPTIM_CHUNK elements
//           of one tensor's gradient) into partials[c]
//   pass 1: one workgroup sums partials[0 .. total_chunks) and writes
//           hyper.grad_norm = sqrt(sum) / loss_scale and hyper.clip_scale
// With a loss scale (fp16 training) the gradients are that many times too
// large: the norm is unscaled, and clip_scale carries 1 / loss_scale so that
// AdamW's g * clip_scale is the unscaled, clipped gradient. The scale is a
// power of two, so both divisions are exact (1 leaves fp32 unchanged).
// Both trees are fixed (shared memory, halving), so the norm is bit-identical
// from run to run on a device, for any subgroup size.
#include "lws.glsl"
#include "adamw.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint PASS = 0;

layout(push_constant, scalar) uniform Push {
    OptimHyper hyper;
    OptimTable table;
    Floats partials;   // [total_chunks]
    uint n_tensors;
    uint total_chunks;
    uint chunk;        // LWS_OPTIM_CHUNK
} pc;

shared float part[gl_WorkGroupSize.x];

void main() {
    uint lid = gl_LocalInvocationID.x;
    float acc = 0.0;
    if (PASS == 0) {
        uint c = gl_WorkGroupID.x;
        OptimEntry e = pc.table.e[optim_find_entry(pc.table, pc.n_tensors, c)];
        Floats grad = Floats(e.grad);
        uint begin = (c - e.first_chunk) * pc.chunk;
        uint end = min(begin + pc.chunk, e.n);
        for (uint i = begin + lid; i < end; i += gl_WorkGroupSize.x) {
            float g = grad.v[i];
            acc += g * g;
        }
    } else {
        for (uint i = lid; i < pc.total_chunks; i += gl_WorkGroupSize.x) acc += pc.partials.v[i];
    }
    part[lid] = acc;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier();
    }
    if (lid != 0) return;
    if (PASS == 0) {
        pc.partials.v[gl_WorkGroupID.x] = part[0];
    } else {
        float loss_scale = optim_loss_scale(pc.hyper);
        float norm = sqrt(part[0]) / loss_scale;
        float max_norm = pc.hyper.max_grad_norm;
        // torch.nn.utils.clip_grad_norm_: coef = max / (norm + 1e-6), clamped to 1.
        pc.hyper.grad_norm = norm;
        pc.hyper.clip_scale =
            (max_norm > 0.0 ? min(1.0, max_norm / (norm + 1e-6)) : 1.0) / loss_scale;
    }
}
