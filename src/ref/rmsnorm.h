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
/* QK-norm with RoPE (ops rmsnorm_rope_fwd/bwd): y = RoPE(RMSNorm(x) w) over
 * rows of (heads, head_dim), row t at position t % seq_len (ref_rope); the
 * backward rotates dy back, then ref_rmsnorm_bwd (dx written, dw added). */
void ref_rmsnorm_rope_fwd(double *y, double *rstd, const double *x, const double *w, size_t rows,
                          size_t seq_len, size_t heads, size_t head_dim, double theta, double eps);
void ref_rmsnorm_rope_bwd(double *dx, double *dw, const double *dy, const double *x,
                          const double *w, size_t rows, size_t seq_len, size_t heads,
                          size_t head_dim, double theta, double eps);

#endif
