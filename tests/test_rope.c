// lws-test: vulkan kernel
/* RoPE against the fp64 reference (angles in fp64): head counts and head
 * widths that are not multiples of anything, positions wrapping at seq_len,
 * positions up to 8191 (where a plain fp32 angle is off by ~5e-4 rad), the
 * inverse, in place, a round trip, a finite-difference check of the backward,
 * and bit-identical reruns. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/rope.h"

typedef struct job {
    lws_buffer y, x;
    uint32_t n_tokens, seq_len, heads, head_dim;
    float theta;
    int inverse;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_rope(cmd, j->y, j->x, j->n_tokens, j->seq_len, j->heads, j->head_dim, j->theta,
                j->inverse);
}

/* Each output is x0 cos - x1 sin with |x| < ~5: the angle carries ~1e-7 rad
 * of error (double-float inv_freq and product, three-part reduction), the
 * sin/cos polynomials ~1e-7, the products and sum a few ulps of 5: below
 * 2e-6 absolute. A plain fp32 angle would miss this by 2e-3 at 8191. */
#define ROPE_TOL_ABS 2e-6
#define ROPE_TOL_REL 5e-7

static void check_shape(lws_context *ctx, test_rng *rng, uint32_t n_tokens, uint32_t seq_len,
                        uint32_t heads, uint32_t head_dim, float theta) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t n = (size_t)n_tokens * heads * head_dim;
    float *x = test_random_floats(rng, n, 1.0);
    double *xd = test_to_double(x, n), *want = test_malloc(n * sizeof(double));
    float *got = test_malloc(n * sizeof(float)), *again = test_malloc(n * sizeof(float));
    char what[128], shape[80];
    snprintf(shape, sizeof shape, "tokens=%u seq=%u heads=%u head_dim=%u theta=%g", n_tokens,
             seq_len, heads, head_dim, (double)theta);

    job j = {test_output(ctx, n),
             test_upload_floats(ctx, x, n),
             n_tokens,
             seq_len,
             heads,
             head_dim,
             theta,
             0};
    ref_rope(want, xd, n_tokens, seq_len, heads, head_dim, theta, 0);
    test_run(ctx, record, &j);
    test_download(ctx, j.y, got, n);
    snprintf(what, sizeof what, "rope %s", shape);
    CHECK_CLOSE(what, got, want, n, ROPE_TOL_ABS, ROPE_TOL_REL);
    test_run(ctx, record, &j);
    test_download(ctx, j.y, again, n);
    snprintf(what, sizeof what, "rope %s twice", shape);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, n)) test_failures++;

    /* Round trip: the inverse of the forward output gives x back. */
    lws_buffer rotated = j.y;
    j.x = rotated;
    j.y = test_output(ctx, n);
    j.inverse = 1;
    test_run(ctx, record, &j);
    test_download(ctx, j.y, got, n);
    snprintf(what, sizeof what, "rope inverse(rope(x)) = x %s", shape);
    CHECK_CLOSE(what, got, xd, n, 2 * ROPE_TOL_ABS, 2 * ROPE_TOL_REL);

    /* Inverse in place over x, against the fp64 inverse. */
    j.x = j.y = test_upload_floats(ctx, x, n);
    ref_rope(want, xd, n_tokens, seq_len, heads, head_dim, theta, 1);
    test_run(ctx, record, &j);
    test_download(ctx, j.y, got, n);
    snprintf(what, sizeof what, "rope inverse in place %s", shape);
    CHECK_CLOSE(what, got, want, n, ROPE_TOL_ABS, ROPE_TOL_REL);

    free(x), free(xd), free(want), free(got), free(again);
    lws_arena_reset(ctx, mark);
}

/* L = sum dy * rope(x), in fp64; its gradient is rope^-1(dy), which the GPU
 * computes with inverse = 1. */
typedef struct fd_arg {
    double *x;
    const double *dy;
    size_t n_tokens, seq_len, heads, head_dim;
} fd_arg;

static double fd_loss(void *arg) {
    fd_arg *f = arg;
    size_t n = f->n_tokens * f->heads * f->head_dim;
    double *y = test_malloc(n * sizeof *y), loss = 0;
    ref_rope(y, f->x, f->n_tokens, f->seq_len, f->heads, f->head_dim, 500000.0, 0);
    for (size_t i = 0; i < n; i++) loss += f->dy[i] * y[i];
    free(y);
    return loss;
}

static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    enum { n_tokens = 5, seq_len = 4, heads = 2, head_dim = 6, n = n_tokens * heads * head_dim };
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *x = test_random_floats(rng, n, 1.0), *dy = test_random_floats(rng, n, 1.0);
    double *xd = test_to_double(x, n), *dyd = test_to_double(dy, n);
    job j = {test_output(ctx, n),
             test_upload_floats(ctx, dy, n),
             n_tokens,
             seq_len,
             heads,
             head_dim,
             500000.0f,
             1};
    test_run(ctx, record, &j);
    float got[n];
    test_download(ctx, j.y, got, n);
    double fd[n];
    fd_arg f = {xd, dyd, n_tokens, seq_len, heads, head_dim};
    for (size_t i = 0; i < n; i++) fd[i] = test_finite_difference(fd_loss, &f, xd, i, 1e-6);
    /* L is linear in x: central differences are exact up to fp64 rounding
     * (~1e-10 with h = 1e-6). */
    CHECK_CLOSE("rope backward (inverse) vs finite differences", got, fd, n, ROPE_TOL_ABS,
                ROPE_TOL_REL * 4);
    free(x), free(dy), free(xd), free(dyd);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 51);
    check_shape(ctx, &rng, 1, 1, 1, 2, 500000.0f);
    check_shape(ctx, &rng, 7, 3, 5, 48, 500000.0f); /* positions wrap every 3 tokens */
    check_shape(ctx, &rng, 33, 16, 3, 64, 500000.0f);
    check_shape(ctx, &rng, 129, 129, 2, 6, 10000.0f); /* tiny heads, Llama's theta */
    check_shape(ctx, &rng, 61, 61, 12, 128, 500000.0f);
    /* Every position 0 .. 8191 once (two sequences of 4096 would stop at
     * 4095): the large angles, where fp32 rounding of pos * inv_freq shows. */
    check_shape(ctx, &rng, 8192, 8192, 1, 64, 500000.0f);
    check_shape(ctx, &rng, 9001, 8192, 1, 10, 10000.0f);
    check_finite_difference(ctx, &rng);
    return test_finish(ctx);
}
