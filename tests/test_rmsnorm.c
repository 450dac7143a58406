// lws-test: vulkan kernel
/* RMSNorm forward and backward against the fp64 reference: rows and columns
 * that are not multiples of the workgroup (1, primes, the QK-norm widths),
 * several rows per dw block, dx written and accumulated, dw accumulated,
 * poisoned outputs, a finite-difference check, and bit-identical reruns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/rmsnorm.h"

#define EPS 1e-6f

typedef struct job {
    lws_buffer y, rstd, x, w;
    lws_buffer dx, dw, dy, scratch;
    uint32_t rows, cols;
    int accumulate_dx;
} job;

static void record_fwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_rmsnorm_fwd(cmd, j->y, j->rstd, j->x, j->w, j->rows, j->cols, EPS);
}

static void record_bwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_rmsnorm_bwd(cmd, j->dx, j->dw, j->dy, j->x, j->w, j->rstd, j->scratch, j->rows, j->cols,
                       j->accumulate_dx);
}

static void check_shape(lws_context *ctx, test_rng *rng, uint32_t rows, uint32_t cols) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t n = (size_t)rows * cols;
    float *x = test_random_rows(rng, rows, cols, -3.0, 2.0, LWS_F32),
          *w = test_random_floats(rng, cols, 0.3);
    for (uint32_t c = 0; c < cols; c++) w[c] += 1.0f;
    float *dy = test_random_floats(rng, n, 1.0), *dw0 = test_random_floats(rng, cols, 1.0);
    float *dx0 = test_random_floats(rng, n, 1.0);
    double *xd = test_to_double(x, n), *wd = test_to_double(w, cols), *dyd = test_to_double(dy, n);
    double *y_want = test_malloc(n * sizeof(double)),
           *rstd_want = test_malloc(rows * sizeof(double));
    double *dx_want = test_malloc(n * sizeof(double)), *dw_want = test_to_double(dw0, cols);
    ref_rmsnorm_fwd(y_want, rstd_want, xd, wd, rows, cols, EPS);
    ref_rmsnorm_bwd(dx_want, dw_want, dyd, xd, wd, rows, cols, EPS); /* dw_want = dw0 + sum */
    float *got = test_malloc(n * sizeof(float)), *again = test_malloc(n * sizeof(float));
    float *got_rstd = test_malloc(rows * sizeof(float)),
          *got_dw = test_malloc(cols * sizeof(float));
    float *again_dw = test_malloc(cols * sizeof(float));

    uint32_t scratch_n = lws_rmsnorm_scratch_floats(ctx, rows, cols);
    job j = {test_output(ctx, n),
             test_output(ctx, rows),
             test_upload_floats(ctx, x, n),
             test_upload_floats(ctx, w, cols),
             test_output(ctx, n),
             test_upload_floats(ctx, dw0, cols),
             test_upload_floats(ctx, dy, n),
             test_output(ctx, scratch_n),
             rows,
             cols,
             0};
    char what[96];

    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.y, got, n);
    test_download(ctx, j.rstd, got_rstd, rows);
    /* y = x * rstd * w: |y| is about |w| <= 2 whatever the row's scale. The
     * sum of squares is an fp32 tree of `cols` terms (relative error
     * ~log2(cols) * 2^-24), inversesqrt is within 2 ulp, then two products:
     * relative error below 1e-6, so 4e-6 absolute for |y| < 4. rstd spans
     * 1e-2 .. 1e3 (x's scale), so it is compared relative to itself. */
    snprintf(what, sizeof what, "rmsnorm_fwd y %ux%u", rows, cols);
    CHECK_CLOSE(what, got, y_want, n, 4e-6, 1e-6);
    for (uint32_t r = 0; r < rows; r++) got_rstd[r] = (float)(got_rstd[r] / rstd_want[r]);
    double *ones = test_malloc(rows * sizeof(double));
    for (uint32_t r = 0; r < rows; r++) ones[r] = 1.0;
    snprintf(what, sizeof what, "rmsnorm_fwd rstd/want %ux%u", rows, cols);
    CHECK_CLOSE(what, got_rstd, ones, rows, 1e-6, 1e-6);
    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.y, again, n);
    snprintf(what, sizeof what, "rmsnorm_fwd %ux%u twice", rows, cols);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, n)) test_failures++;

    /* Backward, dx written into a poisoned buffer and dw added to dw0. dx
     * scales with rstd (up to 1e3 for the rows with small x), so it is
     * compared per row, relative to that row's rstd * |dy w|. */
    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.dx, got, n);
    test_download(ctx, j.dw, got_dw, cols);
    double *dx_scaled = test_malloc(n * sizeof(double));
    float *got_scaled = test_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double s = rstd_want[i / cols];
        dx_scaled[i] = dx_want[i] / s;
        got_scaled[i] = (float)(got[i] / s);
    }
    /* dx / rstd = dy w - x rstd^2 mean(dy w x): terms of order 1 to 5 with
     * a `cols`-term dot product; 1e-5 absolute, 2e-6 relative L2. With one
     * column dx is 0 up to eps (y = sign(x) w), a difference of two equal
     * terms, so only the absolute bound means anything there. */
    snprintf(what, sizeof what, "rmsnorm_bwd dx/rstd %ux%u", rows, cols);
    CHECK_CLOSE(what, got_scaled, dx_scaled, n, 1e-5, cols > 1 ? 2e-6 : 1e30);
    /* dw[c] = dw0[c] + sum over rows of dy x rstd: `rows` terms of size up
     * to ~5 summed in fp32 (within a block, then across blocks): at worst
     * rows * 5 * 2^-24 = 3e-7 * rows absolute; typically sqrt(rows) ulps of
     * the sum, which the relative L2 bound checks. */
    snprintf(what, sizeof what, "rmsnorm_bwd dw (accumulated) %ux%u", rows, cols);
    CHECK_CLOSE(what, got_dw, dw_want, cols, 1e-6 * (rows + 1), 1e-6);

    /* Bit-identical: same dw0 in, same bits out, for dx and dw. */
    CHECK_OK(lws_upload(ctx, j.dw, dw0, cols * sizeof(float)));
    CHECK_OK(lws_fill(ctx, j.dx, 0x7FC00000u));
    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.dx, again, n);
    test_download(ctx, j.dw, again_dw, cols);
    snprintf(what, sizeof what, "rmsnorm_bwd dx %ux%u twice", rows, cols);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, n)) test_failures++;
    snprintf(what, sizeof what, "rmsnorm_bwd dw %ux%u twice", rows, cols);
    test_checks++;
    if (!test_bitwise_equal(what, got_dw, again_dw, cols)) test_failures++;

    /* accumulate_dx: dx = dx0 + d/dx. */
    CHECK_OK(lws_upload(ctx, j.dx, dx0, n * sizeof(float)));
    j.accumulate_dx = 1;
    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.dx, got, n);
    for (size_t i = 0; i < n; i++) dx_want[i] += dx0[i];
    double *rel = test_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        /* error of the gradient part scales with rstd, dx0's with |dx0| */
        double s = rstd_want[i / cols] + fabs(dx0[i]);
        rel[i] = dx_want[i] / s;
        got_scaled[i] = (float)(got[i] / s);
    }
    snprintf(what, sizeof what, "rmsnorm_bwd dx accumulated %ux%u", rows, cols);
    CHECK_CLOSE(what, got_scaled, rel, n, 1e-5, 2e-6);

    /* y in place over x. */
    j.y = j.x;
    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.x, got, n);
    snprintf(what, sizeof what, "rmsnorm_fwd in place %ux%u", rows, cols);
    CHECK_CLOSE(what, got, y_want, n, 4e-6, 1e-6);

    free(x), free(w), free(dy), free(dw0), free(dx0), free(xd), free(wd), free(dyd);
    free(y_want), free(rstd_want), free(dx_want), free(dw_want), free(got), free(again);
    free(got_rstd), free(got_dw), free(again_dw), free(ones), free(dx_scaled), free(got_scaled);
    free(rel);
    lws_arena_reset(ctx, mark);
}

/* L = sum dy * rmsnorm(x, w), in fp64, for central differences. */
typedef struct fd_arg {
    double *x, *w;
    const double *dy;
    size_t rows, cols;
} fd_arg;

static double fd_loss(void *arg) {
    fd_arg *f = arg;
    size_t n = f->rows * f->cols;
    double *y = test_malloc(n * sizeof *y), loss = 0;
    ref_rmsnorm_fwd(y, NULL, f->x, f->w, f->rows, f->cols, EPS);
    for (size_t i = 0; i < n; i++) loss += f->dy[i] * y[i];
    free(y);
    return loss;
}

static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    enum { rows = 3, cols = 5, n = rows * cols };
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *x = test_random_floats(rng, n, 1.0), *w = test_random_floats(rng, cols, 0.3);
    for (int c = 0; c < cols; c++) w[c] += 1.0f;
    float *dy = test_random_floats(rng, n, 1.0), zeros[cols] = {0};
    double *xd = test_to_double(x, n), *wd = test_to_double(w, cols), *dyd = test_to_double(dy, n);
    job j = {test_output(ctx, n),
             test_output(ctx, rows),
             test_upload_floats(ctx, x, n),
             test_upload_floats(ctx, w, cols),
             test_output(ctx, n),
             test_upload_floats(ctx, zeros, cols),
             test_upload_floats(ctx, dy, n),
             test_output(ctx, lws_rmsnorm_scratch_floats(ctx, rows, cols)),
             rows,
             cols,
             0};
    test_run(ctx, record_fwd, &j);
    test_run(ctx, record_bwd, &j);
    float got[n + cols];
    test_download(ctx, j.dx, got, n);
    test_download(ctx, j.dw, got + n, cols);
    double fd[n + cols];
    fd_arg f = {xd, wd, dyd, rows, cols};
    for (size_t i = 0; i < n; i++) fd[i] = test_finite_difference(fd_loss, &f, xd, i, 1e-6);
    for (size_t c = 0; c < cols; c++) fd[n + c] = test_finite_difference(fd_loss, &f, wd, c, 1e-6);
    /* fp64 central differences (h = 1e-6) are good to ~1e-9 here; the GPU's
     * fp32 gradients, of order 1, to a few ulps. */
    CHECK_CLOSE("rmsnorm_bwd vs finite differences (dx, dw)", got, fd, n + cols, 2e-5, 1e-5);
    free(x), free(w), free(dy), free(xd), free(wd), free(dyd);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 41);
    /* rows: 1, primes, above 256 so a dw block holds several rows (300: 2 per
     * block; 1031: 5 per block with a short last block; 4099: 17 per block); cols: 1, 5, the
     * QK-norm widths 48, 576, 768, and 129 (one past the workgroup). */
    const uint32_t shapes[][2] = {{1, 1},    {1, 5},    {7, 48},   {33, 129},  {7, 768},
                                  {33, 576}, {300, 48}, {1031, 5}, {257, 129}, {4099, 48}};
    /* Every split of a row over invocations the tuning may choose: one per
     * row (lavapipe), a few, and the whole workgroup (GPUs). */
    const char *splits[] = {"1", "4", "128"};
    for (size_t k = 0; k < sizeof splits / sizeof *splits; k++) {
        setenv("LWS_ROW_THREADS", splits[k], 1);
        printf("-- up to %s invocations per row\n", splits[k]);
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            check_shape(ctx, &rng, shapes[s][0], shapes[s][1]);
        check_finite_difference(ctx, &rng);
    }
    unsetenv("LWS_ROW_THREADS");
    return test_finish(ctx);
}
