// lws-test: vulkan kernel
/* Global gradient norm over a multi-tensor table against fp64: tensors of odd
 * sizes around the 4096-element chunk (and one of zero elements), a table of
 * many tensors, more chunks than a workgroup has invocations, clip_scale with
 * max_grad_norm off, above and below the norm, the rest of the hyper buffer
 * left alone, and bit-identical reruns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/adamw.h"

typedef struct job {
    lws_buffer hyper, table, scratch;
    uint32_t n_tensors, total_chunks;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_grad_norm(cmd, j->hyper, j->table, j->n_tensors, j->total_chunks, j->scratch);
}

static lws_optim_hyper run_once(lws_context *ctx, job *j, float max_grad_norm, float loss_scale) {
    lws_optim_hyper h = {.lr = 3e-4f,
                         .beta1 = 0.9f,
                         .beta2 = 0.95f,
                         .eps = 1e-8f,
                         .weight_decay = 0.1f,
                         .bias_correction1 = 0.1f,
                         .bias_correction2 = 0.05f,
                         .max_grad_norm = max_grad_norm,
                         .grad_norm = NAN,
                         .clip_scale = NAN,
                         .loss_scale = loss_scale};
    for (int i = 0; i < 4; i++) h.pad[i] = (float)(i + 2);
    CHECK_OK(lws_upload(ctx, j->hyper, &h, sizeof h));
    test_run(ctx, record, j);
    lws_optim_hyper got;
    CHECK_OK(lws_download(ctx, j->hyper, &got, sizeof got));
    /* Only grad_norm and clip_scale are written. */
    lws_optim_hyper masked = got;
    masked.grad_norm = h.grad_norm, masked.clip_scale = h.clip_scale;
    CHECK(memcmp(&masked.lr, &h.lr, offsetof(lws_optim_hyper, grad_norm)) == 0 &&
              masked.loss_scale == h.loss_scale && memcmp(masked.pad, h.pad, sizeof h.pad) == 0,
          "grad_norm wrote hyper fields other than grad_norm and clip_scale");
    return got;
}

static void run_table(lws_context *ctx, test_rng *rng, const uint32_t *sizes, uint32_t n_tensors,
                      const char *name) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_optim_entry *table = test_malloc(n_tensors * sizeof *table);
    double **grads = test_malloc(n_tensors * sizeof *grads);
    size_t *n = test_malloc(n_tensors * sizeof *n);
    uint32_t total_chunks = 0;
    for (uint32_t t = 0; t < n_tensors; t++) {
        /* Scales from 1e-3 to 1: a real model's gradients differ by layer. */
        /* at least one float, so a zero-size tensor still has a buffer to point at */
        float *g = test_random_floats(rng, sizes[t] ? sizes[t] : 1,
                                      pow(10.0, -3.0 * test_rng_uniform(rng)));
        grads[t] = test_to_double(g, sizes[t]);
        n[t] = sizes[t];
        lws_buffer b = test_upload_floats(ctx, g, sizes[t] ? sizes[t] : 1);
        table[t] = (lws_optim_entry){.grad = b.addr, .n = sizes[t], .first_chunk = total_chunks};
        total_chunks += (sizes[t] + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK;
        free(g);
    }
    job j = {test_output(ctx, 16), test_upload(ctx, table, n_tensors * sizeof *table),
             test_output(ctx, total_chunks ? total_chunks : 1), n_tensors, total_chunks};
    double norm = ref_grad_norm((const double *const *)grads, n, n_tensors);
    char what[160];

    /* Sum of squares in fp32: a sequential run of 16 terms per invocation,
     * two trees of 8 levels and a run of total_chunks / 256 terms; each level
     * adds at most half an ulp of relative error: under 2e-6 for these
     * tables, the square root halves it. */
    double tol = 2e-6;
    lws_optim_hyper off = run_once(ctx, &j, 0.0f, 1.0f);
    float got_norm = off.grad_norm;
    snprintf(what, sizeof what, "%s: grad_norm (%u tensors, %u chunks)", name, n_tensors,
             total_chunks);
    CHECK_CLOSE(what, &got_norm, &norm, 1, tol * norm, tol);
    snprintf(what, sizeof what, "%s: clip_scale with max_grad_norm 0", name);
    CHECK(off.clip_scale == 1.0f, "%s is %.9g, want 1", what, off.clip_scale);

    lws_optim_hyper above = run_once(ctx, &j, (float)(2 * norm), 0.0f);
    snprintf(what, sizeof what, "%s: clip_scale with max_grad_norm 2 x norm", name);
    CHECK(above.clip_scale == 1.0f, "%s is %.9g, want 1", what, above.clip_scale);

    float max_norm = (float)(0.25 * norm);
    lws_optim_hyper below = run_once(ctx, &j, max_norm, 1.0f);
    double want_scale = ref_clip_scale(norm, max_norm);
    snprintf(what, sizeof what, "%s: clip_scale with max_grad_norm norm / 4", name);
    /* One division more than the norm's error. */
    CHECK_CLOSE(what, &below.clip_scale, &want_scale, 1, 3e-6 * want_scale, 3e-6);

    snprintf(what, sizeof what, "%s: grad_norm rerun", name);
    test_checks++;
    if (!test_bitwise_equal(what, &got_norm, &below.grad_norm, 1)) test_failures++;
    lws_optim_hyper again = run_once(ctx, &j, max_norm, 1.0f);
    snprintf(what, sizeof what, "%s: clip_scale rerun", name);
    test_checks++;
    if (!test_bitwise_equal(what, &below.clip_scale, &again.clip_scale, 1)) test_failures++;

    /* Gradients that carry a loss scale of 1024 (fp16 training): the norm is
     * the unscaled one and clip_scale (no clipping here) is 1/1024, exactly:
     * a power of two divides without rounding. */
    lws_optim_hyper scaled = run_once(ctx, &j, 0.0f, 1024.0f);
    float want_norm = got_norm / 1024, want_clip = 1.0f / 1024;
    int exact = memcmp(&scaled.grad_norm, &want_norm, 4) == 0 &&
                memcmp(&scaled.clip_scale, &want_clip, 4) == 0;
    CHECK(exact, "%s: loss scale 1024: norm %.9g clip %.9g, want %.9g and %.9g", name,
          scaled.grad_norm, scaled.clip_scale, want_norm, want_clip);
    printf("%s %s: a loss scale of 1024 divides the norm and the clip scale exactly\n",
           exact ? "ok  " : "FAIL", name);

    for (uint32_t t = 0; t < n_tensors; t++) free(grads[t]);
    free(grads), free(n), free(table);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 11);
    const uint32_t one[] = {1};
    run_table(ctx, &rng, one, 1, "one element");
    /* Around the chunk, a zero-element tensor between two others (it shares
     * its first_chunk with the next), and 1100003 elements = 269 chunks, more
     * than the final pass's 256 invocations. */
    const uint32_t odd[] = {1, 4095, 4097, 10007, 0, 4096, 3, 1100003, 65537};
    run_table(ctx, &rng, odd, sizeof odd / sizeof *odd, "odd sizes");
    /* Many tensors: the chunk-to-tensor search walks a deep table. */
    enum { MANY = 301 };
    uint32_t many[MANY];
    for (int i = 0; i < MANY; i++) many[i] = 1 + (uint32_t)(test_rng_uniform(&rng) * 9000);
    run_table(ctx, &rng, many, MANY, "301 tensors");
    return test_finish(ctx);
}
