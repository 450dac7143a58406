/* lws eval CKPT: loss, perplexity and bits per byte of a checkpoint, in
 * consecutive seq_len windows (every token after the first predicted once,
 * as the trainer's validation does). By default on the checkpoint's own
 * validation split and evaluation size, so it gives the number of the
 * training log; --data FILE scores a token file instead. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "lws/config.h"
#include "lws/data.h"
#include "lws/model.h"
#include "lws/train.h"

static const char *usage = "lws eval CKPT [--data FILE] [--tokens N | --all] [--batch B] "
                           "[--tokenizer T] [--device D] [--json]";

static void help(void) {
    printf("usage: %s\n\n"
           "Evaluates a checkpoint (a checkpoint directory, its model.safetensors, or a run\n"
           "directory: its newest checkpoint): mean loss, perplexity, bits per byte, over\n"
           "consecutive windows of the model's seq_len. By default it scores what the run's\n"
           "validation scored: the config's data.val (or the last data.val_tokens of\n"
           "data.train), the first eval.tokens of it, so it reproduces the training log.\n"
           "  --data FILE      score a token file (lws, llm.c .bin or .npy) made with the\n"
           "                   model's tokenizer instead; all of it unless --tokens\n"
           "  --tokens N       score the first N predicted tokens (whole windows) only\n"
           "  --all            score every window (the default with --data)\n"
           "  --batch B        windows per forward pass (default: the checkpoint's\n"
           "                   micro_batch)\n"
           "  --tokenizer T    the tokenizer (bytes, FILE.json, gpt2:DIR) when the\n"
           "                   checkpoint names its vocabulary only by hash; it gives the\n"
           "                   bytes per token for bits per byte\n"
           "  --device D       device index or name substring (see `lws devices`)\n"
           "  --json           one JSON object on standard output\n",
           usage);
}

/* What was evaluated and how: the shape of the windows and the batches. */
typedef struct eval_shape {
    const char *dir, *data, *device;
    uint32_t batch, seq;
} eval_shape;

static void print_text(const eval_shape *e, const lws_eval_result *r, const lws_text_measure *tk) {
    double loss = lws_eval_loss(r);
    printf("checkpoint  %s\n", e->dir);
    printf("data        %s\n", e->data);
    printf("device      %s\n", e->device);
    printf("tokens      %llu (%llu windows of %u, batch %u)\n", (unsigned long long)r->tokens,
           (unsigned long long)r->windows, e->seq, e->batch);
    printf("loss        %.4f\n", loss);
    printf("perplexity  %.3f\n", exp(loss));
    if (isfinite(lws_eval_bits_per_byte(r)))
        printf("bits/byte   %.4f (%llu bytes)\n", lws_eval_bits_per_byte(r),
               (unsigned long long)r->bytes);
    else
        printf("bits/byte   n/a: %s\n", tk->bytes_known ? "the tokens spell no bytes" : tk->why);
    printf("tokens/s    %.0f (%.2f s)\n", r->seconds > 0 ? r->tokens / r->seconds : 0.0,
           r->seconds);
}

static lws_status print_json(const eval_shape *e, const lws_eval_result *r,
                             const lws_text_measure *tk) {
    double loss = lws_eval_loss(r);
    cJSON *o = cJSON_CreateObject();
    if (!o) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    cJSON_AddStringToObject(o, "checkpoint", e->dir);
    cJSON_AddStringToObject(o, "data", e->data);
    cJSON_AddStringToObject(o, "device", e->device);
    cJSON_AddStringToObject(o, "tokenizer", tk->name);
    cJSON_AddNumberToObject(o, "tokens", (double)r->tokens);
    cJSON_AddNumberToObject(o, "windows", (double)r->windows);
    cJSON_AddNumberToObject(o, "seq_len", e->seq);
    cJSON_AddNumberToObject(o, "batch", e->batch);
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON_AddNumberToObject(o, "perplexity", exp(loss));
    if (isfinite(lws_eval_bits_per_byte(r))) {
        cJSON_AddNumberToObject(o, "bits_per_byte", lws_eval_bits_per_byte(r));
        cJSON_AddNumberToObject(o, "bytes", (double)r->bytes);
    } else {
        cJSON_AddNullToObject(o, "bits_per_byte");
        cJSON_AddStringToObject(o, "bits_per_byte_note",
                                tk->bytes_known ? "the tokens spell no bytes" : tk->why);
    }
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "tokens_per_second", r->seconds > 0 ? r->tokens / r->seconds : 0);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    printf("%s\n", text);
    free(text);
    return LWS_OK;
}

typedef struct eval_args {
    const char *ckpt, *data, *device, *tokenizer;
    uint64_t max_tokens, batch;
    int json, all;
} eval_args;

static int parse(int argc, char **argv, eval_args *a) {
    memset(a, 0, sizeof *a);
    const lws_cli_option options[] = {
        {"--data", LWS_OPT_TEXT, &a->data},
        {"--device", LWS_OPT_TEXT, &a->device},
        {"--tokenizer", LWS_OPT_TEXT, &a->tokenizer},
        {"--tokens", LWS_OPT_U64, &a->max_tokens, 1, (double)(1ull << 62)},
        {"--all", LWS_OPT_FLAG, &a->all},
        {"--batch", LWS_OPT_U64, &a->batch, 1, 65536},
        {"--json", LWS_OPT_FLAG, &a->json},
    };
    lws_cli_command c = {usage,
                         help,
                         options,
                         sizeof options / sizeof *options,
                         "CKPT (a checkpoint or run directory)",
                         &a->ckpt,
                         NULL};
    int rc = lws_cli_parse(&c, argc, argv);
    if (rc == 0 && a->all && a->max_tokens)
        rc = lws_cli_usage(usage, "--tokens and --all given together; choose one");
    return rc;
}

static lws_status evaluate(const eval_args *a, const lws_config *cfg, const lws_eval_data *d,
                           eval_shape *e, lws_eval_result *r) {
    /* The run's own evaluation size unless told otherwise; a file given
     * with --data is scored whole. */
    uint64_t max_tokens = a->max_tokens ? a->max_tokens : a->all || a->data ? 0 : cfg->eval.tokens;
    lws_context *ctx = NULL;
    lws_context_options opt = {.device = a->device, .validation = -1, .pipeline_cache = -1};
    lws_status s = lws_context_create(&opt, &ctx);
    e->seq = cfg->train.seq_len;
    if (s == LWS_OK)
        s = lws_eval_checkpoint(ctx, e->dir, cfg, d, max_tokens, (uint32_t)a->batch, NULL, r,
                                &e->batch);
    if (s == LWS_OK) {
        e->device = lws_context_caps(ctx)->name;
        if (a->json)
            s = print_json(e, r, &d->text);
        else
            print_text(e, r, &d->text);
    }
    lws_context_destroy(ctx);
    return s;
}

int lws_cli_eval(int argc, char **argv) {
    eval_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return LWS_CLI_PARSE_EXIT(rc);
    char dir[2400];
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return 1;
    lws_eval_data d;
    int data_open = 0;
    lws_eval_result r;
    eval_shape e = {dir, NULL, NULL, 0, 0};
    lws_status s = lws_checkpoint_find(a.ckpt, dir, sizeof dir);
    if (s == LWS_OK) s = lws_checkpoint_config(dir, cfg);
    if (s == LWS_OK) {
        s = lws_eval_data_open(cfg, a.data, a.tokenizer, &d);
        data_open = s == LWS_OK;
        if (s != LWS_OK && !a.data)
            lws_error_context("checkpoint %s (give a token file with --data)", dir);
    }
    if (s == LWS_OK) {
        e.data = d.source;
        s = evaluate(&a, cfg, &d, &e, &r);
    }
    if (s == LWS_OK && !isfinite(lws_eval_loss(&r)))
        s = lws_fail(LWS_ERR_NUMERIC, "%s: the loss on %s is %g, not a number a model can have",
                     dir, e.data, lws_eval_loss(&r));
    if (data_open) lws_eval_data_close(&d);
    free(cfg);
    return s == LWS_OK ? 0 : lws_cli_error();
}
