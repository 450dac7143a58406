// lws-test: vulkan kernel
/* The RMSNorm backward with its weight-gradient sums deferred, as a layer
 * records it: four norms (two plain ones, q's and k's QK-norm with RoPE in
 * one rows dispatch) leaving their partial sums side by side in one scratch,
 * then one lws_op_rmsnorm_dw_sum. Against the fp64 references in fp32, bf16
 * and fp16 (rows, widths and head counts that are not multiples of the row
 * groups, every split of a row over invocations, outputs poisoned with NaN,
 * dx written and accumulated, dw accumulated), bit for bit against the
 * two-pass lws_op_rmsnorm_bwd / lws_op_rmsnorm_rope_bwd, and the refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/rmsnorm.h"

#define EPS   1e-6f
#define THETA 10000.0f
#define NORMS 4

/* Norms 0 and 3 plain (width d; 3 accumulates dx), 1 and 2 q's and k's
 * QK-norm with RoPE. */
typedef struct layer {
    lws_norm_bwd p[NORMS];
    lws_rope_shape rope[2];
    lws_buffer scratch;
    uint32_t rows;
} layer;

static void record_deferred(lws_cmd *cmd, void *arg) {
    layer *l = arg;
    lws_norm_dw_sums sums = {.scratch = l->scratch};
    lws_op_rmsnorm_bwd_rows(cmd, &l->p[0], 1, l->rows, &sums);
    lws_op_rmsnorm_bwd_rows(cmd, &l->p[1], 2, l->rows, &sums);
    lws_op_rmsnorm_bwd_rows(cmd, &l->p[3], 1, l->rows, &sums);
    lws_cmd_barrier(cmd);
    lws_op_rmsnorm_dw_sum(cmd, &sums);
}

static void record_two_pass(lws_cmd *cmd, void *arg) {
    layer *l = arg;
    for (int k = 0; k < NORMS; k++) {
        const lws_norm_bwd *p = &l->p[k];
        if (p->rope)
            lws_op_rmsnorm_rope_bwd(cmd, p->dx, p->dw, p->dy, p->x, p->w, p->rstd, l->scratch,
                                    l->rows, *p->rope, p->accumulate_dx);
        else
            lws_op_rmsnorm_bwd(cmd, p->dx, p->dw, p->dy, p->x, p->w, p->rstd, l->scratch, l->rows,
                               p->cols, p->accumulate_dx);
        lws_cmd_barrier(cmd);
    }
}

/* One norm's host side: inputs, dx0 (accumulated into), dw0, the fp64
 * reference's dx and dw. */
typedef struct host_norm {
    float *x, *dy, *w, *dw0, *dx0, *rstd;
    double *dx, *dw;
    size_t n;
} host_norm;

static void make_norm(lws_context *ctx, test_rng *rng, lws_dtype t, uint32_t rows, lws_norm_bwd *p,
                      host_norm *h) {
    uint32_t cols = p->cols;
    size_t n = h->n = (size_t)rows * cols;
    h->x = test_random_rows(rng, rows, cols, -0.5, 0.5, t),
    h->dy = test_random_rows(rng, rows, cols, -0.5, 0.5, t);
    h->dx0 = test_random_rows(rng, rows, cols, -0.5, 0.5, t);
    h->w = test_random_floats(rng, cols, 0.3), h->dw0 = test_random_floats(rng, cols, 1.0);
    for (uint32_t c = 0; c < cols; c++) h->w[c] += 1.0f;
    h->rstd = test_malloc(rows * sizeof *h->rstd);
    for (uint32_t r = 0; r < rows; r++) {
        double ss = 0;
        for (uint32_t c = 0; c < cols; c++) ss += (double)h->x[r * cols + c] * h->x[r * cols + c];
        h->rstd[r] = (float)(1.0 / sqrt(ss / cols + EPS));
    }
    double *xd = test_to_double(h->x, n), *wd = test_to_double(h->w, cols);
    double *dyd = test_to_double(h->dy, n);
    h->dx = test_malloc(n * sizeof *h->dx), h->dw = test_to_double(h->dw0, cols);
    const lws_rope_shape *r = p->rope;
    if (r)
        ref_rmsnorm_rope_bwd(h->dx, h->dw, dyd, xd, wd, rows, r->seq_len, r->heads, r->head_dim,
                             THETA, EPS);
    else
        ref_rmsnorm_bwd(h->dx, h->dw, dyd, xd, wd, rows, cols, EPS);
    if (p->accumulate_dx)
        for (size_t i = 0; i < n; i++) h->dx[i] += h->dx0[i];
    p->x = test_upload_as(ctx, h->x, n, t), p->dy = test_upload_as(ctx, h->dy, n, t);
    p->w = test_upload_floats(ctx, h->w, cols), p->rstd = test_upload_floats(ctx, h->rstd, rows);
    free(xd), free(wd), free(dyd);
}

/* Fresh outputs: dx poisoned with NaN (or dx0 to accumulate into), dw = dw0. */
static void reset_outputs(lws_context *ctx, lws_dtype t, layer *l, const host_norm *h) {
    for (int k = 0; k < NORMS; k++) {
        lws_norm_bwd *p = &l->p[k];
        p->dx = p->accumulate_dx ? test_upload_as(ctx, h[k].dx0, h[k].n, t)
                                 : test_output_as(ctx, h[k].n, t);
        p->dw = test_upload_floats(ctx, h[k].dw0, p->cols);
    }
}

static void download(lws_context *ctx, const layer *l, const host_norm *h, float **dx, float **dw) {
    for (int k = 0; k < NORMS; k++) {
        test_download_as(ctx, l->p[k].dx, dx[k], h[k].n);
        test_download(ctx, l->p[k].dw, dw[k], l->p[k].cols);
    }
}

/* Tolerances of the fp32 kernel, relative to an output's largest value, as
 * test_rmsnorm.c's: dx 1e-5 (a `cols`-term dot product, then s g w - x coef)
 * plus the rounding of its type; dw 1e-6 * (rows + 1) (`rows` terms summed
 * in fp32 in two levels; dw is fp32 in every case). */
static void check_layer(lws_context *ctx, test_rng *rng, lws_dtype t, uint32_t rows, uint32_t d,
                        lws_rope_shape q, lws_rope_shape k) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    layer l = {.rope = {q, k}, .rows = rows};
    const uint32_t cols[NORMS] = {d, q.heads * q.head_dim, k.heads * k.head_dim, d};
    host_norm h[NORMS];
    float *dx[2][NORMS], *dw[2][NORMS];
    uint64_t scratch = 0;
    for (int n = 0; n < NORMS; n++) {
        l.p[n] = (lws_norm_bwd){.cols = cols[n], .accumulate_dx = n == 3};
        l.p[n].rope = n == 1 || n == 2 ? &l.rope[n - 1] : NULL;
        make_norm(ctx, rng, t, rows, &l.p[n], &h[n]);
        scratch += lws_rmsnorm_scratch_floats(ctx, rows, cols[n]);
        for (int v = 0; v < 2; v++) {
            dx[v][n] = test_malloc(h[n].n * sizeof(float));
            dw[v][n] = test_malloc(cols[n] * sizeof(float));
        }
    }
    l.scratch = test_output(ctx, scratch);
    reset_outputs(ctx, t, &l, h);
    test_run(ctx, record_deferred, &l);
    download(ctx, &l, h, dx[0], dw[0]);
    double u = test_unit_roundoff(t);
    for (int n = 0; n < NORMS; n++) {
        char label[160];
        double mx = 0, mw = 0;
        for (size_t i = 0; i < h[n].n; i++) mx = fmax(mx, fabs(h[n].dx[i]));
        for (uint32_t c = 0; c < cols[n]; c++) mw = fmax(mw, fabs(h[n].dw[c]));
        snprintf(label, sizeof label, "norm %d%s dx %u x %u [%s]", n, l.p[n].rope ? " (RoPE)" : "",
                 rows, cols[n], lws_dtype_name(t));
        CHECK_CLOSE(label, dx[0][n], h[n].dx, h[n].n, (u + 1e-5) * mx + 1e-30, u + 1e-5);
        snprintf(label, sizeof label, "norm %d%s dw %u x %u [%s]", n, l.p[n].rope ? " (RoPE)" : "",
                 rows, cols[n], lws_dtype_name(t));
        double tol = 1e-6 * (rows + 1);
        CHECK_CLOSE(label, dw[0][n], h[n].dw, cols[n], tol * mw + 1e-30, tol);
    }
    /* the two-pass ops, one norm at a time: the same bits */
    reset_outputs(ctx, t, &l, h);
    test_run(ctx, record_two_pass, &l);
    download(ctx, &l, h, dx[1], dw[1]);
    for (int n = 0; n < NORMS; n++) {
        test_checks += 2;
        if (!test_bitwise_equal("dx deferred vs two-pass", dx[0][n], dx[1][n], h[n].n))
            test_failures++;
        if (!test_bitwise_equal("dw deferred vs two-pass", dw[0][n], dw[1][n], cols[n]))
            test_failures++;
    }
    for (int n = 0; n < NORMS; n++) {
        free(h[n].x), free(h[n].dy), free(h[n].w), free(h[n].dw0), free(h[n].dx0);
        free(h[n].rstd), free(h[n].dx), free(h[n].dw);
        for (int v = 0; v < 2; v++) free(dx[v][n]), free(dw[v][n]);
    }
    lws_arena_reset(ctx, mark);
}

/* ---- refusals ---- */

typedef struct bad {
    lws_norm_bwd p[3];
    lws_buffer scratch;
    uint32_t n, rows, repeat;
} bad;

static void record_bad(lws_cmd *cmd, void *arg) {
    bad *b = arg;
    lws_norm_dw_sums sums = {.scratch = b->scratch};
    for (uint32_t r = 0; r < b->repeat; r++)
        lws_op_rmsnorm_bwd_rows(cmd, b->p, b->n, b->rows, &sums);
}

static void check_refusals(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    enum { rows = 4, cols = 8 };
    lws_buffer a = test_output(ctx, rows * cols), v = test_output(ctx, cols);
    lws_buffer r = test_output(ctx, rows), d0 = test_output(ctx, rows * cols);
    lws_buffer d1 = test_output(ctx, rows * cols);
    uint32_t need = lws_rmsnorm_scratch_floats(ctx, rows, cols);
    lws_rope_shape r1 = {4, 2, 4, THETA}, r2 = {4, 2, 4, 500.0f};
    bad b = {.p = {{d0, v, a, a, v, r, cols, 0, NULL}, {d1, v, a, a, v, r, cols, 0, NULL}},
             .scratch = test_output(ctx, 6 * need),
             .n = 3,
             .rows = rows,
             .repeat = 1};
    b.p[2] = b.p[1];
    test_expect_refused(ctx, "three problems", record_bad, &b,
                        "3 problems; one dispatch takes 1 or 2");
    b.n = 2, b.repeat = 3;
    test_expect_refused(ctx, "six entries", record_bad, &b, "at most 4 fit in one sum");
    b.repeat = 1;
    b.p[1].dx = a; /* problem 1's dx is problem 0's dy */
    test_expect_refused(ctx, "overlapping dx", record_bad, &b, "problem 1's dx overlaps");
    b.p[1].dx = d1, b.p[0].rope = &r1, b.p[1].rope = &r2;
    test_expect_refused(ctx, "different RoPE", record_bad, &b, "the two problems' RoPE differ");
    b.p[1].rope = &r1, b.scratch = test_output(ctx, 2 * need - 1);
    test_expect_refused(ctx, "small scratch", record_bad, &b, "lws_rmsnorm_scratch_floats");
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 53);
    /* rows (tokens), d, q's and k's (seq_len, heads, head_dim): one row,
     * primes, positions wrapping, the tiny configs' widths, rows wider than a
     * workgroup */
    const struct {
        uint32_t rows, d;
        lws_rope_shape q, k;
    } shapes[] = {{1, 3, {1, 1, 2, THETA}, {1, 1, 2, THETA}},
                  {37, 96, {16, 6, 16, THETA}, {16, 2, 16, THETA}},
                  {301, 130, {128, 5, 8, THETA}, {128, 3, 8, THETA}},
                  {67, 520, {67, 9, 64, THETA}, {67, 3, 64, THETA}}};
    const lws_dtype types[] = {LWS_F32, LWS_BF16, LWS_F16};
    /* every split of a row over invocations the tuning may choose (one per
     * row, a few, the whole workgroup), with every type and shape */
    const char *splits[] = {"1", "4", "128"};
    const uint32_t n_shapes = sizeof shapes / sizeof *shapes;
    for (uint32_t i = 0; i < 3 * 3 * n_shapes; i++) {
        uint32_t k = i % n_shapes, t = i / n_shapes % 3, split = i / n_shapes / 3;
        setenv("LWS_ROW_THREADS", splits[split], 1);
        check_layer(ctx, &rng, types[t], shapes[k].rows, shapes[k].d, shapes[k].q, shapes[k].k);
    }
    unsetenv("LWS_ROW_THREADS");
    check_refusals(ctx);
    return test_finish(ctx);
}
