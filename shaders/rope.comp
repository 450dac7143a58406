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
// computed once and applied to every head.
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Floats y;
    Floats x;
    uint n_tokens;
    uint seq_len;
    uint heads;
    uint head_dim;
    float ratio_hi; // r = theta^(-2/head_dim) = ratio_hi + ratio_lo
    float ratio_lo;
    uint inverse;
} pc;

// Error-free transformations (Dekker, Knuth). `precise` forbids the compiler
// to contract a*b+c into an fma or to reassociate, which these rely on; they
// do not need a hardware fma (Vulkan does not promise fma() is fused).
vec2 rope_split(float a) {
    precise float t = 4097.0 * a; // 2^12 + 1 splits 24 bits into 12 + 12
    precise float hi = t - (t - a);
    precise float lo = a - hi;
    return vec2(hi, lo);
}

// (p, e) with p = fl(a * b) and p + e = a * b exactly.
vec2 rope_two_prod(float a, float b) {
    precise float p = a * b;
    vec2 as = rope_split(a), bs = rope_split(b);
    precise float e = ((as.x * bs.x - p) + as.x * bs.y + as.y * bs.x) + as.y * bs.y;
    return vec2(p, e);
}

vec2 rope_quick_two_sum(float a, float b) {
    precise float s = a + b;
    precise float e = b - (s - a);
    return vec2(s, e);
}

// Double-float product (hi + lo) * (hi + lo), about 44 bits.
vec2 rope_df_mul(vec2 a, vec2 b) {
    vec2 p = rope_two_prod(a.x, b.x);
    precise float e = p.y + (a.x * b.y + a.y * b.x);
    return rope_quick_two_sum(p.x, e);
}

// pi/2 = P1 + P2 + P3 (+ 5e-14): P1 and P2 have 8 significant bits, so k * P1
// and k * P2 are exact for integer k < 2^16.
const float P1 = 1.5703125;
const float P2 = 4.825592041015625e-4;
const float P3 = 1.26759084650985e-6;

// sin and cos of the angle hi + lo (hi >= 0).
vec2 rope_sincos(vec2 angle) {
    float k = roundEven(angle.x * 0.63661977236758134);
    precise float r = angle.x - k * P1;
    r = r - k * P2;
    r = r - k * P3;
    r = r + angle.y;
    // Minimax polynomials on [-pi/4, pi/4] (Cephes sinf/cosf).
    float z = r * r;
    float s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    float c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z *
                  z - 0.5 * z + 1.0;
    switch (uint(k) & 3u) {
    case 0u: return vec2(s, c);
    case 1u: return vec2(c, -s);
    case 2u: return vec2(-s, -c);
    default: return vec2(-c, s);
    }
}

void main() {
    uint half_dim = pc.head_dim / 2;
    uint i = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i >= pc.n_tokens * half_dim) return;
    uint t = i / half_dim, j = i - t * half_dim;
    // inv_freq_j = r^j by binary powering in double-float.
    vec2 inv_freq = vec2(1.0, 0.0), base = vec2(pc.ratio_hi, pc.ratio_lo);
    for (uint e = j; e != 0; e >>= 1) {
        if ((e & 1u) != 0) inv_freq = rope_df_mul(inv_freq, base);
        if (e > 1) base = rope_df_mul(base, base);
    }
    float pos = float(t % pc.seq_len); // exact below 2^24
    vec2 p = rope_two_prod(pos, inv_freq.x);
    precise float e = p.y + pos * inv_freq.y;
    vec2 sc = rope_sincos(rope_quick_two_sum(p.x, e));
    float s = pc.inverse != 0 ? -sc.x : sc.x, c = sc.y;
    for (uint h = 0; h < pc.heads; h++) {
        uint at = (t * pc.heads + h) * pc.head_dim + j;
        float x0 = pc.x.v[at], x1 = pc.x.v[at + half_dim];
        pc.y.v[at] = x0 * c - x1 * s;
        pc.y.v[at + half_dim] = x1 * c + x0 * s;
    }
}
