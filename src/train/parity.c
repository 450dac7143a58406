/* The files tests/torch_reference.py checks lws against: the initial
 * weights, one batch of random tokens, the first step's gradients, and the
 * losses of `steps` AdamW steps on that batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lws/safetensors.h"
#include "lws/train.h"
#include "train/checkpoint.h"
#include "util/files.h"

typedef struct fixed_batch {
    const uint32_t *inputs, *targets; /* (grad_accum, batch * seq) */
    size_t tokens;                    /* batch * seq */
} fixed_batch;

static lws_status same_batch(void *state, uint32_t micro, uint32_t *inputs, uint32_t *targets) {
    const fixed_batch *b = state;
    memcpy(inputs, b->inputs + micro * b->tokens, b->tokens * sizeof *inputs);
    memcpy(targets, b->targets + micro * b->tokens, b->tokens * sizeof *targets);
    return LWS_OK;
}

static lws_status write_batch(const char *dir, uint32_t A, const lws_model *m,
                              const fixed_batch *b) {
    char path[4200];
    lws_st_writer *w;
    LWS_TRY(lws_st_writer_create(&w));
    uint64_t shape[3] = {A, lws_model_batch(m), lws_model_seq(m)};
    lws_status s = lws_st_add(w, "inputs", LWS_ST_I32, shape, 3, b->inputs);
    if (s == LWS_OK) s = lws_st_add(w, "targets", LWS_ST_I32, shape, 3, b->targets);
    snprintf(path, sizeof path, "%s/batch.safetensors", dir);
    if (s == LWS_OK) s = lws_st_write(w, path);
    lws_st_writer_destroy(w);
    return s;
}

/* The steps, the first one's gradients saved between its backward and update. */
static lws_status run_steps(lws_model *m, const char *dir, uint32_t steps,
                            const lws_batch_source *src, cJSON *record) {
    char path[4200];
    cJSON *losses = cJSON_AddArrayToObject(record, "losses");
    cJSON *lrs = cJSON_AddArrayToObject(record, "lrs");
    cJSON *norms = cJSON_AddArrayToObject(record, "grad_norms");
    /* fp16: the loss scale of each step (the reference follows a constant one) */
    int dynamic = lws_model_loss_scale(m).dynamic;
    cJSON *scales = dynamic ? cJSON_AddArrayToObject(record, "loss_scales") : NULL;
    for (uint32_t step = 1; step <= steps; step++) {
        double loss = 0, norm = 0, lr = lws_lr_at(&lws_model_get_config(m)->train, step);
        LWS_TRY(lws_train_accumulate(m, src, NULL, &loss));
        if (step == 1) {
            float *grads = malloc(lws_model_floats(m) * sizeof *grads);
            if (!grads) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
            lws_status s = lws_model_download(m, LWS_BLOCK_GRADS, grads);
            /* fp16 gradients carry the loss scale (a power of two: exact). */
            double scale = lws_model_loss_scale(m).scale;
            for (uint64_t i = 0; s == LWS_OK && i < lws_model_floats(m); i++)
                grads[i] = (float)(grads[i] / scale);
            snprintf(path, sizeof path, "%s/grads.safetensors", dir);
            if (s == LWS_OK) s = lws_save_params(m, grads, path);
            free(grads);
            LWS_TRY(s);
        }
        double scale = lws_model_loss_scale(m).scale;
        LWS_TRY(lws_train_update(m, step, lr, &norm));
        cJSON_AddItemToArray(losses, cJSON_CreateNumber(loss));
        cJSON_AddItemToArray(lrs, cJSON_CreateNumber(lr));
        cJSON_AddItemToArray(norms, isfinite(norm) ? cJSON_CreateNumber(norm) : cJSON_CreateNull());
        if (scales) cJSON_AddItemToArray(scales, cJSON_CreateNumber(scale));
        printf("parity step %u: loss %.9f lr %.6g grad norm %.6g\n", step, loss, lr, norm);
    }
    return LWS_OK;
}

lws_status lws_train_parity_dump(lws_context *ctx, const lws_config *cfg, const char *dir,
                                 uint32_t steps) {
    LWS_TRY(lws_mkdir_p(dir));
    lws_model *m = NULL;
    LWS_TRY(lws_model_create(ctx, cfg, cfg->train.micro_batch, cfg->train.seq_len, 1, &m));
    uint32_t A = lws_train_accum(&cfg->train);
    size_t N = (size_t)lws_model_batch(m) * lws_model_seq(m);
    uint32_t V = cfg->model.vocab_size;
    uint32_t *inputs = malloc(A * N * 4), *targets = malloc(A * N * 4);
    cJSON *record = cJSON_CreateObject();
    lws_status s = inputs && targets && record
                       ? LWS_OK
                       : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint64_t x = cfg->train.seed ^ 0x5EED5EED5EEDull;
    for (size_t i = 0; s == LWS_OK && i < A * N; i++) {
        uint64_t z = lws_splitmix64(&x);
        inputs[i] = (uint32_t)(z % V);
        targets[i] = (uint32_t)((z >> 32) % V);
    }
    fixed_batch batch = {inputs, targets, N};
    lws_batch_source src = {same_batch, &batch};
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (s == LWS_OK) s = lws_save_params(m, NULL, path);
    if (s == LWS_OK) s = write_batch(dir, A, m, &batch);
    if (s == LWS_OK) s = run_steps(m, dir, steps, &src, record);
    char *text = s == LWS_OK ? cJSON_Print(record) : NULL;
    if (s == LWS_OK && !text) s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(path, sizeof path, "%s/steps.json", dir);
    if (s == LWS_OK) s = lws_write_file_atomic(path, text, strlen(text));
    free(text);
    cJSON_Delete(record);
    free(inputs), free(targets);
    lws_model_destroy(m);
    return s;
}
