// lws-test: vulkan kernel
/* The choice of the matrix-unit attention forward (ops/attention_coopmat.c),
 * on every device: the host logic with stand-ins for the matrix-unit form
 * (lws_attention_fast_hook): one that records the tuning's form passes the
 * check at first use and is then used; one that records it with the scale
 * perturbed fails the check, which warns on stderr, keeps the verdict and
 * runs the tuning's form (outputs match the fp64 reference); LWS_ATTENTION
 * parsing and its errors; the plans on made-up devices. And the kernel's
 * own data flow with its matrix operations emulated on the SIMT lanes
 * (lws_attention_fwd_emulated: the same shader, its fp16 roundings, blocks,
 * masks, scaling, softmax and barriers) against the fp64 reference, with
 * the kernel's tolerance, at every subgroup size; and it passes the check.
 * The kernel itself runs in test_attention_coopmat.c, where matrix units are.
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
#include "attention_check.h"
#include "ref/attention.h"

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
static char *forward_stderr(lws_context *ctx, test_rng *rng, attention_shape s, int want_match) {
    const char *path = test_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(saved >= 0 && fd >= 0, "stderr redirected to %s", path);
    dup2(fd, 2);
    close(fd);
    check_attention_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, want_match);
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
    attention_shape s = {2, 37, 4, 2, 64, 0, 0};
    lws_attention_fwd_args a = {0};
    a.o = test_output(ctx, 64), a.lse = test_output(ctx, 64), a.q = test_output(ctx, 64);
    a.k = test_output(ctx, 64), a.v = test_output(ctx, 64);
    a.batch = 1, a.seq = 4, a.q_heads = 1, a.kv_heads = 1, a.head_dim = 16, a.scale = 0.25f;
    setenv("LWS_ATTENTION", "fastest", 1);
    test_expect_refused(ctx, "LWS_ATTENTION=fastest", record_attention_forward, &a,
                        "LWS_ATTENTION = 'fastest' is not an attention form: give portable, "
                        "coopmat or auto");
    if (lws_context_coopmat(ctx, NULL) == LWS_COOPMAT_NONE) {
        setenv("LWS_ATTENTION", "coopmat", 1);
        test_expect_refused(ctx, "LWS_ATTENTION=coopmat without matrix units",
                            record_attention_forward, &a, "LWS_ATTENTION=coopmat, but device");
    }
    unsetenv("LWS_ATTENTION");

    /* A correct stand-in passes the check and runs. */
    lws_attention_fast_hook(stand_in_right);
    lws_context_set_attention_verdict(ctx, 0);
    stand_in_calls = 0;
    check_attention_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 1);
    CHECK(lws_context_attention_verdict(ctx) == 1 && stand_in_calls == 2,
          "a correct stand-in passes the check (verdict %d) and runs (%d calls: check + forward)",
          lws_context_attention_verdict(ctx), stand_in_calls);
    char path[256];
    lws_attention_path(ctx, 64, path, sizeof path);
    printf("attention path: %s\n", path);
    CHECK(test_contains(path, "checked against the tuning's form"), "the path says checked");
    /* ... and in a 16-bit type (the check casts its inputs), at head_dim 128. */
    lws_context_set_attention_verdict(ctx, 0);
    check_attention_forward(ctx, rng, (attention_shape){1, 70, 2, 1, 128, 0, 0}, LWS_BF16, 0, 0,
                            1e-5, 1);
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
    check_attention_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 1);
    CHECK(stand_in_calls == 0, "the verdict is kept: no second check, the tuning's form runs");
    lws_attention_path(ctx, 64, path, sizeof path);
    CHECK(test_contains(path, "failed its check"), "the path says failed: %s", path);

    /* LWS_ATTENTION=portable never calls it; =coopmat runs it unchecked. */
    lws_context_set_attention_verdict(ctx, 0);
    setenv("LWS_ATTENTION", "portable", 1);
    check_attention_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 1);
    CHECK(stand_in_calls == 0 && lws_context_attention_verdict(ctx) == 0,
          "LWS_ATTENTION=portable: the tuning's form, no check");
    setenv("LWS_ATTENTION", "coopmat", 1);
    check_attention_forward(ctx, rng, s, LWS_F32, 0, 0, 1e-5, 0);
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
    const attention_shape shapes[] = {{1, 1, 1, 1, 64, 0, 0},
                                      {2, 77, 4, 2, 64, 0, 0},
                                      {1, 70, 2, 1, 128, 0, 0},
                                      {1, 45, 3, 1, 48, 0, 0}};
    const lws_dtype types[] = {LWS_F32, LWS_F32, LWS_BF16, LWS_F16};
    for (int i = 0; i < 4; i++)
        check_attention_forward(ctx, rng, shapes[i], types[i], 12 * u, 9 * u, 4 * u, 1);
    /* Magnitudes fp16 cannot hold unscaled (q, k below its normal range,
     * v beyond 65504): the power-of-two block scaling keeps the errors
     * relative to the blocks' largest elements. */
    check_attention_forward(ctx, rng, (attention_shape){1, 40, 2, 1, 64, 1e-6, 1e5}, LWS_F32,
                            12 * u, 9 * u, 4 * u, 1);
    /* The check at first use passes it. */
    unsetenv("LWS_ATTENTION");
    lws_context_set_attention_verdict(ctx, 0);
    check_attention_forward(ctx, rng, (attention_shape){1, 50, 2, 1, 64, 0, 0}, LWS_F32, 12 * u,
                            9 * u, 4 * u, 1);
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

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 23);
    check_host_logic(ctx, &rng);
    check_emulated(ctx, &rng);
    return test_finish(ctx);
}
