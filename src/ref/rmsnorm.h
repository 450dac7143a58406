/* fp64 CPU reference of RMSNorm, forward and backward. */
#ifndef LWS_REF_RMSNORM_H
#define LWS_REF_RMSNORM_H
#include <stddef.h>

/* y[r, :] = x[r, :] * rstd[r] * w, rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps).
 * x, y (rows, cols); w (cols); rstd (rows). */
void ref_rmsnorm_fwd(double *y, double *rstd, const double *x, const double *w, size_t rows,
                     size_t cols, double eps);
/* dx written (rows, cols); dw (cols) += the sum over rows. */
void ref_rmsnorm_bwd(double *dx, double *dw, const double *dy, const double *x, const double *w,
                     size_t rows, size_t cols, double eps);
/* The residual adds fused with the norm (ops rmsnorm_add, add_rmsnorm):
 * out = res + RMSNorm(y) * w, rstd of y; h = res + y, hn = RMSNorm(h) * w,
 * rstd of h. rstd may be NULL. */
void ref_rmsnorm_add(double *out, double *rstd, const double *res, const double *y, const double *w,
                     size_t rows, size_t cols, double eps);
void ref_add_rmsnorm(double *h, double *hn, double *rstd, const double *res, const double *y,
                     const double *w, size_t rows, size_t cols, double eps);

#endif
