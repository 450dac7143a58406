// Shared declarations for every lws compute shader.
//
// Tensors are reached through buffer device addresses passed in push
// constants; ELEM is the storage type of activations and of the weights the
// matmuls read (fp32 unless a variant defines ELEM_BF16 or ELEM_F16).
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_scalar_block_layout : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Floats { float v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Uints { uint v[]; };

// ---- 16-bit storage -------------------------------------------------------
// A variant defined with ELEM_BF16 or ELEM_F16 stores activations (Elems,
// Elem4s) in 16 bits; everything else, and all arithmetic, stays fp32. Both
// are held as uint16_t (the 16-bit storage feature, no 16-bit arithmetic) and
// converted here in integer arithmetic: bf16 is the upper half of an fp32 (a
// shift to read), fp16 is IEEE binary16 (unpackHalf2x16 reads it exactly).
// Stores round to nearest even, overflow to infinity and keep NaN, on every
// device alike (a driver's own narrowing conversion may round differently).
float lws_bf16_to_float(uint bits) { return uintBitsToFloat(bits << 16); }

uint lws_float_to_bf16(float f) {
    uint x = floatBitsToUint(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (x >> 16) | 0x40u; // NaN stays a quiet NaN
    return (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
}

float lws_f16_to_float(uint bits) { return unpackHalf2x16(bits).x; }

uint lws_float_to_f16(float f) {
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return sign | 0x7E00u;  // NaN
    if (ax >= 0x477FF000u) return sign | 0x7C00u; // |f| >= 65520 rounds to infinity
    if (ax < 0x38800000u)                         // below 2^-14: a subnormal (exact scaling)
        return sign | uint(roundEven(uintBitsToFloat(ax) * 16777216.0));
    uint r = ax - 0x38000000u; // rebias the exponent from 127 to 15
    return sign | ((r + 0x0FFFu + ((r >> 13) & 1u)) >> 13);
}

#if defined(ELEM_BF16) || defined(ELEM_F16)
#extension GL_EXT_shader_16bit_storage : require
#define ELEM uint16_t
#define ELEM4 u16vec4
#define ELEM_BYTES 2
layout(buffer_reference, scalar, buffer_reference_align = 2) buffer Elems { ELEM v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 8) buffer Elem4s { ELEM4 v[]; };
#if defined(ELEM_BF16)
#define LWS_UNPACK16(u) lws_bf16_to_float(u)
#define LWS_PACK16(f) lws_float_to_bf16(f)
#else
#define LWS_UNPACK16(u) lws_f16_to_float(u)
#define LWS_PACK16(f) lws_float_to_f16(f)
#endif
vec4 lws_unpack16x4(uvec4 u) {
    return vec4(LWS_UNPACK16(u.x), LWS_UNPACK16(u.y), LWS_UNPACK16(u.z), LWS_UNPACK16(u.w));
}
uvec4 lws_pack16x4(vec4 f) {
    return uvec4(LWS_PACK16(f.x), LWS_PACK16(f.y), LWS_PACK16(f.z), LWS_PACK16(f.w));
}
#define ELEM_LOAD(p, i) LWS_UNPACK16(uint((p).v[i]))
#define ELEM_STORE(p, i, x) ((p).v[i] = uint16_t(LWS_PACK16(x)))
#define ELEM4_LOAD(p, i) lws_unpack16x4(uvec4((p).v[i]))
#define ELEM4_STORE(p, i, x) ((p).v[i] = u16vec4(lws_pack16x4(x)))
#else
#define ELEM float
#define ELEM4 vec4
#define ELEM_BYTES 4
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Elems { ELEM v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 16) buffer Elem4s { ELEM4 v[]; };
#define ELEM_LOAD(p, i) ((p).v[i])
#define ELEM_STORE(p, i, x) ((p).v[i] = (x))
#define ELEM4_LOAD(p, i) ((p).v[i])
#define ELEM4_STORE(p, i, x) ((p).v[i] = (x))
#endif

// Grids: lws_cmd_dispatch may split a large grid into several dispatches with
// base offsets, so gl_WorkGroupID is always the global workgroup index, but
// gl_NumWorkGroups is the size of one piece: pass totals in push constants.
