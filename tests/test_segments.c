// lws-test: vulkan
/* What data parallelism takes from the model, checked on one process:
 *  - the segments of a training micro-batch tile the gradient block from
 *    its end down, and running them (one by one, or in two buckets) leaves
 *    the same gradients and loss as lws_model_forward_backward, bit for bit;
 *  - a ZeRO-1 model (lws_model_create_shard) keeps moments for its slice
 *    only (the memory plan's optimizer line is the slice's), and its update
 *    with the other slice's squared gradient norm added where the ranks'
 *    sum would go equals the unsharded update on its slice (to the rounding
 *    of the norm), leaves the other slice alone and zeroes every gradient;
 *    in fp16 with gradients that carry the loss scale too, and an overflow
 *    in the other slice only (its squared norm infinite) skips the slice's
 *    update and halves the loss scale as the unsharded model does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lws/model.h"
#include "model/model.h"

static void random_batch(test_rng *r, uint32_t n, uint32_t vocab, uint32_t *in, uint32_t *tg) {
    for (uint32_t i = 0; i < n; i++) {
        in[i] = (uint32_t)(test_rng_next(r) % vocab);
        tg[i] = (uint32_t)(test_rng_next(r) % vocab);
    }
}

static void check_segments(lws_context *ctx, const lws_config *cfg) {
    const uint32_t B = 2, T = 16, N = B * T;
    lws_model *a = NULL, *b = NULL;
    CHECK_OK(lws_model_create(ctx, cfg, B, T, 1, &a));
    CHECK_OK(lws_model_create(ctx, cfg, B, T, 1, &b));
    uint32_t n = lws_model_segments(a), L = cfg->model.n_layers;
    uint64_t floats = lws_model_floats(a), below = floats;
    CHECK(n == L + 2, "%u segments for %u layers", n, L);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t lo, hi;
        lws_model_segment_grads(a, k, &lo, &hi);
        CHECK(hi == below && lo < hi, "%s: segment %u covers %llu .. %llu, expected to end at %llu",
              cfg->name, k, (unsigned long long)lo, (unsigned long long)hi,
              (unsigned long long)below);
        below = lo;
    }
    CHECK(below == 0, "%s: the segments stop at %llu, not 0", cfg->name, (unsigned long long)below);

    test_rng r;
    test_rng_seed(&r, 7);
    uint32_t *in = test_malloc(N * 4), *tg = test_malloc(N * 4);
    float *ga = test_malloc(floats * 4), *gb = test_malloc(floats * 4);
    double la = 0, lb = 0, l2 = 0;
    /* two micro-batches: the second accumulates onto the first */
    for (int mb = 0; mb < 2; mb++) {
        random_batch(&r, N, cfg->model.vocab_size, in, tg);
        CHECK_OK(lws_model_forward_backward(a, in, tg, &la));
        CHECK_OK(lws_model_segments_begin(b, in, tg));
        if (mb == 0) { /* one at a time */
            for (uint32_t k = 0; k < n; k++) CHECK_OK(lws_model_run_segments(b, k, 1, NULL, NULL));
        } else { /* two buckets */
            CHECK_OK(lws_model_run_segments(b, 0, 3, NULL, NULL));
            CHECK_OK(lws_model_run_segments(b, 3, n - 3, NULL, NULL));
        }
        CHECK_OK(lws_model_segments_loss(b, &lb));
        CHECK(la == lb, "%s: micro-batch %d loss %.17g in segments, %.17g whole", cfg->name, mb, lb,
              la);
        l2 += lb;
    }
    CHECK_OK(lws_model_download(a, LWS_BLOCK_GRADS, ga));
    CHECK_OK(lws_model_download(b, LWS_BLOCK_GRADS, gb));
    test_bitwise_equal("gradients after segments", gb, ga, floats);
    CHECK(lws_model_run_segments(b, n - 1, 2, NULL, NULL) != LWS_OK,
          "segments past the last are refused");
    lws_error_clear();
    printf("%-12s %u segments, loss %.4f\n", cfg->name, n, l2 / 2);
    lws_model_destroy(a);
    lws_model_destroy(b);
    free(in), free(tg), free(ga), free(gb);
}

/* The "ranks' sum" of a shard's update on one process: adds the squared
 * norm of the other slice (computed here), and nothing to the count. */
typedef struct other_slice {
    double squares;
    int calls;
} other_slice;

static lws_status add_other(void *user, double *x, uint32_t n) {
    other_slice *o = user;
    if (n == 1 && o->calls++ == 0) x[0] += o->squares;
    return LWS_OK;
}

/* fp16: gradients that overflowed in slice 0 only (an infinite one, whose
 * squared norm reaches slice 1's rank through the sum) skip the update of
 * slice 1 too, as they skip the unsharded model's, and both halve the loss
 * scale. g: floats zeros, overwritten. */
static void check_shard_overflow(lws_model *full, lws_model *half, uint64_t lo, float *g) {
    uint64_t floats = lws_model_floats(full);
    float *before = test_malloc(floats * 4), *after = test_malloc(floats * 4);
    CHECK_OK(lws_model_download(half, LWS_BLOCK_PARAMS, before));
    double scale = lws_model_loss_scale(half).scale;
    g[0] = INFINITY; /* the embedding, in slice 0 */
    for (uint32_t i = 0; i < half->n_params; i++)
        if (half->params[i].offset >= lo) g[half->params[i].offset] = 1.0f; /* slice 1's own */
    CHECK_OK(lws_model_upload(full, LWS_BLOCK_GRADS, g));
    CHECK_OK(lws_model_upload(half, LWS_BLOCK_GRADS, g));
    other_slice other = {INFINITY, 0};
    double gn_full, gn_half, nf_full, nf_half;
    CHECK_OK(lws_model_optimizer_step(full, 1e-2, 2, &gn_full, &nf_full));
    CHECK_OK(lws_model_optimizer_step_shard(half, 1e-2, 2, add_other, &other, &gn_half, &nf_half));
    lws_loss_scale sf = lws_model_loss_scale(full), sh = lws_model_loss_scale(half);
    CHECK(!isfinite(gn_full) && !isfinite(gn_half) && sf.skipped && sh.skipped &&
              sf.scale == scale / 2 && sh.scale == scale / 2 && nf_half == 0,
          "an overflow in the other slice: norms %g (sharded) and %g, skipped %d and %d, loss "
          "scales %g and %g from %g",
          gn_half, gn_full, sh.skipped, sf.skipped, sh.scale, sf.scale, scale);
    CHECK_OK(lws_model_download(half, LWS_BLOCK_PARAMS, after));
    test_bitwise_equal("the parameters after a skipped sharded update", after, before, floats);
    CHECK_OK(lws_model_download(half, LWS_BLOCK_GRADS, g));
    double left = 0;
    for (uint64_t i = 0; i < floats; i++) left += fabs(g[i]);
    CHECK(left == 0, "gradients left after a skipped sharded update (sum |g| = %g)", left);
    printf("%-12s fp16 overflow in the other slice: skipped, loss scale %g -> %g\n", "", scale,
           sh.scale);
    free(before), free(after);
}

static void check_shard(lws_context *ctx, const lws_config *cfg) {
    const uint32_t B = 2, T = 16;
    lws_model *full = NULL, *half = NULL;
    lws_model_shard shard = {1, 2};
    CHECK_OK(lws_model_create(ctx, cfg, B, T, 1, &full));
    CHECK_OK(lws_model_create_shard(ctx, cfg, B, T, 0, &shard, &half));
    uint64_t floats = lws_model_floats(full), lo, hi, bounds[3];
    lws_model_shard_range(half, &lo, &hi);
    lws_model_shard_bounds(floats, 2, bounds);
    CHECK(lo == bounds[1] && hi == floats && lo % 64 == 0 && lo > 0,
          "%s: shard 1 of 2 is %llu .. %llu of %llu", cfg->name, (unsigned long long)lo,
          (unsigned long long)hi, (unsigned long long)floats);
    lws_memory_plan whole, part;
    CHECK_OK(lws_model_plan(ctx, cfg, B, T, 1, &whole));
    CHECK_OK(lws_model_plan_shard(ctx, cfg, B, T, &shard, &part));
    uint64_t want = 2 * (((hi - lo) * 4 + 255) / 256 * 256);
    /* (the params line holds the 16-bit copy of the weights too in bf16 / fp16) */
    CHECK(part.optimizer == want && whole.optimizer == 2 * ((floats * 4 + 255) / 256 * 256),
          "%s: sharded moments %llu bytes, expected %llu (unsharded %llu)", cfg->name,
          (unsigned long long)part.optimizer, (unsigned long long)want,
          (unsigned long long)whole.optimizer);

    test_rng r;
    test_rng_seed(&r, 11);
    /* fp16: the gradients carry the loss scale (a power of two: exact) */
    double scale = lws_model_loss_scale(full).scale;
    float *g = test_random_floats(&r, floats, 0.05), *p0 = test_malloc(floats * 4);
    float *pf = test_malloc(floats * 4), *ph = test_malloc(floats * 4);
    /* the padding between tensors holds no gradient */
    float *tensors_only = calloc(floats, sizeof *tensors_only);
    for (uint32_t i = 0; i < full->n_params; i++)
        memcpy(tensors_only + full->params[i].offset, g + full->params[i].offset,
               full->params[i].count * sizeof *g);
    for (uint64_t i = 0; i < floats; i++) g[i] = (float)(tensors_only[i] * scale);
    free(tensors_only);
    CHECK_OK(lws_model_download(full, LWS_BLOCK_PARAMS, p0));
    CHECK_OK(lws_model_upload(full, LWS_BLOCK_GRADS, g));
    CHECK_OK(lws_model_upload(half, LWS_BLOCK_GRADS, g));
    other_slice other = {0, 0};
    for (uint64_t i = 0; i < lo; i++) other.squares += (double)g[i] * g[i] / (scale * scale);
    double gn_full, gn_half, nf_full, nf_half;
    CHECK_OK(lws_model_optimizer_step(full, 1e-2, 1, &gn_full, &nf_full));
    CHECK_OK(lws_model_optimizer_step_shard(half, 1e-2, 1, add_other, &other, &gn_half, &nf_half));
    CHECK(fabs(gn_half - gn_full) <= 1e-6 * gn_full && nf_half == 0 && other.calls == 2,
          "%s: sharded norm %.9g, unsharded %.9g; non-finite %g; %d sums", cfg->name, gn_half,
          gn_full, nf_half, other.calls);
    CHECK_OK(lws_model_download(full, LWS_BLOCK_PARAMS, pf));
    CHECK_OK(lws_model_download(half, LWS_BLOCK_PARAMS, ph));
    double worst = 0;
    for (uint64_t i = lo; i < hi; i++) worst = fmax(worst, fabs((double)ph[i] - pf[i]));
    CHECK(worst <= 1e-6, "%s: the slice's update differs by %.3g from the unsharded one", cfg->name,
          worst);
    /* the first moments are the (unscaled, clipped) gradients times 1 - beta1:
     * a loss scale left in them would show here, not in AdamW's step */
    CHECK_OK(lws_model_download(full, LWS_BLOCK_ADAM_M, pf));
    CHECK_OK(lws_model_download(half, LWS_BLOCK_ADAM_M, ph));
    double worst_m = 0, largest_m = 0;
    for (uint64_t i = lo; i < hi; i++) {
        worst_m = fmax(worst_m, fabs((double)ph[i] - pf[i]));
        largest_m = fmax(largest_m, fabs((double)pf[i]));
    }
    CHECK(worst_m <= 1e-6 * largest_m && largest_m > 0,
          "%s: the slice's first moments differ by %.3g from the unsharded ones (largest %.3g)",
          cfg->name, worst_m, largest_m);
    test_bitwise_equal("the other slice, not updated", ph, p0, lo);
    CHECK_OK(lws_model_download(half, LWS_BLOCK_GRADS, g));
    double left = 0;
    for (uint64_t i = 0; i < floats; i++) left += fabs(g[i]);
    CHECK(left == 0, "%s: gradients left after the sharded update (sum |g| = %g)", cfg->name, left);
    printf("%-12s %s shard %llu .. %llu: norm %.6f, slice within %.2g\n", cfg->name,
           cfg->train.precision, (unsigned long long)lo, (unsigned long long)hi, gn_half, worst);
    if (lws_model_loss_scale(half).dynamic) check_shard_overflow(full, half, lo, g);
    lws_model_destroy(full);
    lws_model_destroy(half);
    free(g), free(p0), free(pf), free(ph);
}

int main(void) {
    lws_context *ctx = test_context();
    const char *configs[] = {"configs/tiny/crown.json", "configs/tiny/framed.json"};
    for (size_t i = 0; i < 2; i++) {
        lws_config cfg;
        CHECK_OK(lws_config_load(configs[i], &cfg));
        check_segments(ctx, &cfg);
        check_shard(ctx, &cfg);
    }
    /* the sharded update with fp16's loss scale */
    lws_config cfg;
    CHECK_OK(lws_config_load(configs[0], &cfg));
    snprintf(cfg.train.precision, sizeof cfg.train.precision, "fp16");
    check_shard(ctx, &cfg);
    return test_finish(ctx);
}
