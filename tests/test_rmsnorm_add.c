// lws-test: vulkan kernel
/* The residual adds fused with RMSNorm (rmsnorm_add: out = res + RMSNorm(y) w,
 * the post-norm block; add_rmsnorm: h = res + y, hn = RMSNorm(h) w, the
 * pre-norm block) against the fp64 references, in fp32, bf16 and fp16: rows
 * and columns that are not multiples of the workgroup, every split of a row
 * over invocations, outputs poisoned with NaN, the sum written in place over
 * res or y, bit-identical reruns, refusals of bad operands, and a
 * finite-difference check of the backward the model records for each (the
 * residual's gradient passed through, RMSNorm's from lws_op_rmsnorm_bwd). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/rmsnorm.h"

#define EPS 1e-6f

typedef struct job {
    lws_buffer sum, normed, rstd, res, y, w;
    lws_buffer dres, dw, dnormed, scratch;
    uint32_t rows, cols;
    int add_first; /* add_rmsnorm; else rmsnorm_add */
} job;

static void record_fwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    if (j->add_first)
        lws_op_add_rmsnorm(cmd, j->sum, j->normed, j->rstd, j->res, j->y, j->w, j->rows, j->cols,
                           EPS);
    else
        lws_op_rmsnorm_add(cmd, j->sum, j->rstd, j->res, j->y, j->w, j->rows, j->cols, EPS);
}

static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* An output of type t: its own rounding (u of the largest value) plus the
 * fp32 kernel's error, `rel` of the largest value; rel-L2 u + rel. */
static void check_out(const char *what, lws_dtype t, uint32_t rows, uint32_t cols, const float *got,
                      const double *want, size_t n, double rel) {
    double u = test_unit_roundoff(t), m = max_abs(want, n);
    char label[160];
    snprintf(label, sizeof label, "%s %ux%u [%s]", what, rows, cols, lws_dtype_name(t));
    CHECK_CLOSE(label, got, want, n, (u + rel) * m + 1e-30, u + rel);
}

/* The fp32 kernel's error relative to an output's largest value: a
 * `cols`-term fp32 sum of squares (log2(cols) * 2^-24), inversesqrt within
 * 2 ulp, then two products and an add: below 1e-6 for these widths. */
#define KERNEL_REL 1e-6
/* rstd relative to itself: the sum of squares alone, up to 768 terms summed
 * one after another by one invocation per row (a few times 2^-24 * sqrt(n)
 * in practice), then inversesqrt. */
#define RSTD_REL 2e-6

/* rstd (it spans 0.1 .. 10, the rows' scales) relative to want; then the
 * same job again gives the same bits in `out` as `first`. */
static void check_rstd_and_rerun(lws_context *ctx, const job *j, const char *op,
                                 const double *rstd_want, lws_buffer out, const float *first) {
    size_t n = (size_t)j->rows * j->cols;
    float *got = test_malloc(n * 4);
    double *ones = test_malloc(j->rows * 8);
    test_download(ctx, j->rstd, got, j->rows);
    for (uint32_t r = 0; r < j->rows; r++) {
        got[r] = (float)(got[r] / rstd_want[r]);
        ones[r] = 1.0;
    }
    char what[64];
    snprintf(what, sizeof what, "%s rstd/want", op);
    check_out(what, LWS_F32, j->rows, j->cols, got, ones, j->rows, RSTD_REL);
    test_run(ctx, record_fwd, (void *)j);
    test_download_as(ctx, out, got, n);
    snprintf(what, sizeof what, "%s twice", op);
    test_checks++;
    if (!test_bitwise_equal(what, first, got, n)) test_failures++;
    free(got), free(ones);
}

/* Runs the job with the sum written over `operand` (res or y), into got. */
static void run_in_place(lws_context *ctx, job *j, lws_buffer operand, float *got) {
    j->sum = operand;
    test_run(ctx, record_fwd, j);
    test_download_as(ctx, operand, got, (size_t)j->rows * j->cols);
}

static void check_post(lws_context *ctx, test_rng *rng, lws_dtype t, uint32_t rows, uint32_t cols) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t n = (size_t)rows * cols;
    float *res = test_random_rows(rng, rows, cols, -1.0, 1.0, LWS_F32),
          *y = test_random_rows(rng, rows, cols, -1.0, 1.0, t);
    float *w = test_random_floats(rng, cols, 0.3);
    for (size_t i = 0; i < n; i++) res[i] = test_round(res[i] / 10.0f, t);
    for (uint32_t c = 0; c < cols; c++) w[c] += 1.0f;
    double *resd = test_to_double(res, n), *yd = test_to_double(y, n),
           *wd = test_to_double(w, cols);
    double *want = test_malloc(n * 8), *rstd_want = test_malloc(rows * 8);
    ref_rmsnorm_add(want, rstd_want, resd, yd, wd, rows, cols, EPS);
    float *got = test_malloc(n * 4);
    job j = {.sum = test_output_as(ctx, n, t),
             .rstd = test_output(ctx, rows),
             .res = test_upload_as(ctx, res, n, t),
             .y = test_upload_as(ctx, y, n, t),
             .w = test_upload_floats(ctx, w, cols),
             .rows = rows,
             .cols = cols};
    test_run(ctx, record_fwd, &j);
    test_download_as(ctx, j.sum, got, n);
    check_out("rmsnorm_add out", t, rows, cols, got, want, n, KERNEL_REL);
    /* rstd spans 0.1 .. 10 (y's scale): compared relative to itself */
    check_rstd_and_rerun(ctx, &j, "rmsnorm_add", rstd_want, j.sum, got);
    /* in place over res, then over y (each re-uploaded) */
    run_in_place(ctx, &j, j.res, got);
    check_out("rmsnorm_add in place over res", t, rows, cols, got, want, n, KERNEL_REL);
    j.res = test_upload_as(ctx, res, n, t);
    run_in_place(ctx, &j, j.y, got);
    check_out("rmsnorm_add in place over y", t, rows, cols, got, want, n, KERNEL_REL);
    free(res), free(y), free(w), free(resd), free(yd), free(wd), free(want), free(rstd_want);
    free(got);
    lws_arena_reset(ctx, mark);
}

static void check_pre(lws_context *ctx, test_rng *rng, lws_dtype t, uint32_t rows, uint32_t cols) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t n = (size_t)rows * cols;
    float *res = test_random_rows(rng, rows, cols, -1.0, 1.0, t), *y = test_malloc(n * 4);
    float *w = test_random_floats(rng, cols, 0.3);
    /* y at the scale of its row of res, so h keeps the row's scale */
    for (size_t i = 0; i < n; i++)
        y[i] = test_round(res[i] * (float)(0.5 + test_rng_uniform(rng)) - res[(i + 1) % n], t);
    for (uint32_t c = 0; c < cols; c++) w[c] += 1.0f;
    double *resd = test_to_double(res, n), *yd = test_to_double(y, n),
           *wd = test_to_double(w, cols);
    double *h = test_malloc(n * 8), *hn = test_malloc(n * 8), *rstd_want = test_malloc(rows * 8);
    ref_add_rmsnorm(h, hn, rstd_want, resd, yd, wd, rows, cols, EPS);
    /* The kernel normalises h as stored: the reference of hn starts from h
     * rounded to t (the fp32 sum's rounding differs from the fp64 sum's by
     * 2^-24 relative, far below the 16-bit rounding). */
    double *h_stored = test_malloc(n * 8);
    for (size_t i = 0; i < n; i++) h_stored[i] = test_round((float)h[i], t);
    ref_rmsnorm_fwd(hn, rstd_want, h_stored, wd, rows, cols, EPS);
    float *got = test_malloc(n * 4);
    job j = {.sum = test_output_as(ctx, n, t),
             .normed = test_output_as(ctx, n, t),
             .rstd = test_output(ctx, rows),
             .res = test_upload_as(ctx, res, n, t),
             .y = test_upload_as(ctx, y, n, t),
             .w = test_upload_floats(ctx, w, cols),
             .rows = rows,
             .cols = cols,
             .add_first = 1};
    test_run(ctx, record_fwd, &j);
    /* h = res + y: one rounding in fp32, then the 16-bit one */
    test_download_as(ctx, j.sum, got, n);
    check_out("add_rmsnorm h", t, rows, cols, got, h, n, 1.2e-7);
    test_download_as(ctx, j.normed, got, n);
    check_out("add_rmsnorm hn", t, rows, cols, got, hn, n, KERNEL_REL);
    check_rstd_and_rerun(ctx, &j, "add_rmsnorm", rstd_want, j.normed, got);
    /* h in place over y (the model's use: y is the projection in h's
     * buffer), then over res */
    j.normed = test_output_as(ctx, n, t);
    run_in_place(ctx, &j, j.y, got);
    check_out("add_rmsnorm h in place over y", t, rows, cols, got, h, n, 1.2e-7);
    test_download_as(ctx, j.normed, got, n);
    check_out("add_rmsnorm hn, h in place over y", t, rows, cols, got, hn, n, KERNEL_REL);
    j.y = test_upload_as(ctx, y, n, t);
    run_in_place(ctx, &j, j.res, got);
    check_out("add_rmsnorm h in place over res", t, rows, cols, got, h, n, 1.2e-7);
    free(res), free(y), free(w), free(resd), free(yd), free(wd), free(h), free(hn);
    free(rstd_want), free(h_stored), free(got);
    lws_arena_reset(ctx, mark);
}

/* ---- the backward against finite differences -------------------------------
 * post: L = sum gs * (res + RMSNorm(y) w); dres = gs, (dy, dw) from
 *       rmsnorm_bwd of gs at y (the model passes the residual's gradient on
 *       and runs rmsnorm_bwd into the norm input's gradient).
 * pre:  L = sum gs * h + sum gn * RMSNorm(h) w, h = res + y; dres = dy =
 *       gs + rmsnorm_bwd(gn at h), accumulated into gs's buffer (the model's
 *       accumulate_dx). */
typedef struct fd_arg {
    double *res, *y, *w;
    const double *gs, *gn;
    size_t rows, cols;
    int add_first;
} fd_arg;

static double fd_loss(void *arg) {
    fd_arg *f = arg;
    size_t n = f->rows * f->cols;
    double *sum = test_malloc(n * 8), *normed = test_malloc(n * 8), loss = 0;
    if (f->add_first)
        ref_add_rmsnorm(sum, normed, NULL, f->res, f->y, f->w, f->rows, f->cols, EPS);
    else
        ref_rmsnorm_add(sum, NULL, f->res, f->y, f->w, f->rows, f->cols, EPS);
    for (size_t i = 0; i < n; i++)
        loss += f->gs[i] * sum[i] + (f->add_first ? f->gn[i] * normed[i] : 0.0);
    free(sum), free(normed);
    return loss;
}

static void record_bwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    /* post: dres is gs itself; rmsnorm_bwd writes dy into dnormed.
     * pre: dres (holding gs) += rmsnorm_bwd(gn) at h. */
    if (j->add_first)
        lws_op_rmsnorm_bwd(cmd, j->dres, j->dw, j->dnormed, j->sum, j->w, j->rstd, j->scratch,
                           j->rows, j->cols, 1);
    else
        lws_op_rmsnorm_bwd(cmd, j->dnormed, j->dw, j->dres, j->y, j->w, j->rstd, j->scratch,
                           j->rows, j->cols, 0);
}

static void check_finite_difference(lws_context *ctx, test_rng *rng, int add_first) {
    enum { rows = 3, cols = 7, n = rows * cols };
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *res = test_random_floats(rng, n, 1.0), *y = test_random_floats(rng, n, 1.0);
    float *w = test_random_floats(rng, cols, 0.3), zeros[cols] = {0};
    for (int c = 0; c < cols; c++) w[c] += 1.0f;
    float *gs = test_random_floats(rng, n, 1.0), *gn = test_random_floats(rng, n, 1.0);
    job j = {.sum = test_output(ctx, n),
             .normed = test_output(ctx, n),
             .rstd = test_output(ctx, rows),
             .res = test_upload_floats(ctx, res, n),
             .y = test_upload_floats(ctx, y, n),
             .w = test_upload_floats(ctx, w, cols),
             .dres = test_upload_floats(ctx, gs, n),
             .dw = test_upload_floats(ctx, zeros, cols),
             .dnormed = add_first ? test_upload_floats(ctx, gn, n) : test_output(ctx, n),
             .scratch = test_output(ctx, lws_rmsnorm_scratch_floats(ctx, rows, cols)),
             .rows = rows,
             .cols = cols,
             .add_first = add_first};
    test_run(ctx, record_fwd, &j);
    test_run(ctx, record_bwd, &j);
    /* got: dres, dy, dw */
    float got[2 * n + cols];
    test_download(ctx, j.dres, got, n);
    test_download(ctx, add_first ? j.dres : j.dnormed, got + n, n);
    test_download(ctx, j.dw, got + 2 * n, cols);
    double *resd = test_to_double(res, n), *yd = test_to_double(y, n),
           *wd = test_to_double(w, cols);
    double *gsd = test_to_double(gs, n), *gnd = test_to_double(gn, n);
    fd_arg f = {resd, yd, wd, gsd, gnd, rows, cols, add_first};
    double fd[2 * n + cols];
    for (size_t i = 0; i < n; i++) fd[i] = test_finite_difference(fd_loss, &f, resd, i, 1e-6);
    for (size_t i = 0; i < n; i++) fd[n + i] = test_finite_difference(fd_loss, &f, yd, i, 1e-6);
    for (size_t c = 0; c < cols; c++)
        fd[2 * n + c] = test_finite_difference(fd_loss, &f, wd, c, 1e-6);
    /* fp64 central differences (h = 1e-6) are good to ~1e-9; the fp32
     * gradients, of order 1, to a few ulps. */
    CHECK_CLOSE(add_first ? "add_rmsnorm backward vs finite differences (dres, dy, dw)"
                          : "rmsnorm_add backward vs finite differences (dres, dy, dw)",
                got, fd, 2 * n + cols, 2e-5, 1e-5);
    free(res), free(y), free(w), free(gs), free(gn), free(resd), free(yd), free(wd), free(gsd);
    free(gnd);
    lws_arena_reset(ctx, mark);
}

/* Mixed element types, a short buffer and hn over h are refused by name. */
static void check_refusals(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer a = test_output(ctx, 64), b16 = test_output_as(ctx, 64, LWS_BF16);
    lws_buffer r = test_output(ctx, 8), w = test_output(ctx, 8);
    lws_cmd *cmd = NULL;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    lws_status s = lws_op_rmsnorm_add(cmd, a, r, a, b16, w, 8, 8, EPS);
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "rmsnorm_add: out, res, y"),
          "rmsnorm_add with a bf16 y: want a refusal, got '%s'", lws_error_message());
    lws_cmd_end(cmd);
    lws_cmd_destroy(cmd);
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    s = lws_op_add_rmsnorm(cmd, a, test_output(ctx, 8), r, a, a, w, 8, 8, EPS);
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "add_rmsnorm: operand 2"),
          "add_rmsnorm with a short hn: want a refusal, got '%s'", lws_error_message());
    lws_cmd_end(cmd);
    lws_cmd_destroy(cmd);
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    s = lws_op_add_rmsnorm(cmd, a, a, r, a, a, w, 8, 8, EPS);
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "hn overlaps"),
          "add_rmsnorm with hn over h: want a refusal, got '%s'", lws_error_message());
    lws_cmd_end(cmd);
    lws_cmd_destroy(cmd);
    lws_error_clear();
    printf("ok   bad operands are refused\n");
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 43);
    /* rows: 1, primes, one past a workgroup's rows; cols: 1, 5, 129 (one
     * past the workgroup), the model widths 64 and 768, and odd ones. */
    const uint32_t shapes[][2] = {{1, 1},   {1, 5},   {7, 64},   {33, 129},
                                  {7, 768}, {257, 5}, {130, 67}, {1031, 48}};
    const lws_dtype types[] = {LWS_F32, LWS_BF16, LWS_F16};
    /* Every split of a row over invocations the tuning may choose: one per
     * row (lavapipe), a few, and the whole workgroup (GPUs). */
    const char *splits[] = {"1", "4", "128"};
    for (size_t k = 0; k < sizeof splits / sizeof *splits; k++) {
        setenv("LWS_ROW_THREADS", splits[k], 1);
        printf("-- up to %s invocations per row\n", splits[k]);
        for (size_t t = 0; t < sizeof types / sizeof *types; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                check_post(ctx, &rng, types[t], shapes[s][0], shapes[s][1]);
                check_pre(ctx, &rng, types[t], shapes[s][0], shapes[s][1]);
            }
        check_finite_difference(ctx, &rng, 0);
        check_finite_difference(ctx, &rng, 1);
    }
    unsetenv("LWS_ROW_THREADS");
    check_refusals(ctx);
    return test_finish(ctx);
}
