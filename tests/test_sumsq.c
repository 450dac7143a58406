// lws-test: vulkan kernel
/* Sum of squares: fp64 reference, sizes across the chunk boundaries, slots,
 * accumulation, and bit-identical results across runs. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/axpby.h"

typedef struct job {
    lws_buffer out, x, scratch;
    uint32_t n, slot;
    int accumulate;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_sumsq(cmd, j->out, j->slot, j->x, j->n, j->scratch, j->accumulate);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 2);
    const uint32_t sizes[] = {1, 3, 255, 256, 16383, 16385, 100003, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint32_t n = sizes[s];
        lws_arena_mark mark = lws_arena_get_mark(ctx);
        float *x = test_random_floats(&rng, n, 1.0);
        double *xd = test_to_double(x, n);
        uint32_t scratch_n = lws_sumsq_scratch_floats(ctx, n);
        job j = {test_output(ctx, 4), test_upload_floats(ctx, x, n), test_output(ctx, scratch_n),
                 n, (uint32_t)(s % 4), 0};
        test_run(ctx, record, &j);
        float out[4], again[4];
        test_download(ctx, j.out, out, 4);
        double want = ref_sumsq(xd, n);
        char what[64];
        /* fp32 partial sums of n positive terms: relative error grows like
         * sqrt(n) * 2^-24 for a tree; 1e-5 leaves margin up to n = 1e6. */
        snprintf(what, sizeof what, "sumsq n=%u slot=%u", n, j.slot);
        CHECK_CLOSE(what, &out[j.slot], &want, 1, 1e-5 * want, 1e-5);
        test_run(ctx, record, &j);
        test_download(ctx, j.out, again, 4);
        snprintf(what, sizeof what, "sumsq n=%u twice", n);
        test_checks++;
        if (!test_bitwise_equal(what, &out[j.slot], &again[j.slot], 1)) test_failures++;
        /* Accumulate: out[slot] += sumsq(x). */
        j.accumulate = 1;
        test_run(ctx, record, &j);
        test_download(ctx, j.out, out, 4);
        double want2 = 2 * want;
        snprintf(what, sizeof what, "sumsq accumulate n=%u", n);
        CHECK_CLOSE(what, &out[j.slot], &want2, 1, 2e-5 * want, 1e-5);
        free(x), free(xd);
        lws_arena_reset(ctx, mark);
    }
    return test_finish(ctx);
}
