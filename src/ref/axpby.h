/* fp64 CPU references of the elementwise and reduction kernels. */
#ifndef LWS_REF_AXPBY_H
#define LWS_REF_AXPBY_H
#include <stddef.h>

/* out[i] = alpha * x[i] + beta * y[i] */
void ref_axpby(double *out, const double *x, const double *y, double alpha, double beta, size_t n);
/* sum of x[i]^2 */
double ref_sumsq(const double *x, size_t n);

#endif
