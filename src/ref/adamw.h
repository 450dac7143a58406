/* fp64 CPU references of the optimizer ops (ops/grad_norm.c, ops/adamw.c). */
#ifndef LWS_REF_ADAMW_H
#define LWS_REF_ADAMW_H
#include <stddef.h>

/* The hyperparameters of one step, as the host writes them into lws_optim_hyper. */
typedef struct ref_adamw_hyper {
    double lr, beta1, beta2, eps, weight_decay;
    double bias_correction1, bias_correction2; /* 1 - beta^step */
} ref_adamw_hyper;

/* sqrt of the sum of squares of every gradient: sizes[t] elements at grads[t]. */
double ref_grad_norm(const double *const *grads, const size_t *sizes, size_t n_tensors);
/* torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)),
 * 1 when max_norm <= 0. */
double ref_clip_scale(double norm, double max_norm);

/* One AdamW step on n elements (PyTorch's torch.optim.AdamW): g = grad *
 * clip_scale; p *= 1 - lr*wd where decay; m, v updated; p -= lr/bc1 * m /
 * (sqrt(v)/sqrt(bc2) + eps). grad is not changed. */
void ref_adamw_step(double *p, double *m, double *v, const double *grad, size_t n,
                    double clip_scale, int decay, const ref_adamw_hyper *h);

#endif
