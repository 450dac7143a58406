// lws-test: vulkan
/* fp16 training's dynamic loss scale on a tiny model: the scale reaches the
 * loss's gradient (the gradients at scale 2048 are twice those at 1024,
 * exactly but for fp16 subnormals, the loss the same bits); an overflow (scale 2^24) skips the
 * update — parameters kept bit for bit, gradients zeroed, the scale halved — and is no error for
 * the step; 2000 good updates in a row double the scale; a checkpoint keeps the scale and its
 * count; scales that are not powers of two in [1, 2^24], and a scale for a model that is not fp16
 * training, are refused. bf16 has no loss scale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lws/train.h"
#include "model/model.h"
#include "train/checkpoint.h"

enum { BATCH = 2, SEQ = 16 };

static lws_model *fp16_model(lws_context *ctx, const char *precision) {
    lws_config cfg;
    char set[48];
    snprintf(set, sizeof set, "train.precision=%s", precision);
    const char *sets[] = {set};
    CHECK_OK(lws_config_load_with("configs/tiny/crown.json", sets, 1, &cfg));
    lws_model *m = NULL;
    CHECK_OK(lws_model_create(ctx, &cfg, BATCH, SEQ, 1, &m));
    if (!m) exit(test_finish(ctx));
    return m;
}

static lws_status fixed_batch(void *state, uint32_t micro, uint32_t *inputs, uint32_t *targets) {
    (void)state, (void)micro;
    for (uint32_t i = 0; i < BATCH * SEQ; i++)
        inputs[i] = (7 * i + 3) % 256, targets[i] = (5 * i + 1) % 256;
    return LWS_OK;
}

/* The gradients after one forward and backward at `scale` (then zeroed by a
 * step that the overflow check skips: scale set back afterwards). */
static void grads_at(lws_model *m, double scale, float *grads, double *loss) {
    CHECK_OK(lws_model_set_loss_scale(m, scale, 0));
    lws_batch_source src = {fixed_batch, NULL};
    CHECK_OK(lws_train_accumulate(m, &src, NULL, loss));
    CHECK_OK(lws_model_download(m, LWS_BLOCK_GRADS, grads));
    float *zeros = calloc(lws_model_floats(m), sizeof *zeros);
    CHECK_OK(lws_model_upload(m, LWS_BLOCK_GRADS, zeros));
    free(zeros);
}

static void check_scale_reaches_gradients(lws_model *m) {
    size_t n = lws_model_floats(m);
    float *g1 = test_malloc(n * 4), *g2 = test_malloc(n * 4);
    double loss1, loss2;
    grads_at(m, 1024, g1, &loss1);
    grads_at(m, 2048, g2, &loss2);
    /* A power of two moves every 16-bit gradient by its exponent alone, so
     * the fp32 gradients double exactly, except where a tiny gradient sat in
     * fp16's subnormals at 1024 and gained bits at 2048 (measured: 0.24% of
     * them, 1e-9 relative L2 in all): what loss scaling is for. */
    size_t differ = 0;
    double diff = 0, size = 0;
    for (size_t i = 0; i < n; i++) {
        differ += g2[i] != 2 * g1[i];
        diff += ((double)g2[i] - 2.0 * g1[i]) * ((double)g2[i] - 2.0 * g1[i]);
        size += (double)g2[i] * g2[i];
    }
    double rel = sqrt(diff / size);
    int ok = differ < n / 100 && rel < 1e-6 && loss1 == loss2;
    CHECK(ok,
          "scale 2048 vs 1024: %zu of %zu gradients not exactly twice (want < 1%%), rel L2 %.2e "
          "(want < 1e-6), losses %.9g and %.9g",
          differ, n, rel, loss1, loss2);
    printf("%s the gradients at loss scale 2048 are twice those at 1024 (%zu of %zu not exactly, "
           "in fp16's subnormals; rel L2 %.1e), the loss the same\n",
           ok ? "ok  " : "FAIL", differ, n, rel);
    free(g1), free(g2);
}

/* One step as lws train runs it. */
static lws_step_result step(lws_model *m, uint64_t number) {
    lws_batch_source src = {fixed_batch, NULL};
    lws_step_result r = {0};
    CHECK_OK(lws_train_step(m, &src, number, NULL, &r));
    return r;
}

static void check_overflow_and_growth(lws_model *m) {
    size_t n = lws_model_floats(m);
    float *before = test_malloc(n * 4), *after = test_malloc(n * 4), *grads = test_malloc(n * 4);
    CHECK_OK(lws_model_set_loss_scale(m, 16777216.0, 5));
    CHECK_OK(lws_model_download(m, LWS_BLOCK_PARAMS, before));
    lws_step_result r = step(m, 1);
    CHECK_OK(lws_model_download(m, LWS_BLOCK_PARAMS, after));
    CHECK_OK(lws_model_download(m, LWS_BLOCK_GRADS, grads));
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += grads[i] != 0.0f;
    lws_loss_scale s = lws_model_loss_scale(m);
    int ok = r.skipped && !isfinite(r.grad_norm) && s.scale == 8388608.0 && s.good_steps == 0 &&
             r.loss_scale == 8388608.0 && memcmp(before, after, n * 4) == 0 && nonzero == 0;
    CHECK(ok,
          "overflow at 2^24: skipped %d, norm %g, scale %g (want 2^23), good %u, parameters %s, "
          "%zu gradients left",
          r.skipped, r.grad_norm, s.scale, s.good_steps,
          memcmp(before, after, n * 4) == 0 ? "kept" : "changed", nonzero);
    printf("%s an overflow at loss scale 2^24 skips the update (parameters kept, gradients "
           "zeroed) and halves the scale\n",
           ok ? "ok  " : "FAIL");

    CHECK_OK(lws_model_set_loss_scale(m, 1024, 0));
    r = step(m, 2);
    CHECK_OK(lws_model_download(m, LWS_BLOCK_PARAMS, after));
    s = lws_model_loss_scale(m);
    CHECK(!r.skipped && isfinite(r.grad_norm) && s.scale == 1024 && s.good_steps == 1 &&
              memcmp(before, after, n * 4) != 0,
          "a good step at 1024: skipped %d, scale %g, good %u", r.skipped, s.scale, s.good_steps);
    CHECK_OK(lws_model_set_loss_scale(m, 1024, LWS_LOSS_SCALE_GROWTH_STEPS - 1));
    r = step(m, 3);
    s = lws_model_loss_scale(m);
    CHECK(!r.skipped && s.scale == 2048 && s.good_steps == 0,
          "the 2000th good step: scale %g (want 2048), good %u", s.scale, s.good_steps);
    printf("%s good steps count up, and the 2000th doubles the scale\n",
           !r.skipped && s.scale == 2048 ? "ok  " : "FAIL");
    free(before), free(after), free(grads);
}

static void check_checkpoint(lws_context *ctx, lws_model *m) {
    CHECK_OK(lws_model_set_loss_scale(m, 4096, 77));
    lws_train_state st = {3, 96, 42, 3, 1.0};
    char saved[2048];
    CHECK_OK(lws_checkpoint_save(m, test_dir("test_loss_scale"), &st, 1, saved, sizeof saved));
    lws_model *back = fp16_model(ctx, "fp16");
    lws_train_state got;
    CHECK_OK(lws_checkpoint_load(back, saved, &got));
    lws_loss_scale s = lws_model_loss_scale(back);
    CHECK(s.scale == 4096 && s.good_steps == 77 && got.step == 3,
          "the checkpoint's loss scale: %g (want 4096), good %u (want 77)", s.scale, s.good_steps);
    printf("%s a checkpoint keeps the loss scale and its count of good steps\n",
           s.scale == 4096 && s.good_steps == 77 ? "ok  " : "FAIL");
    lws_model_destroy(back);
}

static void check_refusals(lws_context *ctx, lws_model *m) {
    const double bad[] = {3000, 0.5, 33554432, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        lws_status s = lws_model_set_loss_scale(m, bad[i], 0);
        CHECK(s != LWS_OK && test_contains(lws_error_message(), "power of two"),
              "loss scale %g: want a refusal, got '%s'", bad[i], lws_error_message());
    }
    lws_model *bf16 = fp16_model(ctx, "bf16");
    lws_loss_scale s = lws_model_loss_scale(bf16);
    CHECK(!s.dynamic && s.scale == 1, "bf16: no dynamic scale (dynamic %d, scale %g)", s.dynamic,
          s.scale);
    CHECK(lws_model_set_loss_scale(bf16, 1024, 0) != LWS_OK &&
              test_contains(lws_error_message(), "fp16 training"),
          "a loss scale for bf16: '%s'", lws_error_message());
    lws_error_clear();
    lws_model_destroy(bf16);
    printf("ok   loss scales outside the powers of two in [1, 2^24], and for bf16, are refused\n");
}

int main(void) {
    lws_context *ctx = test_context();
    lws_model *m = fp16_model(ctx, "fp16");
    lws_loss_scale s = lws_model_loss_scale(m);
    CHECK(s.dynamic && s.scale == LWS_LOSS_SCALE_INIT && s.good_steps == 0,
          "fp16 starts at %g (dynamic %d)", s.scale, s.dynamic);
    check_scale_reaches_gradients(m);
    check_overflow_and_growth(m);
    check_checkpoint(ctx, m);
    check_refusals(ctx, m);
    lws_model_destroy(m);
    return test_finish(ctx);
}
