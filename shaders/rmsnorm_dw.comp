#version 460
#extension GL_GOOGLE_include_directive : require
// The weight-gradient sums of up to four RMSNorm backwards in one dispatch
// (the rows passes of rmsnorm_bwd.comp left each norm's partial sums in
// partials[e], (count[e], cols[e])): invocation g takes column c of entry e,
// g = cols[0] + .. + cols[e-1] + c, sums partials[e][0.., c] over the
// partials in order and adds the sum to dw[e][c] (dw accumulates over
// micro-batches). The order is fixed, so dw is bit-identical between runs.
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    uint64_t partials[4]; // (count[e], cols[e]) fp32
    uint64_t dw[4];       // (cols[e]) fp32
    uint count[4];
    uint cols[4];
    uint entries;
} pc;

void main() {
    uint c = gl_GlobalInvocationID.x;
    for (uint e = 0; e < pc.entries; e++) {
        if (c < pc.cols[e]) {
            Floats partials = Floats(pc.partials[e]), dw = Floats(pc.dw[e]);
            float sum = 0.0;
            for (uint b = 0; b < pc.count[e]; b++) sum += partials.v[b * pc.cols[e] + c];
            dw.v[c] += sum;
            return;
        }
        c -= pc.cols[e];
    }
}
