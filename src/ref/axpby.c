#include "ref/axpby.h"

void ref_axpby(double *out, const double *x, const double *y, double alpha, double beta, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = alpha * x[i] + beta * y[i];
}

double ref_sumsq(const double *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}
