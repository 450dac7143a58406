// lws-test: vulkan kernel
/* QK-norm fused with RoPE (rmsnorm_rope_fwd: y = RoPE(RMSNorm(x) w), the norm
 * over the whole row of heads * head_dim; rmsnorm_rope_bwd: its backward)
 * against the fp64 references (RMSNorm, then ref_rope), in fp32, bf16 and
 * fp16: rows, head counts and widths that are not multiples of the
 * workgroup, positions wrapping at seq_len, every split of a row over
 * invocations, outputs poisoned with NaN, y in place over x, dx written and
 * accumulated, dw accumulated, bit-identical reruns, refusals of bad shapes,
 * and a finite-difference check of the backward. The paired forward
 * (rmsnorm_rope_fwd_pair: q's and k's in one dispatch, each its own width,
 * head count and weights) against the same references, every element of
 * both outputs written and nothing past them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/rmsnorm.h"

#define EPS   1e-6f
#define THETA 10000.0f

typedef struct job {
    lws_buffer y, rstd, x, w;
    lws_buffer dx, dw, dy, scratch;
    uint32_t rows;
    lws_rope_shape rope;
    int accumulate_dx;
} job;

static void record_fwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_rmsnorm_rope_fwd(cmd, j->y, j->rstd, j->x, j->w, j->rows, j->rope, EPS);
}

static void record_bwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_rmsnorm_rope_bwd(cmd, j->dx, j->dw, j->dy, j->x, j->w, j->rstd, j->scratch, j->rows,
                            j->rope, j->accumulate_dx);
}

static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* An output of type t: its own rounding (u of the largest value) plus the
 * fp32 kernel's error, `rel` of the largest value; rel-L2 u + rel. */
static void check_out(const char *what, lws_dtype t, const job *j, const float *got,
                      const double *want, size_t n, double rel) {
    double u = test_unit_roundoff(t), m = max_abs(want, n);
    char label[160];
    snprintf(label, sizeof label, "%s %u rows x %u heads x %u (seq %u) [%s]", what, j->rows,
             j->rope.heads, j->rope.head_dim, j->rope.seq_len, lws_dtype_name(t));
    CHECK_CLOSE(label, got, want, n, (u + rel) * m + 1e-30, u + rel);
}

/* Tolerances of the fp32 kernel, relative to an output's largest value:
 * y: the norm (a `cols`-term fp32 sum of squares, inversesqrt, two
 * products: below 1e-6) rotated by an angle good to ~1e-7 rad (rope.glsl)
 * with two more products and a sum: 2e-6. dx: a `cols`-term dot product of
 * the rotated-back gradient with x, then s g w - x coef: 1e-5 (as
 * test_rmsnorm.c's). dw: `rows` terms summed in fp32 in two levels:
 * 1e-6 * (rows + 1) relative to the largest. rstd: 2e-6 of itself. */
static void check_shape(lws_context *ctx, test_rng *rng, lws_dtype t, uint32_t rows,
                        lws_rope_shape rope) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t cols = rope.heads * rope.head_dim;
    size_t n = (size_t)rows * cols;
    float *x = test_random_rows(rng, rows, cols, -0.5, 0.5, t),
          *dy = test_random_rows(rng, rows, cols, -0.5, 0.5, t);
    float *dx0 = test_random_rows(rng, rows, cols, -0.5, 0.5, t);
    float *w = test_random_floats(rng, cols, 0.3), *dw0 = test_random_floats(rng, cols, 1.0);
    for (uint32_t c = 0; c < cols; c++) w[c] += 1.0f;
    double *xd = test_to_double(x, n), *wd = test_to_double(w, cols), *dyd = test_to_double(dy, n);
    double *y = test_malloc(n * 8), *rstd = test_malloc(rows * 8), *dx = test_malloc(n * 8);
    double *dw = test_to_double(dw0, cols); /* the reference adds into dw */
    ref_rmsnorm_rope_fwd(y, rstd, xd, wd, rows, rope.seq_len, rope.heads, rope.head_dim, THETA,
                         EPS);
    ref_rmsnorm_rope_bwd(dx, dw, dyd, xd, wd, rows, rope.seq_len, rope.heads, rope.head_dim, THETA,
                         EPS);
    job j = {.y = test_output_as(ctx, n, t),
             .rstd = test_output(ctx, rows),
             .x = test_upload_as(ctx, x, n, t),
             .w = test_upload_floats(ctx, w, cols),
             .dx = test_output_as(ctx, n, t),
             .dw = test_upload_floats(ctx, dw0, cols),
             .dy = test_upload_as(ctx, dy, n, t),
             .scratch = test_output(ctx, lws_rmsnorm_scratch_floats(ctx, rows, cols)),
             .rows = rows,
             .rope = rope};
    float *got = test_malloc(n * 4), *again = test_malloc(n * 4);
    test_run(ctx, record_fwd, &j);
    test_download_as(ctx, j.y, got, n);
    check_out("rmsnorm_rope_fwd y", t, &j, got, y, n, 2e-6);
    test_download(ctx, j.rstd, again, rows);
    double *ones = test_malloc(rows * 8);
    for (uint32_t r = 0; r < rows; r++) {
        again[r] = (float)(again[r] / rstd[r]);
        ones[r] = 1.0;
    }
    check_out("rmsnorm_rope_fwd rstd/want", LWS_F32, &j, again, ones, rows, 2e-6);
    test_run(ctx, record_fwd, &j);
    test_download_as(ctx, j.y, again, n);
    test_checks++;
    if (!test_bitwise_equal("rmsnorm_rope_fwd twice", got, again, n)) test_failures++;

    /* dx written into a poisoned buffer, dw added to dw0 */
    test_run(ctx, record_bwd, &j);
    test_download_as(ctx, j.dx, got, n);
    check_out("rmsnorm_rope_bwd dx", t, &j, got, dx, n, 1e-5);
    test_download(ctx, j.dw, again, cols);
    check_out("rmsnorm_rope_bwd dw (accumulated)", LWS_F32, &j, again, dw, cols, 1e-6 * (rows + 1));
    /* the same bits again, from the same dw0 */
    CHECK_OK(lws_upload(ctx, j.dw, dw0, cols * sizeof(float)));
    test_run(ctx, record_bwd, &j);
    test_download_as(ctx, j.dx, again, n);
    test_checks++;
    if (!test_bitwise_equal("rmsnorm_rope_bwd dx twice", got, again, n)) test_failures++;

    /* accumulate_dx: dx = dx0 + d/dx */
    j.dx = test_upload_as(ctx, dx0, n, t);
    j.accumulate_dx = 1;
    test_run(ctx, record_bwd, &j);
    test_download_as(ctx, j.dx, got, n);
    for (size_t i = 0; i < n; i++) dx[i] += dx0[i];
    check_out("rmsnorm_rope_bwd dx accumulated", t, &j, got, dx, n, 1e-5);

    /* y in place over x */
    j.y = j.x;
    test_run(ctx, record_fwd, &j);
    test_download_as(ctx, j.x, got, n);
    check_out("rmsnorm_rope_fwd in place", t, &j, got, y, n, 2e-6);

    free(x), free(dy), free(dx0), free(w), free(dw0), free(xd), free(wd), free(dyd);
    free(y), free(rstd), free(dx), free(dw), free(got), free(again), free(ones);
    lws_arena_reset(ctx, mark);
}

/* ---- q's and k's in one dispatch ------------------------------------------ */

#define GUARD 8 /* poisoned elements after each output */

typedef struct pair_job {
    lws_norm_rope p[2];
    uint32_t rows;
} pair_job;

static void record_pair(lws_cmd *cmd, void *arg) {
    pair_job *j = arg;
    lws_op_rmsnorm_rope_fwd_pair(cmd, j->p, j->rows, EPS);
}

/* Downloads n elements and a guard from b; checks them against want with
 * check_out's tolerance (rel as there) and the guard still NaN. */
static void check_with_guard(lws_context *ctx, const char *what, lws_dtype t, lws_buffer b,
                             const double *want, size_t n, uint32_t rows, lws_rope_shape rope) {
    float *got = test_malloc((n + GUARD) * sizeof *got);
    test_download_as(ctx, b, got, n + GUARD);
    job j = {.rows = rows, .rope = rope};
    check_out(what, t, &j, got, want, n, 2e-6);
    size_t written = 0;
    for (size_t i = n; i < n + GUARD; i++) written += !isnan(got[i]);
    CHECK(written == 0, "%s: %zu of the %d guard elements after it were written", what, written,
          GUARD);
    free(got);
}

/* y and rstd of both problems against ref_rmsnorm_rope_fwd, outputs NaN
 * before the dispatch; with in_place, problem 1's y over its x. The
 * tolerances are check_shape's (2e-6 of the largest value, plus the
 * storage type's rounding): each problem is computed as the single kernel
 * computes it, only the split of a row (the wider problem's) may differ. */
static void check_pair(lws_context *ctx, test_rng *rng, lws_dtype t, uint32_t rows,
                       const lws_rope_shape *rope, int in_place) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    pair_job j = {.rows = rows};
    double *y[2], *rstd[2];
    for (int i = 0; i < 2; i++) {
        uint32_t cols = rope[i].heads * rope[i].head_dim;
        size_t n = (size_t)rows * cols;
        float *x = test_random_rows(rng, rows, cols, -0.5, 0.5, t),
              *w = test_random_floats(rng, cols, 0.3);
        for (uint32_t c = 0; c < cols; c++) w[c] += 1.0f;
        double *xd = test_to_double(x, n), *wd = test_to_double(w, cols);
        y[i] = test_malloc(n * 8), rstd[i] = test_malloc(rows * 8);
        ref_rmsnorm_rope_fwd(y[i], rstd[i], xd, wd, rows, rope[i].seq_len, rope[i].heads,
                             rope[i].head_dim, THETA, EPS);
        j.p[i] = (lws_norm_rope){test_output_as(ctx, n + GUARD, t), test_output(ctx, rows + GUARD),
                                 test_upload_as(ctx, x, n, t), test_upload_floats(ctx, w, cols),
                                 rope[i]};
        if (in_place && i == 1) { /* x followed by a NaN guard, y over it */
            float *xg = test_malloc((n + GUARD) * sizeof *xg);
            memcpy(xg, x, n * sizeof *xg);
            for (size_t e = n; e < n + GUARD; e++) xg[e] = NAN;
            j.p[i].x = j.p[i].y = test_upload_as(ctx, xg, n + GUARD, t);
            free(xg);
        }
        free(x), free(w), free(xd), free(wd);
    }
    test_run(ctx, record_pair, &j);
    for (int i = 0; i < 2; i++) {
        char what[80];
        size_t n = (size_t)rows * rope[i].heads * rope[i].head_dim;
        snprintf(what, sizeof what, "pair[%d] y%s", i, in_place && i == 1 ? " in place" : "");
        check_with_guard(ctx, what, t, j.p[i].y, y[i], n, rows, rope[i]);
        snprintf(what, sizeof what, "pair[%d] rstd", i);
        check_with_guard(ctx, what, LWS_F32, j.p[i].rstd, rstd[i], rows, rows, rope[i]);
        free(y[i]), free(rstd[i]);
    }
    lws_arena_reset(ctx, mark);
}

/* One dispatch, no barrier, for both problems. */
static void check_pair_is_one_dispatch(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    pair_job j = {.rows = 4};
    for (int i = 0; i < 2; i++)
        j.p[i] = (lws_norm_rope){test_output(ctx, 64),
                                 test_output(ctx, 4),
                                 test_output(ctx, 64),
                                 test_output(ctx, 16),
                                 {4, 2, 4, THETA}};
    lws_cmd *cmd = NULL;
    uint64_t before = lws_context_dispatches(ctx);
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    record_pair(cmd, &j);
    CHECK_OK(lws_cmd_end(cmd));
    uint32_t barriers = 0, unneeded = 0;
    lws_cmd_barrier_stats(cmd, &barriers, &unneeded);
    lws_cmd_destroy(cmd);
    uint64_t dispatches = lws_context_dispatches(ctx) - before;
    CHECK(dispatches == 1 && barriers == 0, "pair: %llu dispatches, %u barriers",
          (unsigned long long)dispatches, barriers);
    lws_arena_reset(ctx, mark);
}

/* L = sum dy * RoPE(RMSNorm(x) w), in fp64, for central differences. */
typedef struct fd_arg {
    double *x, *w;
    const double *dy;
    size_t rows;
    lws_rope_shape rope;
} fd_arg;

static double fd_loss(void *arg) {
    fd_arg *f = arg;
    size_t n = f->rows * f->rope.heads * f->rope.head_dim;
    double *y = test_malloc(n * sizeof *y), loss = 0;
    ref_rmsnorm_rope_fwd(y, NULL, f->x, f->w, f->rows, f->rope.seq_len, f->rope.heads,
                         f->rope.head_dim, THETA, EPS);
    for (size_t i = 0; i < n; i++) loss += f->dy[i] * y[i];
    free(y);
    return loss;
}

static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    enum { rows = 5, heads = 3, head_dim = 4, cols = heads * head_dim, n = rows * cols };
    lws_rope_shape rope = {3, heads, head_dim, THETA};
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *x = test_random_floats(rng, n, 1.0), *w = test_random_floats(rng, cols, 0.3);
    for (int c = 0; c < cols; c++) w[c] += 1.0f;
    float *dy = test_random_floats(rng, n, 1.0), zeros[cols] = {0};
    job j = {.y = test_output(ctx, n),
             .rstd = test_output(ctx, rows),
             .x = test_upload_floats(ctx, x, n),
             .w = test_upload_floats(ctx, w, cols),
             .dx = test_output(ctx, n),
             .dw = test_upload_floats(ctx, zeros, cols),
             .dy = test_upload_floats(ctx, dy, n),
             .scratch = test_output(ctx, lws_rmsnorm_scratch_floats(ctx, rows, cols)),
             .rows = rows,
             .rope = rope};
    test_run(ctx, record_fwd, &j);
    test_run(ctx, record_bwd, &j);
    float got[n + cols];
    test_download(ctx, j.dx, got, n);
    test_download(ctx, j.dw, got + n, cols);
    double *xd = test_to_double(x, n), *wd = test_to_double(w, cols), *dyd = test_to_double(dy, n);
    fd_arg f = {xd, wd, dyd, rows, rope};
    double fd[n + cols];
    for (size_t i = 0; i < n; i++) fd[i] = test_finite_difference(fd_loss, &f, xd, i, 1e-6);
    for (size_t c = 0; c < cols; c++) fd[n + c] = test_finite_difference(fd_loss, &f, wd, c, 1e-6);
    /* fp64 central differences (h = 1e-6) are good to ~1e-9 here; the GPU's
     * fp32 gradients, of order 1, to a few ulps. */
    CHECK_CLOSE("rmsnorm_rope_bwd vs finite differences (dx, dw)", got, fd, n + cols, 2e-5, 1e-5);
    free(x), free(w), free(dy), free(xd), free(wd), free(dyd);
    lws_arena_reset(ctx, mark);
}

/* An odd head_dim and a zero sequence length are refused by name. */
static void check_refusals(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer a = test_output(ctx, 64), r = test_output(ctx, 8), w = test_output(ctx, 8);
    const lws_rope_shape bad[] = {{4, 2, 3, THETA}, {0, 2, 4, THETA}};
    const char *want[] = {"rmsnorm_rope_fwd: head_dim = 3", "rmsnorm_rope_fwd: seq_len = 0"};
    for (int k = 0; k < 2; k++) {
        lws_cmd *cmd = NULL;
        CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
        lws_status s = lws_op_rmsnorm_rope_fwd(cmd, a, r, a, w, 4, bad[k], EPS);
        CHECK(s != LWS_OK && test_contains(lws_error_message(), want[k]),
              "want a refusal naming '%s', got '%s'", want[k], lws_error_message());
        lws_cmd_end(cmd);
        lws_cmd_destroy(cmd);
    }
    /* the pair: outputs over the other problem's operands, differing seq_len */
    pair_job base = {{{test_output(ctx, 64),
                       test_output(ctx, 8),
                       test_output(ctx, 64),
                       test_output(ctx, 16),
                       {4, 2, 4, THETA}},
                      {test_output(ctx, 64),
                       test_output(ctx, 8),
                       test_output(ctx, 64),
                       test_output(ctx, 16),
                       {4, 2, 4, THETA}}},
                     4};
    pair_job j = base;
    j.p[1].y = lws_buffer_slice(base.p[0].x, 32, 128);
    test_expect_refused(ctx, "pair: k's y over q's x", record_pair, &j,
                        "rmsnorm_rope_fwd_pair[1]: y or rstd overlaps");
    j = base;
    j.p[0].rstd = base.p[1].w;
    test_expect_refused(ctx, "pair: q's rstd over k's w", record_pair, &j,
                        "rmsnorm_rope_fwd_pair[0]: y or rstd overlaps");
    j = base;
    j.p[1].rope.seq_len = 2;
    test_expect_refused(ctx, "pair: seq_len differing", record_pair, &j, "seq_len 2");
    j = base;
    j.p[1].rope.head_dim = 3;
    test_expect_refused(ctx, "pair: odd head_dim", record_pair, &j,
                        "rmsnorm_rope_fwd_pair[1]: head_dim = 3");
    lws_error_clear();
    printf("ok   bad shapes are refused\n");
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 47);
    /* rows (tokens) and seq_len: 1, primes, positions wrapping; heads x
     * head_dim: one pair, odd head counts, the tiny configs' 16 and the
     * paper's 64, rows wider than a workgroup (12 x 64). */
    const struct {
        uint32_t rows;
        lws_rope_shape rope;
    } shapes[] = {{1, {1, 1, 2, THETA}},     {7, {3, 3, 16, THETA}},    {33, {16, 5, 8, THETA}},
                  {130, {64, 2, 16, THETA}}, {37, {37, 12, 64, THETA}}, {300, {128, 1, 6, THETA}}};
    const lws_dtype types[] = {LWS_F32, LWS_BF16, LWS_F16};
    /* Every split of a row over invocations the tuning may choose: one per
     * row (lavapipe), a few, and the whole workgroup (GPUs). */
    const char *splits[] = {"1", "4", "128"};
    for (size_t k = 0; k < sizeof splits / sizeof *splits; k++) {
        setenv("LWS_ROW_THREADS", splits[k], 1);
        printf("-- up to %s invocations per row\n", splits[k]);
        for (size_t t = 0; t < sizeof types / sizeof *types; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                check_shape(ctx, &rng, types[t], shapes[s].rows, shapes[s].rope);
        check_finite_difference(ctx, &rng);
        /* the pair: q and k of different widths, one head each, different
         * head_dims, the paper's 64 */
        static const struct {
            uint32_t rows;
            lws_rope_shape rope[2];
        } pairs[] = {{1, {{1, 1, 2, THETA}, {1, 1, 2, THETA}}},
                     {33, {{16, 5, 8, THETA}, {16, 1, 8, THETA}}},
                     {130, {{64, 12, 16, THETA}, {64, 3, 6, THETA}}},
                     {37, {{37, 12, 64, THETA}, {37, 2, 64, THETA}}}};
        for (size_t t = 0; t < sizeof types / sizeof *types; t++)
            for (size_t s = 0; s < sizeof pairs / sizeof *pairs; s++)
                check_pair(ctx, &rng, types[t], pairs[s].rows, pairs[s].rope, (int)(s + t) % 2);
    }
    check_pair_is_one_dispatch(ctx);
    unsetenv("LWS_ROW_THREADS");
    check_refusals(ctx);
    return test_finish(ctx);
}
