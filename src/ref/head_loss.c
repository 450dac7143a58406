#include "ref/head_loss.h"

#include <stdlib.h>

#include "ref/cross_entropy.h"
#include "ref/matmul.h"

/* logits (rows, vocab) = x (rows, d) . w (vocab, d)^T, malloc'd. */
static double *logits_of(const double *x, const double *w, size_t rows, size_t d, size_t vocab) {
    double *logits = malloc(rows * vocab * sizeof *logits);
    if (logits)
        ref_matmul(LWS_MM_NT, logits, x, w, (uint32_t)rows, (uint32_t)vocab, (uint32_t)d, 0);
    return logits;
}

size_t ref_head_loss(double *losses, double *dx, double *dw, const double *x, const double *w,
                     const uint32_t *targets, size_t rows, size_t d, size_t vocab,
                     uint32_t ignore_index, double z_loss, double grad_scale,
                     double (*round_dlogit)(double)) {
    double *logits = logits_of(x, w, rows, d, vocab);
    double *dlogits = dx ? malloc(rows * vocab * sizeof *dlogits) : NULL;
    if (!logits || (dx && !dlogits)) abort();
    size_t n_valid = ref_cross_entropy(losses, dlogits, logits, targets, rows, vocab, ignore_index,
                                       z_loss, grad_scale);
    if (dx) {
        for (size_t i = 0; round_dlogit && i < rows * vocab; i++)
            dlogits[i] = round_dlogit(dlogits[i]);
        ref_matmul(LWS_MM_NN, dx, dlogits, w, (uint32_t)rows, (uint32_t)d, (uint32_t)vocab, 0);
        ref_matmul(LWS_MM_TN, dw, dlogits, x, (uint32_t)vocab, (uint32_t)d, (uint32_t)rows, 1);
    }
    free(logits);
    free(dlogits);
    return n_valid;
}

double ref_head_loss_objective(const double *x, const double *w, const uint32_t *targets,
                               size_t rows, size_t d, size_t vocab, uint32_t ignore_index,
                               double z_loss, double grad_scale) {
    double *logits = logits_of(x, w, rows, d, vocab);
    if (!logits) abort();
    double f =
        ref_cross_entropy_objective(logits, targets, rows, vocab, ignore_index, z_loss, grad_scale);
    free(logits);
    return f;
}
