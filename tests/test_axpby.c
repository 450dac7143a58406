// lws-test: vulkan kernel
/* axpby against the fp64 reference, on sizes that are not multiples of the
 * workgroup, with poisoned outputs and in-place aliasing. */
#include <stdlib.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/axpby.h"

typedef struct job {
    lws_buffer out, x, y;
    float alpha, beta;
    uint32_t n;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_axpby(cmd, j->out, j->x, j->y, j->alpha, j->beta, j->n);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 1);
    /* 1, primes, one past the workgroup, and one past the grid-stride cap
     * (4096 workgroups x 256) so the stride loop runs more than once. */
    const uint32_t sizes[] = {1, 7, 255, 257, 1009, 65537, 4096 * 256 + 3};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint32_t n = sizes[s];
        lws_arena_mark mark = lws_arena_get_mark(ctx);
        float *x = test_random_floats(&rng, n, 1.0), *y = test_random_floats(&rng, n, 1.0);
        float *got = test_malloc(n * sizeof *got), *again = test_malloc(n * sizeof *again);
        double *xd = test_to_double(x, n), *yd = test_to_double(y, n);
        double *want = test_malloc(n * sizeof *want);
        float alpha = 0.75f, beta = -1.5f;
        ref_axpby(want, xd, yd, alpha, beta, n);

        job j = {test_output(ctx, n), test_upload_floats(ctx, x, n), test_upload_floats(ctx, y, n),
                 alpha, beta, n};
        test_run(ctx, record, &j);
        test_download(ctx, j.out, got, n);
        char what[64];
        snprintf(what, sizeof what, "axpby n=%u", n);
        /* Each output is one fp32 FMA-or-mul-add of exact inputs: within a
         * couple of ulps of the fp64 value. */
        CHECK_CLOSE(what, got, want, n, 1e-5, 1e-6);
        test_run(ctx, record, &j);
        test_download(ctx, j.out, again, n);
        snprintf(what, sizeof what, "axpby n=%u twice", n);
        test_checks++;
        if (!test_bitwise_equal(what, got, again, n)) test_failures++;

        /* In place: y = alpha x + beta y. */
        j.out = j.y;
        test_run(ctx, record, &j);
        test_download(ctx, j.y, got, n);
        snprintf(what, sizeof what, "axpby in place n=%u", n);
        CHECK_CLOSE(what, got, want, n, 1e-5, 1e-6);
        free(x), free(y), free(got), free(again), free(xd), free(yd), free(want);
        lws_arena_reset(ctx, mark);
    }
    return test_finish(ctx);
}
