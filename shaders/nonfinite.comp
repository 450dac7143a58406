#version 460
#extension GL_GOOGLE_include_directive : require
// Counts the parameters of the optimizer table that are not finite (NaN or
// +-infinity), in two passes:
//   pass 0: workgroup c counts those of chunk c (LWS_OPTIM_CHUNK elements of
//           one tensor) into partials[c]
//   pass 1: one workgroup sums partials[0 .. total_chunks) into count[0]
// A value is not finite when its exponent bits are all ones: testing the
// bits, not isnan/isinf, holds whatever a driver assumes about NaNs. The
// counts are integers (exact in a float up to 2^24 per chunk, the total
// rounded beyond that but never to 0).
#include "lws.glsl"
#include "adamw.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint PASS = 0;

layout(push_constant, scalar) uniform Push {
    Floats count;      // [1], pass 1 writes it
    OptimTable table;
    Floats partials;   // [total_chunks]
    uint n_tensors;
    uint total_chunks;
    uint chunk;        // LWS_OPTIM_CHUNK
} pc;

shared uint part[gl_WorkGroupSize.x];

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint acc = 0;
    if (PASS == 0) {
        uint c = gl_WorkGroupID.x;
        OptimEntry e = pc.table.e[optim_find_entry(pc.table, pc.n_tensors, c)];
        Uints param = Uints(e.param);
        uint begin = (c - e.first_chunk) * pc.chunk;
        uint end = min(begin + pc.chunk, e.n);
        for (uint i = begin + lid; i < end; i += gl_WorkGroupSize.x)
            acc += (param.v[i] & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
    } else {
        for (uint i = lid; i < pc.total_chunks; i += gl_WorkGroupSize.x)
            acc += uint(pc.partials.v[i]);
    }
    part[lid] = acc;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s) part[lid] += part[lid + s];
        barrier();
    }
    if (lid != 0) return;
    if (PASS == 0)
        pc.partials.v[gl_WorkGroupID.x] = float(part[0]);
    else
        pc.count.v[0] = float(part[0]);
}
