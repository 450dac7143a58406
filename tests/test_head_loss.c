// lws-test: vulkan kernel
/* The output head with its loss over chunks of tokens (lws_op_head_loss)
 * against the fp64 reference (logits = x W^T, cross-entropy with z-loss,
 * dx = dlogits W, dW += dlogits^T x): one chunk, several with a short last
 * one, and one token per chunk; targets ignored across chunks (the count is
 * the whole batch's); the loss alone (evaluation); bf16 and fp16 operands
 * with a device-side loss scale; central differences of the fp64 objective;
 * outputs poisoned with NaN; and bit-identical reruns. The losses and dx of a
 * row depend only on that row, so they are bit-identical for any chunking;
 * dW adds the chunks in order, so it changes only by fp32 summation order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/head_loss.h"

#define IGNORE ((uint32_t)-100)

typedef struct head_case {
    uint32_t rows, d, vocab, chunk;
    lws_dtype type;
    float z_loss, grad_scale, loss_scale; /* loss_scale 0: none */
    int backward;
} head_case;

typedef struct head_run {
    float *losses, *dx, *dw; /* host copies of the outputs */
} head_run;

typedef struct head_inputs {
    float *x, *w, *dw0;
    uint32_t *targets;
} head_inputs;

static lws_dtype round_type;
static double round_dlogit(double v) {
    return test_round((float)v, round_type);
}

static void record(lws_cmd *cmd, void *arg) {
    lws_op_head_loss(cmd, arg);
}

/* x and w rounded to the case's type; every fifth target ignored (never row 0). */
static head_inputs make_inputs(test_rng *rng, const head_case *c) {
    head_inputs in = {test_random_floats(rng, (size_t)c->rows * c->d, 1.0),
                      test_random_floats(rng, (size_t)c->vocab * c->d, 0.5),
                      test_random_floats(rng, (size_t)c->vocab * c->d, 0.1),
                      test_malloc(c->rows * sizeof(uint32_t))};
    for (size_t i = 0; i < (size_t)c->rows * c->d; i++) in.x[i] = test_round(in.x[i], c->type);
    for (size_t i = 0; i < (size_t)c->vocab * c->d; i++) in.w[i] = test_round(in.w[i], c->type);
    for (uint32_t r = 0; r < c->rows; r++)
        in.targets[r] = r % 5 == 3 ? IGNORE : (uint32_t)(test_rng_uniform(rng) * c->vocab);
    return in;
}

static void free_inputs(head_inputs *in) {
    free(in->x), free(in->w), free(in->dw0), free(in->targets);
}

/* Runs the op on the device; outputs malloc'd into *out. */
static void run(lws_context *ctx, const head_case *c, const head_inputs *in, head_run *out) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t xn = (size_t)c->rows * c->d, wn = (size_t)c->vocab * c->d;
    size_t chunk = (size_t)c->chunk * c->vocab;
    lws_buffer none = {0};
    lws_head_loss_args a = {
        .losses = test_output(ctx, c->rows),
        .dx = c->backward ? test_output_as(ctx, xn, c->type) : none,
        .dw = c->backward ? test_upload_floats(ctx, in->dw0, wn) : none,
        .x = test_upload_as(ctx, in->x, xn, c->type),
        .w = test_upload_as(ctx, in->w, wn, c->type),
        .targets = test_upload(ctx, in->targets, c->rows * sizeof(uint32_t)),
        .logits = test_output(ctx, chunk),
        .ce_scratch = test_output(ctx, lws_cross_entropy_scratch_floats(ctx, c->chunk, c->vocab)),
        .scale = c->loss_scale > 0 ? test_upload_floats(ctx, &c->loss_scale, 1) : none,
        .rows = c->rows,
        .d = c->d,
        .vocab = c->vocab,
        .chunk_rows = c->chunk,
        .ignore_index = IGNORE,
        .z_loss = c->z_loss,
        .grad_scale = c->grad_scale};
    a.dlogits = c->type == LWS_F32 ? a.logits : test_output_as(ctx, chunk, c->type);
    test_run(ctx, record, &a);
    out->losses = test_malloc(c->rows * sizeof(float));
    out->dx = test_malloc(xn * sizeof(float));
    out->dw = test_malloc(wn * sizeof(float));
    test_download(ctx, a.losses, out->losses, c->rows);
    if (c->backward) {
        test_download_as(ctx, a.dx, out->dx, xn);
        test_download(ctx, a.dw, out->dw, wn);
    }
    lws_arena_reset(ctx, mark);
}

static void free_run(head_run *r) {
    free(r->losses), free(r->dx), free(r->dw);
}

static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Against the reference; returns the device's outputs for further checks. */
static head_run check_case(lws_context *ctx, const head_case *c, const head_inputs *in) {
    size_t xn = (size_t)c->rows * c->d, wn = (size_t)c->vocab * c->d;
    double *want_loss = test_malloc(c->rows * 8), *want_dx = test_malloc(xn * 8);
    double *want_dw = test_to_double(in->dw0, wn);
    double *x = test_to_double(in->x, xn), *w = test_to_double(in->w, wn);
    double scale = c->loss_scale > 0 ? c->loss_scale : 1.0;
    round_type = c->type;
    ref_head_loss(want_loss, c->backward ? want_dx : NULL, want_dw, x, w, in->targets, c->rows,
                  c->d, c->vocab, IGNORE, c->z_loss, c->grad_scale * scale,
                  c->type == LWS_F32 ? NULL : round_dlogit);
    head_run got;
    run(ctx, c, in, &got);
    char what[160];
    snprintf(what, sizeof what, "rows=%u d=%u vocab=%u chunk=%u %s%s", c->rows, c->d, c->vocab,
             c->chunk, lws_dtype_name(c->type), c->backward ? "" : " loss only");
    char label[200];
    /* The logits are fp32 sums of d products (|logit| <~ 8): ~1e-6, which
     * the loss carries as is (test_cross_entropy's budget besides). */
    snprintf(label, sizeof label, "losses %s", what);
    CHECK_CLOSE(label, got.losses, want_loss, c->rows, 1e-5, 1e-6);
    if (c->backward) {
        /* The 16-bit dx is rounded at its store (u of its magnitude); a
         * dlogit the device rounds to the other side of a tie than the
         * reference moves a term by one 16-bit ulp: covered by 2u. */
        double u = test_unit_roundoff(c->type);
        snprintf(label, sizeof label, "dx %s", what);
        CHECK_CLOSE(label, got.dx, want_dx, xn, (2 * u + 1e-5) * max_abs(want_dx, xn),
                    2 * u + 1e-5);
        snprintf(label, sizeof label, "dw %s", what);
        CHECK_CLOSE(label, got.dw, want_dw, wn, (2 * u + 1e-5) * max_abs(want_dw, wn),
                    2 * u + 1e-5);
    }
    free(want_loss), free(want_dx), free(want_dw), free(x), free(w);
    return got;
}

static int bitwise(const char *what, const float *a, const float *b, size_t n) {
    test_checks++;
    int ok = test_bitwise_equal(what, a, b, n);
    if (!ok) test_failures++;
    return ok;
}

/* fp32 at three chunkings and the loss alone: all against the reference;
 * losses and dx bit-identical across chunkings; a rerun bit-identical. */
static void check_chunkings(lws_context *ctx, test_rng *rng) {
    head_case c = {33, 16, 257, 33, LWS_F32, 1e-4f, 0.5f, 0, 1};
    head_inputs in = make_inputs(rng, &c);
    head_run whole = check_case(ctx, &c, &in);
    const uint32_t chunks[] = {8, 1};
    for (size_t i = 0; i < 2; i++) {
        c.chunk = chunks[i];
        head_run part = check_case(ctx, &c, &in);
        char what[96];
        snprintf(what, sizeof what, "losses, chunks of %u vs one chunk", c.chunk);
        bitwise(what, part.losses, whole.losses, c.rows);
        snprintf(what, sizeof what, "dx, chunks of %u vs one chunk", c.chunk);
        bitwise(what, part.dx, whole.dx, (size_t)c.rows * c.d);
        if (c.chunk == 8) {
            head_run again;
            run(ctx, &c, &in, &again);
            bitwise("rerun losses (chunks of 8)", again.losses, part.losses, c.rows);
            bitwise("rerun dx (chunks of 8)", again.dx, part.dx, (size_t)c.rows * c.d);
            bitwise("rerun dw (chunks of 8)", again.dw, part.dw, (size_t)c.vocab * c.d);
            free_run(&again);
        }
        free_run(&part);
    }
    c.chunk = 8, c.backward = 0;
    head_run eval = check_case(ctx, &c, &in);
    bitwise("losses without the backward vs with it", eval.losses, whole.losses, c.rows);
    free_run(&eval), free_run(&whole), free_inputs(&in);
}

/* bf16 and fp16 operands, a 16-bit dlogits and a loss scale. */
static void check_16bit(lws_context *ctx, test_rng *rng) {
    const lws_dtype types[] = {LWS_BF16, LWS_F16};
    for (size_t i = 0; i < 2; i++) {
        head_case c = {21, 16, 130, 8, types[i], 1e-4f, 0.5f, types[i] == LWS_F16 ? 1024.0f : 0, 1};
        head_inputs in = make_inputs(rng, &c);
        head_run r = check_case(ctx, &c, &in);
        free_run(&r), free_inputs(&in);
    }
}

typedef struct fd_problem {
    double *x, *w;
    const uint32_t *targets;
    head_case c;
} fd_problem;

static double objective(void *arg) {
    fd_problem *p = arg;
    return ref_head_loss_objective(p->x, p->w, p->targets, p->c.rows, p->c.d, p->c.vocab, IGNORE,
                                   p->c.z_loss, p->c.grad_scale);
}

/* dx and dW (minus its starting value) against central differences of the
 * fp64 objective, with a large z_loss so its term is well above tolerance. */
static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    head_case c = {5, 6, 7, 2, LWS_F32, 0.05f, 1.7f, 0, 1};
    head_inputs in = make_inputs(rng, &c);
    size_t xn = (size_t)c.rows * c.d, wn = (size_t)c.vocab * c.d;
    head_run got;
    run(ctx, &c, &in, &got);
    fd_problem p = {test_to_double(in.x, xn), test_to_double(in.w, wn), in.targets, c};
    double *fd_x = test_malloc(xn * 8), *fd_w = test_malloc(wn * 8);
    for (size_t i = 0; i < xn; i++) fd_x[i] = test_finite_difference(objective, &p, p.x, i, 1e-5);
    for (size_t i = 0; i < wn; i++) {
        fd_w[i] = test_finite_difference(objective, &p, p.w, i, 1e-5);
        got.dw[i] -= in.dw0[i];
    }
    /* h = 1e-5 in fp64 is good to ~1e-10; the rest is fp32 rounding of
     * gradients of size ~0.5 (dW less a starting value of ~0.1: 1e-8). */
    CHECK_CLOSE("dx vs finite differences (5 tokens in chunks of 2, z_loss 0.05)", got.dx, fd_x, xn,
                2e-6, 4e-6);
    CHECK_CLOSE("dw vs finite differences (5 tokens in chunks of 2, z_loss 0.05)", got.dw, fd_w, wn,
                2e-6, 4e-6);
    free(p.x), free(p.w), free(fd_x), free(fd_w), free_run(&got), free_inputs(&in);
}

/* The chunk is 64 MiB of fp32 logits, whole tiles of 64 tokens, at most the
 * tokens there are, at least one. */
static void check_chunk_rows(void) {
    uint32_t gpt2 = 0, tiny = 0, huge = 0;
    CHECK_OK(lws_head_loss_chunk_rows(49152, 50304, &gpt2));
    CHECK_OK(lws_head_loss_chunk_rows(2048, 512, &tiny));
    CHECK_OK(lws_head_loss_chunk_rows(4096, 1u << 26, &huge));
    setenv("LWS_HEAD_CHUNK_ROWS", "8x", 1);
    CHECK(lws_head_loss_chunk_rows(64, 64, &tiny) != LWS_OK &&
              test_contains(lws_error_message(), "LWS_HEAD_CHUNK_ROWS = '8x'"),
          "a bad LWS_HEAD_CHUNK_ROWS: '%s'", lws_error_message());
    unsetenv("LWS_HEAD_CHUNK_ROWS");
    lws_error_clear();
    CHECK_OK(lws_head_loss_chunk_rows(2048, 512, &tiny));
    CHECK(gpt2 == 320 && tiny == 2048 && huge == 1,
          "chunk rows: GPT-2 vocabulary %u (want 320), tiny %u (want 2048), 2^26 vocabulary %u "
          "(want 1)",
          gpt2, tiny, huge);
    printf("%s chunk rows: 320 for 50304, 2048 of 2048 for 512, 1 for 2^26\n",
           gpt2 == 320 && tiny == 2048 && huge == 1 ? "ok  " : "FAIL");
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 11);
    check_chunk_rows();
    check_chunkings(ctx, &rng);
    check_finite_difference(ctx, &rng);
    if (lws_context_caps(ctx)->storage_buffer_16bit) check_16bit(ctx, &rng);
    return test_finish(ctx);
}
