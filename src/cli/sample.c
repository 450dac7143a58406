/* lws sample CKPT: generates text from a checkpoint with the key/value-cache
 * decoder (src/model/decode.h): the prompt is prefilled with one forward of
 * the model, then each new token costs one position. Sampling: temperature
 * (0 = greedy), top-k, top-p (nucleus), deterministic given the seed; text
 * is written as each token is produced. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lws/bpe.h"
#include "lws/config.h"
#include "lws/data.h"
#include "lws/model.h"
#include "lws/train.h"

static const char *usage = "lws sample CKPT [--prompt TEXT] [--tokens N] [--temperature T] "
                           "[--top-k K] [--top-p P] [--seed S] [--tokenizer T] [--device D]";

static void help(void) {
    printf("usage: %s\n\n"
           "Generates text from a checkpoint (a checkpoint directory, its model.safetensors,\n"
           "or a run directory: its newest checkpoint), writing each token as it comes.\n"
           "  --prompt TEXT      text to continue (default: a new line); at most the model's\n"
           "                     seq_len tokens\n"
           "  --tokens N         tokens to generate (default 200)\n"
           "  --temperature T    softmax temperature (default 0.8); 0 picks the most likely\n"
           "                     token every time\n"
           "  --top-k K          draw from the K most likely tokens only (default 0: all)\n"
           "  --top-p P          draw from the smallest set of most likely tokens whose\n"
           "                     probability reaches P, 0 < P <= 1 (default 1: all)\n"
           "  --seed S           random seed (default 42): the same seed, checkpoint and\n"
           "                     options give the same text\n"
           "  --tokenizer T      the tokenizer (bytes, FILE.json, gpt2:DIR) when the\n"
           "                     checkpoint names its vocabulary only by hash\n"
           "  --device D         device index or name substring (see `lws devices`)\n"
           "Once the context (seq_len) is full, the last seq_len/2 tokens are kept and\n"
           "generation continues from them. Speed is reported on standard error.\n",
           usage);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct sampling {
    double temperature; /* 0: greedy */
    uint32_t top_k;     /* 0: off */
    double top_p;       /* 1: off */
    uint64_t rng;
} sampling;

typedef struct candidate {
    double p;
    uint32_t id;
} candidate;

/* Most likely first; equal probabilities by id, so the order is fixed. */
static int by_probability(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Picks the next token among ids < n (the ones the tokenizer can write):
 * greedy at temperature 0 (the lowest id among equal maxima), else a draw
 * from softmax(logits / temperature) cut to the top k, then to the nucleus
 * of mass top_p, renormalised. cand: n entries of scratch. */
static uint32_t pick(const float *logits, uint32_t n, sampling *sp, candidate *cand) {
    uint32_t best = 0;
    for (uint32_t v = 1; v < n; v++)
        if (logits[v] > logits[best]) best = v;
    if (sp->temperature <= 0) return best;
    for (uint32_t v = 0; v < n; v++)
        cand[v] = (candidate){exp(((double)logits[v] - logits[best]) / sp->temperature), v};
    uint32_t keep = n;
    if (sp->top_k > 0 || sp->top_p < 1) {
        qsort(cand, n, sizeof *cand, by_probability);
        if (sp->top_k > 0 && sp->top_k < keep) keep = sp->top_k;
        if (sp->top_p < 1) {
            double total = 0, acc = 0;
            for (uint32_t i = 0; i < keep; i++) total += cand[i].p;
            uint32_t i = 0;
            while (i < keep && acc < sp->top_p * total) acc += cand[i++].p;
            keep = i > 0 ? i : 1;
        }
    }
    double total = 0;
    for (uint32_t i = 0; i < keep; i++) total += cand[i].p;
    double u = (double)(lws_splitmix64(&sp->rng) >> 11) * 0x1.0p-53 * total, acc = 0;
    for (uint32_t i = 0; i < keep; i++) {
        acc += cand[i].p;
        if (u < acc) return cand[i].id;
    }
    return cand[keep - 1].id;
}

/* The tokenizer of the checkpoint: encodes the prompt, writes tokens. */
typedef struct sample_tokenizer {
    lws_tokenizer tok;
    const lws_bpe *bpe; /* NULL: byte-level */
    int made;
} sample_tokenizer;

static lws_status open_tokenizer(const lws_config *cfg, const char *given, sample_tokenizer *t) {
    memset(t, 0, sizeof *t);
    const char *stored = cfg->data.tokenizer[0] ? cfg->data.tokenizer : "bytes";
    const char *spec = given ? given : stored;
    lws_status s = lws_tokenizer_create(spec, &t->tok);
    if (s != LWS_OK) {
        if (!given)
            lws_error_context("the checkpoint's tokenizer '%s' cannot be loaded to write text "
                              "(give it with --tokenizer FILE.json or gpt2:DIR)",
                              stored);
        return s;
    }
    t->made = 1;
    if (given && !lws_bpe_is_spec(stored) && strcmp(t->tok.name, stored) != 0)
        return lws_fail(LWS_ERR_INVALID,
                        "--tokenizer %s is '%s' but the checkpoint was trained with '%s': give "
                        "the vocabulary it was trained with",
                        given, t->tok.name, stored);
    if (t->tok.vocab_size > cfg->model.vocab_size)
        return lws_fail(LWS_ERR_INVALID,
                        "tokenizer %s has %u tokens but the model's vocabulary is %u: not the "
                        "model's tokenizer",
                        spec, t->tok.vocab_size, cfg->model.vocab_size);
    if (lws_bpe_is_spec(spec))
        t->bpe = t->tok.state;
    else if (strcmp(t->tok.name, "bytes") != 0)
        return lws_fail(LWS_ERR_INVALID,
                        "tokenizer '%s' cannot write text: sampling supports bytes and byte-level "
                        "BPE vocabularies (FILE.json, gpt2:DIR)",
                        t->tok.name);
    return LWS_OK;
}

static void close_tokenizer(sample_tokenizer *t) {
    if (t->made) lws_tokenizer_destroy(&t->tok);
}

/* Writes one token's bytes and flushes, so text appears as it is made. */
static void write_token(const sample_tokenizer *t, uint32_t id) {
    if (t->bpe) {
        uint32_t len = 0;
        const uint8_t *bytes = lws_bpe_token(t->bpe, id, &len);
        fwrite(bytes, 1, len, stdout);
    } else {
        putchar((int)id);
    }
    fflush(stdout);
}

typedef struct sample_options {
    const char *prompt, *device, *tokenizer;
    long tokens;
    sampling sp;
} sample_options;

static lws_status generate(lws_decoder *dec, const lws_model *m, const sample_tokenizer *tk,
                           uint32_t *window, uint32_t len, const sample_options *o) {
    uint32_t T = lws_decoder_max_seq(dec), V = lws_model_get_config(m)->model.vocab_size;
    uint32_t n = tk->tok.vocab_size;
    float *logits = malloc((size_t)V * sizeof *logits);
    candidate *cand = malloc((size_t)n * sizeof *cand);
    if (!logits || !cand) {
        free(logits), free(cand);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    sampling sp = o->sp;
    uint32_t prompt_tokens = len;
    double t0 = now_s();
    lws_status s = lws_decoder_prefill(dec, window, len, logits);
    double t1 = now_s();
    uint32_t refills = 0;
    long made = 0;
    while (s == LWS_OK && made < o->tokens) {
        uint32_t next = pick(logits, n, &sp, cand);
        write_token(tk, next);
        if (++made == o->tokens) break;
        if (len < T) {
            window[len] = next;
            s = lws_decoder_step(dec, next, len++, logits);
        } else {
            /* The context is full: keep the last T/2 tokens (positions
             * restart at 0, as in training) and prefill them with one
             * forward; every T/2 tokens cost one extra forward. */
            uint32_t keep = T / 2 > 0 ? T / 2 : 1;
            memmove(window, window + (T - keep + 1), (keep - 1) * sizeof *window);
            window[keep - 1] = next;
            len = keep;
            s = lws_decoder_prefill(dec, window, len, logits);
            refills++;
        }
    }
    double t2 = now_s();
    putchar('\n');
    fflush(stdout);
    if (s == LWS_OK)
        fprintf(stderr,
                "lws sample: prompt %u tokens prefilled in %.3f s; %ld tokens in %.3f s, %.1f "
                "tokens/s (%u context refills)\n",
                prompt_tokens, t1 - t0, made, t2 - t1, t2 > t1 ? made / (t2 - t1) : 0.0, refills);
    free(logits), free(cand);
    return s;
}

static int parse_options(int argc, char **argv, const char **ckpt, sample_options *o) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return -1;
        }
        int takes = strcmp(a, "--prompt") == 0 || strcmp(a, "--tokens") == 0 ||
                    strcmp(a, "--temperature") == 0 || strcmp(a, "--seed") == 0 ||
                    strcmp(a, "--device") == 0 || strcmp(a, "--top-k") == 0 ||
                    strcmp(a, "--top-p") == 0 || strcmp(a, "--tokenizer") == 0;
        if (takes && i + 1 >= argc) return lws_cli_usage(usage, "%s needs a value", a);
        const char *v = takes ? argv[++i] : NULL;
        uint64_t n = 0;
        int rc = 0;
        if (strcmp(a, "--prompt") == 0)
            o->prompt = v;
        else if (strcmp(a, "--device") == 0)
            o->device = v;
        else if (strcmp(a, "--tokenizer") == 0)
            o->tokenizer = v;
        else if (strcmp(a, "--tokens") == 0) {
            if (!(rc = lws_parse_u64(usage, a, v, 1, LONG_MAX, NULL, &n))) o->tokens = (long)n;
        } else if (strcmp(a, "--temperature") == 0) {
            rc = lws_parse_real(usage, a, v, 0, INFINITY, LWS_CLOSED, "0 is greedy",
                                &o->sp.temperature);
        } else if (strcmp(a, "--top-k") == 0) {
            if (!(rc = lws_parse_u64(usage, a, v, 0, INT32_MAX, "0: all tokens", &n)))
                o->sp.top_k = (uint32_t)n;
        } else if (strcmp(a, "--top-p") == 0) {
            rc = lws_parse_real(usage, a, v, 0, 1, LWS_LO_OPEN, "1: all tokens", &o->sp.top_p);
        } else if (strcmp(a, "--seed") == 0) {
            rc = lws_parse_u64(usage, a, v, 0, UINT64_MAX, NULL, &o->sp.rng);
        } else if (a[0] == '-')
            return lws_cli_usage(usage, "unknown option '%s'", a);
        else if (!*ckpt)
            *ckpt = a;
        else
            return lws_cli_usage(usage, "one CKPT only ('%s' and '%s' given)", *ckpt, a);
        if (rc) return rc;
    }
    if (!*ckpt) return lws_cli_usage(usage, "no CKPT given (a checkpoint or run directory)");
    return 0;
}

int lws_cli_sample(int argc, char **argv) {
    const char *ckpt = NULL;
    sample_options o = {.prompt = "", .tokens = 200, .sp = {0.8, 0, 1.0, 42}};
    int rc = parse_options(argc, argv, &ckpt, &o);
    if (rc) return rc < 0 ? 0 : rc;

    char dir[2400];
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return 1;
    lws_context *ctx = NULL;
    lws_model *m = NULL;
    lws_decoder *dec = NULL;
    sample_tokenizer tk = {0};
    uint32_t *prompt = NULL, *window = NULL;
    size_t count = 0, capacity = 0;
    lws_status s = lws_checkpoint_find(ckpt, dir, sizeof dir);
    if (s == LWS_OK) s = lws_checkpoint_config(dir, cfg);
    if (s == LWS_OK) s = open_tokenizer(cfg, o.tokenizer, &tk);
    /* Without a prompt, generation starts on a new line. */
    const char *text = o.prompt[0] ? o.prompt : "\n";
    if (s == LWS_OK)
        s = tk.tok.encode(&tk.tok, (const uint8_t *)text, strlen(text), &prompt, &count, &capacity);
    uint32_t T = cfg->train.seq_len;
    if (s == LWS_OK && count > T)
        s = lws_fail(LWS_ERR_INVALID,
                     "the prompt is %zu tokens long but the model's context (seq_len) is %u "
                     "tokens: shorten the prompt to at most %u tokens",
                     count, T, T);
    window = s == LWS_OK ? calloc(T, sizeof *window) : NULL;
    if (s == LWS_OK && !window) s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    lws_context_options opt = {.device = o.device, .validation = -1, .pipeline_cache = -1};
    if (s == LWS_OK) s = lws_context_create(&opt, &ctx);
    /* A batch-1 model of the full context: its parameters serve the decoder,
     * its forward the prefill. */
    if (s == LWS_OK) s = lws_model_create(ctx, cfg, 1, T, 0, &m);
    if (s == LWS_OK) {
        s = lws_checkpoint_load_params(m, dir);
        if (s != LWS_OK) lws_error_context("loading checkpoint %s", dir);
    }
    if (s == LWS_OK) s = lws_decoder_create(m, T, &dec);
    if (s == LWS_OK) {
        memcpy(window, prompt, count * sizeof *window);
        fputs(o.prompt, stdout);
        fflush(stdout);
        s = generate(dec, m, &tk, window, (uint32_t)count, &o);
    }
    free(prompt);
    free(window);
    close_tokenizer(&tk);
    lws_decoder_destroy(dec);
    lws_model_destroy(m);
    lws_context_destroy(ctx);
    free(cfg);
    return s == LWS_OK ? 0 : lws_cli_error();
}
