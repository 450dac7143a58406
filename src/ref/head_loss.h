/* fp64 CPU reference of the output head with its loss (ops/head_loss.c). */
#ifndef LWS_REF_HEAD_LOSS_H
#define LWS_REF_HEAD_LOSS_H
#include <stddef.h>
#include <stdint.h>

/* logits = x . W^T (rows, vocab), the loss as ref_cross_entropy, and, when
 * dx is not NULL, dx = dlogits . W (rows, d) and dw += dlogits^T . x (vocab,
 * d). round_dlogit, when not NULL, is applied to every dlogit before the two
 * products (the device stores dlogits in the activations' type). Returns
 * n_valid. */
size_t ref_head_loss(double *losses, double *dx, double *dw, const double *x, const double *w,
                     const uint32_t *targets, size_t rows, size_t d, size_t vocab,
                     uint32_t ignore_index, double z_loss, double grad_scale,
                     double (*round_dlogit)(double));

/* The objective whose gradients dx and dw are: grad_scale * (sum of losses)
 * / n_valid as a function of x and W. */
double ref_head_loss_objective(const double *x, const double *w, const uint32_t *targets,
                               size_t rows, size_t d, size_t vocab, uint32_t ignore_index,
                               double z_loss, double grad_scale);

#endif
