// The math of the attention backward kernels (attention_bwd_dkdv.comp,
// attention_bwd_dq.comp). Both recompute the probabilities from q, k and the
// saved log-sum-exp instead of storing a seq x seq matrix:
//   P_ij  = exp(scale * q_i . k_j - lse_i)     (0 where j > i)
//   dS_ij = P_ij * (dout_i . v_j - delta_i),   delta_i = dout_i . o_i
//   dv_j = sum_i P_ij dout_i
//   dk_j = scale * sum_i dS_ij q_i
//   dq_i = scale * sum_j dS_ij k_j
#include "attention.glsl"

// delta of query row i of head h of sequence b: dout_i . o_i over the head's
// columns, one vec4 at a time in a fixed order. The dq kernel computes it for
// the rows it owns and writes it for the dk/dv kernel, which runs after it.
float attn_delta(uint b, uint h, uint i) {
    uint at = attn_index(b, i, pc.q_heads, h, 0);
    float sum = 0.0;
    for (uint d = 0; d < DV; d++) sum += dot(ELEM4_LOAD(pc.dout, at + d), ELEM4_LOAD(pc.o, at + d));
    return sum;
}

// Turns the dot products of one (query row, key row) pair into P (in qk)
// and dS (in dov); both are 0 where the pair is masked.
void attn_grad(bool visible, float lse, float delta, inout float qk, inout float dov) {
    float p = visible ? exp(qk * pc.scale - lse) : 0.0;
    dov = p * (dov - delta);
    qk = p;
}
