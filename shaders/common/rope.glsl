// The RoPE angle of (position, pair j) and its sine and cosine, accurate to
// about 1e-7 rad at any position below ~100000 (see rope.comp for the
// derivation): inv_freq_j = r^j with r = theta^(-2/head_dim) given by the host
// in fp64 as a float pair (hi + lo), raised in double-float arithmetic; the
// product with the position kept as hi + lo, reduced by pi/2 in three
// Cody-Waite parts, and sin/cos from polynomials on [-pi/4, pi/4]. Shared by
// every kernel that rotates (rope_decode.comp), so a token rotated at
// position p by the decode path gets exactly the angle of the full forward.

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
const float ROPE_P1 = 1.5703125;
const float ROPE_P2 = 4.825592041015625e-4;
const float ROPE_P3 = 1.26759084650985e-6;

// sin and cos of the angle hi + lo (hi >= 0).
vec2 rope_sincos(vec2 angle) {
    float k = roundEven(angle.x * 0.63661977236758134);
    precise float r = angle.x - k * ROPE_P1;
    r = r - k * ROPE_P2;
    r = r - k * ROPE_P3;
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

// (sin, cos) of pos * r^j, r = ratio_hi + ratio_lo; pos < 2^24 (exact in fp32).
vec2 rope_angle_sincos(uint pos, uint j, float ratio_hi, float ratio_lo) {
    // inv_freq_j = r^j by binary powering in double-float.
    vec2 inv_freq = vec2(1.0, 0.0), base = vec2(ratio_hi, ratio_lo);
    for (uint e = j; e != 0; e >>= 1) {
        if ((e & 1u) != 0) inv_freq = rope_df_mul(inv_freq, base);
        if (e > 1) base = rope_df_mul(base, base);
    }
    float p = float(pos);
    vec2 prod = rope_two_prod(p, inv_freq.x);
    precise float e = prod.y + p * inv_freq.y;
    return rope_sincos(rope_quick_two_sum(prod.x, e));
}
