#include "ref/attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The probabilities of row i of head h (keys 0..i) into p, and their lse. */
static double softmax_row(double *p, const double *q_i, const double *k, uint32_t i,
                          size_t kv_stride, uint32_t head_dim, double scale) {
    double m = -INFINITY;
    for (uint32_t j = 0; j <= i; j++) {
        const double *k_j = k + j * kv_stride;
        double s = 0;
        for (uint32_t d = 0; d < head_dim; d++) s += q_i[d] * k_j[d];
        p[j] = s * scale;
        if (p[j] > m) m = p[j];
    }
    double sum = 0;
    for (uint32_t j = 0; j <= i; j++) sum += (p[j] = exp(p[j] - m));
    for (uint32_t j = 0; j <= i; j++) p[j] /= sum;
    return m + log(sum);
}

int ref_attention_fwd(double *o, double *lse, const double *q, const double *k, const double *v,
                      uint32_t batch, uint32_t seq, uint32_t q_heads, uint32_t kv_heads,
                      uint32_t head_dim, double scale) {
    double *p = malloc(seq * sizeof *p);
    if (!p) return -1;
    size_t q_stride = (size_t)q_heads * head_dim, kv_stride = (size_t)kv_heads * head_dim;
    uint32_t group = q_heads / kv_heads;
    for (uint32_t b = 0; b < batch; b++)
        for (uint32_t h = 0; h < q_heads; h++) {
            size_t q_off = (size_t)b * seq * q_stride + (size_t)h * head_dim;
            size_t kv_off = (size_t)b * seq * kv_stride + (size_t)(h / group) * head_dim;
            for (uint32_t i = 0; i < seq; i++) {
                double l = softmax_row(p, q + q_off + i * q_stride, k + kv_off, i, kv_stride,
                                       head_dim, scale);
                if (lse) lse[((size_t)b * q_heads + h) * seq + i] = l;
                double *o_i = o + q_off + i * q_stride;
                for (uint32_t d = 0; d < head_dim; d++) o_i[d] = 0;
                for (uint32_t j = 0; j <= i; j++) {
                    const double *v_j = v + kv_off + j * kv_stride;
                    for (uint32_t d = 0; d < head_dim; d++) o_i[d] += p[j] * v_j[d];
                }
            }
        }
    free(p);
    return 0;
}

/* With s_j = scale q_i.k_j, P = softmax(s), o_i = sum_j P_j v_j and loss
 * sum(o * dout):
 *   dP_j = dout_i . v_j,  dS_j = P_j (dP_j - sum_l P_l dP_l),
 *   dq_i = scale sum_j dS_j k_j,  dk_j += scale dS_j q_i,  dv_j += P_j dout_i. */
int ref_attention_bwd(double *dq, double *dk, double *dv, const double *dout, const double *q,
                      const double *k, const double *v, uint32_t batch, uint32_t seq,
                      uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim, double scale) {
    double *p = malloc(seq * sizeof *p), *dp = malloc(seq * sizeof *dp);
    if (!p || !dp) {
        free(p);
        free(dp);
        return -1;
    }
    size_t q_stride = (size_t)q_heads * head_dim, kv_stride = (size_t)kv_heads * head_dim;
    uint32_t group = q_heads / kv_heads;
    memset(dk, 0, (size_t)batch * seq * kv_stride * sizeof *dk);
    memset(dv, 0, (size_t)batch * seq * kv_stride * sizeof *dv);
    for (uint32_t b = 0; b < batch; b++)
        for (uint32_t h = 0; h < q_heads; h++) {
            size_t q_off = (size_t)b * seq * q_stride + (size_t)h * head_dim;
            size_t kv_off = (size_t)b * seq * kv_stride + (size_t)(h / group) * head_dim;
            for (uint32_t i = 0; i < seq; i++) {
                const double *q_i = q + q_off + i * q_stride;
                const double *do_i = dout + q_off + i * q_stride;
                softmax_row(p, q_i, k + kv_off, i, kv_stride, head_dim, scale);
                double delta = 0;
                for (uint32_t j = 0; j <= i; j++) {
                    const double *v_j = v + kv_off + j * kv_stride;
                    double s = 0;
                    for (uint32_t d = 0; d < head_dim; d++) s += do_i[d] * v_j[d];
                    dp[j] = s;
                    delta += p[j] * s;
                }
                double *dq_i = dq + q_off + i * q_stride;
                for (uint32_t d = 0; d < head_dim; d++) dq_i[d] = 0;
                for (uint32_t j = 0; j <= i; j++) {
                    double ds = p[j] * (dp[j] - delta);
                    const double *k_j = k + kv_off + j * kv_stride;
                    double *dk_j = dk + kv_off + j * kv_stride;
                    double *dv_j = dv + kv_off + j * kv_stride;
                    for (uint32_t d = 0; d < head_dim; d++) {
                        dq_i[d] += scale * ds * k_j[d];
                        dk_j[d] += scale * ds * q_i[d];
                        dv_j[d] += p[j] * do_i[d];
                    }
                }
            }
        }
    free(p);
    free(dp);
    return 0;
}
