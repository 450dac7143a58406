#include "ref/rmsnorm.h"

#include <math.h>
#include <stdlib.h>

#include "ref/rope.h"

static double rmsnorm_rstd(const double *x, size_t cols, double eps) {
    double ss = 0;
    for (size_t c = 0; c < cols; c++) ss += x[c] * x[c];
    return 1.0 / sqrt(ss / (double)cols + eps);
}

void ref_rmsnorm_fwd(double *y, double *rstd, const double *x, const double *w, size_t rows,
                     size_t cols, double eps) {
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols;
        double s = rmsnorm_rstd(xr, cols, eps);
        if (rstd) rstd[r] = s;
        for (size_t c = 0; c < cols; c++) y[r * cols + c] = xr[c] * s * w[c];
    }
}

/* With g = dy * w and s = rstd (ds/dx_k = -s^3 x_k / cols):
 *   dx_k = s g_k - x_k s^3 (sum_j g_j x_j) / cols,   dw_j += dy_j x_j s. */
void ref_rmsnorm_bwd(double *dx, double *dw, const double *dy, const double *x, const double *w,
                     size_t rows, size_t cols, double eps) {
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * cols, *dyr = dy + r * cols;
        double s = rmsnorm_rstd(xr, cols, eps);
        double dot = 0;
        for (size_t c = 0; c < cols; c++) dot += dyr[c] * w[c] * xr[c];
        double coef = s * s * s * dot / (double)cols;
        for (size_t c = 0; c < cols; c++) {
            dx[r * cols + c] = s * dyr[c] * w[c] - xr[c] * coef;
            dw[c] += dyr[c] * xr[c] * s;
        }
    }
}

void ref_rmsnorm_add(double *out, double *rstd, const double *res, const double *y, const double *w,
                     size_t rows, size_t cols, double eps) {
    ref_rmsnorm_fwd(out, rstd, y, w, rows, cols, eps);
    for (size_t i = 0; i < rows * cols; i++) out[i] += res[i];
}

void ref_add_rmsnorm(double *h, double *hn, double *rstd, const double *res, const double *y,
                     const double *w, size_t rows, size_t cols, double eps) {
    for (size_t i = 0; i < rows * cols; i++) h[i] = res[i] + y[i];
    ref_rmsnorm_fwd(hn, rstd, h, w, rows, cols, eps);
}

void ref_rmsnorm_rope_fwd(double *y, double *rstd, const double *x, const double *w, size_t rows,
                          size_t seq_len, size_t heads, size_t head_dim, double theta, double eps) {
    size_t cols = heads * head_dim;
    double *normed = malloc(rows * cols * sizeof *normed);
    if (!normed) abort();
    ref_rmsnorm_fwd(normed, rstd, x, w, rows, cols, eps);
    ref_rope(y, normed, rows, seq_len, heads, head_dim, theta, 0);
    free(normed);
}

void ref_rmsnorm_rope_bwd(double *dx, double *dw, const double *dy, const double *x,
                          const double *w, size_t rows, size_t seq_len, size_t heads,
                          size_t head_dim, double theta, double eps) {
    size_t cols = heads * head_dim;
    double *dnormed = malloc(rows * cols * sizeof *dnormed);
    if (!dnormed) abort();
    ref_rope(dnormed, dy, rows, seq_len, heads, head_dim, theta, 1); /* R^T dy */
    ref_rmsnorm_bwd(dx, dw, dnormed, x, w, rows, cols, eps);
    free(dnormed);
}
