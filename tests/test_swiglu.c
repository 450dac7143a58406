// lws-test: vulkan kernel
/* SwiGLU gate: fp64 reference forward and backward on sizes that are not
 * multiples of the workgroup, large |a| (no overflow), in-place forward,
 * poisoned outputs, a finite-difference check, and bit-identical reruns. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/swiglu.h"

typedef struct job {
    lws_buffer h, a, b;    /* forward */
    lws_buffer da, db, dh; /* backward */
    uint32_t n;
} job;

static void record_fwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_swiglu_fwd(cmd, j->h, j->a, j->b, j->n);
}

static void record_bwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_swiglu_bwd(cmd, j->da, j->db, j->dh, j->a, j->b, j->n);
}

/* Every |got - want| <= tol * scale[i], where scale is the size of the
 * factors that make the value (so a relative bound that does not break where
 * a gradient crosses zero), and every value finite. */
static void check_scaled(const char *what, const float *got, const double *want,
                         const double *scale, size_t n, double tol) {
    double worst = 0;
    size_t at = 0, nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            nonfinite++;
            continue;
        }
        double e = fabs((double)got[i] - want[i]) / (scale[i] + 1e-30);
        if (e > worst) worst = e, at = i;
    }
    int ok = nonfinite == 0 && worst <= tol;
    printf("%s %s: n=%zu max error / scale = %.3g (tol %.1g)", ok ? "ok  " : "FAIL", what, n, worst,
           tol);
    if (!ok)
        printf(" non-finite=%zu worst[%zu]: got %.9g want %.9g", nonfinite, at, got[at], want[at]);
    printf("\n");
    test_checks++;
    if (!ok) test_failures++;
}

/* The finite-difference loss L = sum dh * swiglu(a, b), in fp64. */
typedef struct fd_arg {
    const double *a, *b, *dh;
    size_t n;
} fd_arg;

static double fd_loss(void *arg) {
    fd_arg *f = arg;
    double *h = test_malloc(f->n * sizeof *h), loss = 0;
    ref_swiglu_fwd(h, f->a, f->b, f->n);
    for (size_t i = 0; i < f->n; i++) loss += f->dh[i] * h[i];
    free(h);
    return loss;
}

static void check_size(lws_context *ctx, test_rng *rng, uint32_t n) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *a = test_random_floats(rng, n, 3.0), *b = test_random_floats(rng, n, 1.0);
    float *dh = test_random_floats(rng, n, 1.0);
    /* Large |a|: exp(-a) would overflow for a < -88 in a naive sigmoid. */
    const float extreme[] = {-1e4f, 1e4f, -90.0f, 90.0f, -88.7f, 88.7f, -30.0f, 30.0f, 0.0f};
    for (size_t k = 0; k < sizeof extreme / sizeof *extreme && k < n; k++)
        a[(k * 7919) % n] = extreme[k];
    double *ad = test_to_double(a, n), *bd = test_to_double(b, n), *dhd = test_to_double(dh, n);
    double *h_want = test_malloc(n * sizeof(double)), *da_want = test_malloc(n * sizeof(double));
    double *db_want = test_malloc(n * sizeof(double));
    ref_swiglu_fwd(h_want, ad, bd, n);
    ref_swiglu_bwd(da_want, db_want, dhd, ad, bd, n);
    /* Scales: |h| <= |a b|, |da| <= |dh b| (1 + |a|), |db| <= |dh a|. */
    double *h_scale = test_malloc(n * sizeof(double)), *da_scale = test_malloc(n * sizeof(double));
    double *db_scale = test_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        h_scale[i] = fabs(ad[i] * bd[i]);
        da_scale[i] = fabs(dhd[i] * bd[i]) * (1 + fabs(ad[i]));
        db_scale[i] = fabs(dhd[i] * ad[i]);
    }
    float *got = test_malloc(n * sizeof(float)), *again = test_malloc(n * sizeof(float));
    float *got_db = test_malloc(n * sizeof(float)), *again_db = test_malloc(n * sizeof(float));

    job j = {test_output(ctx, n),
             test_upload_floats(ctx, a, n),
             test_upload_floats(ctx, b, n),
             test_output(ctx, n),
             test_output(ctx, n),
             test_upload_floats(ctx, dh, n),
             n};
    char what[96];
    /* Each output is a product of a few fp32-rounded factors and one exp
     * (Vulkan allows 3 + 2|x| ulp, which matters where the sigmoid is far from
     * 0 and 1, |a| < 20): a few 1e-6 of the scale of its factors. */
    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.h, got, n);
    snprintf(what, sizeof what, "swiglu_fwd n=%u", n);
    check_scaled(what, got, h_want, h_scale, n, 4e-6);
    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.h, again, n);
    snprintf(what, sizeof what, "swiglu_fwd n=%u twice", n);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, n)) test_failures++;

    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.da, got, n);
    test_download(ctx, j.db, got_db, n);
    snprintf(what, sizeof what, "swiglu_bwd da n=%u", n);
    check_scaled(what, got, da_want, da_scale, n, 4e-6);
    snprintf(what, sizeof what, "swiglu_bwd db n=%u", n);
    check_scaled(what, got_db, db_want, db_scale, n, 4e-6);
    CHECK_OK(lws_fill(ctx, j.da, 0x7FC00000u));
    CHECK_OK(lws_fill(ctx, j.db, 0x7FC00000u));
    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.da, again, n);
    test_download(ctx, j.db, again_db, n);
    snprintf(what, sizeof what, "swiglu_bwd n=%u twice", n);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, n) || !test_bitwise_equal(what, got_db, again_db, n))
        test_failures++;

    /* In place: a = silu(a) * b. */
    j.h = j.a;
    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.a, got, n);
    snprintf(what, sizeof what, "swiglu_fwd in place n=%u", n);
    check_scaled(what, got, h_want, h_scale, n, 4e-6);

    free(a), free(b), free(dh), free(ad), free(bd), free(dhd), free(h_want), free(da_want);
    free(db_want), free(h_scale), free(da_scale), free(db_scale), free(got), free(again),
        free(got_db), free(again_db);
    lws_arena_reset(ctx, mark);
}

/* GPU backward against central differences of the fp64 forward. */
static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    enum { n = 13 };
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *a = test_random_floats(rng, n, 3.0), *b = test_random_floats(rng, n, 1.0);
    float *dh = test_random_floats(rng, n, 1.0);
    double *ad = test_to_double(a, n), *bd = test_to_double(b, n), *dhd = test_to_double(dh, n);
    job j = {test_output(ctx, n),
             test_upload_floats(ctx, a, n),
             test_upload_floats(ctx, b, n),
             test_output(ctx, n),
             test_output(ctx, n),
             test_upload_floats(ctx, dh, n),
             n};
    test_run(ctx, record_bwd, &j);
    float got[2 * n];
    test_download(ctx, j.da, got, n);
    test_download(ctx, j.db, got + n, n);
    double fd[2 * n];
    fd_arg f = {ad, bd, dhd, n};
    for (size_t i = 0; i < n; i++) {
        fd[i] = test_finite_difference(fd_loss, &f, ad, i, 1e-6);
        fd[n + i] = test_finite_difference(fd_loss, &f, bd, i, 1e-6);
    }
    /* fp64 central differences with h = 1e-6 are good to ~1e-9; the GPU's
     * fp32 gradient to a few ulps of values of order 1. */
    CHECK_CLOSE("swiglu_bwd vs finite differences (da, db)", got, fd, 2 * n, 2e-5, 1e-5);
    free(a), free(b), free(dh), free(ad), free(bd), free(dhd);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 31);
    const uint32_t sizes[] = {1, 5, 48, 129, 257, 768, 7919, 4096 * 256 + 5};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) check_size(ctx, &rng, sizes[s]);
    check_finite_difference(ctx, &rng);
    return test_finish(ctx);
}
