/* The training run: data, steps (train/step.c), validation (train/eval.c),
 * the log, checkpoints, resume and stops. Prints nothing: what happens is
 * reported through the progress callback and the result. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lws/train.h"
#include "train/checkpoint.h"
#include "train/dist_run.h"
#include "train/run_dir.h"
#include "util/files.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- data ----------------------------------------------------------------- */

typedef struct data_set {
    lws_tokens train_file, val_file;
    int train_open, val_open;
    lws_token_range train, val;
    const lws_tokens *val_tokens; /* the mapping the val range is in; NULL: no validation */
    lws_text_measure text;        /* bytes per token, for bits per byte */
} data_set;

static void close_data(data_set *d) {
    lws_text_measure_free(&d->text);
    if (d->train_open) lws_tokens_close(&d->train_file);
    if (d->val_open) lws_tokens_close(&d->val_file);
    d->train_open = d->val_open = 0;
}

/* The token files, checked against the model's vocabulary and tokenizer;
 * on failure nothing stays open. */
static lws_status open_data(const lws_config *cfg, data_set *d) {
    memset(d, 0, sizeof *d);
    const lws_data_config *dc = &cfg->data;
    if (!dc->train[0])
        return lws_fail(LWS_ERR_CONFIG,
                        "%s: data.train is empty: give a token file (make one with `lws "
                        "prepare`)",
                        cfg->path);
    lws_status s = lws_text_measure_open(dc->tokenizer, NULL, cfg->model.vocab_size, 1, &d->text);
    if (s != LWS_OK) {
        lws_error_context("%s: data.tokenizer", cfg->path);
        return s;
    }
    const char *name = d->text.name[0] ? d->text.name : NULL;
    s = lws_tokens_open(dc->train, cfg->model.vocab_size, name, &d->train_file);
    d->train_open = s == LWS_OK;
    if (s == LWS_OK && dc->val[0]) {
        s = lws_tokens_open(dc->val, cfg->model.vocab_size, name, &d->val_file);
        d->val_open = s == LWS_OK;
        d->train = lws_tokens_all(&d->train_file);
        d->val = lws_tokens_all(&d->val_file);
        d->val_tokens = &d->val_file;
    } else if (s == LWS_OK && dc->val_tokens > 0) {
        s = lws_tokens_split(&d->train_file, dc->val_tokens, &d->train, &d->val);
        d->val_tokens = &d->train_file;
    } else if (s == LWS_OK) {
        d->train = lws_tokens_all(&d->train_file);
    }
    if (s == LWS_OK && d->train.end - d->train.begin < (uint64_t)cfg->train.seq_len + 1)
        s = lws_fail(LWS_ERR_DATA, "%s: %llu training tokens, fewer than seq_len + 1 = %u",
                     dc->train, (unsigned long long)(d->train.end - d->train.begin),
                     cfg->train.seq_len + 1);
    /* Checked now, not at the first validation: a run is never lost to it. */
    if (s == LWS_OK && d->val_tokens && lws_eval_window_count(d->val, cfg->train.seq_len) == 0)
        s = lws_fail(LWS_ERR_DATA,
                     "%s: %llu validation tokens%s, fewer than one window of seq_len + 1 = %u; "
                     "give a longer validation file (data.val) or hold out more "
                     "(data.val_tokens)",
                     d->val_open ? dc->val : dc->train,
                     (unsigned long long)(d->val.end - d->val.begin),
                     d->val_open ? "" : " held out from its end", cfg->train.seq_len + 1);
    if (s != LWS_OK) close_data(d);
    return s;
}

/* ---- the run ---------------------------------------------------------------- */

typedef struct trainer {
    lws_context *ctx;
    lws_config cfg; /* as resolved, out_dir set to the run directory */
    const lws_train_options *opt;
    lws_train_result *res;
    lws_model *m;
    data_set data;
    lws_sampler sampler;
    lws_train_state st;
    FILE *log;
    char resumed_from[2400];
    char superseded[4200]; /* where a --branch moved the later checkpoints ("" none) */
    uint64_t saved_step;   /* the step of the last checkpoint written (0: none) */
    double flops_per_token;
    double *fwd_ms, *bwd_ms; /* [n_layers] */
    /* data parallelism: ranks > 1 runs lws_dist_train_step; only rank 0
     * writes (run directory, log, checkpoints) */
    lws_dist *dist;
    int rank, ranks;
    lws_dist_step *dstep;
    lws_dist_stats dstats;
} trainer;

static void emit(const trainer *t, lws_train_progress *p) {
    p->steps = t->cfg.train.steps;
    p->tokens = t->st.tokens_seen;
    p->run_dir = t->cfg.train.out_dir;
    if (t->opt->progress) t->opt->progress(p, t->opt->user);
}

static lws_status next_batch(void *state, uint32_t micro, uint32_t *inputs, uint32_t *targets) {
    trainer *t = state;
    (void)micro;
    return lws_sampler_next(&t->sampler, &t->data.train_file, lws_model_batch(t->m),
                            lws_model_seq(t->m), inputs, targets);
}

static void log_json(trainer *t, cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    if (text && t->log) {
        fprintf(t->log, "%s\n", text);
        fflush(t->log);
    }
    free(text);
    cJSON_Delete(o);
}

/* Where this run writes: a resumed run continues in its own directory unless
 * told otherwise; a directory that holds another run is refused. */
static lws_status choose_run_dir(trainer *t, const char *ckpt) {
    const lws_train_options *opt = t->opt;
    char resumed_run[2048] = "", dir[1024];
    if (ckpt) lws_run_dir_of(opt->resume, resumed_run, sizeof resumed_run);
    const char *chosen = opt->run_dir          ? opt->run_dir
                         : resumed_run[0] != 0 ? resumed_run
                                               : t->cfg.train.out_dir;
    if (strlen(chosen) >= sizeof dir)
        return lws_fail(LWS_ERR_INVALID, "run directory %.64s...: longer than %zu characters",
                        chosen, sizeof dir - 1);
    memcpy(dir, chosen, strlen(chosen) + 1);
    memcpy(t->cfg.train.out_dir, dir, strlen(dir) + 1);
    int same_run = resumed_run[0] && strcmp(resumed_run, dir) == 0;
    if (!same_run && lws_run_dir_in_use(dir)) {
        if (!opt->overwrite)
            return lws_fail(LWS_ERR_INVALID,
                            "run directory %s already holds a run (log.jsonl, config.json or "
                            "checkpoints/): continue it with --resume %s, start afresh there "
                            "with --overwrite (deletes its log and checkpoints), or choose "
                            "another directory with --out",
                            dir, dir);
        LWS_TRY(lws_run_dir_clear(dir));
    }
    LWS_TRY(lws_mkdir_p(dir));
    /* A resumed run's checkpoints stay one line, and its log keeps each
     * step once: the steps after the checkpoint are trained again. */
    if (same_run) {
        LWS_TRY(
            lws_run_dir_branch(dir, t->st.step, opt->branch, t->superseded, sizeof t->superseded));
        LWS_TRY(lws_run_dir_trim_log(dir, t->st.step, t->superseded[0] ? t->superseded : NULL));
    }
    char written[4200];
    LWS_TRY(lws_run_dir_write_config(dir, &t->cfg, t->st.step, written, sizeof written));
    char path[1100];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    t->log = fopen(path, "ab");
    if (!t->log) return lws_fail(LWS_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return LWS_OK;
}

/* The model, the data, the checkpoint to resume from and the run directory. */
static lws_status start(trainer *t) {
    const lws_train_config *tc = &t->cfg.train;
    if (t->ranks > 1 && tc->shard_optimizer) {
        lws_model_shard shard = {(uint32_t)t->rank, (uint32_t)t->ranks};
        LWS_TRY(lws_model_create_shard(t->ctx, &t->cfg, tc->micro_batch, tc->seq_len, 0, &shard,
                                       &t->m));
    } else {
        LWS_TRY(lws_model_create(t->ctx, &t->cfg, tc->micro_batch, tc->seq_len, 1, &t->m));
    }
    if (t->ranks > 1) LWS_TRY(lws_dist_step_create(t->m, t->dist, &t->dstep));
    LWS_TRY(open_data(&t->cfg, &t->data));
    LWS_TRY(lws_sampler_init(&t->sampler, t->data.train, tc->seed));
    t->st = (lws_train_state){0, 0, tc->seed, 0, 0, (uint32_t)t->ranks};
    const char *ckpt = NULL;
    uint32_t resumed_ranks = 0;
    if (t->opt->resume) {
        lws_status s = LWS_OK;
        if (t->ranks > 1)
            s = lws_dist_resume(t->dist, t->m, t->opt->resume, t->resumed_from,
                                sizeof t->resumed_from, &t->st);
        else
            s = lws_checkpoint_find(t->opt->resume, t->resumed_from, sizeof t->resumed_from);
        if (s == LWS_OK && t->ranks == 1) s = lws_checkpoint_load(t->m, t->resumed_from, &t->st);
        if (s != LWS_OK) {
            lws_error_context("resuming from %s", t->opt->resume);
            return s;
        }
        if (t->st.step > tc->steps)
            return lws_fail(LWS_ERR_INVALID,
                            "resuming from %s: the checkpoint is at step %llu, past train.steps "
                            "%u; train longer (--steps N with N > %llu) or evaluate it with "
                            "lws eval",
                            t->resumed_from, (unsigned long long)t->st.step, tc->steps,
                            (unsigned long long)t->st.step);
        t->sampler.seed = t->st.sampler_seed;
        t->sampler.counter = t->st.sampler_counter;
        ckpt = t->resumed_from;
        resumed_ranks = t->st.world_size; /* the state saved from now on says this run's */
        t->st.world_size = (uint32_t)t->ranks;
    }
    if (t->rank == 0) LWS_TRY(choose_run_dir(t, ckpt));
    uint32_t L = t->cfg.model.n_layers;
    t->fwd_ms = calloc(L, sizeof *t->fwd_ms);
    t->bwd_ms = calloc(L, sizeof *t->bwd_ms);
    if (!t->fwd_ms || !t->bwd_ms) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    t->flops_per_token = lws_config_train_flops_per_token(&t->cfg);
    lws_train_progress p = {.kind = LWS_PROGRESS_START,
                            .step = t->st.step,
                            .resumed_from = ckpt,
                            .superseded = t->superseded[0] ? t->superseded : NULL,
                            .train_tokens = t->data.train.end - t->data.train.begin,
                            .ranks = (uint32_t)t->ranks,
                            .resumed_ranks = resumed_ranks};
    if (t->data.val_tokens) {
        p.val_tokens = t->data.val.end - t->data.val.begin;
        p.val_source = t->data.val_open ? t->cfg.data.val : NULL;
    }
    emit(t, &p);
    return LWS_OK;
}

/* The log line and progress report of a finished step. */
static lws_status report_step(trainer *t, const lws_step_result *r, double step_s, double run_start,
                              uint64_t first_step) {
    const lws_train_config *tc = &t->cfg.train;
    uint32_t L = t->cfg.model.n_layers;
    uint64_t step = t->st.step;
    lws_timing timing = {t->fwd_ms, t->bwd_ms, 0, 0, 0, 0};
    LWS_TRY(lws_model_read_timing(t->m, &timing));
    double tokens =
        (double)lws_model_batch(t->m) * lws_model_seq(t->m) * lws_train_accum(tc) * t->ranks;
    lws_train_progress p = {.kind = LWS_PROGRESS_STEP,
                            .step = step,
                            .loss = r->loss,
                            .lr = r->lr,
                            .grad_norm = r->grad_norm,
                            .step_ms = step_s * 1e3,
                            .tokens_per_s = tokens / step_s,
                            .elapsed_s = t->st.elapsed_s,
                            .n_layers = L,
                            .layer_fwd_ms = t->fwd_ms,
                            .layer_bwd_ms = t->bwd_ms,
                            .head_ms = timing.head_ms,
                            .optimizer_ms = timing.optim_ms,
                            .loss_scaling = lws_model_loss_scale(t->m).dynamic,
                            .loss_scale = r->loss_scale,
                            .skipped = r->skipped};
    p.mfu = t->opt->peak_tflops > 0
                ? p.tokens_per_s * t->flops_per_token / (t->opt->peak_tflops * 1e12)
                : NAN;
    p.eta_s = (now_s() - run_start) / (double)(step - first_step) * (double)(tc->steps - step);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "step", (double)step);
    cJSON_AddNumberToObject(o, "tokens", (double)t->st.tokens_seen);
    cJSON_AddNumberToObject(o, "loss", r->loss);
    cJSON_AddNumberToObject(o, "lr", r->lr);
    if (isfinite(r->grad_norm))
        cJSON_AddNumberToObject(o, "grad_norm", r->grad_norm);
    else
        cJSON_AddNullToObject(o, "grad_norm");
    if (p.loss_scaling) {
        cJSON_AddNumberToObject(o, "loss_scale", r->loss_scale);
        cJSON_AddBoolToObject(o, "skipped", r->skipped);
    }
    cJSON_AddNumberToObject(o, "step_ms", p.step_ms);
    cJSON_AddNumberToObject(o, "tokens_per_s", p.tokens_per_s);
    if (isfinite(p.mfu))
        cJSON_AddNumberToObject(o, "mfu", p.mfu);
    else
        cJSON_AddNullToObject(o, "mfu");
    cJSON_AddNumberToObject(o, "elapsed_s", t->st.elapsed_s);
    cJSON *lf = cJSON_AddArrayToObject(o, "layer_fwd_ms");
    cJSON *lb = cJSON_AddArrayToObject(o, "layer_bwd_ms");
    for (uint32_t i = 0; i < L; i++) {
        cJSON_AddItemToArray(lf, cJSON_CreateNumber(t->fwd_ms[i]));
        cJSON_AddItemToArray(lb, cJSON_CreateNumber(t->bwd_ms[i]));
    }
    cJSON_AddNumberToObject(o, "head_ms", timing.head_ms);
    cJSON_AddNumberToObject(o, "optimizer_ms", timing.optim_ms);
    if (t->ranks > 1) { /* rank 0's view of the reductions */
        cJSON_AddNumberToObject(o, "ranks", t->ranks);
        cJSON_AddNumberToObject(o, "reduce_ms", t->dstats.reduce_ms);
        cJSON_AddNumberToObject(o, "reduce_exposed_ms", t->dstats.exposed_ms);
        cJSON_AddNumberToObject(o, "host_copy_ms", t->dstats.copy_ms);
    }
    log_json(t, o);
    t->res->final_loss = r->loss;
    emit(t, &p);
    return LWS_OK;
}

static lws_status validate(trainer *t) {
    lws_eval_result r;
    if (t->ranks > 1) /* a stop waits for the step's agreement */
        LWS_TRY(lws_dist_evaluate(t->dist, t->m, t->data.val_tokens, t->data.val,
                                  t->cfg.eval.tokens, &t->data.text, &r));
    else
        LWS_TRY(lws_evaluate(t->m, t->data.val_tokens, t->data.val, t->cfg.eval.tokens,
                             &t->data.text, t->opt->stop, &r));
    double loss = lws_eval_loss(&r), bpb = lws_eval_bits_per_byte(&r);
    cJSON *v = cJSON_CreateObject();
    cJSON_AddNumberToObject(v, "step", (double)t->st.step);
    cJSON_AddNumberToObject(v, "tokens", (double)t->st.tokens_seen);
    cJSON_AddNumberToObject(v, "val_loss", loss);
    cJSON_AddNumberToObject(v, "val_ppl", exp(loss));
    cJSON_AddNumberToObject(v, "val_tokens", (double)r.tokens);
    if (isfinite(bpb)) cJSON_AddNumberToObject(v, "val_bpb", bpb);
    log_json(t, v);
    lws_train_result *res = t->res;
    res->has_val = 1;
    res->val_loss = loss;
    res->val_ppl = exp(loss);
    res->val_bpb = bpb;
    res->val_tokens = r.tokens;
    lws_train_progress p = {.kind = LWS_PROGRESS_EVAL,
                            .step = t->st.step,
                            .val_loss = loss,
                            .val_ppl = exp(loss),
                            .val_bpb = bpb,
                            .val_count = r.tokens};
    emit(t, &p);
    return LWS_OK;
}

static lws_status save(trainer *t) {
    lws_train_result *res = t->res;
    if (t->ranks > 1)
        LWS_TRY(lws_dist_save(t->dist, t->m, t->cfg.train.out_dir, &t->st,
                              t->cfg.train.keep_checkpoints, res->checkpoint,
                              sizeof res->checkpoint));
    else
        LWS_TRY(lws_checkpoint_save(t->m, t->cfg.train.out_dir, &t->st,
                                    t->cfg.train.keep_checkpoints, res->checkpoint,
                                    sizeof res->checkpoint));
    t->saved_step = t->st.step;
    lws_train_progress p = {
        .kind = LWS_PROGRESS_CHECKPOINT, .step = t->st.step, .checkpoint = res->checkpoint};
    emit(t, &p);
    return LWS_OK;
}

/* A stop between micro-batches or evaluation batches leaves the last
 * completed step to save. */
static lws_status stopped(trainer *t, int signal) {
    if (t->st.step == 0)
        return lws_fail(LWS_ERR_INTERRUPTED,
                        "stopped by signal %d before the first step finished; nothing to save",
                        signal);
    if (t->saved_step != t->st.step) LWS_TRY(save(t));
    return lws_fail(LWS_ERR_INTERRUPTED,
                    "stopped by signal %d at step %llu; checkpoint %s (continue with --resume %s)",
                    signal, (unsigned long long)t->st.step, t->res->checkpoint,
                    t->cfg.train.out_dir);
}

/* A failure during the run (at `what`): when the weights are still those of
 * the last completed step (the failure came before an update: the data, a
 * non-finite loss, a validation pass), that step is saved first, so no
 * completed step is lost; after a failed update the last checkpoint is the
 * last good one. */
static lws_status failed(trainer *t, lws_status s, const char *what, int weights_intact) {
    char why[2048];
    snprintf(why, sizeof why, "%s", lws_error_message());
    if (weights_intact && t->st.step > 0 && t->saved_step != t->st.step) {
        if (save(t) == LWS_OK)
            return lws_fail(s,
                            "%s: %s (last good checkpoint: %s, saved now; continue with "
                            "--resume %s)",
                            what, why, t->res->checkpoint, t->cfg.train.out_dir);
        size_t used = strlen(why);
        snprintf(why + used, sizeof why - used, "; saving step %llu failed: %s",
                 (unsigned long long)t->st.step, lws_error_message());
    }
    return lws_fail(s, "%s: %s (last good checkpoint: %s)", what, why,
                    t->res->checkpoint[0] ? t->res->checkpoint : "none yet");
}

/* One step on this rank, or on all of them. */
static lws_status step_once(trainer *t, const lws_batch_source *src, uint64_t step,
                            lws_step_result *r) {
    if (t->ranks > 1) return lws_dist_train_step(t->dstep, src, step, t->opt->stop, r, &t->dstats);
    return lws_train_step(t->m, src, step, t->opt->stop, r);
}

/* Several ranks end the run together (res->all_ranks) only where they all
 * decide alike: at a step's agreement (a stop, a numeric failure) and at
 * the end. Any other failure is one rank's, which its caller must end the
 * run for. */
static lws_status run(trainer *t) {
    const lws_train_config *tc = &t->cfg.train;
    uint32_t A = lws_train_accum(tc);
    uint64_t step_tokens = (uint64_t)lws_model_batch(t->m) * lws_model_seq(t->m) * A * t->ranks;
    double start_s = now_s(), elapsed_before = t->st.elapsed_s;
    uint64_t first_step = t->st.step;
    int eval_at_end = t->cfg.eval.every > 0 || t->data.val_tokens != NULL;
    lws_batch_source src = {next_batch, t};
    char what[64];
    while (t->st.step < tc->steps) {
        uint64_t step = t->st.step + 1;
        double t0 = now_s();
        lws_step_result r;
        lws_status s = step_once(t, &src, step, &r);
        if (s == LWS_ERR_INTERRUPTED) return stopped(t, (int)*t->opt->stop);
        snprintf(what, sizeof what, "step %llu", (unsigned long long)step);
        if (s != LWS_OK && t->ranks > 1 && !r.all_ranks) return s;
        t->res->all_ranks = 1;
        if (s != LWS_OK) return failed(t, s, what, !r.updated);
        t->res->all_ranks = 0;
        t->st.step = step;
        t->st.tokens_seen += step_tokens;
        t->st.sampler_counter = t->sampler.counter;
        t->st.elapsed_s = elapsed_before + (now_s() - start_s);
        t->res->step = step;
        t->res->tokens = t->st.tokens_seen;
        s = report_step(t, &r, now_s() - t0, start_s, first_step);
        int last = step == tc->steps;
        if (s == LWS_OK && t->data.val_tokens &&
            ((t->cfg.eval.every && step % t->cfg.eval.every == 0) || (last && eval_at_end))) {
            snprintf(what, sizeof what, "validation at step %llu", (unsigned long long)step);
            s = validate(t);
        }
        if (s == LWS_ERR_INTERRUPTED) return stopped(t, (int)*t->opt->stop);
        if (s != LWS_OK) return t->ranks > 1 ? s : failed(t, s, what, 1);
        int interrupted = t->ranks > 1 ? r.stop : t->opt->stop ? (int)*t->opt->stop : 0;
        if (last || interrupted || (tc->checkpoint_every && step % tc->checkpoint_every == 0))
            LWS_TRY(save(t));
        t->res->all_ranks = interrupted != 0;
        if (interrupted) return stopped(t, interrupted);
    }
    t->res->all_ranks = 1;
    double wall = now_s() - start_s;
    t->res->tokens_per_s = wall > 0 ? (double)(t->st.step - first_step) * step_tokens / wall : 0;
    return LWS_OK;
}

lws_status lws_train(lws_context *ctx, const lws_config *cfg, const lws_train_options *opt,
                     lws_train_result *out) {
    memset(out, 0, sizeof *out);
    out->final_loss = out->val_loss = out->val_ppl = out->val_bpb = NAN;
    trainer *t = calloc(1, sizeof *t);
    if (!t) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    t->ctx = ctx;
    t->cfg = *cfg;
    t->opt = opt;
    t->dist = opt->dist;
    t->rank = opt->dist ? lws_dist_rank(opt->dist) : 0;
    t->ranks = opt->dist ? lws_dist_size(opt->dist) : 1;
    t->res = out;
    double t0 = now_s();
    lws_status s = start(t);
    if (s == LWS_OK) s = run(t);
    out->wall_s = now_s() - t0;
    out->elapsed_s = t->st.elapsed_s;
    out->peak_memory = lws_memory_peak(ctx);
    lws_dist_step_destroy(t->dstep);
    snprintf(out->run_dir, sizeof out->run_dir, "%s", t->cfg.train.out_dir);
    if (t->log) fclose(t->log);
    free(t->fwd_ms);
    free(t->bwd_ms);
    close_data(&t->data);
    lws_model_destroy(t->m);
    free(t);
    return s;
}
