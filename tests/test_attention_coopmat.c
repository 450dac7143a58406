// lws-test: vulkan kernel
/* The matrix-unit attention forward (shaders/attention_fwd_coopmat.comp)
 * where the device has matrix units: the kernel itself (LWS_ATTENTION=
 * coopmat) against the fp64 reference of tests/test_attention.c at head_dim
 * 64 and 128 (and 32, 48), GQA, causal, sequences that are not multiples of
 * the blocks, fp32, bf16 and fp16 storage, outputs poisoned with NaN inside
 * NaN guard regions that must stay untouched, then the check at first use.
 * Elsewhere (lavapipe has no matrix units) it is reported skipped (exit 77);
 * the choice and the emulated kernel are tested everywhere by
 * test_attention_select.c, with the tolerances derived there. */
#include <stdlib.h>

#include "attention_check.h"

/* ---- the kernel, where the device has matrix units ---- */

static void check_kernel(lws_context *ctx, test_rng *rng) {
    const double u = 1.0 / 2048.0;
    const attention_shape shapes[] = {{1, 1, 1, 1, 64, 0, 0},    {2, 77, 4, 2, 64, 0, 0},
                                      {1, 150, 6, 2, 128, 0, 0}, {2, 33, 2, 2, 128, 0, 0},
                                      {1, 300, 2, 1, 64, 0, 0},  {1, 45, 3, 1, 32, 0, 0},
                                      {1, 61, 2, 2, 48, 0, 0}};
    const lws_dtype types[] = {LWS_F32, LWS_BF16, LWS_F16};
    setenv("LWS_ATTENTION", "coopmat", 1); /* the kernel itself, no fallback */
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int t = 0; t < 3; t++)
            if (t == 0 || shapes[i].head_dim >= 64)
                check_attention_forward(ctx, rng, shapes[i], types[t], 12 * u, 9 * u, 4 * u, 1);
    /* The check at first use on this device, its verdict and path printed. */
    unsetenv("LWS_ATTENTION");
    lws_context_set_attention_verdict(ctx, 0);
    check_attention_forward(ctx, rng, (attention_shape){2, 200, 8, 2, 128, 0, 0}, LWS_BF16, 12 * u,
                            9 * u, 4 * u, 1);
    char path[256];
    lws_attention_path(ctx, 128, path, sizeof path);
    printf("attention path at head_dim 128: %s\n", path);
    CHECK(lws_context_attention_verdict(ctx) == 1, "the matrix-unit form passes its check");
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 23);
    lws_coopmat_shape shape;
    lws_coopmat_api api = lws_context_coopmat(ctx, &shape);
    if (api == LWS_COOPMAT_NONE) {
        printf("skip: the matrix-unit kernel needs matrix units; %s has none (its choice and "
               "emulation: test_attention_select)\n",
               lws_context_caps(ctx)->name);
        lws_context_destroy(ctx);
        return 77;
    }
    printf("matrix units: %s %ux%ux%u\n", api == LWS_COOPMAT_KHR ? "KHR" : "NV", shape.m, shape.n,
           shape.k);
    check_kernel(ctx, &rng);
    return test_finish(ctx);
}
