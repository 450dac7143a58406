/* The training loop: data, steps with gradient accumulation, AdamW with a
 * schedule, validation, logging, checkpoints, resume, and clean stops. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lws/bpe.h"
#include "lws/data.h"
#include "lws/safetensors.h"
#include "lws/train.h"
#include "model/model.h"
#include "train/checkpoint.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void format_duration(double s, char *out, size_t n) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, n, "%lds", t);
}

typedef struct data_set {
    lws_tokens train_file, val_file;
    int have_val_file;
    lws_token_range train, val;
    const lws_tokens *val_tokens; /* the mapping the val range is in */
    /* Bytes of text each token spells, for bits per byte: NULL for the
     * byte-level tokenizer (one byte each) and when no vocabulary is known. */
    uint32_t *token_bytes;
    int bytes_known;
} data_set;

static lws_status open_files(const lws_config *cfg, data_set *d) {
    memset(d, 0, sizeof *d);
    const lws_data_config *dc = &cfg->data;
    if (!dc->train[0])
        return lws_fail(LWS_ERR_CONFIG,
                        "%s: data.train is empty: give a token file (make one with `lws "
                        "prepare`)",
                        cfg->path);
    /* data.tokenizer is a name ("bytes", "gpt2", "bpe:<hash>") or a
     * vocabulary to load ("gpt2:DIR", "tok.json"), which gives the name
     * the token files must carry. */
    char name[LWS_TOKENIZER_NAME_MAX] = "";
    const char *tok = dc->tokenizer[0] ? dc->tokenizer : NULL;
    if (lws_bpe_is_spec(dc->tokenizer)) {
        lws_tokenizer t;
        lws_status s = lws_tokenizer_create(dc->tokenizer, &t);
        if (s != LWS_OK) {
            lws_error_context("%s: data.tokenizer", cfg->path);
            return s;
        }
        size_t len = strlen(t.name);
        memcpy(name, t.name, len < sizeof name ? len + 1 : sizeof name);
        name[sizeof name - 1] = 0;
        /* bits per byte: the text each token spells (t.state is its lws_bpe) */
        d->token_bytes = lws_bpe_token_lengths(t.state, cfg->model.vocab_size);
        lws_tokenizer_destroy(&t);
        if (!d->token_bytes) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
        d->bytes_known = 1;
        tok = name;
    } else {
        d->bytes_known = tok == NULL || strcmp(tok, "bytes") == 0;
    }
    LWS_TRY(lws_tokens_open(dc->train, cfg->model.vocab_size, tok, &d->train_file));
    if (dc->val[0]) {
        lws_status s = lws_tokens_open(dc->val, cfg->model.vocab_size, tok, &d->val_file);
        if (s != LWS_OK) {
            lws_tokens_close(&d->train_file);
            return s;
        }
        d->have_val_file = 1;
        d->train = lws_tokens_all(&d->train_file);
        d->val = lws_tokens_all(&d->val_file);
        d->val_tokens = &d->val_file;
    } else if (dc->val_tokens > 0) {
        lws_status s = lws_tokens_split(&d->train_file, dc->val_tokens, &d->train, &d->val);
        if (s != LWS_OK) {
            lws_tokens_close(&d->train_file);
            return s;
        }
        d->val_tokens = &d->train_file;
    } else {
        d->train = lws_tokens_all(&d->train_file);
        d->val_tokens = NULL;
    }
    if (d->train.end - d->train.begin < (uint64_t)cfg->train.seq_len + 1) {
        lws_tokens_close(&d->train_file);
        if (d->have_val_file) lws_tokens_close(&d->val_file);
        return lws_fail(LWS_ERR_DATA, "%s: %llu training tokens, fewer than seq_len + 1 = %u",
                        dc->train, (unsigned long long)(d->train.end - d->train.begin),
                        cfg->train.seq_len + 1);
    }
    return LWS_OK;
}

/* The token files and, for a BPE vocabulary, its token lengths; on failure
 * nothing stays open or allocated. */
static lws_status open_data(const lws_config *cfg, data_set *d) {
    lws_status s = open_files(cfg, d);
    if (s != LWS_OK) {
        free(d->token_bytes);
        d->token_bytes = NULL;
    }
    return s;
}

static void close_data(data_set *d) {
    free(d->token_bytes);
    lws_tokens_close(&d->train_file);
    if (d->have_val_file) lws_tokens_close(&d->val_file);
}

/* Mean validation loss over eval.tokens (0: all) of the held-out windows,
 * and the bytes of text those targets spell. */
static lws_status evaluate(lws_model *m, const lws_config *cfg, const data_set *d, uint32_t *inputs,
                           uint32_t *targets, double *mean, uint64_t *count, uint64_t *bytes) {
    uint64_t cursor = 0, total = 0, text = 0;
    double sum = 0;
    uint32_t B = m->batch, T = m->seq;
    uint64_t limit = cfg->eval.tokens;
    for (;;) {
        uint32_t rows = lws_eval_windows(d->val_tokens, d->val, T, B, &cursor, inputs, targets);
        if (rows == 0) break;
        for (uint32_t r = rows; r < B; r++) { /* pad a partial batch; its losses are dropped */
            memcpy(inputs + (size_t)r * T, inputs, T * sizeof *inputs);
            memcpy(targets + (size_t)r * T, targets, T * sizeof *targets);
        }
        double batch_sum;
        LWS_TRY(lws_model_eval_rows(m, inputs, targets, rows, &batch_sum));
        sum += batch_sum;
        total += (uint64_t)rows * T;
        for (size_t i = 0; d->token_bytes && i < (size_t)rows * T; i++)
            text += targets[i] < m->cfg.model.vocab_size ? d->token_bytes[targets[i]] : 0;
        if (limit && total >= limit) break;
    }
    if (total == 0)
        return lws_fail(LWS_ERR_DATA,
                        "the validation split has fewer than seq_len + 1 = %u tokens: raise "
                        "data.val_tokens or give a longer data.val file",
                        T + 1);
    *mean = sum / (double)total;
    *count = total;
    *bytes = d->token_bytes ? text : total;
    return LWS_OK;
}

static FILE *open_log(const char *run_dir, int append) {
    char path[2200];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    return fopen(path, append ? "ab" : "wb");
}

static void log_json(FILE *log, cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    if (text && log) {
        fprintf(log, "%s\n", text);
        fflush(log);
    }
    free(text);
    cJSON_Delete(o);
}

static lws_status make_run_dir(const char *path) {
    char tmp[2048];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return lws_fail(LWS_ERR_IO, "cannot create the run directory %s: %s", tmp, strerror(errno));
    return LWS_OK;
}

/* The files tests/torch_reference.py checks lws against: the initial
 * weights, one batch of random tokens, the first step's gradients, and the
 * losses of `steps` AdamW steps on that batch. */
static lws_status parity_dump(lws_model *m, const lws_config *cfg, const char *dir,
                              uint32_t steps) {
    LWS_TRY(make_run_dir(dir));
    uint32_t A = cfg->train.grad_accum ? cfg->train.grad_accum : 1, N = m->tokens;
    uint32_t V = cfg->model.vocab_size;
    uint32_t *inputs = malloc((size_t)A * N * 4), *targets = malloc((size_t)A * N * 4);
    float *host = malloc(m->n_floats * sizeof *host);
    if (!inputs || !targets || !host) {
        free(inputs), free(targets), free(host);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    uint64_t x = cfg->train.seed ^ 0x5EED5EED5EEDull;
    for (size_t i = 0; i < (size_t)A * N; i++) {
        uint64_t z = lws_splitmix64(&x);
        inputs[i] = (uint32_t)(z % V);
        targets[i] = (uint32_t)((z >> 32) % V);
    }
    char path[2400];
    lws_status s = LWS_OK;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    s = lws_save_params(m, NULL, path);
    if (s == LWS_OK) {
        lws_st_writer *w;
        s = lws_st_writer_create(&w);
        uint64_t shape[3] = {A, m->batch, m->seq};
        if (s == LWS_OK) s = lws_st_add(w, "inputs", LWS_ST_I32, shape, 3, inputs);
        if (s == LWS_OK) s = lws_st_add(w, "targets", LWS_ST_I32, shape, 3, targets);
        snprintf(path, sizeof path, "%s/batch.safetensors", dir);
        if (s == LWS_OK) s = lws_st_write(w, path);
        lws_st_writer_destroy(w);
    }
    cJSON *losses = cJSON_CreateArray(), *lrs = cJSON_CreateArray(), *norms = cJSON_CreateArray();
    for (uint32_t step = 1; s == LWS_OK && step <= steps; step++) {
        double loss = 0;
        for (uint32_t a = 0; s == LWS_OK && a < A; a++) {
            double mb;
            s = lws_model_forward_backward(m, inputs + (size_t)a * N, targets + (size_t)a * N, &mb);
            loss += mb / A;
        }
        if (s == LWS_OK && step == 1) {
            s = lws_model_download(m, LWS_BLOCK_GRADS, host);
            snprintf(path, sizeof path, "%s/grads.safetensors", dir);
            if (s == LWS_OK) s = lws_save_params(m, host, path);
        }
        double lr = lws_lr_at(&cfg->train, step), norm = 0;
        if (s == LWS_OK) s = lws_model_optimizer_step(m, lr, step, &norm);
        cJSON_AddItemToArray(losses, cJSON_CreateNumber(loss));
        cJSON_AddItemToArray(lrs, cJSON_CreateNumber(lr));
        cJSON_AddItemToArray(norms, cJSON_CreateNumber(norm));
        printf("parity step %u: loss %.9f lr %.6g grad norm %.6g\n", step, loss, lr, norm);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "losses", losses);
    cJSON_AddItemToObject(o, "lrs", lrs);
    cJSON_AddItemToObject(o, "grad_norms", norms);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (s == LWS_OK) {
        snprintf(path, sizeof path, "%s/steps.json", dir);
        FILE *f = fopen(path, "wb");
        if (!f || fputs(text, f) < 0) s = lws_fail(LWS_ERR_IO, "cannot write %s", path);
        if (f) fclose(f);
    }
    free(text);
    free(inputs), free(targets), free(host);
    return s;
}

lws_status lws_train(const lws_config *config, const lws_train_options *opt) {
    lws_config cfg = *config;
    if (opt->steps) cfg.train.steps = opt->steps;
    if (opt->out_dir) snprintf(cfg.train.out_dir, sizeof cfg.train.out_dir, "%s", opt->out_dir);
    const lws_train_config *tc = &cfg.train;
    uint32_t A = tc->grad_accum ? tc->grad_accum : 1;

    lws_context *ctx = NULL;
    lws_context_options copt = {.device = opt->device, .validation = -1, .pipeline_cache = -1};
    LWS_TRY(lws_context_create(&copt, &ctx));
    const lws_device_caps *caps = lws_context_caps(ctx);
    printf("device: %s (%s, %s)\n", caps->name, caps->vendor, caps->driver_name);
    printf("model: %s, %llu parameters, %u layers, micro-batch %u x %u tokens, %u accumulation "
           "step%s\n",
           cfg.name, (unsigned long long)lws_config_params(&cfg), cfg.model.n_layers,
           tc->micro_batch, tc->seq_len, A, A == 1 ? "" : "s");
    lws_memory_plan plan = lws_model_plan(ctx, &cfg, tc->micro_batch, tc->seq_len, 1);
    lws_memory_plan_print(&plan, stdout);

    lws_model *m = NULL;
    data_set data;
    int data_open = 0;
    FILE *log_file = NULL;
    uint32_t *inputs = NULL, *targets = NULL;
    double *fwd_ms = NULL, *bwd_ms = NULL;
    lws_status s = lws_model_create(ctx, &cfg, tc->micro_batch, tc->seq_len, 1, &m);
    if (s != LWS_OK) goto done;

    if (opt->parity_dump) {
        s = parity_dump(m, &cfg, opt->parity_dump, tc->steps);
        goto done;
    }

    s = open_data(&cfg, &data);
    if (s != LWS_OK) goto done;
    data_open = 1;
    printf("data: %s, %llu training tokens", cfg.data.train,
           (unsigned long long)(data.train.end - data.train.begin));
    if (data.val_tokens)
        printf(", %llu validation tokens (%s)", (unsigned long long)(data.val.end - data.val.begin),
               data.have_val_file ? cfg.data.val : "held out from the end of the training file");
    printf("\n");

    lws_sampler sampler;
    s = lws_sampler_init(&sampler, data.train, tc->seed);
    if (s != LWS_OK) goto done;
    lws_train_state st = {0, 0, tc->seed, 0, 0};
    const char *run_dir = cfg.train.out_dir;
    if (opt->resume) {
        char dir[2400];
        s = lws_checkpoint_find(opt->resume, dir, sizeof dir);
        if (s == LWS_OK) s = lws_checkpoint_load(m, dir, &st);
        if (s != LWS_OK) {
            lws_error_context("resuming from %s", opt->resume);
            goto done;
        }
        sampler.seed = st.sampler_seed;
        sampler.counter = st.sampler_counter;
        printf("resumed from %s at step %llu\n", dir, (unsigned long long)st.step);
    }
    s = make_run_dir(run_dir);
    if (s != LWS_OK) goto done;
    log_file = open_log(run_dir, opt->resume != NULL);
    if (!log_file) {
        s = lws_fail(LWS_ERR_IO, "cannot write %s/log.jsonl: %s", run_dir, strerror(errno));
        goto done;
    }

    double peak = opt->peak_tflops;
    if (peak <= 0) {
        s = lws_measure_peak_tflops(ctx, &peak);
        if (s != LWS_OK) goto done;
        printf("peak: %.3g TFLOP/s measured with lws's fp32 matmul (MFU is relative to it; "
               "--peak-tflops sets a datasheet figure)\n",
               peak);
    }
    double flops_per_token = lws_config_train_flops_per_token(&cfg);

    uint32_t N = m->tokens, L = cfg.model.n_layers;
    inputs = malloc((size_t)N * 4);
    targets = malloc((size_t)N * 4);
    fwd_ms = calloc(L, sizeof *fwd_ms);
    bwd_ms = calloc(L, sizeof *bwd_ms);
    if (!inputs || !targets || !fwd_ms || !bwd_ms) {
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    stop_signal = 0;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    char last_ckpt[2400] = "";
    double start = now_s(), elapsed_before = st.elapsed_s;
    uint64_t first_step = st.step;
    int eval_due_at_end = cfg.eval.every > 0 || data.val_tokens != NULL;
    while (st.step < tc->steps) {
        uint64_t step = st.step + 1;
        double t0 = now_s(), loss = 0;
        for (uint32_t a = 0; a < A && s == LWS_OK; a++) {
            double mb = 0;
            s = lws_sampler_next(&sampler, &data.train_file, m->batch, m->seq, inputs, targets);
            if (s == LWS_OK) s = lws_model_forward_backward(m, inputs, targets, &mb);
            loss += mb / A;
        }
        if (s != LWS_OK) break;
        double lr = lws_lr_at(tc, step), grad_norm = 0;
        if (!isfinite(loss)) {
            s = lws_fail(LWS_ERR_NUMERIC,
                         "step %llu: the loss is %g; stopped before the update (last good "
                         "checkpoint: %s)",
                         (unsigned long long)step, loss, last_ckpt[0] ? last_ckpt : "none yet");
            break;
        }
        s = lws_model_optimizer_step(m, lr, step, &grad_norm);
        if (s != LWS_OK) break;
        if (!isfinite(grad_norm)) {
            s = lws_fail(
                LWS_ERR_NUMERIC, "step %llu: the gradient norm is %g (last good checkpoint: %s)",
                (unsigned long long)step, grad_norm, last_ckpt[0] ? last_ckpt : "none yet");
            break;
        }
        double step_s = now_s() - t0;
        st.step = step;
        st.tokens_seen += (uint64_t)N * A;
        st.sampler_counter = sampler.counter;
        st.elapsed_s = elapsed_before + (now_s() - start);

        lws_timing timing = {fwd_ms, bwd_ms, 0, 0, 0, 0};
        s = lws_model_read_timing(m, &timing);
        if (s != LWS_OK) break;
        double tok_s = (double)N * A / step_s;
        double mfu = peak > 0 ? tok_s * flops_per_token / (peak * 1e12) : 0;
        double done_steps = (double)(step - first_step);
        double eta = (now_s() - start) / done_steps * (double)(tc->steps - step);

        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "step", (double)step);
        cJSON_AddNumberToObject(o, "tokens", (double)st.tokens_seen);
        cJSON_AddNumberToObject(o, "loss", loss);
        cJSON_AddNumberToObject(o, "lr", lr);
        cJSON_AddNumberToObject(o, "grad_norm", grad_norm);
        cJSON_AddNumberToObject(o, "step_ms", step_s * 1e3);
        cJSON_AddNumberToObject(o, "tokens_per_s", tok_s);
        cJSON_AddNumberToObject(o, "mfu", mfu);
        cJSON_AddNumberToObject(o, "elapsed_s", st.elapsed_s);
        cJSON *lf = cJSON_AddArrayToObject(o, "layer_fwd_ms");
        cJSON *lb = cJSON_AddArrayToObject(o, "layer_bwd_ms");
        for (uint32_t i = 0; i < L; i++) {
            cJSON_AddItemToArray(lf, cJSON_CreateNumber(fwd_ms[i]));
            cJSON_AddItemToArray(lb, cJSON_CreateNumber(bwd_ms[i]));
        }
        cJSON_AddNumberToObject(o, "head_ms", timing.head_ms);
        cJSON_AddNumberToObject(o, "optimizer_ms", timing.optim_ms);
        log_json(log_file, o);

        if (!opt->quiet && (step % (tc->log_every ? tc->log_every : 1) == 0 || step == tc->steps)) {
            char eta_text[32];
            format_duration(eta, eta_text, sizeof eta_text);
            printf("step %llu/%u | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | MFU %.1f%% "
                   "| ETA %s\n",
                   (unsigned long long)step, tc->steps, loss, lr, grad_norm, tok_s, 100 * mfu,
                   eta_text);
            if (opt->profile) {
                printf("  per-layer ms (fwd/bwd):");
                for (uint32_t i = 0; i < L; i++) printf(" %u:%.2f/%.2f", i, fwd_ms[i], bwd_ms[i]);
                printf(" | head %.2f | optimizer %.2f\n", timing.head_ms, timing.optim_ms);
            }
            fflush(stdout);
        }

        int last = step == tc->steps;
        if (data.val_tokens &&
            ((cfg.eval.every && step % cfg.eval.every == 0) || (last && eval_due_at_end))) {
            double val = 0;
            uint64_t count = 0, bytes = 0;
            s = evaluate(m, &cfg, &data, inputs, targets, &val, &count, &bytes);
            /* bits per byte: the summed loss in bits over the bytes it predicts */
            int bpb_known = data.bytes_known && bytes > 0;
            double bpb = bpb_known ? val * (double)count / log(2.0) / (double)bytes : 0;
            if (s != LWS_OK) break;
            cJSON *v = cJSON_CreateObject();
            cJSON_AddNumberToObject(v, "step", (double)step);
            cJSON_AddNumberToObject(v, "tokens", (double)st.tokens_seen);
            cJSON_AddNumberToObject(v, "val_loss", val);
            cJSON_AddNumberToObject(v, "val_ppl", exp(val));
            cJSON_AddNumberToObject(v, "val_tokens", (double)count);
            if (bpb_known) cJSON_AddNumberToObject(v, "val_bpb", bpb);
            log_json(log_file, v);
            if (!opt->quiet) {
                printf("validation at step %llu: loss %.4f | perplexity %.3f",
                       (unsigned long long)step, val, exp(val));
                if (bpb_known) printf(" | %.4f bits per byte", bpb);
                printf(" (%llu tokens)\n", (unsigned long long)count);
            }
        }
        int interrupted = stop_signal != 0;
        if (last || interrupted || (tc->checkpoint_every && step % tc->checkpoint_every == 0)) {
            s = lws_checkpoint_save(m, run_dir, &st, tc->keep_checkpoints, last_ckpt,
                                    sizeof last_ckpt);
            if (s != LWS_OK) break;
            if (!opt->quiet) printf("checkpoint: %s\n", last_ckpt);
        }
        if (interrupted) {
            s = lws_fail(LWS_ERR_INTERRUPTED,
                         "stopped by signal %d at step %llu; checkpoint %s (continue with "
                         "--resume %s)",
                         (int)stop_signal, (unsigned long long)step, last_ckpt, run_dir);
            break;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (s == LWS_OK && !opt->quiet)
        printf("done: %llu steps, %llu tokens, %.1f s; peak device memory %.1f MiB\n",
               (unsigned long long)st.step, (unsigned long long)st.tokens_seen, st.elapsed_s,
               lws_memory_peak(ctx) / 1048576.0);

done:
    if (log_file) fclose(log_file);
    free(inputs), free(targets), free(fwd_ms), free(bwd_ms);
    if (data_open) close_data(&data);
    lws_model_destroy(m);
    lws_context_destroy(ctx);
    return s;
}
