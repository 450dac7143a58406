#version 460
#extension GL_GOOGLE_include_directive : require
// Fused softmax cross-entropy over a vocabulary cut into chunks, in four passes
// (spec constant PASS), all with fixed reduction orders (deterministic):
//   pass 0 (one workgroup):         n_valid = count of targets != ignore_index
//   pass 1 (grid n_chunks x rows):  per (row, chunk) the running max and the
//                                   sum of exp(x - max) -> partials
//   pass 2 (one invocation a row):  combine a row's chunks in order -> lse,
//                                   loss = lse - x[target] + z_loss * lse^2
//   pass 3 (grid n_chunks x rows):  dlogits = (p - onehot + 2 z_loss lse p)
//                                   * grad_scale / n_valid, p = exp(x - lse)
// Passes 0 and 1 are independent; 2 needs 1; 3 needs 0 and 2. dlogits may be
// logits: pass 3 reads each element before the same invocation overwrites it,
// and pass 2 (which reads x[target]) has finished by then.
//
// scratch (floats): [0] n_valid (uint bits), [1..4) unused,
//   [4, 4 + rows) lse, then partials [rows, n_chunks, 2] = (max, sum of exp).
// The logits, the loss and the softmax are fp32 in every variant; dlogits is
// fp32, or bf16 / fp16 storage (then a buffer of its own, not the logits).
// grad_scale is multiplied by the float at the address `scale` when that is
// not 0: the loss scale of fp16 training, which the host changes between
// steps without recording again.
// variants: cross_entropy cross_entropy_bf16=ELEM_BF16 cross_entropy_f16=ELEM_F16
#include "lws.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint PASS = 0;

layout(push_constant, scalar) uniform Push {
    Floats logits;  // [rows, vocab]
    Elems dlogits;  // [rows, vocab], may be logits (fp32)
    Floats losses;  // [rows]
    Uints targets;  // [rows]
    Floats scratch;
    uint rows;
    uint vocab;
    uint chunk;     // vocabulary entries per workgroup (passes 1 and 3)
    uint n_chunks;  // ceil(vocab / chunk)
    uint ignore_index;
    float z_loss;
    float grad_scale;
    Floats scale;   // 0, or a loss scale that multiplies grad_scale
} pc;

const uint LSE = 4;
// Below every finite logit; exp(FLOAT_LOWEST - x) is 0 without inf - inf.
const float FLOAT_LOWEST = -3.402823466e38;

shared float part_max[gl_WorkGroupSize.x];
shared float part_sum[gl_WorkGroupSize.x];
shared uint part_count[gl_WorkGroupSize.x];

// Row r of a [rows, vocab] tensor; 64-bit offsets, rows * vocab may pass 2^32.
Floats row_of(Floats base, uint r) {
    return Floats(uint64_t(base) + 4ul * uint64_t(r) * uint64_t(pc.vocab));
}

uint partial_index(uint r, uint c) { return LSE + pc.rows + 2 * (r * pc.n_chunks + c); }

// (max, sum of exp(x - max)) of two disjoint sets, merged.
void merge(inout float m, inout float s, float m2, float s2) {
    float merged = max(m, m2);
    s = s * exp(m - merged) + s2 * exp(m2 - merged);
    m = merged;
}

void count_valid() {
    uint lid = gl_LocalInvocationID.x, n = 0;
    for (uint r = lid; r < pc.rows; r += gl_WorkGroupSize.x)
        n += pc.targets.v[r] != pc.ignore_index ? 1 : 0;
    part_count[lid] = n;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s) part_count[lid] += part_count[lid + s];
        barrier();
    }
    if (lid == 0) Uints(uint64_t(pc.scratch)).v[0] = part_count[0];
}

void chunk_partials() {
    uint lid = gl_LocalInvocationID.x, c = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
    Floats x = row_of(pc.logits, r);
    uint end = min((c + 1) * pc.chunk, pc.vocab);
    // Online: one exp per element, rescaling the sum when the max grows.
    float m = FLOAT_LOWEST, s = 0.0;
    for (uint i = c * pc.chunk + lid; i < end; i += gl_WorkGroupSize.x) {
        float xi = x.v[i];
        if (xi > m) {
            s = s * exp(m - xi) + 1.0;
            m = xi;
        } else {
            s += exp(xi - m);
        }
    }
    part_max[lid] = m;
    part_sum[lid] = s;
    barrier();
    for (uint half_ = gl_WorkGroupSize.x / 2; half_ > 0; half_ >>= 1) {
        if (lid < half_) {
            float mm = part_max[lid], ss = part_sum[lid];
            merge(mm, ss, part_max[lid + half_], part_sum[lid + half_]);
            part_max[lid] = mm;
            part_sum[lid] = ss;
        }
        barrier();
    }
    if (lid == 0) {
        uint at = partial_index(r, c);
        pc.scratch.v[at] = part_max[0];
        pc.scratch.v[at + 1] = part_sum[0];
    }
}

void row_loss() {
    uint r = gl_GlobalInvocationID.x;
    if (r >= pc.rows) return;
    float m = FLOAT_LOWEST, s = 0.0;
    for (uint c = 0; c < pc.n_chunks; c++) {
        uint at = partial_index(r, c);
        merge(m, s, pc.scratch.v[at], pc.scratch.v[at + 1]);
    }
    float lse = m + log(s);
    uint target = pc.targets.v[r];
    float loss = 0.0;
    if (target != pc.ignore_index) {
        if (target < pc.vocab) {
            loss = lse - row_of(pc.logits, r).v[target] + pc.z_loss * lse * lse;
        } else {
            // A target outside the vocabulary is a data error: make it visible
            // as NaN in the loss and in the row's gradient.
            lse = uintBitsToFloat(0x7FC00000u);
            loss = lse;
        }
    }
    pc.scratch.v[LSE + r] = lse;
    pc.losses.v[r] = loss;
}

void chunk_dlogits() {
    uint lid = gl_LocalInvocationID.x, c = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
    Floats x = row_of(pc.logits, r);
    Elems dx = Elems(uint64_t(pc.dlogits) + ELEM_BYTES * uint64_t(r) * uint64_t(pc.vocab));
    uint end = min((c + 1) * pc.chunk, pc.vocab);
    uint target = pc.targets.v[r];
    uint n_valid = Uints(uint64_t(pc.scratch)).v[0];
    if (target == pc.ignore_index || n_valid == 0) {
        for (uint i = c * pc.chunk + lid; i < end; i += gl_WorkGroupSize.x) ELEM_STORE(dx, i, 0.0);
        return;
    }
    float lse = pc.scratch.v[LSE + r];
    float z_term = 2.0 * pc.z_loss * lse; // d(z lse^2)/dx = 2 z lse p
    float grad_scale = pc.grad_scale;
    if (uint64_t(pc.scale) != 0) grad_scale *= pc.scale.v[0];
    float coef = grad_scale / float(n_valid);
    for (uint i = c * pc.chunk + lid; i < end; i += gl_WorkGroupSize.x) {
        float p = exp(x.v[i] - lse);
        // p - onehot first: where p is near 1 it cancels exactly, and the
        // small z-loss term keeps its own relative precision.
        ELEM_STORE(dx, i, ((p - (i == target ? 1.0 : 0.0)) + z_term * p) * coef);
    }
}

void main() {
    if (PASS == 0) count_valid();
    else if (PASS == 1) chunk_partials();
    else if (PASS == 2) row_loss();
    else chunk_dlogits();
}
