#version 460
#extension GL_GOOGLE_include_directive : require
// Sum of squares in a fixed order, in two passes.
//   pass 0: workgroup g sums elements g*chunk .. (g+1)*chunk-1 into partials[g]
//   pass 1: one workgroup sums partials[0..groups-1] into out[slot]
// The reduction tree inside a workgroup is fixed (shared memory, halving), so
// the result is bit-identical from run to run on a device, for any subgroup size.
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint PASS = 0;

layout(push_constant, scalar) uniform Push {
    Floats x;        // pass 0: input [n];   pass 1: partials [groups]
    Floats partials; // pass 0: output [groups]
    Floats out_;     // pass 1: output, written at out_[slot]
    uint n;          // elements in x
    uint chunk;      // elements per workgroup (pass 0)
    uint slot;
    uint accumulate; // pass 1: add to out_[slot] instead of writing it
} pc;

shared float part[gl_WorkGroupSize.x];

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint begin = PASS == 0 ? gl_WorkGroupID.x * pc.chunk : 0;
    uint end = PASS == 0 ? min(begin + pc.chunk, pc.n) : pc.n;
    float acc = 0.0;
    for (uint i = begin + lid; i < end; i += gl_WorkGroupSize.x) {
        float v = pc.x.v[i];
        acc += PASS == 0 ? v * v : v;
    }
    part[lid] = acc;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier();
    }
    if (lid == 0) {
        if (PASS == 0) pc.partials.v[gl_WorkGroupID.x] = part[0];
        else pc.out_.v[pc.slot] = pc.accumulate != 0 ? pc.out_.v[pc.slot] + part[0] : part[0];
    }
}
