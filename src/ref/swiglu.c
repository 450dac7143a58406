#include "ref/swiglu.h"

#include <math.h>

static double sigmoid(double a) {
    if (a >= 0) return 1.0 / (1.0 + exp(-a));
    double e = exp(a);
    return e / (1.0 + e);
}

void ref_swiglu_fwd(double *h, const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++) h[i] = a[i] * sigmoid(a[i]) * b[i];
}

/* silu'(a) = s + a s (1 - s) with s = sigmoid(a). */
void ref_swiglu_bwd(double *da, double *db, const double *dh, const double *a, const double *b,
                    size_t n) {
    for (size_t i = 0; i < n; i++) {
        double s = sigmoid(a[i]);
        da[i] = dh[i] * b[i] * s * (1.0 + a[i] * (1.0 - s));
        db[i] = dh[i] * a[i] * s;
    }
}
