// lws-test: vulkan kernel
/* The matrix-unit matmul on a device that has matrix units (skipped, exit 77,
 * elsewhere: lavapipe has none): the three layouts against the fp64
 * reference at sizes 1, primes, non-multiples of every tile side and model
 * shapes (element-wise and four-wide loads), accumulate on and off, strided
 * batches, fp16 and bf16 operands and outputs, operands of 1e-6 and 1e4 (the
 * per-step power-of-two scaling keeps them in fp16's range), bit-identical
 * repeats, and the check at first use (lws_matmul_verify) at the shapes of
 * the paper's models (configs/paper) at 1024 tokens, whose report it prints.
 *
 * Tolerance against fp64: fp16 rounding of both inputs (u = 2^-11) gives a
 * K-term dot product of N(0,1) operands an error of standard deviation
 * ~0.82 u sqrt(K) (ops/matmul_coopmat.c); allowed: 8 u sqrt(K) * scale^2 per
 * element and a relative L2 error of 2u, plus the fp32 bound of the portable
 * test, 1e-6 (K + 2). 16-bit outputs add their own rounding (2^-11 or 2^-8
 * relative). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/matmul.h"

static const char *const names[] = {"NT", "NN", "TN"};

static void record(lws_cmd *cmd, void *arg) {
    lws_matmul_args *p = arg;
    lws_op_matmul_batched(cmd, p->layout, p->c, p->a, p->b, p->m, p->n, p->k, p->accumulate,
                          p->batch, p->stride_c, p->stride_a, p->stride_b);
}

static uint16_t to_half(float x, lws_dtype t) {
    uint32_t u;
    if (t == LWS_BF16) {
        memcpy(&u, &x, 4);
        return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }
    /* fp16, round to nearest even (nearbyint); values here are far below
     * 65504. Below 2^-14 subnormal: multiples of 2^-24. */
    uint16_t sign = x < 0 ? 0x8000 : 0;
    double a = fabs((double)x);
    if (a < ldexp(1.0, -14)) return (uint16_t)(sign | (uint16_t)nearbyint(a * ldexp(1.0, 24)));
    int e;
    double f = frexp(a, &e);          /* a = f 2^e, f in [0.5, 1) */
    double m = nearbyint(f * 2048.0); /* 11 significant bits */
    if (m == 2048.0) m = 1024.0, e++;
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) | ((uint16_t)m & 0x3FF));
}

static float from_half(uint16_t h, lws_dtype t) {
    if (t == LWS_BF16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    int e = (h >> 10) & 31;
    double m = (h & 0x3FF) / 1024.0;
    double v = e ? ldexp(1.0 + m, e - 15) : ldexp(m, -14);
    return (float)((h & 0x8000) ? -v : v);
}

/* n values of x as dtype t on the device (values rounded to t). */
static lws_buffer upload_as(lws_context *ctx, float *x, size_t n, lws_dtype t) {
    if (t == LWS_F32) return test_upload_floats(ctx, x, n);
    uint16_t *h = test_malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++) h[i] = to_half(x[i], t), x[i] = from_half(h[i], t);
    lws_buffer b = test_upload(ctx, h, n * 2);
    b.dtype = t;
    free(h);
    return b;
}

static void download_as(lws_context *ctx, lws_buffer b, float *out, size_t n) {
    if (b.dtype == LWS_F32) {
        test_download(ctx, b, out, n);
        return;
    }
    uint16_t *h = test_malloc(n * 2 + 2);
    CHECK_OK(lws_download(ctx, b, h, n * 2));
    for (size_t i = 0; i < n; i++) out[i] = from_half(h[i], b.dtype);
    free(h);
}

/* One problem against fp64; ab: operand type, ct: output type, scale: of
 * both operands. */
static void run_case(lws_context *ctx, test_rng *rng, lws_mm_layout layout, uint32_t m, uint32_t n,
                     uint32_t k, int accumulate, uint32_t batch, lws_dtype ab, lws_dtype ct,
                     double scale) {
    uint64_t sc = (uint64_t)m * n + (batch > 1 ? 3 : 0), sa = (uint64_t)m * k + (batch > 1 ? 5 : 0),
             sb = (uint64_t)n * k;
    size_t c_total = (batch - 1) * sc + (size_t)m * n, a_total = (batch - 1) * sa + (size_t)m * k,
           b_total = (batch - 1) * sb + (size_t)n * k;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *a = test_random_floats(rng, a_total, scale),
          *b = test_random_floats(rng, b_total, scale);
    float *c0 = test_random_floats(rng, c_total, scale * scale * sqrt(k));
    lws_matmul_args p = {layout, {0}, {0}, {0}, m, n, k, accumulate, batch, sc, sa, sb};
    p.a = upload_as(ctx, a, a_total, ab);
    p.b = upload_as(ctx, b, b_total, ab);
    p.c = upload_as(ctx, c0, c_total, ct);
    double *want = test_to_double(c0, c_total), *ad = test_to_double(a, a_total),
           *bd = test_to_double(b, b_total);
    ref_matmul_batched(layout, want, ad, bd, m, n, k, accumulate, batch, sc, sa, sb);
    float *got = test_malloc(c_total * 4), *again = test_malloc(c_total * 4);
    test_run(ctx, record, &p);
    download_as(ctx, p.c, got, c_total);
    char what[160];
    snprintf(what, sizeof what, "%s %ux%ux%u%s batch=%u %s->%s scale %g", names[layout], m, n, k,
             accumulate ? " accumulate" : "", batch, lws_dtype_name(ab), lws_dtype_name(ct), scale);
    double u = 1.0 / 2048.0, out_u = ct == LWS_F32 ? 0 : ct == LWS_F16 ? u : 1.0 / 256.0;
    double s2 = scale * scale;
    double tol_abs = s2 * (8 * u * sqrt(k) + 1e-6 * (k + 2) + out_u * 6 * sqrt(k + 1.0));
    CHECK_CLOSE(what, got, want, c_total, tol_abs, 2 * u + out_u);
    if (!accumulate) {
        test_run(ctx, record, &p);
        download_as(ctx, p.c, again, c_total);
        test_checks++;
        if (!test_bitwise_equal(what, got, again, c_total)) test_failures++;
    }
    free(a), free(b), free(c0), free(want), free(ad), free(bd), free(got), free(again);
    lws_arena_reset(ctx, mark);
}

/* The check at the shapes of the paper's models at 1024 tokens (d_model
 * 768, an FFN width of 3072, the 50304-token head) and an odd one, its
 * report printed. */
static void check_verify(lws_context *ctx) {
    const lws_mm_shape shapes[] = {
        {LWS_MM_NT, 1024, 768, 768},  {LWS_MM_NT, 1024, 3072, 768},  {LWS_MM_NN, 1024, 768, 3072},
        {LWS_MM_TN, 768, 3072, 1024}, {LWS_MM_NT, 1024, 50304, 768}, {LWS_MM_NT, 1021, 997, 333},
    };
    const uint32_t count = sizeof shapes / sizeof *shapes;
    lws_matmul_check checks[sizeof shapes / sizeof *shapes];
    int ok = 0;
    CHECK_OK(lws_matmul_verify(ctx, shapes, count, checks, &ok));
    for (uint32_t i = 0; i < count; i++)
        printf("%s check %s %ux%ux%u: max |diff| %.3g (allowed %.3g), rel L2 %.3g (allowed "
               "%.3g)%s%s\n",
               checks[i].ok ? "ok  " : "FAIL", names[shapes[i].layout], shapes[i].m, shapes[i].n,
               shapes[i].k, checks[i].max_abs, checks[i].tol_abs, checks[i].rel_l2,
               checks[i].tol_rel, checks[i].error[0] ? ": " : "", checks[i].error);
    CHECK(ok, "the check at model shapes passes");
    char path[256];
    lws_matmul_path(ctx, path, sizeof path);
    printf("matmul path: %s\n", path);
}

int main(void) {
    lws_context *ctx = test_context();
    lws_coopmat_shape shape;
    lws_coopmat_api api = lws_context_coopmat(ctx, &shape);
    if (api == LWS_COOPMAT_NONE) {
        char path[256];
        lws_matmul_path(ctx, path, sizeof path);
        printf("skip: no matrix units on %s: %s\n", lws_context_caps(ctx)->name, path);
        lws_context_destroy(ctx);
        return 77;
    }
    setenv("LWS_MATMUL", "coopmat", 1); /* the kernel itself, no fallback */
    printf("matrix units: %s %ux%ux%u\n", api == LWS_COOPMAT_KHR ? "KHR" : "NV", shape.m, shape.n,
           shape.k);
    test_rng rng;
    test_rng_seed(&rng, 11);
    const uint32_t sizes[][3] = {{1, 1, 1},      {7, 5, 3},      {17, 33, 65},    {128, 128, 32},
                                 {129, 127, 31}, {256, 200, 96}, {300, 260, 520}, {64, 768, 2048}};
    for (int layout = LWS_MM_NT; layout <= LWS_MM_TN; layout++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
            for (int acc = 0; acc < 2; acc++)
                run_case(ctx, &rng, layout, sizes[i][0], sizes[i][1], sizes[i][2], acc, 1, LWS_F32,
                         LWS_F32, 1.0);
        run_case(ctx, &rng, layout, 100, 84, 72, 1, 3, LWS_F32, LWS_F32, 1.0);
        run_case(ctx, &rng, layout, 128, 96, 64, 0, 1, LWS_F32, LWS_F32, 1e-6);
        run_case(ctx, &rng, layout, 128, 96, 64, 0, 1, LWS_F32, LWS_F32, 1e4);
        run_case(ctx, &rng, layout, 132, 96, 68, 0, 1, LWS_F16, LWS_F32, 1.0);
        run_case(ctx, &rng, layout, 132, 96, 68, 1, 1, LWS_BF16, LWS_BF16, 1.0);
        run_case(ctx, &rng, layout, 33, 17, 9, 0, 1, LWS_BF16, LWS_F16, 1.0);
    }
    unsetenv("LWS_MATMUL");
    check_verify(ctx);
    return test_finish(ctx);
}
