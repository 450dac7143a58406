#version 460
#extension GL_GOOGLE_include_directive : require
// Rotary position embedding, rotate-half pairing (OLMo, Hugging Face Llama):
//   angle = pos * theta^(-2j/head_dim),  pos = t % seq_len,  j < head_dim/2
//   y[t, h, j]        = x[t, h, j] cos - x[t, h, j + half] sin
//   y[t, h, j + half] = x[t, h, j + half] cos + x[t, h, j] sin
// x, y (n_tokens, heads, head_dim); y may alias x (each pair is read, then
// written, by one invocation). inverse = 1 rotates by -angle: the backward,
// since a rotation's transpose is its inverse.
//
// Accuracy: in plain fp32, pos * inv_freq is rounded to half an ulp of the
// angle (2.4e-4 rad at 4096, 4.9e-4 at 8192) and a GPU sin/cos of a large
// argument is worse still. Here inv_freq_j = r^j (r = theta^(-2/head_dim),
// from the host in fp64 as a float pair hi + lo) is raised in double-float
// arithmetic, the product with pos kept as hi + lo, reduced by pi/2 in three
// Cody-Waite parts, and sin/cos evaluated by polynomials on [-pi/4, pi/4].
// The angle then carries about 1e-7 rad of error (tests/test_rope.c checks
// every position to 8191), and stays accurate while the quadrant count
// k < 2^16 (k * P1 and k * P2 exact), i.e. positions up to about 100000.
//
// One invocation per (token, j): the angle depends only on those, so it is
// computed once and applied to every head. x and y in fp32, or bf16 / fp16
// storage (the rotation in fp32).
// variants: rope rope_bf16=ELEM_BF16 rope_f16=ELEM_F16
#include "lws.glsl"
#include "rope.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Elems y;
    Elems x;
    uint n_tokens;
    uint seq_len;
    uint heads;
    uint head_dim;
    float ratio_hi; // r = theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
    uint inverse;
} pc;

void main() {
    uint half_dim = pc.head_dim / 2;
    uint i = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= pc.n_tokens * half_dim) return;
    uint t = i / half_dim, j = i - t * half_dim;
    vec2 sc = rope_angle_sincos(t % pc.seq_len, j, pc.ratio_hi, pc.ratio_lo);
    float s = pc.inverse != 0 ? -sc.x : sc.x, c = sc.y;
    for (uint h = 0; h < pc.heads; h++) {
        uint at = (t * pc.heads + h) * pc.head_dim + j;
        float x0 = ELEM_LOAD(pc.x, at), x1 = ELEM_LOAD(pc.x, at + half_dim);
        ELEM_STORE(pc.y, at, x0 * c - x1 * s);
        ELEM_STORE(pc.y, at + half_dim, x1 * c + x0 * s);
    }
}
