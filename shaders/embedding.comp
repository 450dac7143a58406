#version 460
#extension GL_GOOGLE_include_directive : require
// Token embedding gather: out[t, :] = table[tokens[t], :].
// tokens (n_tokens) uint32, table (vocab, dim), out (n_tokens, dim). A token
// >= vocab gives a zero row: the data loader refuses such tokens, and a zero
// row keeps a bad one from reading outside the table. The table is fp32 (the
// master weights); out in fp32, or bf16 / fp16 storage.
// variants: embedding embedding_bf16=ELEM_BF16 embedding_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Elems out_;
    Floats table;
    Uints tokens;
    uint n_tokens;
    uint dim;
    uint vocab;
} pc;

void main() {
    // Grid-stride over the n_tokens * dim outputs (< 2^32, checked by the host).
    uint n = pc.n_tokens * pc.dim;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
        uint t = i / pc.dim, c = i - t * pc.dim;
        uint token = pc.tokens.v[t];
        ELEM_STORE(pc.out_, i, token < pc.vocab ? pc.table.v[token * pc.dim + c] : 0.0);
    }
}
