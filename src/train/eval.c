/* Evaluation, written once for the trainer's validation and `lws eval`:
 * consecutive seq_len windows, one rule for a partial batch, and bits per
 * byte from the bytes of text each token spells. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lws/bpe.h"
#include "lws/train.h"

void lws_text_measure_free(lws_text_measure *t) {
    free(t->token_bytes);
    t->token_bytes = NULL;
}

/* A vocabulary that loaded: its name, and each token's byte length. */
static lws_status measure_from(const lws_tokenizer *tok, const char *spec, uint32_t model_vocab,
                               lws_text_measure *t) {
    if (tok->vocab_size > model_vocab)
        return lws_fail(LWS_ERR_INVALID,
                        "tokenizer %s has %u tokens but the model's vocabulary is %u: not the "
                        "model's tokenizer",
                        spec, tok->vocab_size, model_vocab);
    snprintf(t->name, sizeof t->name, "%s", tok->name);
    t->vocab = tok->vocab_size;
    if (lws_bpe_is_spec(spec)) {
        /* Special tokens (document marks) spell none of the text. */
        t->token_bytes = lws_bpe_token_lengths(tok->state, tok->vocab_size);
        if (!t->token_bytes) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    t->bytes_known = 1;
    return LWS_OK;
}

lws_status lws_text_measure_open(const char *stored, const char *given, uint32_t model_vocab,
                                 int strict, lws_text_measure *t) {
    memset(t, 0, sizeof *t);
    if (!stored || !stored[0]) stored = "bytes";
    const char *spec = given ? given : stored;
    /* A vocabulary file names no tokenizer until it is loaded; a name
     * ("bytes", "gpt2", "bpe:<hash>") is what the token files must carry. */
    if (!lws_bpe_is_spec(stored)) snprintf(t->name, sizeof t->name, "%s", stored);
    lws_tokenizer tok;
    lws_status made = lws_tokenizer_create(spec, &tok);
    if (made != LWS_OK) {
        if (given || (strict && lws_bpe_is_spec(stored))) return made; /* the message names it */
        snprintf(t->why, sizeof t->why,
                 "the tokenizer '%s' is not a vocabulary lws can load; give it with "
                 "--tokenizer FILE.json or gpt2:DIR",
                 stored);
        lws_error_clear();
        return LWS_OK;
    }
    lws_status s = LWS_OK;
    /* A tokenizer named by its vocabulary must be that one. */
    if (given && !lws_bpe_is_spec(stored) && strcmp(tok.name, stored) != 0)
        s = lws_fail(LWS_ERR_INVALID,
                     "--tokenizer %s is '%s' but the model was trained with '%s': give the "
                     "vocabulary it was trained with",
                     given, tok.name, stored);
    if (s == LWS_OK) s = measure_from(&tok, spec, model_vocab, t);
    lws_tokenizer_destroy(&tok);
    if (s != LWS_OK) lws_text_measure_free(t);
    return s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

lws_status lws_evaluate(lws_model *m, const lws_tokens *file, lws_token_range range,
                        uint64_t max_tokens, const lws_text_measure *text,
                        const lws_stop_flag *stop, lws_eval_result *r) {
    memset(r, 0, sizeof *r);
    uint32_t B = lws_model_batch(m), T = lws_model_seq(m);
    uint64_t windows = lws_eval_window_count(range, T);
    if (windows == 0)
        return lws_fail(LWS_ERR_DATA,
                        "%s: %llu tokens to evaluate, fewer than one window of seq_len + 1 = %u",
                        file->path, (unsigned long long)(range.end - range.begin), T + 1);
    if (max_tokens && (max_tokens + T - 1) / T < windows) windows = (max_tokens + T - 1) / T;
    uint32_t *inputs, *targets;
    lws_model_host_batch(m, &inputs, &targets);
    double t0 = now_s();
    for (uint64_t cursor = 0; cursor < windows;) {
        if (stop && *stop)
            return lws_fail(LWS_ERR_INTERRUPTED, "stopped by signal %d during evaluation",
                            (int)*stop);
        uint64_t left = windows - cursor;
        uint32_t want = left < B ? (uint32_t)left : B;
        uint32_t rows = 0;
        LWS_TRY(lws_eval_windows(file, range, T, want, &cursor, inputs, targets, &rows));
        if (rows == 0) break;
        for (uint32_t row = rows; row < B; row++) { /* padding: its losses are dropped */
            memcpy(inputs + (size_t)row * T, inputs, T * sizeof *inputs);
            memcpy(targets + (size_t)row * T, targets, T * sizeof *targets);
        }
        double sum = 0;
        LWS_TRY(lws_model_eval_rows(m, inputs, targets, rows, &sum));
        r->loss_sum += sum;
        r->tokens += (uint64_t)rows * T;
        r->windows += rows;
        for (size_t i = 0; text && text->token_bytes && i < (size_t)rows * T; i++)
            r->bytes += targets[i] < text->vocab ? text->token_bytes[targets[i]] : 0;
    }
    r->seconds = now_s() - t0;
    r->bytes_known = text && text->bytes_known;
    if (!text || !text->token_bytes) r->bytes = r->tokens; /* byte-level: one byte per token */
    return LWS_OK;
}

double lws_eval_loss(const lws_eval_result *r) {
    return r->tokens ? r->loss_sum / (double)r->tokens : NAN;
}

double lws_eval_bits_per_byte(const lws_eval_result *r) {
    /* the summed loss in bits over the bytes it predicts */
    return r->bytes_known && r->bytes > 0 ? r->loss_sum / log(2.0) / (double)r->bytes : NAN;
}
