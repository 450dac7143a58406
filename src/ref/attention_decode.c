/* fp64 reference of one decode step of causal GQA attention (see the header). */
#include <math.h>
#include <stdlib.h>

#include "ref/attention_decode.h"

int ref_attention_decode(double *o, const double *q, const double *k_cache, const double *v_cache,
                         uint32_t pos, uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim,
                         double scale) {
    size_t n_keys = (size_t)pos + 1, row = (size_t)kv_heads * head_dim;
    double *scores = malloc(n_keys * sizeof *scores);
    if (!scores) return -1;
    uint32_t group = q_heads / kv_heads;
    for (uint32_t h = 0; h < q_heads; h++) {
        const double *qh = q + (size_t)h * head_dim;
        size_t at = (size_t)(h / group) * head_dim;
        double max = -INFINITY;
        for (size_t j = 0; j < n_keys; j++) {
            double s = 0;
            for (uint32_t d = 0; d < head_dim; d++) s += qh[d] * k_cache[j * row + at + d];
            scores[j] = s * scale;
            if (scores[j] > max) max = scores[j];
        }
        double sum = 0;
        for (size_t j = 0; j < n_keys; j++) sum += (scores[j] = exp(scores[j] - max));
        for (uint32_t d = 0; d < head_dim; d++) {
            double acc = 0;
            for (size_t j = 0; j < n_keys; j++) acc += scores[j] * v_cache[j * row + at + d];
            o[(size_t)h * head_dim + d] = acc / sum;
        }
    }
    free(scores);
    return 0;
}
