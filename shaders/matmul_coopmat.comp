#version 460
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_memory_scope_semantics : require
// C[M,N] (+)= op(A) . op(B) on matrix units (cooperative matrices): the
// layouts of matmul.comp (NT, NN, TN), operands of any storage type (fp32,
// fp16, bf16: OPERAND_TYPES) rounded to fp16 on their way into shared
// memory, products accumulated in fp32.
//
// A workgroup computes a TILE_M x TILE_N block of C with WARPS_M x WARPS_N
// subgroups, each a (TILE_M/WARPS_M) x (TILE_N/WARPS_N) block held as
// FM x FN accumulators of CM x CN. The k loop steps TILE_K at a time through
// two shared buffers: while the subgroups multiply the tiles of one step, the
// invocations hold the next step's elements in registers and store them into
// the other buffer afterwards (one global-memory latency hidden per step).
//
// Range: fp16 holds 2^-24 .. 65504, gradients are often far below 2^-14 and
// activations can exceed 65504. Each step's A and B tiles are therefore
// scaled by powers of two that bring their largest magnitude to [2^14, 2^15)
// before rounding; the step's products are summed in a fresh accumulator and
// added to the total times the inverse scales (exact: powers of two). So the
// only error is fp16's 11-bit rounding of each element relative to its tile's
// largest one, whatever the operands' magnitude.
//
// z: the batch entry.
// variants: matmul_cm_nv_nt=COOPMAT_NV,LAYOUT_NT matmul_cm_nv_nn=COOPMAT_NV,LAYOUT_NN matmul_cm_nv_tn=COOPMAT_NV,LAYOUT_TN
// variants-if LWS_GLSLANG_KHR_COOPMAT: matmul_cm_khr_nt=COOPMAT_KHR,LAYOUT_NT matmul_cm_khr_nn=COOPMAT_KHR,LAYOUT_NN matmul_cm_khr_tn=COOPMAT_KHR,LAYOUT_TN
#include "lws.glsl"

#if defined(LAYOUT_NT) + defined(LAYOUT_NN) + defined(LAYOUT_TN) != 1
#error "matmul_coopmat.comp: define exactly one of LAYOUT_NT, LAYOUT_NN, LAYOUT_TN"
#endif
#if defined(COOPMAT_NV) + defined(COOPMAT_KHR) != 1
#error "matmul_coopmat.comp: define exactly one of COOPMAT_NV, COOPMAT_KHR"
#endif

#if defined(LAYOUT_TN)
const bool A_K_CONTIGUOUS = false; // A[K, M]
#else
const bool A_K_CONTIGUOUS = true; // A[M, K]
#endif
#if defined(LAYOUT_NT)
const bool B_K_CONTIGUOUS = true; // B[N, K]
#else
const bool B_K_CONTIGUOUS = false; // B[K, N]
#endif

layout(local_size_x_id = 0) in;
// The matrix-unit shape (a shape the device lists for fp16 x fp16 -> fp32).
layout(constant_id = 1) const uint CM = 16;
layout(constant_id = 2) const uint CN = 16;
layout(constant_id = 3) const uint CK = 16;
// The workgroup's tile; TILE_M a multiple of WARPS_M * CM, TILE_N of
// WARPS_N * CN, TILE_K of CK and of 8 (checked by the host).
layout(constant_id = 4) const uint TILE_M = 128;
layout(constant_id = 5) const uint TILE_N = 128;
layout(constant_id = 6) const uint TILE_K = 32;
layout(constant_id = 7) const uint WARPS_M = 2;
layout(constant_id = 8) const uint WARPS_N = 4;
// Storage types, 0 fp32, 1 fp16, 2 bf16: A | B << 4 | C << 8.
layout(constant_id = 9) const uint OPERAND_TYPES = 0;
// VEC4: M, N, K multiples of 4 and every address and stride aligned to 4
// elements, so loads move groups of 4 elements along the contiguous side.
layout(constant_id = 10) const bool VEC4 = false;

layout(push_constant, scalar) uniform Push {
    uint64_t c, a, b;
    uint64_t stride_c, stride_a, stride_b; // bytes from one batch entry (or slice) to the next
    uint m, n, k;
    uint accumulate; // 1: C += op(A) . op(B)
} pc;

const uint A_TYPE = OPERAND_TYPES & 15, B_TYPE = (OPERAND_TYPES >> 4) & 15,
           C_TYPE = (OPERAND_TYPES >> 8) & 15;

layout(buffer_reference, scalar, buffer_reference_align = 2) buffer Halfs { uint16_t v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 16) buffer F32x4 { vec4 v; };
layout(buffer_reference, scalar, buffer_reference_align = 8) buffer U16x4 { u16vec4 v; };

// 16-bit elements as the low bits of a uint (no 16-bit arithmetic needed).
float from_bits(uint type, uint x) {
    return type == 1 ? unpackHalf2x16(x).x : uintBitsToFloat(x << 16);
}
uint to_bits(uint type, float x) {
    if (type == 1) return packHalf2x16(vec2(x, 0.0));
    // bf16: round to nearest even; NaN stays NaN.
    uint u = floatBitsToUint(x);
    if (isnan(x)) return (u >> 16) | 64u;
    return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}
float load1(uint type, uint64_t base, uint i) {
    if (type == 0) return Floats(base).v[i];
    return from_bits(type, uint(Halfs(base).v[i]));
}
vec4 load4(uint type, uint64_t base, uint i) {
    if (type == 0) return F32x4(base + 4 * uint64_t(i)).v;
    uvec4 h = uvec4(U16x4(base + 2 * uint64_t(i)).v);
    return vec4(from_bits(type, h.x), from_bits(type, h.y), from_bits(type, h.z),
                from_bits(type, h.w));
}

const uint THREADS = gl_WorkGroupSize.x;
const uint WARPS = WARPS_M * WARPS_N;
const uint FM = TILE_M / WARPS_M / CM; // accumulators per subgroup, down
const uint FN = TILE_N / WARPS_N / CN; // and across
const uint KSTEPS = TILE_K / CK;

// Shared tiles in fp16, laid out like the source so that global loads are
// contiguous: rows along the contiguous side, padded by 8 elements (16
// bytes, keeping rows aligned for the matrix loads and spreading them over
// banks). A: [TILE_M][TILE_K + 8] when k-contiguous, else [TILE_K][TILE_M + 8].
const uint PAD = 8;
const uint A_STRIDE = A_K_CONTIGUOUS ? TILE_K + PAD : TILE_M + PAD;
const uint B_STRIDE = B_K_CONTIGUOUS ? TILE_K + PAD : TILE_N + PAD;
const uint A_TILE = A_K_CONTIGUOUS ? TILE_M * A_STRIDE : TILE_K * A_STRIDE;
const uint B_TILE = B_K_CONTIGUOUS ? TILE_N * B_STRIDE : TILE_K * B_STRIDE;
shared float16_t a_sh[2 * A_TILE];
shared float16_t b_sh[2 * B_TILE];
// During the k loop, the largest magnitudes of each subgroup's share of the
// next tiles (A at [s], B at [64 + s]); after it, per subgroup, one
// accumulator's values on their way out. (128 x 128 x 32 tiles then take
// exactly 48 KiB, NVIDIA's limit.)
const uint OUT_FLOATS = WARPS * CM * CN > 128 ? WARPS * CM * CN : 128;
shared float out_sh[OUT_FLOATS];

// Elements each invocation carries from global memory to shared memory per
// step, in groups of G (4 on the VEC4 path, else 1).
const uint G = VEC4 ? 4 : 1;
const uint A_LOADS = (TILE_M * TILE_K / G + THREADS - 1) / THREADS;
const uint B_LOADS = (TILE_N * TILE_K / G + THREADS - 1) / THREADS;
vec4 a_reg[A_LOADS], b_reg[B_LOADS];

// Group g of a tile of op(X) (rows r0 .., k0 ..; X is [R, K] when
// k_contiguous, else [K, R]) as the (row, k) of its first element and the
// shared index, groups running along the contiguous side. Out-of-range
// elements read as 0 (past K they would add to real outputs; past R they feed
// outputs that are never stored); addresses are clamped, values selected.
vec4 fetch(uint type, bool k_contiguous, uint64_t X, uint R, uint r0, uint TILE_R, uint k0,
           uint g) {
    const uint K = pc.k;
    uint along = k_contiguous ? TILE_K / G : TILE_R / G; // groups per tile row
    uint row_in = g / along, col = (g % along) * G;      // tile row (k or r) and column
    uint r = k_contiguous ? r0 + row_in : r0 + col;
    uint k = k_contiguous ? k0 + col : k0 + row_in;
    uint i = k_contiguous ? min(r, R - 1) * K + min(k, K - G) : min(k, K - 1) * R + min(r, R - G);
    vec4 v = VEC4 ? load4(type, X, i) : vec4(load1(type, X, i), 0.0, 0.0, 0.0);
    // VEC4: the contiguous side is a multiple of 4, so a group is wholly in
    // or out of the matrix.
    return r < R && k < K ? v : vec4(0.0);
}

void fetch_tiles(uint64_t A, uint64_t B, uint m0, uint n0, uint k0) {
    uint lid = gl_LocalInvocationIndex;
    [[unroll]] for (uint i = 0; i < A_LOADS; i++) {
        uint g = i * THREADS + lid;
        a_reg[i] = g < TILE_M * TILE_K / G
                       ? fetch(A_TYPE, A_K_CONTIGUOUS, A, pc.m, m0, TILE_M, k0, g)
                       : vec4(0.0);
    }
    [[unroll]] for (uint i = 0; i < B_LOADS; i++) {
        uint g = i * THREADS + lid;
        b_reg[i] = g < TILE_N * TILE_K / G
                       ? fetch(B_TYPE, B_K_CONTIGUOUS, B, pc.n, n0, TILE_N, k0, g)
                       : vec4(0.0);
    }
}

// Largest magnitude of the fetched A and B elements of this subgroup into
// out_sh (slot gl_SubgroupID); every subgroup writes, so no slot is stale.
void tile_maxima() {
    float ma = 0.0, mb = 0.0;
    [[unroll]] for (uint i = 0; i < A_LOADS; i++) {
        vec4 x = abs(a_reg[i]);
        ma = max(ma, max(max(x.x, x.y), max(x.z, x.w)));
    }
    [[unroll]] for (uint i = 0; i < B_LOADS; i++) {
        vec4 x = abs(b_reg[i]);
        mb = max(mb, max(max(x.x, x.y), max(x.z, x.w)));
    }
    ma = subgroupMax(ma);
    mb = subgroupMax(mb);
    if (subgroupElect()) {
        out_sh[gl_SubgroupID] = ma;
        out_sh[64 + gl_SubgroupID] = mb;
    }
}

// The power of two that brings the tile's largest magnitude to [2^14, 2^15)
// (1 for an all-zero tile), from the subgroups' maxima.
float tile_scale(uint which) {
    float mx = 0.0;
    for (uint s = 0; s < gl_NumSubgroups; s++) mx = max(mx, out_sh[64 * which + s]);
    if (mx == 0.0 || isinf(mx) || isnan(mx)) return 1.0;
    int e;
    frexp(mx, e); // mx = f * 2^e, f in [0.5, 1)
    return ldexp(1.0, clamp(15 - e, -126, 126));
}

void store_tiles(uint buf, float sa, float sb) {
    uint lid = gl_LocalInvocationIndex;
    [[unroll]] for (uint i = 0; i < A_LOADS; i++) {
        uint g = i * THREADS + lid;
        if (g < TILE_M * TILE_K / G) {
            uint along = A_K_CONTIGUOUS ? TILE_K / G : TILE_M / G;
            uint at = buf * A_TILE + (g / along) * A_STRIDE + (g % along) * G;
            [[unroll]] for (uint e = 0; e < G; e++) a_sh[at + e] = float16_t(a_reg[i][e] * sa);
        }
    }
    [[unroll]] for (uint i = 0; i < B_LOADS; i++) {
        uint g = i * THREADS + lid;
        if (g < TILE_N * TILE_K / G) {
            uint along = B_K_CONTIGUOUS ? TILE_K / G : TILE_N / G;
            uint at = buf * B_TILE + (g / along) * B_STRIDE + (g % along) * G;
            [[unroll]] for (uint e = 0; e < G; e++) b_sh[at + e] = float16_t(b_reg[i][e] * sb);
        }
    }
}

#if defined(COOPMAT_NV)
#extension GL_NV_cooperative_matrix : require
#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, CM, CK>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, CK, CN>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>
#define LOAD(m, arr, at, stride, col_major) coopMatLoadNV(m, arr, at, stride, col_major)
#define STORE(m, arr, at, stride) coopMatStoreNV(m, arr, at, stride, false)
#define MULADD(a, b, c) coopMatMulAddNV(a, b, c)
#else
#extension GL_KHR_cooperative_matrix : require
#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, CM, CK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, CK, CN, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, CM, CN, gl_MatrixUseAccumulator>
#define LOAD(m, arr, at, stride, col_major)                                                        \
    coopMatLoad(m, arr, at, stride,                                                                \
                col_major ? gl_CooperativeMatrixLayoutColumnMajor                                  \
                          : gl_CooperativeMatrixLayoutRowMajor)
#define STORE(m, arr, at, stride) coopMatStore(m, arr, at, stride, gl_CooperativeMatrixLayoutRowMajor)
#define MULADD(a, b, c) coopMatMulAdd(a, b, c)
#endif

MAT_C acc[FM * FN];

// One step: the products of the tiles in buffer `buf`, added to acc times
// `inv` (the inverse of the tiles' scales).
void multiply(uint buf, uint wm, uint wn, float inv) {
    MAT_A fa[FM];
    MAT_B fb[FN];
    MAT_C part[FM * FN];
    [[unroll]] for (uint i = 0; i < FM * FN; i++) part[i] = MAT_C(0.0);
    [[unroll]] for (uint kk = 0; kk < KSTEPS; kk++) {
        [[unroll]] for (uint i = 0; i < FM; i++) {
            uint m = wm * FM * CM + i * CM, k = kk * CK;
            // Element (m, k) at m * stride + k (k-contiguous) or k * stride + m.
            if (A_K_CONTIGUOUS) LOAD(fa[i], a_sh, buf * A_TILE + m * A_STRIDE + k, A_STRIDE, false);
            else LOAD(fa[i], a_sh, buf * A_TILE + k * A_STRIDE + m, A_STRIDE, true);
        }
        [[unroll]] for (uint j = 0; j < FN; j++) {
            uint n = wn * FN * CN + j * CN, k = kk * CK;
            // Element (k, n) at n * stride + k (k-contiguous) or k * stride + n.
            if (B_K_CONTIGUOUS) LOAD(fb[j], b_sh, buf * B_TILE + n * B_STRIDE + k, B_STRIDE, true);
            else LOAD(fb[j], b_sh, buf * B_TILE + k * B_STRIDE + n, B_STRIDE, false);
        }
        [[unroll]] for (uint i = 0; i < FM; i++)
            [[unroll]] for (uint j = 0; j < FN; j++)
                part[i * FN + j] = MULADD(fa[i], fb[j], part[i * FN + j]);
    }
    [[unroll]] for (uint i = 0; i < FM * FN; i++) acc[i] = acc[i] + part[i] * inv;
}

// Writes the subgroup's accumulators through out_sh: each lane stores
// elements of one CM x CN block at a time, within the matrix, in C's type.
void write_out(uint64_t C, uint m0, uint n0, uint wm, uint wn, uint sg) {
    uint base = sg * CM * CN;
    [[unroll]] for (uint i = 0; i < FM; i++) {
        [[unroll]] for (uint j = 0; j < FN; j++) {
            STORE(acc[i * FN + j], out_sh, base, CN);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            uint gm0 = m0 + wm * FM * CM + i * CM, gn0 = n0 + wn * FN * CN + j * CN;
            for (uint e = gl_SubgroupInvocationID; e < CM * CN; e += gl_SubgroupSize) {
                uint gm = gm0 + e / CN, gn = gn0 + e % CN;
                if (gm < pc.m && gn < pc.n) {
                    uint at = gm * pc.n + gn;
                    float v = out_sh[base + e];
                    if (pc.accumulate != 0) v += load1(C_TYPE, C, at);
                    if (C_TYPE == 0) Floats(C).v[at] = v;
                    else Halfs(C).v[at] = uint16_t(to_bits(C_TYPE, v));
                }
            }
            subgroupBarrier(); // out_sh is read before the next block overwrites it
        }
    }
}

void main() {
    const uint sg = gl_SubgroupID;
    // Subgroups beyond WARPS (a driver that chose smaller subgroups than the
    // host planned for) load and store tiles but own no block of C.
    const bool owner = sg < WARPS;
    const uint wm = owner ? sg / WARPS_N : 0, wn = owner ? sg % WARPS_N : 0;
    const uint m0 = gl_WorkGroupID.y * TILE_M, n0 = gl_WorkGroupID.x * TILE_N;
    const uint64_t z = gl_WorkGroupID.z;
    const uint64_t A = pc.a + z * pc.stride_a, B = pc.b + z * pc.stride_b;

    [[unroll]] for (uint i = 0; i < FM * FN; i++) acc[i] = MAT_C(0.0);

    fetch_tiles(A, B, m0, n0, 0);
    tile_maxima();
    barrier();
    float sa = tile_scale(0), sb = tile_scale(1);
    store_tiles(0, sa, sb);
    barrier();
    uint buf = 0;
    for (uint k0 = 0; k0 < pc.k; k0 += TILE_K) {
        bool more = k0 + TILE_K < pc.k;
        float inv = (1.0 / sa) * (1.0 / sb); // sa * sb alone could overflow
        if (more) {
            fetch_tiles(A, B, m0, n0, k0 + TILE_K);
            tile_maxima();
        }
        if (owner) multiply(buf, wm, wn, inv);
        barrier(); // the maxima are in; buffer buf ^ 1 was last read a step ago
        if (more) {
            sa = tile_scale(0);
            sb = tile_scale(1);
            store_tiles(buf ^ 1, sa, sb);
        }
        barrier();
        buf ^= 1;
    }
    if (owner) write_out(pc.c + z * pc.stride_c, m0, n0, wm, wn, sg);
}
