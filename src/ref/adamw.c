#include "ref/adamw.h"

#include <math.h>

double ref_grad_norm(const double *const *grads, const size_t *sizes, size_t n_tensors) {
    double sum = 0;
    for (size_t t = 0; t < n_tensors; t++)
        for (size_t i = 0; i < sizes[t]; i++) sum += grads[t][i] * grads[t][i];
    return sqrt(sum);
}

double ref_clip_scale(double norm, double max_norm) {
    if (max_norm <= 0) return 1;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1 ? coef : 1;
}

void ref_adamw_step(double *p, double *m, double *v, const double *grad, size_t n,
                    double clip_scale, int decay, const ref_adamw_hyper *h) {
    double step_size = h->lr / h->bias_correction1;
    double bias_correction2_sqrt = sqrt(h->bias_correction2);
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] * clip_scale;
        if (decay) p[i] *= 1 - h->lr * h->weight_decay;
        m[i] = h->beta1 * m[i] + (1 - h->beta1) * g;
        v[i] = h->beta2 * v[i] + (1 - h->beta2) * g * g;
        double denom = sqrt(v[i]) / bias_correction2_sqrt + h->eps;
        p[i] -= step_size * m[i] / denom;
    }
}
