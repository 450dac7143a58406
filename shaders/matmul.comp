#version 460
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// C[M,N] (+)= op(A) . op(B), one workgroup per TILE_M x TILE_N block of C,
// z = batch index. The three layouts the forward and backward passes need:
//   NT: A[M,K], B[N,K]   y  = x . W^T   (forward)
//   NN: A[M,K], B[K,N]   dx = dy . W    (backward, input gradient)
//   TN: A[K,M], B[K,N]   dW = dy^T . x  (backward, weight gradient)
// Each invocation accumulates a TM x TN register block in fp32, over k in a
// fixed order (k = 0, 1, ..., K-1), so the result is bit-identical from run
// to run and does not depend on the subgroup size (no subgroup operations).
//
// Operands: A and B in fp32, or both in bf16 / fp16 storage (ELEM_BF16,
// ELEM_F16); C like them, or fp32 with C_F32 (a weight gradient accumulating
// into the fp32 gradients, or the logits the loss reads in fp32). Products
// and sums are fp32 in every variant.
//
// CAT: one dimension is a concatenation of up to 3 parts, each operand that
// spans it held as one matrix per part (separate buffers, nothing copied):
//   NT: n   C_p[M, n_p] = A . B_p[n_p, K]^T          y_p = x . W_p^T
//   NN: k   C = sum_p A_p[M, k_p] . B_p[k_p, N]      dx = [dy_0|dy_1|..] . [W_0;W_1;..]
//   TN: m   C_p[m_p, N] = A_p[K, m_p]^T . B          dW_p = dy_p^T . x
// SWIGLU (NT): B is two [N, K] matrices (W1, W3); a workgroup's register
// blocks pair gate column j with up column j (an index remap in the B loader:
// an invocation's TN columns are TN/2 gate columns and the same up columns),
// so the epilogue writes gate, up and act = silu(gate) * up without any
// exchange between invocations.
// SWIGLU_BWD (NN): C is dact = dY . W2, never stored: the epilogue rounds it
// to the storage type (as a separate kernel would read it back), reads gate
// and up at each element and writes SwiGLU's input gradients dgate and dup.
// One part: a = {dY, gate, up}, b = {W2}, c = {dgate, dup}, start1 = start2 = K.
// variants: matmul_nt=LAYOUT_NT matmul_nn=LAYOUT_NN matmul_tn=LAYOUT_TN matmul_nt_bf16=LAYOUT_NT,ELEM_BF16 matmul_nn_bf16=LAYOUT_NN,ELEM_BF16 matmul_tn_bf16=LAYOUT_TN,ELEM_BF16 matmul_nt_bf16_c32=LAYOUT_NT,ELEM_BF16,C_F32 matmul_nn_bf16_c32=LAYOUT_NN,ELEM_BF16,C_F32 matmul_tn_bf16_c32=LAYOUT_TN,ELEM_BF16,C_F32 matmul_nt_f16=LAYOUT_NT,ELEM_F16 matmul_nn_f16=LAYOUT_NN,ELEM_F16 matmul_tn_f16=LAYOUT_TN,ELEM_F16 matmul_nt_f16_c32=LAYOUT_NT,ELEM_F16,C_F32 matmul_nn_f16_c32=LAYOUT_NN,ELEM_F16,C_F32 matmul_tn_f16_c32=LAYOUT_TN,ELEM_F16,C_F32 matmul_nt_cat=LAYOUT_NT,CAT matmul_nt_cat_bf16=LAYOUT_NT,CAT,ELEM_BF16 matmul_nt_cat_bf16_c32=LAYOUT_NT,CAT,ELEM_BF16,C_F32 matmul_nt_cat_f16=LAYOUT_NT,CAT,ELEM_F16 matmul_nt_cat_f16_c32=LAYOUT_NT,CAT,ELEM_F16,C_F32 matmul_nn_cat=LAYOUT_NN,CAT matmul_nn_cat_bf16=LAYOUT_NN,CAT,ELEM_BF16 matmul_nn_cat_bf16_c32=LAYOUT_NN,CAT,ELEM_BF16,C_F32 matmul_nn_cat_f16=LAYOUT_NN,CAT,ELEM_F16 matmul_nn_cat_f16_c32=LAYOUT_NN,CAT,ELEM_F16,C_F32 matmul_tn_cat=LAYOUT_TN,CAT matmul_tn_cat_bf16=LAYOUT_TN,CAT,ELEM_BF16 matmul_tn_cat_bf16_c32=LAYOUT_TN,CAT,ELEM_BF16,C_F32 matmul_tn_cat_f16=LAYOUT_TN,CAT,ELEM_F16 matmul_tn_cat_f16_c32=LAYOUT_TN,CAT,ELEM_F16,C_F32 matmul_nt_swiglu=LAYOUT_NT,SWIGLU matmul_nt_swiglu_bf16=LAYOUT_NT,SWIGLU,ELEM_BF16 matmul_nt_swiglu_f16=LAYOUT_NT,SWIGLU,ELEM_F16 matmul_nn_swiglu_bwd=LAYOUT_NN,SWIGLU_BWD matmul_nn_swiglu_bwd_bf16=LAYOUT_NN,SWIGLU_BWD,ELEM_BF16 matmul_nn_swiglu_bwd_f16=LAYOUT_NN,SWIGLU_BWD,ELEM_F16
#include "lws.glsl"
#if defined(SWIGLU) || defined(SWIGLU_BWD)
#include "swiglu.glsl"
#endif

#if defined(LAYOUT_NT) + defined(LAYOUT_NN) + defined(LAYOUT_TN) != 1
#error "matmul.comp: define exactly one of LAYOUT_NT, LAYOUT_NN, LAYOUT_TN (see the variants line)"
#endif
#if defined(CAT) || defined(SWIGLU) || defined(SWIGLU_BWD)
#define PARTS_PUSH
#endif
#if defined(SWIGLU) && (!defined(LAYOUT_NT) || defined(CAT) || defined(C_F32))
#error "matmul.comp: SWIGLU is an NT variant with C of the operands' type, without CAT"
#endif
#if defined(SWIGLU_BWD) && (!defined(LAYOUT_NN) || defined(CAT) || defined(C_F32))
#error "matmul.comp: SWIGLU_BWD is an NN variant with C of the operands' type, without CAT"
#endif
// Whether each operand is stored contiguous along k (else along m or n).
#if defined(LAYOUT_TN)
const bool A_K_CONTIGUOUS = false;
#else
const bool A_K_CONTIGUOUS = true;
#endif
#if defined(LAYOUT_NT)
const bool B_K_CONTIGUOUS = true;
#else
const bool B_K_CONTIGUOUS = false;
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
// Tile sides: TILE_M a multiple of 4*WG_Y, TILE_N of 4*WG_X, TILE_K of 4
// (checked by the host).
layout(constant_id = 3) const uint TILE_M = 64;
layout(constant_id = 4) const uint TILE_N = 64;
layout(constant_id = 5) const uint TILE_K = 16;
// VEC4: M, N, K are multiples of 4 and every operand address and batch
// stride is aligned to 4 elements, so groups of 4 elements along a row are either
// wholly inside the matrix or wholly outside: loads and stores move whole
// vec4s. Model shapes take this path; other shapes take the element-wise one.
layout(constant_id = 6) const bool VEC4 = false;

#if defined(PARTS_PUSH)
// One problem (no batch). An operand that spans the concatenated dimension
// has one address per part, another its address in [0]. SWIGLU: b = {W1, W3},
// c = {gate, up, act}, n = the width of each (the FFN width).
layout(push_constant, scalar) uniform Push {
    uint64_t c[3], a[3], b[3];
    uint m, n, k;
    uint accumulate;     // 1: C += op(A) . op(B)
    uint start1, start2; // where parts 1 and 2 begin (an absent part at the end)
} pc;
#else
layout(push_constant, scalar) uniform Push {
    uint64_t c, a, b;                      // matrix 0 of each operand
    uint64_t stride_c, stride_a, stride_b; // bytes from one batch entry to the next
    uint m, n, k;
    uint accumulate; // 1: C += op(A) . op(B)
} pc;
#endif

// Four consecutive elements of A or B at an address aligned to 4 elements
// (the VEC4 path).
vec4 load4(uint64_t base, uint elem) {
    return ELEM4_LOAD(Elem4s(base + ELEM_BYTES * uint64_t(elem)), 0);
}

// How each operand, as the row-major matrix it is stored as (A [M, K] or
// [K, M], B [N, K] or [K, N], C [M, N]), is cut into parts: along its rows,
// its columns, or not at all.
const uint CUT_NONE = 0, CUT_ROWS = 1, CUT_COLS = 2;
#if defined(LAYOUT_NT)
const uint A_CUT = CUT_NONE, B_CUT = CUT_ROWS, C_CUT = CUT_COLS;
#define CAT_TOTAL pc.n
#elif defined(LAYOUT_NN)
const uint A_CUT = CUT_COLS, B_CUT = CUT_ROWS, C_CUT = CUT_NONE;
#define CAT_TOTAL pc.k
#else
const uint A_CUT = CUT_COLS, B_CUT = CUT_NONE, C_CUT = CUT_ROWS;
#define CAT_TOTAL pc.m
#endif

#if defined(PARTS_PUSH)
uint64_t part_address(uint operand, uint p) {
    return operand == 0u ? pc.a[p] : operand == 1u ? pc.b[p] : pc.c[p];
}

// Element (row, col) of a row-major [rows, cols] operand (0: A, 1: B, 2: C)
// cut as `cut` says: the address of its part and the element's index there.
// A part along the columns is a matrix of its own width.
void locate_part(uint operand, uint cut, uint row, uint col, uint cols, out uint64_t base,
                 out uint at) {
    uint i = cut == CUT_ROWS ? row : col;
    uint p = cut == CUT_NONE ? 0u : i >= pc.start2 ? 2u : i >= pc.start1 ? 1u : 0u;
    uint start = p == 0u ? 0u : p == 1u ? pc.start1 : pc.start2;
    uint end = p == 0u ? pc.start1 : p == 1u ? pc.start2 : CAT_TOTAL;
    base = part_address(operand, p);
    if (cut == CUT_ROWS) at = (row - start) * cols + col;
    else if (cut == CUT_COLS) at = row * (end - start) + col - start;
    else at = row * cols + col;
}
#endif

#if defined(SWIGLU)
// Row r of the workgroup's B tile (r = its columns of C, n0 .. n0+TILE_N-1):
// invocation column block b = (r - n0) / TN holds TN/2 gate columns, then
// the same up columns. Which of W1 (0) and W3 (1), and the row j of it
// (clamped to the last row: rows past N feed only outputs never stored).
void swiglu_row(uint r, out uint w, out uint j) {
    const uint TN2 = TILE_N / gl_WorkGroupSize.x / 2;
    uint l = r - gl_WorkGroupID.x * TILE_N, c = l % (2 * TN2);
    w = c < TN2 ? 0u : 1u;
    j = min(gl_WorkGroupID.x * (TILE_N / 2) + l / (2 * TN2) * TN2 + c % TN2, pc.n - 1);
}
#endif

// Element (r, k) of op(X) (clamped into the matrix): X [R, K] when
// k_contiguous, else [K, R]. The address of its matrix and its index there.
void locate(bool is_a, bool k_contiguous, uint64_t X, uint R, uint r, uint k, out uint64_t base,
            out uint at) {
#if defined(SWIGLU)
    if (!is_a) {
        uint w, j;
        swiglu_row(r, w, j);
        base = pc.b[w];
        at = j * pc.k + k;
        return;
    }
#endif
#if defined(PARTS_PUSH)
    locate_part(is_a ? 0u : 1u, is_a ? A_CUT : B_CUT, k_contiguous ? r : k, k_contiguous ? k : r,
                k_contiguous ? pc.k : R, base, at);
#else
    base = X;
    at = k_contiguous ? r * pc.k + k : k * R + r;
#endif
}

// C: fp32 (C_F32, or an fp32 variant), else ELEM like A and B.
#if defined(C_F32)
#define C_BYTES 4
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer COut { float v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 16) buffer COut4 { vec4 v[]; };
#define C_LOAD(p, i) ((p).v[i])
#define C_STORE(p, i, x) ((p).v[i] = (x))
#define C4_LOAD(p, i) ((p).v[i])
#define C4_STORE(p, i, x) ((p).v[i] = (x))
#else
#define C_BYTES ELEM_BYTES
#define COut Elems
#define COut4 Elem4s
#define C_LOAD ELEM_LOAD
#define C_STORE ELEM_STORE
#define C4_LOAD ELEM4_LOAD
#define C4_STORE ELEM4_STORE
#endif

// Element (gm, gn) of C: the address of its matrix and its index there.
void locate_c(uint64_t C, uint gm, uint gn, out uint64_t base, out uint at) {
#if defined(PARTS_PUSH)
    locate_part(2u, C_CUT, gm, gn, pc.n, base, at);
#else
    base = C;
    at = gm * pc.n + gn;
#endif
}

const uint WG_X = gl_WorkGroupSize.x;
const uint WG_Y = gl_WorkGroupSize.y;
const uint THREADS = WG_X * WG_Y;
// Register block: rows ty*TM .. ty*TM+TM-1, columns tx*TN .. tx*TN+TN-1.
const uint TM = TILE_M / WG_Y;
const uint TN = TILE_N / WG_X;

// The tiles of op(A) and op(B) in vec4s: [TILE_K][TILE_M/4 + pad] and
// [TILE_K][TILE_N/4 + pad], m or n fastest, so the multiply loop reads a
// register block's 4 rows or columns in one access. A source contiguous along
// k is transposed on the way in: consecutive invocations then store down a
// column of the tile, and one vec4 of padding spreads those stores over banks.
const uint A_ROW = TILE_M / 4 + (A_K_CONTIGUOUS ? 1 : 0);
const uint B_ROW = TILE_N / 4 + (B_K_CONTIGUOUS ? 1 : 0);
shared vec4 a_tile[TILE_K * A_ROW];
shared vec4 b_tile[TILE_K * B_ROW];

void tile_store(bool is_a, uint at, vec4 v) {
    if (is_a) a_tile[at] = v;
    else b_tile[at] = v;
}
void tile_store1(bool is_a, uint at, uint lane, float v) {
    if (is_a) a_tile[at][lane] = v;
    else b_tile[at][lane] = v;
}

// Copies rows r0 .. r0+TILE_R-1, k0 .. k0+TILE_K-1 of op(X) into a tile. X
// is [R, K] row-major when k_contiguous, else [K, R]. Past k = K the tile
// holds zeros, since those products would add to real outputs; past r = R it
// holds a copy of the last row (VEC4) or zeros, feeding only outputs that are
// never stored. Addresses are clamped and values selected, so no load branches.
void load_tile(bool is_a, bool k_contiguous, uint64_t X, uint R, uint r0, uint TILE_R, uint ROW4,
               uint k0, uint lid) {
    const uint K = pc.k;
    if (VEC4 && k_contiguous) {
        // 4 rows x 4 k per group: four row loads, a 4x4 transpose in registers.
        uint GROUPS = TILE_R / 4 * (TILE_K / 4);
        for (uint r = 0; r < (GROUPS + THREADS - 1) / THREADS; r++) {
            uint g = r * THREADS + lid;
            if (GROUPS % THREADS == 0 || g < GROUPS) {
                uint rq = g / (TILE_K / 4), kq = g % (TILE_K / 4);
                uint k = k0 + 4 * kq, kc = min(k, K - 4);
                vec4 row[4];
                [[unroll]] for (uint i = 0; i < 4; i++) {
                    uint64_t base;
                    uint at;
                    locate(is_a, true, X, R, min(r0 + 4 * rq + i, R - 1), kc, base, at);
                    row[i] = load4(base, at);
                }
                [[unroll]] for (uint j = 0; j < 4; j++) {
                    vec4 v = vec4(row[0][j], row[1][j], row[2][j], row[3][j]);
                    tile_store(is_a, (4 * kq + j) * ROW4 + rq, k < K ? v : vec4(0.0));
                }
            }
        }
    } else if (VEC4) {
        // 4 consecutive rows of one k per group: stored as loaded.
        uint GROUPS = TILE_K * (TILE_R / 4);
        for (uint r = 0; r < (GROUPS + THREADS - 1) / THREADS; r++) {
            uint g = r * THREADS + lid;
            if (GROUPS % THREADS == 0 || g < GROUPS) {
                uint kk = g / (TILE_R / 4), rq = g % (TILE_R / 4);
                uint k = k0 + kk;
                uint64_t base;
                uint at;
                locate(is_a, false, X, R, min(r0 + 4 * rq, R - 4), min(k, K - 1), base, at);
                vec4 v = load4(base, at);
                tile_store(is_a, kk * ROW4 + rq, k < K ? v : vec4(0.0));
            }
        }
    } else {
        // One element per step, consecutive invocations along the contiguous
        // dimension of X.
        for (uint r = 0; r < (TILE_R * TILE_K + THREADS - 1) / THREADS; r++) {
            uint i = r * THREADS + lid;
            if ((TILE_R * TILE_K) % THREADS == 0 || i < TILE_R * TILE_K) {
                uint rr = k_contiguous ? i / TILE_K : i % TILE_R;
                uint kk = k_contiguous ? i % TILE_K : i / TILE_R;
                uint row = r0 + rr, k = k0 + kk;
                uint64_t base;
                uint at;
                locate(is_a, k_contiguous, X, R, min(row, R - 1), min(k, K - 1), base, at);
                float v = ELEM_LOAD(Elems(base), at);
                tile_store1(is_a, kk * ROW4 + rr / 4, rr % 4, row < R && k < K ? v : 0.0);
            }
        }
    }
}

#if defined(SWIGLU) || defined(SWIGLU_BWD)
// The value a stored activation reads back as: act is computed from the
// stored gate and up, as the separate swiglu kernel would (SWIGLU_BWD: dact
// as the separate swiglu_bwd kernel would read it).
float stored(float x) {
#if defined(ELEM_BF16) || defined(ELEM_F16)
    return LWS_UNPACK16(LWS_PACK16(x));
#else
    return x;
#endif
}
#endif

#if defined(SWIGLU)
// gate, up and act = silu(gate) * up at element `at` of [M, N], act from
// gate and up as stored; four consecutive elements at once.
void swiglu_store(uint at, float g, float u) {
    float gs = stored(g);
    ELEM_STORE(Elems(pc.c[0]), at, g);
    ELEM_STORE(Elems(pc.c[1]), at, u);
    ELEM_STORE(Elems(pc.c[2]), at, swiglu_forward(gs, stored(u)));
}
void swiglu_store4(uint at, vec4 g, vec4 u) {
    uint64_t off = ELEM_BYTES * uint64_t(at);
    vec4 h;
    [[unroll]] for (uint e = 0; e < 4; e++) {
        float gs = stored(g[e]);
        h[e] = swiglu_forward(gs, stored(u[e]));
    }
    ELEM4_STORE(Elem4s(pc.c[0] + off), 0, g);
    ELEM4_STORE(Elem4s(pc.c[1] + off), 0, u);
    ELEM4_STORE(Elem4s(pc.c[2] + off), 0, h);
}
#endif

#if defined(SWIGLU_BWD)
// dgate, dup at element `at` of [M, N] from dact (the GEMM's value there)
// and gate, up (a[1], a[2]); four consecutive elements at once.
void swiglu_bwd_store(uint at, float dact) {
    float dg, du;
    swiglu_backward(stored(dact), ELEM_LOAD(Elems(pc.a[1]), at), ELEM_LOAD(Elems(pc.a[2]), at),
                    dg, du);
    ELEM_STORE(Elems(pc.c[0]), at, dg);
    ELEM_STORE(Elems(pc.c[1]), at, du);
}
void swiglu_bwd_store4(uint at, vec4 dact) {
    uint64_t off = ELEM_BYTES * uint64_t(at);
    vec4 g = ELEM4_LOAD(Elem4s(pc.a[1] + off), 0), u = ELEM4_LOAD(Elem4s(pc.a[2] + off), 0);
    vec4 dg, du;
    [[unroll]] for (uint e = 0; e < 4; e++) swiglu_backward(stored(dact[e]), g[e], u[e], dg[e], du[e]);
    ELEM4_STORE(Elem4s(pc.c[0] + off), 0, dg);
    ELEM4_STORE(Elem4s(pc.c[1] + off), 0, du);
}
#endif

void main() {
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    const uint lid = ty * WG_X + tx;
    const uint m0 = gl_WorkGroupID.y * TILE_M, n0 = gl_WorkGroupID.x * TILE_N;
#if defined(PARTS_PUSH)
    const uint64_t A = pc.a[0], B = pc.b[0];
#else
    const uint64_t z = gl_WorkGroupID.z;
    const uint64_t A = pc.a + z * pc.stride_a, B = pc.b + z * pc.stride_b;
#endif
#if defined(SWIGLU)
    // B's rows come from swiglu_row, which keeps them inside W1 and W3.
    const uint B_ROWS = n0 + TILE_N;
#else
    const uint B_ROWS = pc.n;
#endif
    // The register block and the loops over it are unrolled so that it lives
    // in registers: an indexed array costs a per-lane loop on CPU drivers.
    float acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; i++) acc[i] = 0.0;
    float a_reg[TM], b_reg[TN];

    for (uint k0 = 0; k0 < pc.k; k0 += TILE_K) {
        load_tile(true, A_K_CONTIGUOUS, A, pc.m, m0, TILE_M, A_ROW, k0, lid);
        load_tile(false, B_K_CONTIGUOUS, B, B_ROWS, n0, TILE_N, B_ROW, k0, lid);
        barrier();
        for (uint kk = 0; kk < TILE_K; kk++) {
            // Whole vec4s: each shared-memory access is a loop over the lanes
            // on CPU drivers, so fewer, wider ones matter most here.
            [[unroll]] for (uint i = 0; i < TM / 4; i++) {
                vec4 v = a_tile[kk * A_ROW + ty * (TM / 4) + i];
                [[unroll]] for (uint c = 0; c < 4; c++) a_reg[4 * i + c] = v[c];
            }
            [[unroll]] for (uint j = 0; j < TN / 4; j++) {
                vec4 v = b_tile[kk * B_ROW + tx * (TN / 4) + j];
                [[unroll]] for (uint c = 0; c < 4; c++) b_reg[4 * j + c] = v[c];
            }
            [[unroll]] for (uint i = 0; i < TM; i++)
                [[unroll]] for (uint j = 0; j < TN; j++)
                    acc[i * TN + j] = fma(a_reg[i], b_reg[j], acc[i * TN + j]);
        }
        barrier();
    }
#if defined(SWIGLU)
    // The paired register block: columns c < TN/2 are gate columns
    // j = wx*TILE_N/2 + tx*TN/2 + c, columns TN/2 + c the same up columns.
    const uint TN2 = TN / 2;
    const uint j0 = gl_WorkGroupID.x * (TILE_N / 2) + tx * TN2;
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint gm = m0 + ty * TM + i;
        if (VEC4 && TN2 % 4 == 0) {
            [[unroll]] for (uint c = 0; c < TN2; c += 4) {
                uint j = j0 + c;
                if (gm < pc.m && j < pc.n) {
                    uint at = gm * pc.n + j;
                    vec4 g = vec4(acc[i * TN + c], acc[i * TN + c + 1], acc[i * TN + c + 2],
                                  acc[i * TN + c + 3]);
                    vec4 u = vec4(acc[i * TN + TN2 + c], acc[i * TN + TN2 + c + 1],
                                  acc[i * TN + TN2 + c + 2], acc[i * TN + TN2 + c + 3]);
                    swiglu_store4(at, g, u);
                }
            }
        } else {
            [[unroll]] for (uint c = 0; c < TN2; c++) {
                uint j = j0 + c;
                if (gm < pc.m && j < pc.n) {
                    swiglu_store(gm * pc.n + j, acc[i * TN + c], acc[i * TN + TN2 + c]);
                }
            }
        }
    }
#else
    // C (+)= the register block: rows m0 + ty*TM.., columns n0 + tx*TN..
    // (SWIGLU_BWD: dgate and dup from it instead, C never stored)
#if defined(PARTS_PUSH)
    const uint64_t C = pc.c[0];
#else
    const uint64_t C = pc.c + uint64_t(gl_WorkGroupID.z) * pc.stride_c;
#endif
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint gm = m0 + ty * TM + i;
        if (VEC4) {
            [[unroll]] for (uint j = 0; j < TN / 4; j++) {
                uint gn = n0 + tx * TN + 4 * j;
                if (gm < pc.m && gn < pc.n) {
                    uint64_t base;
                    uint at;
                    locate_c(C, gm, gn, base, at);
                    COut4 out_ = COut4(base + C_BYTES * uint64_t(at));
                    vec4 v = vec4(acc[i * TN + 4 * j], acc[i * TN + 4 * j + 1],
                                  acc[i * TN + 4 * j + 2], acc[i * TN + 4 * j + 3]);
#if defined(SWIGLU_BWD)
                    swiglu_bwd_store4(at, v);
#else
                    if (pc.accumulate != 0) v += C4_LOAD(out_, 0);
                    C4_STORE(out_, 0, v);
#endif
                }
            }
        } else {
            [[unroll]] for (uint j = 0; j < TN; j++) {
                uint gn = n0 + tx * TN + j;
                if (gm < pc.m && gn < pc.n) {
                    uint64_t base;
                    uint at;
                    locate_c(C, gm, gn, base, at);
                    COut out_ = COut(base);
                    float v = acc[i * TN + j];
#if defined(SWIGLU_BWD)
                    swiglu_bwd_store(at, v);
#else
                    if (pc.accumulate != 0) v += C_LOAD(out_, at);
                    C_STORE(out_, at, v);
#endif
                }
            }
        }
    }
#endif
}
