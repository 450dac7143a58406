/* lws eval CKPT --data FILE: loss, perplexity and bits per byte of a
 * checkpoint over a token file, in consecutive seq_len windows (every token
 * after the first predicted once, as the trainer's validation does). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "lws/bpe.h"
#include "lws/config.h"
#include "lws/data.h"
#include "model/model.h"
#include "train/checkpoint.h"

static const char *usage = "lws eval CKPT --data FILE [--tokens N] [--batch B] [--tokenizer T] "
                           "[--device D] [--json]";

static void help(void) {
    printf("usage: %s\n\n"
           "Evaluates a checkpoint (a checkpoint directory, its model.safetensors, or a run\n"
           "directory: its newest checkpoint) on a token file: mean loss, perplexity, bits\n"
           "per byte, over consecutive windows of the model's seq_len.\n"
           "  --data FILE      token file (lws, llm.c .bin or .npy) made with the model's\n"
           "                   tokenizer\n"
           "  --tokens N       evaluate the first N predicted tokens (whole windows) only\n"
           "  --batch B        windows per forward pass (default: the checkpoint's\n"
           "                   micro_batch)\n"
           "  --tokenizer T    the tokenizer (bytes, FILE.json, gpt2:DIR) when the\n"
           "                   checkpoint names its vocabulary only by hash; it gives the\n"
           "                   bytes per token for bits per byte\n"
           "  --device D       device index or name substring (see `lws devices`)\n"
           "  --json           one JSON object on standard output\n",
           usage);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The tokenizer that made the token file: whether bits per byte can be
 * given, the bytes of each token (bytes[id]; NULL for the byte-level one,
 * one byte each), and the name a token file must carry. */
typedef struct eval_tokenizer {
    int bytes_known;
    uint32_t *token_bytes; /* [vocab] bytes of text per token (special tokens: 0) */
    uint32_t vocab;
    char name[LWS_TOKENIZER_NAME_MAX + 192]; /* the file's expected tokenizer name */
    char why[512];                           /* why bits per byte is n/a */
} eval_tokenizer;

static lws_status resolve_tokenizer(const lws_config *cfg, const char *given, eval_tokenizer *t) {
    memset(t, 0, sizeof *t);
    const char *stored = cfg->data.tokenizer[0] ? cfg->data.tokenizer : "bytes";
    const char *spec = given ? given : stored;
    /* A spec (a file) names no vocabulary until loaded: then the file's
     * tokenizer name is not checked. */
    if (!lws_bpe_is_spec(stored)) snprintf(t->name, sizeof t->name, "%s", stored);
    lws_tokenizer tok;
    lws_status made = lws_tokenizer_create(spec, &tok);
    if (made != LWS_OK) {
        if (given) return made; /* the message names it */
        snprintf(t->why, sizeof t->why,
                 "the checkpoint's tokenizer '%s' is not a vocabulary lws can load; give it with "
                 "--tokenizer FILE.json or gpt2:DIR",
                 stored);
        return LWS_OK;
    }
    lws_status s = LWS_OK;
    /* A tokenizer named by its vocabulary ("gpt2", "bpe:<hash>") must be that one. */
    if (given && !lws_bpe_is_spec(stored) && strcmp(tok.name, stored) != 0)
        s = lws_fail(LWS_ERR_INVALID,
                     "--tokenizer %s is '%s' but the checkpoint was trained with '%s': give "
                     "the vocabulary it was trained with",
                     given, tok.name, stored);
    if (s == LWS_OK && tok.vocab_size > cfg->model.vocab_size)
        s = lws_fail(LWS_ERR_INVALID,
                     "tokenizer %s has %u tokens but the model's vocabulary is %u: not the "
                     "model's tokenizer",
                     spec, tok.vocab_size, cfg->model.vocab_size);
    if (s == LWS_OK) {
        snprintf(t->name, sizeof t->name, "%s", tok.name);
        t->vocab = tok.vocab_size;
        if (lws_bpe_is_spec(spec)) {
            /* Bits per byte over the text the tokens spell: each token's
             * bytes; special tokens (document marks) spell none of it. */
            t->token_bytes = lws_bpe_token_lengths(tok.state, tok.vocab_size);
            if (!t->token_bytes) s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        t->bytes_known = s == LWS_OK;
    }
    lws_tokenizer_destroy(&tok);
    return s;
}

typedef struct eval_result {
    double loss_sum, seconds;
    uint64_t tokens, windows, bytes;
    uint32_t batch, seq;
} eval_result;

static lws_status evaluate(lws_model *m, const lws_tokens *file, uint64_t max_windows,
                           const eval_tokenizer *tk, eval_result *r) {
    uint32_t B = m->batch, T = m->seq;
    uint32_t *inputs = calloc((size_t)B * T, sizeof *inputs);
    uint32_t *targets = calloc((size_t)B * T, sizeof *targets);
    if (!inputs || !targets) {
        free(inputs), free(targets);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for a %u x %u batch", B, T);
    }
    lws_token_range range = lws_tokens_all(file);
    uint64_t cursor = 0;
    lws_status s = LWS_OK;
    double t0 = now_s();
    while (s == LWS_OK && cursor < max_windows) {
        uint64_t left = max_windows - cursor;
        uint32_t want = left < B ? (uint32_t)left : B;
        /* Rows past `want` keep earlier (valid) tokens: padding whose losses are dropped. */
        uint32_t rows = lws_eval_windows(file, range, T, want, &cursor, inputs, targets);
        if (rows == 0) break;
        double sum = 0;
        s = lws_model_eval_rows(m, inputs, targets, rows, &sum);
        r->loss_sum += sum;
        r->tokens += (uint64_t)rows * T;
        r->windows += rows;
        for (size_t i = 0; tk->token_bytes && i < (size_t)rows * T; i++)
            r->bytes += targets[i] < tk->vocab ? tk->token_bytes[targets[i]] : 0;
    }
    r->seconds = now_s() - t0;
    if (!tk->token_bytes) r->bytes = r->tokens; /* byte-level: one byte per token */
    free(inputs), free(targets);
    return s;
}

static void print_text(const char *dir, const char *data, const eval_result *r,
                       const eval_tokenizer *tk, const char *device) {
    double loss = r->loss_sum / (double)r->tokens;
    printf("checkpoint  %s\n", dir);
    printf("data        %s\n", data);
    printf("device      %s\n", device);
    printf("tokens      %llu (%llu windows of %u, batch %u)\n", (unsigned long long)r->tokens,
           (unsigned long long)r->windows, r->seq, r->batch);
    printf("loss        %.4f\n", loss);
    printf("perplexity  %.3f\n", exp(loss));
    if (tk->bytes_known && r->bytes > 0)
        printf("bits/byte   %.4f (%llu bytes)\n", r->loss_sum / log(2.0) / (double)r->bytes,
               (unsigned long long)r->bytes);
    else
        printf("bits/byte   n/a: %s\n", tk->bytes_known ? "the tokens spell no bytes" : tk->why);
    printf("tokens/s    %.0f (%.2f s)\n", r->seconds > 0 ? r->tokens / r->seconds : 0.0,
           r->seconds);
}

static lws_status print_json(const char *dir, const char *data, const eval_result *r,
                             const eval_tokenizer *tk, const char *device) {
    double loss = r->loss_sum / (double)r->tokens;
    cJSON *o = cJSON_CreateObject();
    if (!o) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    cJSON_AddStringToObject(o, "checkpoint", dir);
    cJSON_AddStringToObject(o, "data", data);
    cJSON_AddStringToObject(o, "device", device);
    cJSON_AddStringToObject(o, "tokenizer", tk->name);
    cJSON_AddNumberToObject(o, "tokens", (double)r->tokens);
    cJSON_AddNumberToObject(o, "windows", (double)r->windows);
    cJSON_AddNumberToObject(o, "seq_len", r->seq);
    cJSON_AddNumberToObject(o, "batch", r->batch);
    cJSON_AddNumberToObject(o, "loss", loss);
    cJSON_AddNumberToObject(o, "perplexity", exp(loss));
    if (tk->bytes_known && r->bytes > 0) {
        cJSON_AddNumberToObject(o, "bits_per_byte", r->loss_sum / log(2.0) / (double)r->bytes);
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

static int parse_count(const char *v, unsigned long long max, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || v[0] == '-' || v[0] == 0 || errno || n == 0 || n > max) return 0;
    *out = n;
    return 1;
}

int lws_cli_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *device = NULL, *tokenizer = NULL;
    unsigned long long max_tokens = 0, batch = 0;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--data") == 0 || strcmp(a, "--tokens") == 0 ||
                   strcmp(a, "--batch") == 0 || strcmp(a, "--device") == 0 ||
                   strcmp(a, "--tokenizer") == 0) {
            if (i + 1 >= argc) return lws_cli_usage(usage, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--data") == 0)
                data = v;
            else if (strcmp(a, "--device") == 0)
                device = v;
            else if (strcmp(a, "--tokenizer") == 0)
                tokenizer = v;
            else if (strcmp(a, "--tokens") == 0) {
                if (!parse_count(v, 1ull << 62, &max_tokens))
                    return lws_cli_usage(usage, "--tokens %s: expected a positive integer", v);
            } else if (!parse_count(v, 65536, &batch)) {
                return lws_cli_usage(usage, "--batch %s: expected an integer from 1 to 65536", v);
            }
        } else if (a[0] == '-') {
            return lws_cli_usage(usage, "unknown option '%s'", a);
        } else if (!ckpt) {
            ckpt = a;
        } else {
            return lws_cli_usage(usage, "one CKPT only ('%s' and '%s' given)", ckpt, a);
        }
    }
    if (!ckpt) return lws_cli_usage(usage, "no CKPT given (a checkpoint or run directory)");
    if (!data) return lws_cli_usage(usage, "no --data FILE given (a token file to evaluate on)");

    char dir[2400];
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return 1;
    lws_context *ctx = NULL;
    lws_model *m = NULL;
    lws_tokens file;
    int file_open = 0;
    eval_tokenizer tk = {0};
    eval_result r = {0};
    lws_status s = lws_checkpoint_find(ckpt, dir, sizeof dir);
    if (s == LWS_OK) s = lws_checkpoint_config(dir, cfg);
    if (s == LWS_OK) s = resolve_tokenizer(cfg, tokenizer, &tk);
    if (s == LWS_OK) {
        s = lws_tokens_open(data, cfg->model.vocab_size, tk.name[0] ? tk.name : NULL, &file);
        file_open = s == LWS_OK;
    }
    uint32_t T = cfg->train.seq_len;
    uint64_t windows = 0;
    if (s == LWS_OK) {
        windows = lws_eval_window_count(lws_tokens_all(&file), T);
        if (windows == 0)
            s = lws_fail(LWS_ERR_DATA,
                         "%s: %llu tokens, fewer than one window of seq_len + 1 = %u: give a "
                         "longer file",
                         data, (unsigned long long)file.count, T + 1);
        if (max_tokens && (max_tokens + T - 1) / T < windows) windows = (max_tokens + T - 1) / T;
    }
    if (batch == 0) batch = cfg->train.micro_batch ? cfg->train.micro_batch : 8;
    if (s == LWS_OK && windows < batch) batch = windows; /* no forward work on pure padding */
    lws_context_options opt = {.device = device, .validation = -1, .pipeline_cache = -1};
    if (s == LWS_OK) s = lws_context_create(&opt, &ctx);
    if (s == LWS_OK) s = lws_model_create(ctx, cfg, (uint32_t)batch, T, 0, &m);
    if (s == LWS_OK) {
        s = lws_checkpoint_load(m, dir, NULL);
        if (s != LWS_OK) lws_error_context("loading checkpoint %s", dir);
    }
    if (s == LWS_OK) {
        r.batch = (uint32_t)batch;
        r.seq = T;
        s = evaluate(m, &file, windows, &tk, &r);
    }
    if (s == LWS_OK) {
        const char *name = lws_context_caps(ctx)->name;
        if (json)
            s = print_json(dir, data, &r, &tk, name);
        else
            print_text(dir, data, &r, &tk, name);
    }
    free(tk.token_bytes);
    if (file_open) lws_tokens_close(&file);
    lws_model_destroy(m);
    lws_context_destroy(ctx);
    free(cfg);
    return s == LWS_OK ? 0 : lws_cli_error();
}
