/* Scoring a checkpoint: the tokens (a file, or the config's own validation
 * split) and the model built for evaluation from the checkpoint. `lws eval`
 * and `lws sweep` use it, so both give the number the training log gives. */
#include <stdio.h>
#include <string.h>

#include "lws/train.h"

lws_status lws_eval_data_open(const lws_config *cfg, const char *file, const char *tokenizer,
                              lws_eval_data *out) {
    memset(out, 0, sizeof *out);
    const lws_data_config *dc = &cfg->data;
    const char *path = file ? file : dc->val[0] ? dc->val : dc->train;
    if (!file && !dc->val[0] && (!dc->val_tokens || !dc->train[0]))
        return lws_fail(LWS_ERR_CONFIG,
                        "%s: no validation split: the config has neither data.val nor "
                        "data.val_tokens; give a token file to score",
                        cfg->path);
    LWS_TRY(lws_text_measure_open(dc->tokenizer, tokenizer, cfg->model.vocab_size, 0, &out->text));
    lws_status s = lws_tokens_open(path, cfg->model.vocab_size,
                                   out->text.name[0] ? out->text.name : NULL, &out->file);
    out->open = s == LWS_OK;
    if (s == LWS_OK && !file && !dc->val[0]) {
        lws_token_range train;
        s = lws_tokens_split(&out->file, dc->val_tokens, &train, &out->range);
        snprintf(out->source, sizeof out->source, "the last %llu tokens of %s",
                 (unsigned long long)dc->val_tokens, path);
    } else if (s == LWS_OK) {
        out->range = lws_tokens_all(&out->file);
        snprintf(out->source, sizeof out->source, "%s", path);
    }
    if (s != LWS_OK) {
        if (!file) lws_error_context("the validation split of %s", cfg->path);
        lws_eval_data_close(out);
    }
    return s;
}

void lws_eval_data_close(lws_eval_data *d) {
    lws_text_measure_free(&d->text);
    if (d->open) lws_tokens_close(&d->file);
    d->open = 0;
}

lws_status lws_eval_checkpoint(lws_context *ctx, const char *dir, const lws_config *cfg,
                               const lws_eval_data *d, uint64_t max_tokens, uint32_t batch,
                               const lws_stop_flag *stop, lws_eval_result *out,
                               uint32_t *batch_used) {
    uint32_t T = cfg->train.seq_len;
    uint64_t windows = lws_eval_window_count(d->range, T);
    if (windows == 0)
        return lws_fail(LWS_ERR_DATA,
                        "%s: %llu tokens, fewer than one window of seq_len + 1 = %u: give a "
                        "longer file",
                        d->source, (unsigned long long)(d->range.end - d->range.begin), T + 1);
    if (max_tokens && (max_tokens + T - 1) / T < windows) windows = (max_tokens + T - 1) / T;
    uint64_t b = batch ? batch : cfg->train.micro_batch ? cfg->train.micro_batch : 8;
    if (windows < b) b = windows;
    if (batch_used) *batch_used = (uint32_t)b;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_model *m = NULL;
    lws_status s = lws_model_create(ctx, cfg, (uint32_t)b, T, 0, &m);
    if (s == LWS_OK) {
        s = lws_checkpoint_load_params(m, dir);
        if (s != LWS_OK) lws_error_context("loading checkpoint %s", dir);
    }
    if (s == LWS_OK) s = lws_evaluate(m, &d->file, d->range, max_tokens, &d->text, stop, out);
    lws_model_destroy(m);
    lws_arena_reset(ctx, mark);
    return s;
}
