// lws-test: vulkan kernel
/* The matrix-unit attention forward and its choice (ops/attention_coopmat.c).
 *
 * On every device, the host logic, with stand-ins for the matrix-unit form
 * (lws_attention_fast_hook): one that records the tuning's form passes the
 * check at first use and is then used; one that records it with the scale
 * perturbed fails the check, which warns on stderr, keeps the verdict and
 * runs the tuning's form (outputs match the fp64 reference); LWS_ATTENTION
 * parsing and its errors; the plans on made-up devices. And the kernel's
 * own data flow with its matrix operations emulated on the SIMT lanes
 * (lws_attention_fwd_emulated: the same shader, its fp16 roundings, blocks,
 * masks, scaling, softmax and barriers) against the fp64 reference, with
 * the kernel's tolerance, at every subgroup size; and it passes the check.
 *
 * Where the device has matrix units: the kernel itself (LWS_ATTENTION=
 * coopmat) against the fp64 reference of tests/test_attention.c at head_dim
 * 64 and 128 (and 32, 48), GQA, causal, sequences that are not multiples of
 * the blocks, fp32, bf16 and fp16 storage, outputs poisoned with NaN inside
 * NaN guard regions that must stay untouched, then the check at first use.
 * Elsewhere (lavapipe has no matrix units) that part is reported skipped:
 * exit 77 once the host logic has passed.
 *
 * Tolerance of the kernel against fp64 (derivation in
 * ops/attention_coopmat.c, N(0,1) q, k, v, scale 1/sqrt(head_dim)): fp16
 * rounding of q, k, v and P (u = 2^-11) moves o by at most ~12 u max |v|
 * and lse by ~9 u; allowed: o 12 u max |v| + 3e-5, lse 9 u + 3e-5, relative
 * L2 4u (the errors average ~1.5u), plus a 16-bit o's own rounding. The
 * stand-ins run the tuning's fp32 forms: tests/test_attention.c's 3e-5. */
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/attention.h"

typedef struct shape {
    uint32_t batch, seq, q_heads, kv_heads, head_dim;
    double qk_std, v_std; /* of the inputs; 0 for 1 */
} shape;

/* Guard elements on each side of o and lse: NaN before the run and after. */
#define GUARD 16

static void record_fwd(lws_cmd *cmd, void *arg) {
    lws_attention_fwd_args *a = arg;
    lws_op_attention_fwd(cmd, a->o, a->lse, a->q, a->k, a->v, a->batch, a->seq, a->q_heads,
                         a->kv_heads, a->head_dim, a->scale);
}

static int stand_in_calls;
static lws_status stand_in_right(lws_cmd *cmd, const lws_attention_fwd_args *p) {
    stand_in_calls++;
    return lws_attention_fwd_tuned(cmd, p);
}
static lws_status stand_in_wrong(lws_cmd *cmd, const lws_attention_fwd_args *p) {
    stand_in_calls++;
    lws_attention_fwd_args wrong = *p;
    wrong.scale *= 1.25f;
    return lws_attention_fwd_tuned(cmd, &wrong);
}

/* Whether every value is NaN (the guards). */
static int all_nan(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) return 0;
    return 1;
}

/* One forward through lws_op_attention_fwd against the fp64 reference.
 * o_u: the allowed error of o in units of max |v| (0: the fp32 forms'
 * 3e-5); lse_abs: lse's. want_match 0 expects o to miss the tolerance (a
 * stand-in that is wrong on purpose ran). */
static void check_forward(lws_context *ctx, test_rng *rng, shape s, lws_dtype t, double o_u,
                          double lse_abs, double rel, int want_match) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t nq = (size_t)s.batch * s.seq * s.q_heads * s.head_dim;
    size_t nkv = (size_t)s.batch * s.seq * s.kv_heads * s.head_dim;
    size_t rows = (size_t)s.batch * s.seq * s.q_heads;
    float scale = (float)(1.0 / sqrt(s.head_dim));
    double qk_std = s.qk_std > 0 ? s.qk_std : 1.0, v_std = s.v_std > 0 ? s.v_std : 1.0;
    float *q = test_random_floats(rng, nq, qk_std), *k = test_random_floats(rng, nkv, qk_std);
    float *v = test_random_floats(rng, nkv, v_std);
    double vmax = 0;
    for (size_t i = 0; i < nkv; i++) v[i] = test_round(v[i], t), vmax = fmax(vmax, fabs(v[i]));
    for (size_t i = 0; i < nq; i++) q[i] = test_round(q[i], t);
    for (size_t i = 0; i < nkv; i++) k[i] = test_round(k[i], t);
    double *qd = test_to_double(q, nq), *kd = test_to_double(k, nkv), *vd = test_to_double(v, nkv);
    double *o_ref = test_malloc(nq * 8), *lse_ref = test_malloc(rows * 8);
    CHECK(ref_attention_fwd(o_ref, lse_ref, qd, kd, vd, s.batch, s.seq, s.q_heads, s.kv_heads,
                            s.head_dim, scale) == 0,
          "reference forward: out of host memory");

    lws_buffer o_all = test_output_as(ctx, nq + 2 * GUARD, t);
    lws_buffer lse_all = test_output(ctx, rows + 2 * GUARD);
    uint32_t esize = lws_dtype_bytes(t);
    lws_attention_fwd_args a = {lws_buffer_slice(o_all, GUARD * esize, nq * esize),
                                lws_buffer_slice(lse_all, GUARD * 4, rows * 4),
                                test_upload_as(ctx, q, nq, t),
                                test_upload_as(ctx, k, nkv, t),
                                test_upload_as(ctx, v, nkv, t),
                                s.batch,
                                s.seq,
                                s.q_heads,
                                s.kv_heads,
                                s.head_dim,
                                scale};
    a.o.dtype = t;
    test_run(ctx, record_fwd, &a);
    float *o = test_malloc((nq + 2 * GUARD) * 4), *lse = test_malloc((rows + 2 * GUARD) * 4);
    test_download_as(ctx, o_all, o, nq + 2 * GUARD);
    test_download(ctx, lse_all, lse, rows + 2 * GUARD);

    char what[192];
    snprintf(what, sizeof what, "batch=%u seq=%u heads=%u/%u head_dim=%u std %g/%g [%s]", s.batch,
             s.seq, s.q_heads, s.kv_heads, s.head_dim, qk_std, v_std, lws_dtype_name(t));
    double out_u = test_unit_roundoff(t), o_peak = 0;
    for (size_t i = 0; i < nq; i++) o_peak = fmax(o_peak, fabs(o_ref[i]));
    double o_tol = (o_u > 0 ? o_u * vmax : 0) + 3e-5 + out_u * o_peak;
    if (want_match) {
        char name[240];
        snprintf(name, sizeof name, "o %s", what);
        CHECK_CLOSE(name, o + GUARD, o_ref, nq, o_tol, rel + out_u);
        snprintf(name, sizeof name, "lse %s", what);
        CHECK_CLOSE(name, lse + GUARD, lse_ref, rows, lse_abs + 3e-5, rel);
    } else {
        test_error e = test_compare(o + GUARD, o_ref, nq);
        printf("%s o %s: max |diff| %.3g (a wrong stand-in: must exceed %.3g)\n",
               e.max_abs > o_tol ? "ok  " : "FAIL", what, e.max_abs, o_tol);
        CHECK(e.max_abs > o_tol, "the wrong stand-in ran: o differs from the reference");
    }
    CHECK(all_nan(o, GUARD) && all_nan(o + GUARD + nq, GUARD), "o's guards untouched %s", what);
    CHECK(all_nan(lse, GUARD) && all_nan(lse + GUARD + rows, GUARD), "lse's guards untouched %s",
          what);
    free(q), free(k), free(v), free(qd), free(kd), free(vd), free(o_ref), free(lse_ref);
    free(o), free(lse);
    lws_arena_reset(ctx, mark);
}

/* ---- host logic, every device ---- */

static void check_parse(void) {
    const char *ok[] = {NULL, "", "auto", "portable", "coopmat"};
    const lws_attention_mode want[] = {LWS_ATTENTION_AUTO, LWS_ATTENTION_AUTO, LWS_ATTENTION_AUTO,
                                       LWS_ATTENTION_PORTABLE, LWS_ATTENTION_COOPMAT};
    lws_attention_mode m;
    for (int i = 0; i < 5; i++)
        CHECK(lws_attention_mode_parse(ok[i], &m) && m == want[i], "LWS_ATTENTION '%s' parses",
              ok[i] ? ok[i] : "(unset)");
    const char *bad[] = {"Coopmat", "gpu", "coopmat ", "1"};
    for (int i = 0; i < 4; i++)
        CHECK(!lws_attention_mode_parse(bad[i], &m), "LWS_ATTENTION '%s' is refused", bad[i]);
}

/* The plans on made-up devices: NVIDIA's 48 KiB and subgroups of 32, AMD's
 * 64 KiB and 64. */
static void check_plans(void) {
    lws_device_caps nv = {0}, amd = {0};
    nv.max_shared_memory = 49152, nv.max_subgroup_size = 32, nv.max_workgroup_invocations = 1024;
    amd.max_shared_memory = 65536, amd.max_subgroup_size = 64, amd.max_workgroup_invocations = 1024;
    lws_coopmat_shape s16 = {16, 16, 16}, s8 = {16, 8, 16};
    lws_attention_cm_plan p = {0, 0, 0};
    CHECK(lws_attention_cm_plan_for(&nv, s16, 128, &p) && p.block == 32 && p.invocations == 64 &&
              p.shared_bytes == 42368,
          "NVIDIA head_dim 128: blocks of 32, 64 invocations, 42368 bytes (got %u, %u, %u)",
          p.block, p.invocations, p.shared_bytes);
    CHECK(lws_attention_cm_plan_for(&nv, s16, 64, &p) && p.block == 32,
          "NVIDIA head_dim 64: blocks of 32 (64 need 64256 bytes)");
    CHECK(lws_attention_cm_plan_for(&amd, s16, 64, &p) && p.block == 64 && p.invocations == 256 &&
              p.shared_bytes <= 65536,
          "AMD head_dim 64: blocks of 64, 256 invocations");
    CHECK(!lws_attention_cm_plan_for(&nv, s16, 40, &p), "head_dim 40 is not a multiple of 16");
    CHECK(!lws_attention_cm_plan_for(&nv, s8, 40, &p), "head_dim 40 is not a multiple of k = 16");
    nv.max_shared_memory = 8192;
    CHECK(!lws_attention_cm_plan_for(&nv, s16, 128, &p), "nothing fits 8 KiB at head_dim 128");
}

/* Runs one forward with stderr in a file; returns what it printed there. */
static char *forward_stderr(lws_context *ctx, test_rng *rng, shape s, int want_match) {
    const char *path = test_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(saved >= 0 && fd >= 0, "stderr redirected to %s", path);
    dup2(fd, 2);
    close(fd);
    check_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, want_match);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    static char text[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f) fclose(f);
    fputs(text, stderr);
    return text;
}

static void check_host_logic(lws_context *ctx, test_rng *rng) {
    test_dir("test_attention_coopmat");
    check_parse();
    check_plans();
    shape s = {2, 37, 4, 2, 64, 0, 0};
    lws_attention_fwd_args a = {0};
    a.o = test_output(ctx, 64), a.lse = test_output(ctx, 64), a.q = test_output(ctx, 64);
    a.k = test_output(ctx, 64), a.v = test_output(ctx, 64);
    a.batch = 1, a.seq = 4, a.q_heads = 1, a.kv_heads = 1, a.head_dim = 16, a.scale = 0.25f;
    setenv("LWS_ATTENTION", "fastest", 1);
    test_expect_refused(ctx, "LWS_ATTENTION=fastest", record_fwd, &a,
                        "LWS_ATTENTION = 'fastest' is not an attention form: give portable, "
                        "coopmat or auto");
    if (lws_context_coopmat(ctx, NULL) == LWS_COOPMAT_NONE) {
        setenv("LWS_ATTENTION", "coopmat", 1);
        test_expect_refused(ctx, "LWS_ATTENTION=coopmat without matrix units", record_fwd, &a,
                            "LWS_ATTENTION=coopmat, but device");
    }
    unsetenv("LWS_ATTENTION");

    /* A correct stand-in passes the check and runs. */
    lws_attention_fast_hook(stand_in_right);
    lws_context_set_attention_verdict(ctx, 0);
    stand_in_calls = 0;
    check_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 1);
    CHECK(lws_context_attention_verdict(ctx) == 1 && stand_in_calls == 2,
          "a correct stand-in passes the check (verdict %d) and runs (%d calls: check + forward)",
          lws_context_attention_verdict(ctx), stand_in_calls);
    char path[256];
    lws_attention_path(ctx, 64, path, sizeof path);
    printf("attention path: %s\n", path);
    CHECK(test_contains(path, "checked against the tuning's form"), "the path says checked");
    /* ... and in a 16-bit type (the check casts its inputs), at head_dim 128. */
    lws_context_set_attention_verdict(ctx, 0);
    check_forward(ctx, rng, (shape){1, 70, 2, 1, 128, 0, 0}, LWS_BF16, 0, 0, 1e-5, 1);
    CHECK(lws_context_attention_verdict(ctx) == 1, "a correct stand-in passes the check in bf16");

    /* A wrong one fails it: a warning, the verdict kept, the tuning's form. */
    lws_attention_fast_hook(stand_in_wrong);
    lws_context_set_attention_verdict(ctx, 0);
    stand_in_calls = 0;
    const char *err = forward_stderr(ctx, rng, s, 1);
    CHECK(test_contains(err, "WARNING: the matrix-unit attention forward disagrees") &&
              test_contains(err, "allowed"),
          "a failed check warns on stderr");
    CHECK(lws_context_attention_verdict(ctx) == -1 && stand_in_calls == 1,
          "a wrong stand-in fails the check (verdict %d, %d calls: the check only)",
          lws_context_attention_verdict(ctx), stand_in_calls);
    stand_in_calls = 0;
    check_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 1);
    CHECK(stand_in_calls == 0, "the verdict is kept: no second check, the tuning's form runs");
    lws_attention_path(ctx, 64, path, sizeof path);
    CHECK(test_contains(path, "failed its check"), "the path says failed: %s", path);

    /* LWS_ATTENTION=portable never calls it; =coopmat runs it unchecked. */
    lws_context_set_attention_verdict(ctx, 0);
    setenv("LWS_ATTENTION", "portable", 1);
    check_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 1);
    CHECK(stand_in_calls == 0 && lws_context_attention_verdict(ctx) == 0,
          "LWS_ATTENTION=portable: the tuning's form, no check");
    setenv("LWS_ATTENTION", "coopmat", 1);
    check_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 0);
    CHECK(stand_in_calls == 1 && lws_context_attention_verdict(ctx) == 0,
          "LWS_ATTENTION=coopmat: the stand-in unchecked (%d calls)", stand_in_calls);
    unsetenv("LWS_ATTENTION");
    lws_attention_fast_hook(NULL);
    lws_context_set_attention_verdict(ctx, 0);
}

/* ---- the kernel's data flow, every device: its matrix operations emulated ---- */

static void check_emulated(lws_context *ctx, test_rng *rng) {
    const double u = 1.0 / 2048.0;
    lws_attention_fast_hook(lws_attention_fwd_emulated);
    setenv("LWS_ATTENTION", "coopmat", 1);
    /* Three pipelines (each a compile of seconds on lavapipe): head_dim 64
     * in fp32 (blocks of 32 rows, or 16 where lavapipe's 32 KiB are short),
     * 128 in bf16 (16), 48 in fp16 (a multiple of 16, not of 32). */
    const shape shapes[] = {{1, 1, 1, 1, 64, 0, 0},
                            {2, 77, 4, 2, 64, 0, 0},
                            {1, 70, 2, 1, 128, 0, 0},
                            {1, 45, 3, 1, 48, 0, 0}};
    const lws_dtype types[] = {LWS_F32, LWS_F32, LWS_BF16, LWS_F16};
    for (int i = 0; i < 4; i++)
        check_forward(ctx, rng, shapes[i], types[i], 12 * u, 9 * u, 4 * u, 1);
    /* Magnitudes fp16 cannot hold unscaled (q, k below its normal range,
     * v beyond 65504): the power-of-two block scaling keeps the errors
     * relative to the blocks' largest elements. */
    check_forward(ctx, rng, (shape){1, 40, 2, 1, 64, 1e-6, 1e5}, LWS_F32, 12 * u, 9 * u, 4 * u, 1);
    /* The check at first use passes it. */
    unsetenv("LWS_ATTENTION");
    lws_context_set_attention_verdict(ctx, 0);
    check_forward(ctx, rng, (shape){1, 50, 2, 1, 64, 0, 0}, LWS_F32, 12 * u, 9 * u, 4 * u, 1);
    CHECK(lws_context_attention_verdict(ctx) == 1, "the emulated kernel passes the check");
    /* Its margins at head_dim 128 in bf16 (the check's tensors are its own). */
    lws_attention_fwd_args a = {0};
    a.o.dtype = LWS_BF16, a.batch = 1, a.seq = 300, a.q_heads = 4, a.kv_heads = 2;
    a.head_dim = 128, a.scale = (float)(1.0 / sqrt(128.0));
    lws_attention_check c;
    CHECK_OK(lws_attention_verify_with(ctx, lws_attention_fwd_emulated, &a, &c));
    printf("%s check (emulated, %u tokens): o max |diff| %.3g (allowed %.3g), relative L2 %.3g "
           "(allowed %.3g), lse max |diff| %.3g (allowed %.3g)\n",
           c.ok ? "ok  " : "FAIL", c.seq, c.o_max_abs, c.o_tol, c.o_rel_l2, c.o_tol_rel,
           c.lse_max_abs, c.lse_tol);
    CHECK(c.ok && c.seq == 128 + 300 % 64,
          "the check passes the emulated kernel at a cut sequence");
    lws_attention_fast_hook(NULL);
    lws_context_set_attention_verdict(ctx, 0);
}

/* ---- the kernel, where the device has matrix units ---- */

static void check_kernel(lws_context *ctx, test_rng *rng) {
    const double u = 1.0 / 2048.0;
    const shape shapes[] = {{1, 1, 1, 1, 64, 0, 0},    {2, 77, 4, 2, 64, 0, 0},
                            {1, 150, 6, 2, 128, 0, 0}, {2, 33, 2, 2, 128, 0, 0},
                            {1, 300, 2, 1, 64, 0, 0},  {1, 45, 3, 1, 32, 0, 0},
                            {1, 61, 2, 2, 48, 0, 0}};
    const lws_dtype types[] = {LWS_F32, LWS_BF16, LWS_F16};
    setenv("LWS_ATTENTION", "coopmat", 1); /* the kernel itself, no fallback */
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int t = 0; t < 3; t++)
            if (t == 0 || shapes[i].head_dim >= 64)
                check_forward(ctx, rng, shapes[i], types[t], 12 * u, 9 * u, 4 * u, 1);
    /* The check at first use on this device, its verdict and path printed. */
    unsetenv("LWS_ATTENTION");
    lws_context_set_attention_verdict(ctx, 0);
    check_forward(ctx, rng, (shape){2, 200, 8, 2, 128, 0, 0}, LWS_BF16, 12 * u, 9 * u, 4 * u, 1);
    char path[256];
    lws_attention_path(ctx, 128, path, sizeof path);
    printf("attention path at head_dim 128: %s\n", path);
    CHECK(lws_context_attention_verdict(ctx) == 1, "the matrix-unit form passes its check");
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 23);
    check_host_logic(ctx, &rng);
    check_emulated(ctx, &rng);
    lws_coopmat_shape shape;
    lws_coopmat_api api = lws_context_coopmat(ctx, &shape);
    if (api == LWS_COOPMAT_NONE) {
        printf("skip: the matrix-unit kernel needs matrix units; %s has none (host logic "
               "passed above)\n",
               lws_context_caps(ctx)->name);
        int failed = test_finish(ctx);
        return failed ? failed : 77;
    }
    printf("matrix units: %s %ux%ux%u\n", api == LWS_COOPMAT_KHR ? "KHR" : "NV", shape.m, shape.n,
           shape.k);
    check_kernel(ctx, &rng);
    return test_finish(ctx);
}
