// The math of the attention backward kernels (attention_bwd_dkdv.comp,
// attention_bwd_dq.comp). Both recompute the probabilities from q, k and the
// saved log-sum-exp instead of storing a seq x seq matrix:
//   P_ij  = exp(scale * q_i . k_j - lse_i)     (0 where j > i)
//   dS_ij = P_ij * (dout_i . v_j - delta_i),   delta_i = dout_i . o_i
//   dv_j = sum_i P_ij dout_i
//   dk_j = scale * sum_i dS_ij q_i
//   dq_i = scale * sum_j dS_ij k_j
#include "attention.glsl"

// Turns the dot products of one (query row, key row) pair into P (in qk)
// and dS (in dov); both are 0 where the pair is masked.
void attn_grad(bool visible, float lse, float delta, inout float qk, inout float dov) {
    float p = visible ? exp(qk * pc.scale - lse) : 0.0;
    dov = p * (dov - delta);
    qk = p;
}
