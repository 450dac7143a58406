#version 460
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#if !defined(COOPMAT_EMU)
#extension GL_KHR_memory_scope_semantics : require
#endif
// Causal GQA attention forward on matrix units (cooperative matrices): the
// math of attention_fwd.comp, one workgroup per (block of B query rows,
// query head, sequence), walking key/value blocks of B rows with an online
// softmax. Subgroup w (of WARPS = B / CM) owns the strip of CM query rows
// w*CM ..; subgroups beyond WARPS (a driver that picked smaller subgroups
// than the host planned for) help with loads and the softmax only.
//
// Per key block:
//   1. k and v are read into registers, each block's largest magnitude
//      found, and rounded to fp16 into k_sh, v_sh after power-of-two
//      scaling (below); v's loads are in flight during step 2.
//   2. S = Q . K^T on matrix units: each subgroup its strip, CM x B, from
//      its q fragments (kept in registers for the whole walk) and k_sh,
//      stored in fp32 to s_sh.
//   3. The online softmax in fp32 on the SIMT lanes, one invocation per
//      row, keys in order (results do not depend on the subgroup size):
//      the new row max, the rescale alpha, the probabilities rounded to fp16
//      into p_sh, and the row sum l of those rounded probabilities (so o is
//      exactly a convex combination of v with the weights the units used).
//   4. The unnormalised output O stays in shared memory in fp32 (o_sh).
//      Matrix-unit accumulators cannot be scaled per row, so the SIMT lanes
//      rescale o_sh by each row's alpha, then each subgroup loads its strip
//      of o_sh as accumulators, adds P . V on the units (fp32 accumulation)
//      and stores it back: no separate product buffer, one fp32 rounding per
//      step as in the other forms.
// At the end o = O / l is written in the storage type and lse = m + log(l).
//
// Range. fp16 holds 2^-24 .. 65504; q, k and v are activations of wide
// range (RMS-normed q and k are moderate, but nothing here relies on
// it). As in matmul_coopmat.comp each block of q (once), k and v (per key
// block) is scaled by the power of two that brings its largest magnitude to
// [2^14, 2^15) before rounding, so every element is rounded relative to its
// block's largest one (11 significant bits) whatever its magnitude. The
// scores are unscaled exactly (powers of two) before the softmax. O is kept
// in units of the current v block's scale and rescaled by the ratio of two
// scales (exact) when it changes; the scales are limited to 2^-60 .. 2^60
// so that ratio stays finite in fp32 (a block with largest magnitude below
// 2^-74 is rounded in fp16's subnormal range: irrelevant at that size;
// one above about 2^75 would overflow fp16 even scaled, and v blocks whose
// magnitudes differ by more than about 2^100 would overflow O's rescale:
// far beyond any activation).
// P is in [0, 1] and needs no scaling: a probability below 2^-14 is rounded
// to a multiple of 2^-24 against a row sum of at least 1.
//
// Shapes: B = BLOCK_Q = BLOCK_KV (the host sets both), a multiple of CM, CN
// and CK; head_dim = HEAD_DIM_MAX exactly (a multiple of CK and CN), so the
// fragment loops are unrolled. Shared rows are padded by 16 bytes (aligned
// for the matrix loads, spread over banks).
// Variants: NV and KHR matrix units; and the emulation (attention_fwd_cm_emu,
// COOPMAT_EMU below), the matrix operations on the SIMT lanes, so that the
// rest of the kernel runs in the tests on devices without matrix units.
// variants: attention_fwd_cm_nv=COOPMAT_NV attention_fwd_cm_nv_bf16=COOPMAT_NV,ELEM_BF16 attention_fwd_cm_nv_f16=COOPMAT_NV,ELEM_F16 attention_fwd_cm_emu=COOPMAT_EMU attention_fwd_cm_emu_bf16=COOPMAT_EMU,ELEM_BF16 attention_fwd_cm_emu_f16=COOPMAT_EMU,ELEM_F16
// variants-if LWS_GLSLANG_KHR_COOPMAT: attention_fwd_cm_khr=COOPMAT_KHR attention_fwd_cm_khr_bf16=COOPMAT_KHR,ELEM_BF16 attention_fwd_cm_khr_f16=COOPMAT_KHR,ELEM_F16
#include "lws.glsl"
#include "attention.glsl"

#if defined(COOPMAT_NV) + defined(COOPMAT_KHR) + defined(COOPMAT_EMU) != 1
#error "attention_fwd_coopmat.comp: define exactly one of COOPMAT_NV, COOPMAT_KHR, COOPMAT_EMU"
#endif

// The matrix-unit shape (fp16 x fp16 -> fp32, listed by the device).
layout(constant_id = 4) const uint CM = 16;
layout(constant_id = 5) const uint CN = 16;
layout(constant_id = 6) const uint CK = 16;

const uint B = BLOCK_Q;      // query rows per block = key rows per block
const uint D = HEAD_DIM_MAX; // head_dim
const uint DV4 = D / 4;      // vec4s per head row
const uint WARPS = B / CM;   // subgroups with a strip of query rows

const uint KV_STRIDE = D + 8; // fp16 rows of k_sh, v_sh (and q's while it is staged)
const uint S_STRIDE = B + 4;  // fp32 rows of s_sh
const uint P_STRIDE = B + 8;  // fp16 rows of p_sh
const uint O_STRIDE = D + 4;  // fp32 rows of o_sh
shared float16_t k_sh[B * KV_STRIDE]; // (B keys, D), scaled
shared float16_t v_sh[B * KV_STRIDE]; // (B keys, D), scaled
shared float s_sh[B * S_STRIDE];      // (B queries, B keys) scores, unscaled dot products
shared float16_t p_sh[B * P_STRIDE];  // (B queries, B keys) probabilities
shared float o_sh[B * O_STRIDE];      // (B queries, D) unnormalised output, times v's scale
shared float m_sh[B], l_sh[B];        // running max and sum per query row
shared float factor_sh[B];            // this step's rescale of each o_sh row
shared float max_sh[2 * WG];          // per subgroup: largest magnitude of q or k [0], v [1]

// Elements of a block each invocation carries from global memory to shared.
const uint LOADS = (B * DV4 + WG - 1) / WG;
vec4 reg[LOADS];

#if defined(COOPMAT_NV)
#extension GL_NV_cooperative_matrix : require
#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, CM, CK>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, CK, CN>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>
#define LOAD(m, arr, at, stride, col_major) coopMatLoadNV(m, arr, at, stride, col_major)
#define STORE(m, arr, at, stride) coopMatStoreNV(m, arr, at, stride, false)
#define MULADD(a, b, c) coopMatMulAddNV(a, b, c)
#define ZERO_C(m) m = MAT_C(0.0)
#define MM_UNROLL [[unroll]]
#elif defined(COOPMAT_KHR)
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
#define ZERO_C(m) m = MAT_C(0.0)
#define MM_UNROLL [[unroll]]
#else
// COOPMAT_EMU: the matrix operations on the SIMT lanes, so the kernel's data
// flow (layouts, strides, masks, scaling, the softmax, barriers) runs and is
// tested on devices without matrix units (the host passes the shape
// 16x16x16). An operand is where its fp16 elements lie in shared memory
// (q stays in q_sh, as k_sh is reused); the one accumulator a subgroup uses
// at a time lives in emu_acc, lane l owning elements l, l + subgroup size,
// ..., which it alone loads, updates (fp32 sums in k order) and stores.
// Shared memory beyond the kernel's: q_sh and emu_acc (the host adds them).
const uint EMU = 16;
shared float16_t q_sh[B * KV_STRIDE];
shared float emu_acc[WARPS * EMU * EMU];
struct EmuOp {
    uint src; // 0 q_sh, 1 k_sh, 2 v_sh, 3 p_sh
    uint at, stride;
    bool col_major;
};
#define MAT_A EmuOp
#define MAT_B EmuOp
#define MAT_C uint // the subgroup's slot of emu_acc
// Two levels, so that a macro naming the array (Q_STAGE) is expanded first.
#define LOAD(m, arr, at, stride, col_major) EMU_LOAD(m, arr, at, stride, col_major)
#define EMU_LOAD(m, arr, at, stride, col_major) emu_load_##arr(m, at, stride, col_major)
#define STORE(m, arr, at, stride) EMU_STORE(arr, at, stride)
#define EMU_STORE(arr, at, stride) emu_store_##arr(at, stride)
#define ZERO_C(m) m = emu_zero()
#define MULADD(a, b, c) emu_muladd(a, b)
// Its loops stay loops: unrolled, it takes minutes to compile on a CPU
// driver (whose small subgroups make LOADS large).
#define MM_UNROLL [[dont_unroll]]
void emu_load_q_sh(out EmuOp m, uint at, uint stride, bool col) { m = EmuOp(0, at, stride, col); }
void emu_load_k_sh(out EmuOp m, uint at, uint stride, bool col) { m = EmuOp(1, at, stride, col); }
void emu_load_v_sh(out EmuOp m, uint at, uint stride, bool col) { m = EmuOp(2, at, stride, col); }
void emu_load_p_sh(out EmuOp m, uint at, uint stride, bool col) { m = EmuOp(3, at, stride, col); }
float emu_elem(EmuOp m, uint r, uint c) {
    uint i = m.col_major ? m.at + c * m.stride + r : m.at + r * m.stride + c;
    if (m.src == 0) return float(q_sh[i]);
    if (m.src == 1) return float(k_sh[i]);
    if (m.src == 2) return float(v_sh[i]);
    return float(p_sh[i]);
}
// The subgroup's invocations need not all be active (a driver may run a
// workgroup in partial subgroups), so the elements are dealt among the
// active ones, the same way in every call.
#define EMU_OWN(e)                                                                                 \
    uint lane_ = subgroupExclusiveAdd(1u), lanes_ = subgroupAdd(1u);                               \
    for (uint e = lane_; e < EMU * EMU; e += lanes_)
uint emu_zero() {
    EMU_OWN(e) emu_acc[gl_SubgroupID * EMU * EMU + e] = 0.0;
    return 0;
}
void emu_load_o_sh(out uint m, uint at, uint stride, bool col) {
    EMU_OWN(e) emu_acc[gl_SubgroupID * EMU * EMU + e] = o_sh[at + (e / EMU) * stride + e % EMU];
    m = 0;
}
void emu_store_o_sh(uint at, uint stride) {
    EMU_OWN(e) o_sh[at + (e / EMU) * stride + e % EMU] = emu_acc[gl_SubgroupID * EMU * EMU + e];
}
void emu_store_s_sh(uint at, uint stride) {
    EMU_OWN(e) s_sh[at + (e / EMU) * stride + e % EMU] = emu_acc[gl_SubgroupID * EMU * EMU + e];
}
uint emu_muladd(EmuOp a, EmuOp b) {
    EMU_OWN(e) {
        float sum = emu_acc[gl_SubgroupID * EMU * EMU + e];
        for (uint k = 0; k < EMU; k++) sum += emu_elem(a, e / EMU, k) * emu_elem(b, k, e % EMU);
        emu_acc[gl_SubgroupID * EMU * EMU + e] = sum;
    }
    return 0;
}
#endif

MAT_A q_frag[D / CK]; // the subgroup's strip of q (CM x D), scaled
// Where q is staged on its way into q_frag: k_sh (free until the first key
// block), or q_sh in the emulation, whose operands stay in shared memory.
#if defined(COOPMAT_EMU)
#define Q_STAGE q_sh
#else
#define Q_STAGE k_sh
#endif

// fp16 rounding to nearest even on every device (a driver's own conversion
// may truncate): the rounded value is found in fp32, and converting it is
// exact (no 16-bit integers, which would need shaderInt16).
float16_t to_f16(float x) { return float16_t(unpackHalf2x16(lws_float_to_f16(x)).x); }

// Head rows row0 .. row0+B-1 of sequence b into reg (zero past seq), and
// this subgroup's largest magnitude of them into max_sh[slot * WG + subgroup];
// every subgroup writes its slot, so none is stale.
void fetch_block(Elem4s src, uint heads, uint head, uint b, uint row0, uint slot) {
    float mx = 0.0;
    MM_UNROLL for (uint i = 0; i < LOADS; i++) {
        uint e = i * WG + gl_LocalInvocationIndex, r = e / DV4;
        vec4 x = vec4(0.0);
        if (e < B * DV4 && row0 + r < pc.seq)
            x = ELEM4_LOAD(src, attn_index(b, row0 + r, heads, head, e % DV4));
        reg[i] = x;
        vec4 a = abs(x);
        mx = max(mx, max(max(a.x, a.y), max(a.z, a.w)));
    }
    mx = subgroupMax(mx);
    if (subgroupElect()) max_sh[slot * WG + gl_SubgroupID] = mx;
}

// The power of two that brings the block's largest magnitude (from the
// subgroups' maxima) to [2^14, 2^15), within 2^-60 .. 2^60; 1 for an
// all-zero or non-finite block.
float block_scale(uint slot) {
    float mx = 0.0;
    for (uint s = 0; s < gl_NumSubgroups; s++) mx = max(mx, max_sh[slot * WG + s]);
    if (mx == 0.0 || isinf(mx) || isnan(mx)) return 1.0;
    int e;
    frexp(mx, e); // mx = f * 2^e, f in [0.5, 1)
    return ldexp(1.0, clamp(15 - e, -60, 60));
}

// reg times `scale`, rounded to fp16, into a (B, D) shared tile.
#define STORE_BLOCK(tile, scale)                                                                   \
    MM_UNROLL for (uint i_ = 0; i_ < LOADS; i_++) {                                               \
        uint e_ = i_ * WG + gl_LocalInvocationIndex;                                               \
        if (e_ < B * DV4) {                                                                        \
            uint at_ = (e_ / DV4) * KV_STRIDE + (e_ % DV4) * 4;                                    \
            [[unroll]] for (uint c_ = 0; c_ < 4; c_++) tile[at_ + c_] = to_f16(reg[i_][c_] * (scale)); \
        }                                                                                          \
    }

// S strip (rows row0 .., all B keys) = Q . K^T into s_sh.
void scores(uint row0) {
    MM_UNROLL for (uint n = 0; n < B / CN; n++) {
        MAT_C acc;
        ZERO_C(acc);
        MM_UNROLL for (uint kk = 0; kk < D / CK; kk++) {
            MAT_B kf; // element (d, key) at key * KV_STRIDE + d: column-major
            LOAD(kf, k_sh, n * CN * KV_STRIDE + kk * CK, KV_STRIDE, true);
            acc = MULADD(q_frag[kk], kf, acc);
        }
        STORE(acc, s_sh, row0 * S_STRIDE + n * CN, S_STRIDE);
    }
}

// o_sh strip (rows row0 .., all D columns) += P . V.
void accumulate(uint row0) {
    MAT_A pf[B / CK];
    MM_UNROLL for (uint kk = 0; kk < B / CK; kk++)
        LOAD(pf[kk], p_sh, row0 * P_STRIDE + kk * CK, P_STRIDE, false);
    MM_UNROLL for (uint n = 0; n < D / CN; n++) {
        MAT_C acc;
        LOAD(acc, o_sh, row0 * O_STRIDE + n * CN, O_STRIDE, false);
        MM_UNROLL for (uint kk = 0; kk < B / CK; kk++) {
            MAT_B vf; // element (key, d) at key * KV_STRIDE + d: row-major
            LOAD(vf, v_sh, kk * CK * KV_STRIDE + n * CN, KV_STRIDE, false);
            acc = MULADD(pf[kk], vf, acc);
        }
        STORE(acc, o_sh, row0 * O_STRIDE + n * CN, O_STRIDE);
    }
}

// The online softmax of the block's rows against keys kv0 .. (s_sh times
// `unscale` are the scores): m, l, p_sh, and factor_sh = alpha * ratio, the
// rescale of o_sh (ratio: the new v scale over the previous one).
void softmax(uint q0, uint kv0, float unscale, float ratio) {
    for (uint r = gl_LocalInvocationIndex; r < B; r += WG) {
        uint qi = q0 + r;
        float m_old = m_sh[r], m_new = m_old;
        for (uint c = 0; c < B; c++)
            if (kv0 + c <= qi) m_new = max(m_new, s_sh[r * S_STRIDE + c] * unscale);
        // While no key was visible m = MASKED; the first visible key gives
        // alpha = exp(-huge) = 0 (o_sh and l are 0 then anyway).
        float alpha = exp(m_old - m_new), l = l_sh[r] * alpha;
        for (uint c = 0; c < B; c++) {
            float p = kv0 + c <= qi ? exp(s_sh[r * S_STRIDE + c] * unscale - m_new) : 0.0;
            float16_t ph = to_f16(p);
            p_sh[r * P_STRIDE + c] = ph;
            l += float(ph);
        }
        m_sh[r] = m_new;
        l_sh[r] = l;
        factor_sh[r] = alpha * ratio;
    }
}

void main() {
    const uint u = gl_LocalInvocationIndex;
    // Uniform in each subgroup, as the matrix operations need.
    const bool owner = gl_SubgroupID < WARPS;
    const uint row0 = owner ? gl_SubgroupID * CM : 0;
    const uint q0 = gl_WorkGroupID.x * B, h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    const uint kvh = h / (pc.q_heads / pc.kv_heads);

    // q, scaled and rounded, staged into each strip's fragments.
    fetch_block(pc.q, pc.q_heads, h, b, q0, 0);
    barrier();
    const float sq = block_scale(0), inv_q = 1.0 / sq;
    STORE_BLOCK(Q_STAGE, sq);
    for (uint e = u; e < B * O_STRIDE; e += WG) o_sh[e] = 0.0;
    for (uint r = u; r < B; r += WG) {
        m_sh[r] = MASKED;
        l_sh[r] = 0.0;
    }
    barrier();
    if (owner)
        MM_UNROLL for (uint kk = 0; kk < D / CK; kk++)
            LOAD(q_frag[kk], Q_STAGE, row0 * KV_STRIDE + kk * CK, KV_STRIDE, false);

    // Keys after the block's last query row are masked for all of its rows;
    // the blocks are aligned, so each row sees at least one key per block.
    float sv_old = 1.0;
    const uint kv_end = min(pc.seq, q0 + B);
    for (uint kv0 = 0; kv0 < kv_end; kv0 += B) {
        barrier(); // the previous step has finished with k_sh, v_sh, p_sh, o_sh, max_sh
        fetch_block(pc.k, pc.kv_heads, kvh, b, kv0, 0);
        barrier();
        float sk = block_scale(0);
        STORE_BLOCK(k_sh, sk);
        barrier();
        fetch_block(pc.v, pc.kv_heads, kvh, b, kv0, 1);
        if (owner) scores(row0);
        barrier();
        float sv = block_scale(1);
        // Powers of two within 2^-60 .. 2^60 (and the scale): a normal product.
        softmax(q0, kv0, inv_q * (1.0 / sk) * pc.scale, sv * (1.0 / sv_old));
        STORE_BLOCK(v_sh, sv);
        barrier();
        for (uint e = u; e < B * D; e += WG) o_sh[(e / D) * O_STRIDE + e % D] *= factor_sh[e / D];
        barrier();
        if (owner) accumulate(row0);
        sv_old = sv;
    }
    barrier();

    // Key 0 is visible to every row, so l >= 1 here.
    for (uint e = u; e < B * DV4; e += WG) {
        uint r = e / DV4, j = e % DV4;
        if (q0 + r >= pc.seq) continue;
        uint at = r * O_STRIDE + 4 * j;
        vec4 x = vec4(o_sh[at], o_sh[at + 1], o_sh[at + 2], o_sh[at + 3]);
        ELEM4_STORE(pc.o, attn_index(b, q0 + r, pc.q_heads, h, j), x * ((1.0 / sv_old) / l_sh[r]));
    }
    for (uint r = u; r < B; r += WG)
        if (q0 + r < pc.seq) pc.lse.v[attn_row_index(b, h, q0 + r)] = m_sh[r] + log(l_sh[r]);
}
