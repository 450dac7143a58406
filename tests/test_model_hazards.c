// lws-test: vulkan timeout=600
/* Every command buffer the model records — training (embedding, each
 * layer's forward and backward, the head with the loss, the embedding
 * backward, the optimizer, the transfers of a step in one submission),
 * evaluation, logits and decoding — passes the
 * hazard checker for every tiny config (post- and pre-norm, tied and untied,
 * both GQA policies, an odd depth), in bf16 and fp16 too (the 16-bit weight
 * copy after the optimizer, the loss scale), with the output head in one
 * chunk and in several, with weight gradients split over k, and records no barrier the checker
 * finds unneeded. With one barrier of a
 * real recording left out (LWS_SKIP_BARRIER's context option), inside a layer's forward and inside
 * its backward, the checker refuses the recording naming both operations, their shaders, the
 * buffers and the layer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/model.h"
#include "ops/ops.h"

static lws_context *checked_context(uint32_t skip_barrier) {
    lws_context_options opt = {
        .validation = -1, .pipeline_cache = -1, .check_hazards = 1, .skip_barrier = skip_barrier};
    lws_context *ctx = NULL;
    lws_status s = lws_context_create(&opt, &ctx);
    if (s != LWS_OK) {
        fprintf(stderr, "FAIL: %s\n", lws_error_message());
        exit(1);
    }
    return ctx;
}

static uint32_t barriers_of(const lws_cmd *c, uint32_t *unneeded) {
    uint32_t total = 0, waste = 0;
    if (c) lws_cmd_barrier_stats(c, &total, &waste);
    if (unneeded) *unneeded += waste;
    return total;
}

/* Records the one-submission step (its transfers before, between and after
 * the micro-batches) and runs it once: each transfer buffer declares its
 * copies to the checker, and needs no barrier of its own. */
static void check_whole_step(lws_model *m, uint32_t accum) {
    for (uint32_t a = 0; a < accum; a++) {
        uint32_t *inputs, *targets;
        CHECK_OK(lws_model_step_batch(m, a, &inputs, &targets));
        for (uint32_t i = 0; i < m->tokens; i++)
            inputs[i] = (i * 7 + a) % 256, targets[i] = i % 256;
    }
    double loss = 0, norm = 0, nonfinite = 0;
    CHECK_OK(lws_model_step(m, 1e-3, 1, NULL, &loss, &norm, &nonfinite));
    uint32_t barriers = 0, unneeded = 0;
    for (uint32_t a = 0; m->cmd_step_copies && a <= accum; a++)
        barriers += barriers_of(m->cmd_step_copies[a], &unneeded);
    CHECK(m->cmd_step_copies && barriers == 0 && unneeded == 0 && isfinite(loss) && nonfinite == 0,
          "the step's transfers: %u barriers, %u unneeded; loss %g, %g non-finite", barriers,
          unneeded, loss, nonfinite);
}

/* Builds the training and inference models and a decoder under the checker,
 * in the given precision, the head in chunks of head_chunk tokens ("" for
 * the default: one chunk); the logits of a forward are recorded too, and
 * the training model's step in one submission of two micro-batches. */
static void check_recordings(const char *path, const char *precision, const char *head_chunk) {
    lws_config cfg;
    char set[64];
    snprintf(set, sizeof set, "train.precision=%s", precision);
    const char *sets[] = {set, "train.grad_accum=2"};
    CHECK_OK(lws_config_load_with(path, sets, 2, &cfg));
    setenv("LWS_HEAD_CHUNK_ROWS", head_chunk, 1);
    lws_context *ctx = checked_context(0);
    lws_model *train = NULL, *infer = NULL;
    lws_decoder *dec = NULL;
    CHECK_OK(lws_model_create(ctx, &cfg, 3, 11, 1, &train));
    CHECK_OK(lws_model_create(ctx, &cfg, 2, 9, 0, &infer));
    if (infer) CHECK_OK(lws_decoder_create(infer, 13, &dec));
    uint32_t tokens[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    float *logits = test_malloc(18 * cfg.model.vocab_size * sizeof *logits);
    if (infer) CHECK_OK(lws_model_logits(infer, tokens, logits));
    free(logits);
    if (train) check_whole_step(train, 2);
    unsetenv("LWS_HEAD_CHUNK_ROWS");
    if (train && getenv("LWS_MATMUL_SPLIT_K"))
        CHECK(train->gs.split_k.size > 0, "%s: weight gradients split over k have no scratch",
              path);
    uint64_t total = 0, unneeded = 0;
    lws_context_barrier_stats(ctx, &total, &unneeded);
    CHECK(total > 0 && unneeded == 0,
          "%s: %llu barriers recorded, %llu of them unneeded (no hazard across them)", path,
          (unsigned long long)total, (unsigned long long)unneeded);
    printf("%-28s %s%s%s: every recording passes the checker: %llu barriers, %llu unneeded\n", path,
           precision, head_chunk[0] ? ", head in chunks of " : "", head_chunk,
           (unsigned long long)total, (unsigned long long)unneeded);
    lws_decoder_destroy(dec);
    lws_model_destroy(infer);
    lws_model_destroy(train);
    lws_context_destroy(ctx);
}

/* The distinct shader names a hazard message gives for its two operations
 * ("op N (SHADER, at ..."). */
static int distinct_shaders(const char *msg) {
    char first[64] = "", name[64];
    int count = 0;
    for (const char *p = msg; (p = strstr(p, "op ")) != NULL; p += 3) {
        if (sscanf(p, "op %*u (%63[a-z0-9_]", name) != 1) continue;
        if (!first[0])
            snprintf(first, sizeof first, "%s", name), count = 1;
        else if (strcmp(first, name) != 0)
            return 2;
    }
    return count;
}

/* Leaves out barriers offset + 1, offset + 2, ... until the checker refuses
 * one between two different operations; that refusal must name the label. */
static void check_left_out(const lws_config *cfg, uint32_t offset, uint32_t count,
                           const char *label) {
    for (uint32_t k = 1; k <= count; k++) {
        lws_context *ctx = checked_context(offset + k);
        lws_model *m = NULL;
        lws_status s = lws_model_create(ctx, cfg, 3, 11, 1, &m);
        const char *msg = lws_error_message();
        int refused = s != LWS_OK && test_contains(msg, "hazard");
        if (refused && distinct_shaders(msg) == 2) {
            CHECK(test_contains(msg, label) &&
                      (test_contains(msg, "layers.1.") || test_contains(msg, "grad.")) &&
                      test_contains(msg, "no barrier"),
                  "the refusal names the layer and the buffers: %s", msg);
            printf("barrier %u of %s left out: %s\n", k, label, msg);
            lws_model_destroy(m);
            lws_context_destroy(ctx);
            return;
        }
        lws_model_destroy(m);
        lws_context_destroy(ctx);
    }
    CHECK(0, "no barrier of %s was refused when left out", label);
}

/* Where layer 1's forward and backward barriers start, counted over the
 * context's lws_cmd_barrier calls in recording order (model/record.c). */
static void check_missing_barriers(const char *path) {
    lws_config cfg;
    CHECK_OK(lws_config_load(path, &cfg));
    lws_context *ctx = checked_context(0);
    lws_model *m = NULL;
    CHECK_OK(lws_model_create(ctx, &cfg, 3, 11, 1, &m));
    if (!m) return;
    uint32_t L = cfg.model.n_layers;
    uint32_t before_fwd1 = barriers_of(m->cmd_embed, NULL) + barriers_of(m->cmd_fwd[0], NULL);
    uint32_t before_bwd1 = barriers_of(m->cmd_embed, NULL);
    for (uint32_t i = 0; i < L; i++) before_bwd1 += barriers_of(m->cmd_fwd[i], NULL);
    before_bwd1 += barriers_of(m->cmd_eval_head, NULL) + barriers_of(m->cmd_final_norm, NULL) +
                   barriers_of(m->cmd_head, NULL) + barriers_of(m->cmd_bwd[0], NULL);
    uint32_t fwd1 = barriers_of(m->cmd_fwd[1], NULL), bwd1 = barriers_of(m->cmd_bwd[1], NULL);
    lws_model_destroy(m);
    lws_context_destroy(ctx);
    check_left_out(&cfg, before_fwd1, fwd1, "layer 1 forward");
    check_left_out(&cfg, before_bwd1, bwd1, "layer 1 backward");
}

int main(void) {
    static const char *const configs[] = {"configs/tiny/crown.json", "configs/tiny/framed.json",
                                          "configs/tiny/vanilla.json", "configs/tiny/reverse.json",
                                          "configs/tiny/isotropic.json"};
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
        check_recordings(configs[i], "fp32", "");
    check_recordings("configs/tiny/crown.json", "fp32", "8");
    check_recordings("configs/tiny/crown.json", "bf16", "8");
    check_recordings("configs/tiny/framed.json", "fp16", "");
    /* weight gradients split over k as GPU tables split them (forced here:
     * slices of 16 of the 33 tokens, the last one shorter), their sums
     * recorded after the next barrier */
    setenv("LWS_MATMUL_SPLIT_K", "4x8", 1);
    check_recordings("configs/tiny/crown.json", "bf16", "8");
    check_recordings("configs/tiny/framed.json", "fp32", "");
    /* and as on matrix units, which take the fused projections one by one
     * (a stand-in fast path: the portable kernel), so that up to three
     * splits share a phase and a layer's last product is a split */
    lws_matmul_fast_hook(lws_matmul_portable);
    check_recordings("configs/tiny/crown.json", "fp32", "");
    check_recordings("configs/tiny/framed.json", "bf16", "");
    lws_matmul_fast_hook(NULL);
    unsetenv("LWS_MATMUL_SPLIT_K");
    check_missing_barriers("configs/tiny/crown.json");  /* post-norm */
    check_missing_barriers("configs/tiny/framed.json"); /* pre-norm */
    return test_finish(NULL);
}
