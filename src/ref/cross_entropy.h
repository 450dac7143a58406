/* fp64 CPU reference of the fused softmax cross-entropy (ops/cross_entropy.c). */
#ifndef LWS_REF_CROSS_ENTROPY_H
#define LWS_REF_CROSS_ENTROPY_H
#include <stddef.h>
#include <stdint.h>

/* logits [rows, vocab], targets [rows]. losses[r] = lse - logit[target] +
 * z_loss * lse^2 (0 where targets[r] == ignore_index); dlogits [rows, vocab]
 * (may be NULL) = (softmax - onehot + 2 z_loss lse softmax) * grad_scale /
 * n_valid, zero rows where ignored. Returns n_valid. */
size_t ref_cross_entropy(double *losses, double *dlogits, const double *logits,
                         const uint32_t *targets, size_t rows, size_t vocab, uint32_t ignore_index,
                         double z_loss, double grad_scale);

/* The objective whose gradient dlogits is: grad_scale * (sum of losses) /
 * n_valid (0 when no row is valid). */
double ref_cross_entropy_objective(const double *logits, const uint32_t *targets, size_t rows,
                                   size_t vocab, uint32_t ignore_index, double z_loss,
                                   double grad_scale);

#endif
