#include "ref/rope.h"

#include <math.h>

void ref_rope(double *y, const double *x, size_t n_tokens, size_t seq_len, size_t heads,
              size_t head_dim, double theta, int inverse) {
    size_t half = head_dim / 2;
    for (size_t t = 0; t < n_tokens; t++) {
        double pos = (double)(t % seq_len);
        for (size_t j = 0; j < half; j++) {
            double angle = pos * pow(theta, -2.0 * (double)j / (double)head_dim);
            double c = cos(angle), s = inverse ? -sin(angle) : sin(angle);
            for (size_t h = 0; h < heads; h++) {
                size_t i = (t * heads + h) * head_dim + j;
                double x0 = x[i], x1 = x[i + half];
                y[i] = x0 * c - x1 * s;
                y[i + half] = x1 * c + x0 * s;
            }
        }
    }
}
