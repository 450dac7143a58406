// lws-test: vulkan kernel
/* AdamW over a multi-tensor table against the fp64 reference of the same
 * formulas: five steps of one command buffer recorded once (grad_norm, then
 * adamw) and submitted five times, with the host rewriting the hyper buffer
 * (learning rate, bias corrections, max_grad_norm) and the gradients between
 * submissions; weight decay on some tensors only; clipping active (scale < 1)
 * on some steps; gradients zeroed after each step; nothing written past a
 * tensor's end; bit-identical on a second run. A loss scale (fp16) leaves
 * the step bit-identical; a non-finite gradient norm skips it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/adamw.h"

/* Sizes around the 4096-element chunk and a prime several chunks long. */
static const uint32_t sizes[] = {1, 4095, 4096, 4097, 10007, 3};
static const uint32_t decays[] = {1, 0, 1, 0, 1, 0};
#define N_TENSORS (sizeof sizes / sizeof *sizes)
#define STEPS     5
/* A warmup-then-decay schedule, and max_grad_norm per step: gradients of std
 * 0.05 over 22k elements have a norm near 7.5, so 1.0 and 0.5 clip (scale
 * about 0.13 and 0.07), 0 turns clipping off and 1e3 is above the norm. */
static const float lrs[STEPS] = {2e-4f, 6e-4f, 1e-3f, 8e-4f, 3e-4f};
static const float max_norms[STEPS] = {1.0f, 0.0f, 1e3f, 0.5f, 1.0f};
/* A sentinel after each tensor's n elements catches writes past its end. */
#define SENTINEL 12345.5f

typedef struct state {
    lws_buffer p[N_TENSORS], g[N_TENSORS], m[N_TENSORS], v[N_TENSORS];
    lws_buffer hyper, table, scratch;
    uint32_t total_chunks;
} state;

/* Uploads x (n floats) followed by the sentinel. */
static lws_buffer upload_with_sentinel(lws_context *ctx, const float *x, uint32_t n) {
    float *tmp = test_malloc((n + 1) * sizeof *tmp);
    memcpy(tmp, x, n * sizeof *x);
    tmp[n] = SENTINEL;
    lws_buffer b = test_upload_floats(ctx, tmp, n + 1);
    free(tmp);
    return b;
}

static lws_optim_hyper step_hyper(int step) {
    lws_optim_hyper h = {.lr = lrs[step - 1],
                         .beta1 = 0.9f,
                         .beta2 = 0.95f,
                         .eps = 1e-8f,
                         .weight_decay = 0.1f,
                         .max_grad_norm = max_norms[step - 1],
                         .grad_norm = NAN,
                         .clip_scale = NAN};
    h.bias_correction1 = (float)(1 - pow(0.9, step));
    h.bias_correction2 = (float)(1 - pow(0.95, step));
    return h;
}

/* Five steps from params drawn with `seed`; leaves the final p, m, v in
 * host arrays (each tensor at offset[t], n + 1 floats with the sentinel). */
static void run_steps(lws_context *ctx, uint64_t seed, float *p_out, float *m_out, float *v_out,
                      const size_t *offset, int check) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    test_rng rng;
    test_rng_seed(&rng, seed);
    state s;
    lws_optim_entry table[N_TENSORS];
    double *ref_p[N_TENSORS], *ref_m[N_TENSORS], *ref_v[N_TENSORS];
    s.total_chunks = 0;
    for (size_t t = 0; t < N_TENSORS; t++) {
        uint32_t n = sizes[t];
        float *p = test_random_floats(&rng, n, 1.0), *zeros = calloc(n, sizeof *zeros);
        s.p[t] = upload_with_sentinel(ctx, p, n);
        s.g[t] = upload_with_sentinel(ctx, zeros, n);
        s.m[t] = upload_with_sentinel(ctx, zeros, n);
        s.v[t] = upload_with_sentinel(ctx, zeros, n);
        ref_p[t] = test_to_double(p, n);
        ref_m[t] = calloc(n, sizeof(double));
        ref_v[t] = calloc(n, sizeof(double));
        table[t] = (lws_optim_entry){s.p[t].addr, s.g[t].addr, s.m[t].addr,    s.v[t].addr,
                                     n,           decays[t],   s.total_chunks, 0};
        s.total_chunks += (n + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK;
        free(p), free(zeros);
    }
    s.hyper = test_output(ctx, 16);
    s.table = test_upload(ctx, table, sizeof table);
    s.scratch = test_output(ctx, s.total_chunks);

    /* Recorded once, submitted every step: the kernels read the hyper buffer
     * at run time. */
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 1, &cmd));
    lws_op_grad_norm(cmd, s.hyper, s.table, N_TENSORS, s.total_chunks, s.scratch);
    lws_cmd_barrier(cmd);
    lws_op_adamw(cmd, s.hyper, s.table, N_TENSORS, s.total_chunks);
    CHECK_OK(lws_cmd_end(cmd));

    for (int step = 1; step <= STEPS; step++) {
        double *grads[N_TENSORS];
        size_t n[N_TENSORS];
        for (size_t t = 0; t < N_TENSORS; t++) {
            float *g = test_random_floats(&rng, sizes[t], 0.05);
            CHECK_OK(lws_upload(ctx, s.g[t], g, sizes[t] * sizeof *g));
            grads[t] = test_to_double(g, sizes[t]);
            n[t] = sizes[t];
            free(g);
        }
        lws_optim_hyper h = step_hyper(step);
        CHECK_OK(lws_upload(ctx, s.hyper, &h, sizeof h));
        CHECK_OK(lws_submit(ctx, &cmd, 1));

        /* The reference uses the fp32 hyperparameters the device saw, and its
         * own fp64 norm for the clip scale. */
        double norm = ref_grad_norm((const double *const *)grads, n, N_TENSORS);
        double clip = ref_clip_scale(norm, h.max_grad_norm);
        ref_adamw_hyper rh = {
            h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.bias_correction1, h.bias_correction2};
        for (size_t t = 0; t < N_TENSORS; t++)
            ref_adamw_step(ref_p[t], ref_m[t], ref_v[t], grads[t], n[t], clip, (int)decays[t], &rh);

        lws_optim_hyper got;
        CHECK_OK(lws_download(ctx, s.hyper, &got, sizeof got));
        char what[96];
        if (check) {
            snprintf(what, sizeof what, "step %d clip_scale (max_grad_norm %g)", step,
                     (double)h.max_grad_norm);
            /* The norm's fp32 sum and one division: see test_grad_norm. */
            CHECK_CLOSE(what, &got.clip_scale, &clip, 1, 3e-6 * clip, 3e-6);
            if (h.max_grad_norm == 1.0f || h.max_grad_norm == 0.5f)
                CHECK(got.clip_scale < 0.2f, "step %d: clip_scale %.6g should be < 0.2", step,
                      got.clip_scale);
        }
        /* Gradients are zeroed for the next accumulation: exactly 0. */
        for (size_t t = 0; t < N_TENSORS; t++) {
            float *g = test_malloc((sizes[t] + 1) * sizeof *g);
            test_download(ctx, s.g[t], g, sizes[t] + 1);
            size_t nonzero = 0;
            for (uint32_t i = 0; i < sizes[t]; i++) nonzero += g[i] != 0.0f;
            CHECK(nonzero == 0, "step %d tensor %zu: %zu gradients not zeroed", step, t, nonzero);
            CHECK(g[sizes[t]] == SENTINEL, "step %d tensor %zu: gradient written past its end",
                  step, t);
            free(g);
            free(grads[t]);
        }
    }
    lws_cmd_destroy(cmd);

    for (size_t t = 0; t < N_TENSORS; t++) {
        uint32_t nt = sizes[t];
        test_download(ctx, s.p[t], p_out + offset[t], nt + 1);
        test_download(ctx, s.m[t], m_out + offset[t], nt + 1);
        test_download(ctx, s.v[t], v_out + offset[t], nt + 1);
        if (check) {
            CHECK(p_out[offset[t] + nt] == SENTINEL && m_out[offset[t] + nt] == SENTINEL &&
                      v_out[offset[t] + nt] == SENTINEL,
                  "tensor %zu: p, m or v written past its end", t);
            double max_m = 0, max_v = 0;
            for (uint32_t i = 0; i < nt; i++)
                max_m = fmax(max_m, fabs(ref_m[t][i])), max_v = fmax(max_v, ref_v[t][i]);
            char what[96];
            /* p ~ N(0, 1) (|p| < 5): each step rounds p twice (decay, update),
             * half an ulp of 4.8e-7 each; the update itself (<= lr) is good
             * to ~1e-6 relative, and the clip scale's 1e-7 barely moves it
             * since m / sqrt(v) is scale-free. 5 steps: under 3e-6. */
            snprintf(what, sizeof what, "p after %d steps, n=%u decay=%u", STEPS, nt, decays[t]);
            CHECK_CLOSE(what, p_out + offset[t], ref_p[t], nt, 3e-6, 1e-6);
            /* m, v: a few roundings per step, relative to their size, plus
             * the clip scale's relative error (v: twice it). */
            snprintf(what, sizeof what, "m after %d steps, n=%u", STEPS, nt);
            CHECK_CLOSE(what, m_out + offset[t], ref_m[t], nt, 3e-6 * max_m, 3e-6);
            snprintf(what, sizeof what, "v after %d steps, n=%u", STEPS, nt);
            CHECK_CLOSE(what, v_out + offset[t], ref_v[t], nt, 6e-6 * max_v, 6e-6);
        }
        free(ref_p[t]), free(ref_m[t]), free(ref_v[t]);
    }
    lws_arena_reset(ctx, mark);
}

/* One step of grad_norm + adamw on one tensor of n elements from p0 (moments
 * m0, v0) with gradient g and the given loss scale; p, m, v and g after it
 * into out[0..4) (host arrays of n floats). */
static void one_step(lws_context *ctx, const float *const in[4], uint32_t n, float loss_scale,
                     float *const out[4], float *grad_norm) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer b[4];
    for (int i = 0; i < 4; i++) b[i] = test_upload_floats(ctx, in[i], n);
    lws_optim_entry e = {b[0].addr, b[3].addr, b[1].addr, b[2].addr, n, 1, 0, 0};
    uint32_t chunks = (n + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK;
    lws_buffer table = test_upload(ctx, &e, sizeof e), scratch = test_output(ctx, chunks);
    lws_optim_hyper h = step_hyper(2);
    h.max_grad_norm = 0.0f;
    h.loss_scale = loss_scale;
    lws_buffer hyper = test_upload(ctx, &h, sizeof h);
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    lws_op_grad_norm(cmd, hyper, table, 1, chunks, scratch);
    lws_cmd_barrier(cmd);
    lws_op_adamw(cmd, hyper, table, 1, chunks);
    CHECK_OK(lws_cmd_end(cmd));
    CHECK_OK(lws_submit(ctx, &cmd, 1));
    lws_cmd_destroy(cmd);
    for (int i = 0; i < 4; i++) test_download(ctx, b[i], out[i], n);
    CHECK_OK(lws_download(ctx, hyper, &h, sizeof h));
    *grad_norm = h.grad_norm;
    lws_arena_reset(ctx, mark);
}

/* fp16 training's loss scale: gradients 1024 times too large with
 * loss_scale 1024 give the same step bit for bit (the power of two divides
 * exactly); a gradient with an infinity or a NaN (an overflow) gives a
 * non-finite norm and skips the step: p, m, v unchanged, gradients zeroed. */
static void check_loss_scale(lws_context *ctx) {
    enum { N = 4097 };
    test_rng rng;
    test_rng_seed(&rng, 77);
    float *p = test_random_floats(&rng, N, 1.0), *m = test_random_floats(&rng, N, 0.01);
    float *v = test_random_floats(&rng, N, 0.001), *g = test_random_floats(&rng, N, 0.05);
    float *g_scaled = test_malloc(N * sizeof *g_scaled);
    for (uint32_t i = 0; i < N; i++) v[i] = v[i] * v[i], g_scaled[i] = g[i] * 1024;
    float *plain[4], *scaled[4], norm_plain, norm_scaled, norm_bad;
    for (int i = 0; i < 4; i++)
        plain[i] = test_malloc(N * sizeof(float)), scaled[i] = test_malloc(N * sizeof(float));
    const float *in_plain[4] = {p, m, v, g}, *in_scaled[4] = {p, m, v, g_scaled};
    one_step(ctx, in_plain, N, 1.0f, plain, &norm_plain);
    one_step(ctx, in_scaled, N, 1024.0f, scaled, &norm_scaled);
    test_checks += 4;
    if (!test_bitwise_equal("p with gradients x 1024 and loss_scale 1024", scaled[0], plain[0], N))
        test_failures++;
    if (!test_bitwise_equal("m with gradients x 1024 and loss_scale 1024", scaled[1], plain[1], N))
        test_failures++;
    if (!test_bitwise_equal("v with gradients x 1024 and loss_scale 1024", scaled[2], plain[2], N))
        test_failures++;
    if (!test_bitwise_equal("grad_norm with loss_scale 1024", &norm_scaled, &norm_plain, 1))
        test_failures++;
    const float bad[] = {INFINITY, NAN};
    for (int k = 0; k < 2; k++) {
        g_scaled[N / 2] = bad[k];
        one_step(ctx, in_scaled, N, 1024.0f, scaled, &norm_bad);
        int same = memcmp(scaled[0], p, N * 4) == 0 && memcmp(scaled[1], m, N * 4) == 0 &&
                   memcmp(scaled[2], v, N * 4) == 0;
        size_t nonzero = 0;
        for (uint32_t i = 0; i < N; i++) nonzero += scaled[3][i] != 0.0f;
        CHECK(!isfinite(norm_bad) && same && nonzero == 0,
              "a gradient of %g: norm %g (want non-finite), p, m, v %s, %zu gradients not zeroed",
              (double)bad[k], (double)norm_bad, same ? "kept" : "changed", nonzero);
        printf("%s a gradient of %g skips the step: p, m, v kept, gradients zeroed\n",
               !isfinite(norm_bad) && same && nonzero == 0 ? "ok  " : "FAIL", (double)bad[k]);
    }
    for (int i = 0; i < 4; i++) free(plain[i]), free(scaled[i]);
    free(p), free(m), free(v), free(g), free(g_scaled);
}

int main(void) {
    lws_context *ctx = test_context();
    check_loss_scale(ctx);
    size_t offset[N_TENSORS], total = 0;
    for (size_t t = 0; t < N_TENSORS; t++) offset[t] = total, total += sizes[t] + 1;
    float *p = test_malloc(total * sizeof *p), *m = test_malloc(total * sizeof *m);
    float *v = test_malloc(total * sizeof *v), *p2 = test_malloc(total * sizeof *p2);
    float *m2 = test_malloc(total * sizeof *m2), *v2 = test_malloc(total * sizeof *v2);
    run_steps(ctx, 5, p, m, v, offset, 1);
    run_steps(ctx, 5, p2, m2, v2, offset, 0);
    test_checks += 3;
    if (!test_bitwise_equal("p on a second run", p, p2, total)) test_failures++;
    if (!test_bitwise_equal("m on a second run", m, m2, total)) test_failures++;
    if (!test_bitwise_equal("v on a second run", v, v2, total)) test_failures++;
    free(p), free(m), free(v), free(p2), free(m2), free(v2);
    return test_finish(ctx);
}
