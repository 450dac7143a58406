// lws-test: vulkan
/* The matmul path choice, on any device: which matrix-unit API and shape a
 * capability record gets (made-up NVIDIA, AMD, Intel and incomplete records),
 * the tiles for them, the check's comparison and tolerance (fp16-rounded
 * operands pass, bf16-rounded ones and a lost tile fail), LWS_MATMUL, and the
 * check at first use end to end with a stand-in fast path (the test hook): a
 * fast path within tolerance is used after the check, one beyond it is
 * refused with the portable matmul used instead, LWS_MATMUL=portable never
 * calls it, LWS_MATMUL=coopmat uses it unchecked, and one that fails to run
 * counts as a failed check. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"

/* ---- the choice from capability records ------------------------------------- */

static lws_device_caps gpu(uint32_t vendor, uint32_t shared, uint32_t sg_min, uint32_t sg_max) {
    lws_device_caps c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "made-up GPU 0x%x", vendor);
    c.vendor_id = vendor;
    c.max_shared_memory = shared;
    c.subgroup_size = sg_max;
    c.min_subgroup_size = sg_min;
    c.max_subgroup_size = sg_max;
    c.max_workgroup_invocations = 1024;
    c.shader_float16 = c.storage_buffer_16bit = c.vulkan_memory_model = c.subgroup_arithmetic = 1;
    return c;
}

/* c with VK_KHR_cooperative_matrix listing one fp16 shape. */
static lws_device_caps with_khr(lws_device_caps c, uint32_t m, uint32_t n, uint32_t k) {
    c.khr_cooperative_matrix = c.khr_cooperative_matrix_feature = 1;
    c.khr_coopmat[0] = (lws_coopmat_shape){m, n, k};
    c.khr_coopmat_count = 1;
    return c;
}

static void expect_choice(const char *what, const lws_device_caps *c, int nv_built, int khr_built,
                          lws_coopmat_api want, uint32_t m, uint32_t n, uint32_t k,
                          const char *why_part) {
    lws_coopmat_shape s;
    char why[256];
    lws_coopmat_api got = lws_coopmat_choose(c, nv_built, khr_built, &s, why, sizeof why);
    int ok = got == want && (want == LWS_COOPMAT_NONE || (s.m == m && s.n == n && s.k == k)) &&
             test_contains(why, why_part);
    CHECK(ok, "%s: api %d shape %ux%ux%u, '%s'", what, got, s.m, s.n, s.k, why);
    printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, why);
}

static void check_choice(void) {
    lws_device_caps none = gpu(0x10005, 32 << 10, 4, 4);
    expect_choice("no extension", &none, 1, 1, LWS_COOPMAT_NONE, 0, 0, 0, "no matrix units");

    /* NVIDIA: NV's list as drivers give it (16x8x16, 16x8x8, 16x16x16). */
    lws_device_caps nv = gpu(0x10DE, 48 << 10, 32, 32);
    nv.nv_cooperative_matrix = nv.nv_cooperative_matrix_feature = 1;
    nv.nv_coopmat[0] = (lws_coopmat_shape){16, 8, 16};
    nv.nv_coopmat[1] = (lws_coopmat_shape){16, 8, 8};
    nv.nv_coopmat[2] = (lws_coopmat_shape){16, 16, 16};
    nv.nv_coopmat_count = 3;
    expect_choice("NVIDIA, NV", &nv, 1, 0, LWS_COOPMAT_NV, 16, 16, 16, "NV coopmat fp16 16x16x16");
    expect_choice("NVIDIA, NV shaders not built", &nv, 0, 0, LWS_COOPMAT_NONE, 0, 0, 0,
                  "portable fp32");
    /* Both extensions: KHR where this build has its shaders, else NV. */
    lws_device_caps both = with_khr(nv, 16, 16, 16);
    expect_choice("NVIDIA, both, KHR built", &both, 1, 1, LWS_COOPMAT_KHR, 16, 16, 16,
                  "KHR coopmat");
    expect_choice("NVIDIA, both, KHR not built", &both, 1, 0, LWS_COOPMAT_NV, 16, 16, 16,
                  "NV coopmat");
    /* AMD RDNA3 (KHR only): with and without a glslang that compiles KHR. */
    lws_device_caps amd = with_khr(gpu(0x1002, 64 << 10, 32, 64), 16, 16, 16);
    expect_choice("AMD, KHR built", &amd, 1, 1, LWS_COOPMAT_KHR, 16, 16, 16, "KHR coopmat");
    expect_choice("AMD, KHR not built", &amd, 1, 0, LWS_COOPMAT_NONE, 0, 0, 0,
                  "could not compile GL_KHR_cooperative_matrix");
    /* Intel Arc: 8x8x16 is the shape it lists. */
    lws_device_caps intel = with_khr(gpu(0x8086, 64 << 10, 8, 32), 8, 8, 16);
    expect_choice("Intel, KHR", &intel, 1, 1, LWS_COOPMAT_KHR, 8, 8, 16, "8x8x16");
    /* Incomplete records. */
    lws_device_caps odd = amd;
    odd.khr_coopmat[0] = (lws_coopmat_shape){64, 64, 64};
    expect_choice("no shape the tiles take", &odd, 1, 1, LWS_COOPMAT_NONE, 0, 0, 0,
                  "no listed fp16");
    lws_device_caps off = amd;
    off.khr_cooperative_matrix_feature = 0;
    expect_choice("feature off", &off, 1, 1, LWS_COOPMAT_NONE, 0, 0, 0, "feature is off");
    lws_device_caps no_model = amd;
    no_model.vulkan_memory_model = 0;
    expect_choice("no memory model", &no_model, 1, 1, LWS_COOPMAT_NONE, 0, 0, 0,
                  "vulkanMemoryModel");
    lws_device_caps no16 = amd;
    no16.storage_buffer_16bit = 0;
    expect_choice("no 16-bit storage", &no16, 1, 1, LWS_COOPMAT_NONE, 0, 0, 0,
                  "storageBuffer16BitAccess");

    /* Tiles: within each device's shared memory and invocation limits, whole
     * accumulators per subgroup. */
    struct {
        const char *what;
        lws_device_caps caps;
        lws_coopmat_shape s;
        uint32_t m, n, want_m, want_n;
    } cases[] = {
        {"NVIDIA 4096x768", nv, {16, 16, 16}, 4096, 768, 128, 128},
        {"NVIDIA 64x50", nv, {16, 16, 16}, 64, 50, 64, 64},
        {"AMD wave64", amd, {16, 16, 16}, 2048, 2048, 128, 128},
        {"Intel 8x8x16", intel, {8, 8, 16}, 2048, 2048, 128, 128},
        {"16 KiB device", gpu(0xFFFF, 16 << 10, 32, 32), {16, 16, 16}, 2048, 2048, 32, 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lws_coopmat_tiles t;
        lws_status s =
            lws_coopmat_tiles_for(&cases[i].caps, cases[i].s, cases[i].m, cases[i].n, &t);
        int ok = s == LWS_OK && t.tile_m == cases[i].want_m && t.tile_n == cases[i].want_n &&
                 t.shared_bytes <= cases[i].caps.max_shared_memory &&
                 t.invocations <= cases[i].caps.max_workgroup_invocations &&
                 t.tile_m % (t.warps_m * cases[i].s.m) == 0 &&
                 t.tile_n % (t.warps_n * cases[i].s.n) == 0 && t.tile_k % cases[i].s.k == 0 &&
                 t.tile_k % 8 == 0 && t.invocations == t.warps_m * t.warps_n * t.subgroup;
        CHECK(ok, "%s: tiles %ux%ux%u, %ux%u subgroups of %u, %u bytes", cases[i].what, t.tile_m,
              t.tile_n, t.tile_k, t.warps_m, t.warps_n, t.subgroup, t.shared_bytes);
        printf("%s tiles %s: %ux%ux%u, %ux%u subgroups of %u, %.1f KiB\n", ok ? "ok  " : "FAIL",
               cases[i].what, t.tile_m, t.tile_n, t.tile_k, t.warps_m, t.warps_n, t.subgroup,
               t.shared_bytes / 1024.0);
    }
    lws_device_caps tiny = gpu(0xFFFF, 4 << 10, 32, 32);
    lws_coopmat_tiles t;
    CHECK(lws_coopmat_tiles_for(&tiny, (lws_coopmat_shape){16, 16, 16}, 512, 512, &t) != LWS_OK &&
              test_contains(lws_error_message(), "no matrix-unit tile fits"),
          "4 KiB of shared memory: refused ('%s')", lws_error_message());
}

/* ---- the comparison ------------------------------------------------------------ */

static float round_to(float x, int bits) {
    /* Round to nearest with `bits` significand bits (fp16: 11, bf16: 8). */
    int e;
    double f = frexp(x, &e);
    double scale = ldexp(1.0, bits);
    return (float)ldexp(nearbyint(f * scale) / scale, e);
}

static void check_compare(void) {
    test_rng rng;
    test_rng_seed(&rng, 7);
    const uint32_t m = 64, n = 64, k = 1024;
    float *a = test_random_floats(&rng, m * k, 1.0), *b = test_random_floats(&rng, n * k, 1.0);
    float *exact = test_malloc(m * n * 4), *fp16 = test_malloc(m * n * 4),
          *bf16 = test_malloc(m * n * 4), *lost = test_malloc(m * n * 4);
    for (uint32_t i = 0; i < m; i++)
        for (uint32_t j = 0; j < n; j++) {
            double e = 0, h = 0, bf = 0, l = 0;
            for (uint32_t q = 0; q < k; q++) {
                float x = a[i * k + q], y = b[j * k + q];
                e += (double)x * y;
                h += (double)round_to(x, 11) * round_to(y, 11);
                bf += (double)round_to(x, 8) * round_to(y, 8);
                if (q / 32 != 5) l += (double)x * y; /* tile 5 of k lost */
            }
            exact[i * n + j] = (float)e, fp16[i * n + j] = (float)h;
            bf16[i * n + j] = (float)bf, lost[i * n + j] = (float)l;
        }
    lws_matmul_check c;
    lws_matmul_compare(fp16, exact, m * n, k, &c);
    CHECK(c.ok, "fp16-rounded operands pass: max %.3g (allowed %.3g), rel %.3g (allowed %.3g)",
          c.max_abs, c.tol_abs, c.rel_l2, c.tol_rel);
    printf("ok   fp16 roundings: max |diff| %.3g of %.3g allowed, rel L2 %.3g of %.3g\n", c.max_abs,
           c.tol_abs, c.rel_l2, c.tol_rel);
    lws_matmul_compare(bf16, exact, m * n, k, &c);
    CHECK(!c.ok, "bf16-rounded operands fail: max %.3g, rel %.3g", c.max_abs, c.rel_l2);
    printf("ok   bf16 roundings refused: max |diff| %.3g, rel L2 %.3g\n", c.max_abs, c.rel_l2);
    lws_matmul_compare(lost, exact, m * n, k, &c);
    CHECK(!c.ok, "a lost k tile fails: max %.3g, rel %.3g", c.max_abs, c.rel_l2);
    fp16[17] = NAN;
    lws_matmul_compare(fp16, exact, m * n, k, &c);
    CHECK(!c.ok, "a NaN fails");
    free(a), free(b), free(exact), free(fp16), free(bf16), free(lost);

    lws_matmul_mode mode;
    CHECK(lws_matmul_mode_parse(NULL, &mode) && mode == LWS_MATMUL_AUTO, "unset: auto");
    CHECK(lws_matmul_mode_parse("portable", &mode) && mode == LWS_MATMUL_PORTABLE, "portable");
    CHECK(lws_matmul_mode_parse("coopmat", &mode) && mode == LWS_MATMUL_COOPMAT, "coopmat");
    CHECK(!lws_matmul_mode_parse("fast", &mode), "'fast' refused");
}

/* ---- the check at first use, with stand-in fast paths ---------------------------- */

static int fast_calls;
static float fast_factor;

/* The portable result times fast_factor: within tolerance at 1 + 1e-4, far
 * beyond it at 1 + 1e-2. */
static lws_status scaled_fast(lws_cmd *cmd, const lws_matmul_args *p) {
    fast_calls++;
    LWS_TRY(lws_matmul_portable(cmd, p));
    lws_cmd_barrier(cmd);
    return lws_op_axpby(cmd, p->c, p->c, p->c, fast_factor, 0.0f, p->m * p->n);
}

static lws_status broken_fast(lws_cmd *cmd, const lws_matmul_args *p) {
    (void)p;
    fast_calls++;
    return lws_cmd_fail(cmd, lws_fail(LWS_ERR_VULKAN, "pipeline refused by a made-up driver"));
}

typedef struct mm_job {
    lws_buffer c, a, b;
    uint32_t m, n, k;
} mm_job;

static void record_mm(lws_cmd *cmd, void *arg) {
    mm_job *j = arg;
    lws_op_matmul(cmd, LWS_MM_NT, j->c, j->a, j->b, j->m, j->n, j->k, 0);
}

/* One NT matmul on a fresh context; *verdict and the result returned. */
static float *run_matmul(lws_matmul_fn hook, const char *mode, int *verdict, lws_status *status,
                         char *path, size_t path_size) {
    const uint32_t m = 37, n = 24, k = 80;
    if (mode)
        setenv("LWS_MATMUL", mode, 1);
    else
        unsetenv("LWS_MATMUL");
    lws_matmul_fast_hook(hook);
    fast_calls = 0;
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 3);
    float *a = test_random_floats(&rng, m * k, 1.0), *b = test_random_floats(&rng, n * k, 1.0);
    mm_job j = {test_output(ctx, m * n),
                test_upload_floats(ctx, a, m * k),
                test_upload_floats(ctx, b, n * k),
                m,
                n,
                k};
    float *got = test_malloc(m * n * sizeof *got);
    lws_cmd *cmd;
    *status = lws_cmd_begin(ctx, 0, &cmd);
    if (*status == LWS_OK) {
        record_mm(cmd, &j);
        *status = lws_cmd_end(cmd);
        if (*status == LWS_OK) *status = lws_submit(ctx, &cmd, 1);
        lws_cmd_destroy(cmd);
    }
    if (*status == LWS_OK) test_download(ctx, j.c, got, m * n);
    *verdict = lws_context_matmul_verdict(ctx);
    lws_matmul_path(ctx, path, path_size);
    lws_context_destroy(ctx);
    lws_matmul_fast_hook(NULL);
    unsetenv("LWS_MATMUL");
    free(a), free(b);
    return got;
}

static void check_first_use(void) {
    const size_t count = 37 * 24;
    int verdict;
    lws_status s;
    char path[256];
    float *portable = run_matmul(NULL, "portable", &verdict, &s, path, sizeof path);
    CHECK(s == LWS_OK && verdict == 0, "portable run");

    /* No matrix units (lavapipe): auto is portable, coopmat is refused. */
    float *plain = run_matmul(NULL, NULL, &verdict, &s, path, sizeof path);
    CHECK(s == LWS_OK && test_bitwise_equal("auto without matrix units", plain, portable, count),
          "auto: portable");
    CHECK(test_contains(path, "portable fp32"), "path '%s'", path);
    free(run_matmul(NULL, "coopmat", &verdict, &s, path, sizeof path));
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "LWS_MATMUL=coopmat") &&
              test_contains(lws_error_message(), "no matrix-unit path"),
          "coopmat without matrix units refused: '%s'", lws_error_message());
    free(run_matmul(NULL, "tensor", &verdict, &s, path, sizeof path));
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "LWS_MATMUL = 'tensor'") &&
              test_contains(lws_error_message(), "portable, coopmat or auto"),
          "bad LWS_MATMUL refused: '%s'", lws_error_message());

    /* Within tolerance: checked (3 layouts), then used. */
    fast_factor = 1.0f + 1e-4f;
    float *close = run_matmul(scaled_fast, NULL, &verdict, &s, path, sizeof path);
    int differs = memcmp(close, portable, count * sizeof *close) != 0;
    CHECK(s == LWS_OK && verdict == 1 && fast_calls == 4 && differs,
          "close fast path: verdict %d, %d calls, %s", verdict, fast_calls,
          differs ? "its result" : "the portable result");
    CHECK(test_contains(path, "checked against the portable one"), "path '%s'", path);
    printf("ok   a fast path within tolerance is checked and used: %s\n", path);

    /* Beyond it: refused, the portable result, the path says so. */
    fast_factor = 1.0f + 1e-2f;
    float *wrong = run_matmul(scaled_fast, NULL, &verdict, &s, path, sizeof path);
    CHECK(s == LWS_OK && verdict == -1 &&
              test_bitwise_equal("wrong fast path: portable result", wrong, portable, count),
          "wrong fast path refused (verdict %d)", verdict);
    CHECK(test_contains(path, "failed its check"), "path '%s'", path);
    printf("ok   a fast path beyond tolerance is refused: %s\n", path);

    /* Forced: portable never calls it; coopmat uses it unchecked. */
    free(run_matmul(scaled_fast, "portable", &verdict, &s, path, sizeof path));
    CHECK(s == LWS_OK && fast_calls == 0 && verdict == 0, "LWS_MATMUL=portable: %d calls",
          fast_calls);
    float *forced = run_matmul(scaled_fast, "coopmat", &verdict, &s, path, sizeof path);
    CHECK(s == LWS_OK && fast_calls == 1 && verdict == 0 &&
              memcmp(forced, portable, count * sizeof *forced) != 0,
          "LWS_MATMUL=coopmat: used unchecked (%d calls, verdict %d)", fast_calls, verdict);

    /* A fast path that fails to run fails the check; the matmul still works. */
    float *broken = run_matmul(broken_fast, NULL, &verdict, &s, path, sizeof path);
    CHECK(s == LWS_OK && verdict == -1 &&
              test_bitwise_equal("broken fast path: portable result", broken, portable, count),
          "broken fast path: status %d verdict %d", s, verdict);
    free(portable), free(plain), free(close), free(wrong), free(forced), free(broken);
}

int main(void) {
    check_choice();
    check_compare();
    check_first_use();
    return test_finish(NULL);
}
