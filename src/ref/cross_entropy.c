#include "ref/cross_entropy.h"

#include <math.h>

/* log(sum(exp(x))) over one row, stable: the max is taken out first. */
static double row_lse(const double *x, size_t vocab) {
    double m = x[0], s = 0;
    for (size_t i = 1; i < vocab; i++) m = x[i] > m ? x[i] : m;
    for (size_t i = 0; i < vocab; i++) s += exp(x[i] - m);
    return m + log(s);
}

size_t ref_cross_entropy(double *losses, double *dlogits, const double *logits,
                         const uint32_t *targets, size_t rows, size_t vocab, uint32_t ignore_index,
                         double z_loss, double grad_scale) {
    size_t n_valid = 0;
    for (size_t r = 0; r < rows; r++) n_valid += targets[r] != ignore_index;
    for (size_t r = 0; r < rows; r++) {
        const double *x = logits + r * vocab;
        double *dx = dlogits ? dlogits + r * vocab : NULL;
        if (targets[r] == ignore_index) {
            losses[r] = 0;
            for (size_t i = 0; dx && i < vocab; i++) dx[i] = 0;
            continue;
        }
        double lse = row_lse(x, vocab);
        losses[r] = lse - x[targets[r]] + z_loss * lse * lse;
        double coef = grad_scale / (double)n_valid;
        for (size_t i = 0; dx && i < vocab; i++) {
            double p = exp(x[i] - lse);
            dx[i] = (p - (i == targets[r]) + 2 * z_loss * lse * p) * coef;
        }
    }
    return n_valid;
}

double ref_cross_entropy_objective(const double *logits, const uint32_t *targets, size_t rows,
                                   size_t vocab, uint32_t ignore_index, double z_loss,
                                   double grad_scale) {
    double sum = 0;
    size_t n_valid = 0;
    for (size_t r = 0; r < rows; r++) {
        if (targets[r] == ignore_index) continue;
        const double *x = logits + r * vocab;
        double lse = row_lse(x, vocab);
        sum += lse - x[targets[r]] + z_loss * lse * lse;
        n_valid++;
    }
    return n_valid ? grad_scale * sum / (double)n_valid : 0;
}
