/* One run of a sweep, in a process of its own (forked by sweep.c): trains
 * the run's config in its directory (resuming from its newest checkpoint
 * when there is one), evaluates it, and writes result.json atomically, the
 * mark that the run is finished. The process ends with the sweep: when the
 * sweep's process dies it gets SIGTERM, saves a checkpoint and stops. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include "cli/cli.h"
#include "cli/sweep.h"
#include "lws/train.h"
#include "train/run_dir.h"
#include "util/files.h"
#include "util/when.h"

static lws_stop_flag stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

typedef struct run_watch {
    const sweep_run *run;
    int parent;          /* the sweep's pid: when it is gone, the run stops */
    uint64_t start_step; /* the step training resumed after (0: from the start) */
    double tokens_per_s;
    int quiet;
} run_watch;

static void on_progress(const lws_train_progress *p, void *user) {
    run_watch *w = user;
    const char *name = w->run->name;
    if (getppid() != w->parent && !stop_signal) stop_signal = SIGTERM;
    switch (p->kind) {
    case LWS_PROGRESS_START:
        w->start_step = p->step;
        if (p->resumed_from)
            printf("[%s] resumed at step %llu of %llu from %s\n", name, (unsigned long long)p->step,
                   (unsigned long long)p->steps, p->resumed_from);
        else
            printf("[%s] training %llu steps (%llu tokens per step) in %s\n", name,
                   (unsigned long long)p->steps,
                   (unsigned long long)(w->run->cfg->train.micro_batch *
                                        (uint64_t)w->run->cfg->train.seq_len *
                                        lws_train_accum(&w->run->cfg->train)),
                   p->run_dir);
        break;
    case LWS_PROGRESS_STEP:
        w->tokens_per_s = p->tokens_per_s;
        break;
    case LWS_PROGRESS_EVAL:
        if (w->quiet) break;
        printf("[%s] step %llu/%llu: validation loss %.4f", name, (unsigned long long)p->step,
               (unsigned long long)p->steps, p->val_loss);
        if (isfinite(p->val_bpb)) printf(", %.4f bits per byte", p->val_bpb);
        printf(" (%llu tokens) | %.0f tok/s\n", (unsigned long long)p->val_count, w->tokens_per_s);
        break;
    case LWS_PROGRESS_CHECKPOINT:
        break;
    }
    fflush(stdout);
}

/* ---- timings from the run's log ------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n) {
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Medians over every step line of log.jsonl (each step once: a resumed run's
 * log keeps each step once): tokens/s, step ms, and each layer's forward and
 * backward device time. */
static lws_status log_timings(const sweep_run *r, cJSON *out) {
    char path[1500];
    snprintf(path, sizeof path, "%s/log.jsonl", r->dir);
    char *text = NULL;
    size_t len = 0;
    LWS_TRY(lws_read_file(path, (size_t)1 << 30, &text, &len));
    uint32_t L = r->cfg->model.n_layers, steps = r->cfg->train.steps, n = 0;
    double *v = calloc((size_t)(2 + 2 * L) * (steps + 1), sizeof *v);
    if (!v) {
        free(text);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    double *tok = v, *ms = v + (steps + 1), *fwd = v + 2 * (steps + 1);
    double *bwd = fwd + (size_t)L * (steps + 1);
    for (char *line = strtok(text, "\n"); line && n <= steps; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tokens_per_s");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "step_ms");
        const cJSON *lf = cJSON_GetObjectItemCaseSensitive(o, "layer_fwd_ms");
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(o, "layer_bwd_ms");
        if (cJSON_IsNumber(t) && cJSON_IsNumber(m) && cJSON_GetArraySize(lf) == (int)L &&
            cJSON_GetArraySize(lb) == (int)L) {
            tok[n] = t->valuedouble, ms[n] = m->valuedouble;
            for (uint32_t i = 0; i < L; i++) {
                fwd[(size_t)i * (steps + 1) + n] = cJSON_GetArrayItem(lf, (int)i)->valuedouble;
                bwd[(size_t)i * (steps + 1) + n] = cJSON_GetArrayItem(lb, (int)i)->valuedouble;
            }
            n++;
        }
        cJSON_Delete(o);
    }
    free(text);
    cJSON_AddNumberToObject(out, "timed_steps", n);
    cJSON_AddNumberToObject(out, "tokens_per_s", n ? median(tok, n) : 0);
    cJSON_AddNumberToObject(out, "step_ms", n ? median(ms, n) : 0);
    cJSON *f = cJSON_AddArrayToObject(out, "layer_fwd_ms");
    cJSON *b = cJSON_AddArrayToObject(out, "layer_bwd_ms");
    for (uint32_t i = 0; i < L; i++) {
        cJSON_AddItemToArray(f,
                             cJSON_CreateNumber(n ? median(fwd + (size_t)i * (steps + 1), n) : 0));
        cJSON_AddItemToArray(b,
                             cJSON_CreateNumber(n ? median(bwd + (size_t)i * (steps + 1), n) : 0));
    }
    free(v);
    return LWS_OK;
}

/* ---- result.json ------------------------------------------------------------------- */

static void add_layers(cJSON *o, const lws_config *cfg) {
    cJSON *q = cJSON_AddArrayToObject(o, "q_heads");
    cJSON *kv = cJSON_AddArrayToObject(o, "kv_heads");
    cJSON *f = cJSON_AddArrayToObject(o, "ffn_dims");
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        cJSON_AddItemToArray(q, cJSON_CreateNumber(cfg->layers[i].q_heads));
        cJSON_AddItemToArray(kv, cJSON_CreateNumber(cfg->layers[i].kv_heads));
        cJSON_AddItemToArray(f, cJSON_CreateNumber(cfg->layers[i].ffn_dim));
    }
}

/* The final validation: the run's own, or, when the run had finished
 * training before this process (stopped between its last checkpoint and
 * result.json), its last checkpoint's as `lws eval` scores it. */
typedef struct final_eval {
    double loss, bpb;
    uint64_t tokens;
    const char *by;
    char checkpoint[2400];
} final_eval;

static lws_status evaluate_checkpoint(lws_context *ctx, const sweep_run *r, final_eval *f) {
    LWS_TRY(lws_checkpoint_find(r->dir, f->checkpoint, sizeof f->checkpoint));
    lws_eval_data d;
    LWS_TRY(lws_eval_data_open(r->cfg, NULL, NULL, &d));
    lws_eval_result e;
    lws_status s = lws_eval_checkpoint(ctx, f->checkpoint, r->cfg, &d, r->cfg->eval.tokens, 0,
                                       &stop_signal, &e, NULL);
    lws_eval_data_close(&d);
    LWS_TRY(s);
    f->loss = lws_eval_loss(&e);
    f->bpb = lws_eval_bits_per_byte(&e);
    f->tokens = e.tokens;
    f->by = "checkpoint";
    return LWS_OK;
}

static lws_status write_result(const sweep_plan *p, const sweep_run *r, const lws_train_result *res,
                               const final_eval *f, const char *device) {
    const lws_config *cfg = r->cfg;
    cJSON *o = cJSON_CreateObject();
    if (!o) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    cJSON_AddNumberToObject(o, "lws_sweep_run_version", 1);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "variant", p->variants[r->variant].name);
    cJSON_AddStringToObject(o, "group", r->group);
    cJSON_AddItemToObject(o, "grid", sweep_point_json(p, r->point));
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    uint64_t params = lws_config_params(cfg);
    cJSON_AddNumberToObject(o, "params", (double)params);
    cJSON_AddNumberToObject(o, "non_embedding_params",
                            (double)(params - lws_config_embedding_params(cfg)));
    cJSON_AddNumberToObject(o, "flops_per_token", lws_config_train_flops_per_token(cfg));
    cJSON_AddNumberToObject(o, "steps", cfg->train.steps);
    cJSON_AddNumberToObject(o, "tokens", (double)p->tokens);
    cJSON_AddNumberToObject(o, "val_loss", f->loss);
    cJSON_AddNumberToObject(o, "val_ppl", exp(f->loss));
    if (isfinite(f->bpb))
        cJSON_AddNumberToObject(o, "val_bpb", f->bpb);
    else
        cJSON_AddNullToObject(o, "val_bpb");
    cJSON_AddNumberToObject(o, "val_tokens", (double)f->tokens);
    cJSON_AddStringToObject(o, "evaluated_by", f->by);
    cJSON_AddStringToObject(o, "checkpoint", f->checkpoint);
    lws_status s = log_timings(r, o);
    cJSON_AddNumberToObject(o, "wall_s", res->elapsed_s);
    cJSON_AddNumberToObject(o, "peak_memory_bytes", (double)res->peak_memory);
    cJSON_AddStringToObject(o, "device", device);
    add_layers(o, cfg);
    char finished[32];
    lws_utc_now(finished, sizeof finished);
    cJSON_AddStringToObject(o, "finished", finished);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) != 3) load[0] = 0;
    cJSON_AddNumberToObject(o, "load_average", load[0]);
    char path[1500];
    snprintf(path, sizeof path, "%s/result.json", r->dir);
    if (s == LWS_OK) s = lws_write_json_atomic(path, o);
    cJSON_Delete(o);
    return s;
}

/* ---- the run ------------------------------------------------------------------------- */

/* Holds the run directory's lock while the run trains: a process left from
 * an earlier sweep (saving its checkpoint after a SIGTERM) finishes first. */
static lws_status lock_run(const sweep_run *r, int *fd) {
    char path[1500];
    LWS_TRY(lws_mkdir_p(r->dir));
    snprintf(path, sizeof path, "%s/.lock", r->dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return lws_fail(LWS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return LWS_OK;
    printf("[%s] waiting for another process that holds %s\n", r->name, path);
    fflush(stdout);
    while (flock(*fd, LOCK_EX) != 0)
        if (errno != EINTR || stop_signal)
            return lws_fail(LWS_ERR_INTERRUPTED, "stopped waiting for %s", path);
    return LWS_OK;
}

static lws_status train_run(const sweep_plan *p, const sweep_run *r, const char *device, int quiet,
                            int parent) {
    int lock = -1;
    lws_status s = lock_run(r, &lock);
    char ckpt[2400];
    int resume = 0;
    if (s == LWS_OK) {
        resume = lws_checkpoint_find(r->dir, ckpt, sizeof ckpt) == LWS_OK;
        lws_error_clear();
    }
    double peak = NAN;
    if (s == LWS_OK) {
        lws_context *pctx = NULL;
        lws_context_options copt = {.device = device, .validation = -1, .pipeline_cache = -1};
        lws_peak pk;
        s = lws_context_create(&copt, &pctx);
        if (s == LWS_OK) s = lws_peak_get(pctx, 0, 3, &pk);
        if (s == LWS_OK) peak = pk.tflops;
        lws_context_destroy(pctx);
    }
    lws_context *ctx = NULL;
    lws_context_options copt = {.device = device, .validation = -1, .pipeline_cache = -1};
    if (s == LWS_OK) s = lws_context_create(&copt, &ctx);
    run_watch w = {r, parent, 0, 0, quiet};
    lws_train_options opt = {.resume = resume ? r->dir : NULL,
                             .run_dir = r->dir,
                             .overwrite = !resume,
                             .peak_tflops = peak > 0 ? peak : 0,
                             .stop = &stop_signal,
                             .progress = on_progress,
                             .user = &w};
    lws_train_result res = {0};
    res.val_loss = res.val_bpb = NAN;
    if (s == LWS_OK) s = lws_train(ctx, r->cfg, &opt, &res);
    final_eval f = {res.val_loss, res.val_bpb, res.val_tokens, "training", ""};
    if (s == LWS_OK) snprintf(f.checkpoint, sizeof f.checkpoint, "%s", res.checkpoint);
    if (s == LWS_OK && w.start_step >= r->cfg->train.steps) s = evaluate_checkpoint(ctx, r, &f);
    if (s == LWS_OK) s = write_result(p, r, &res, &f, lws_context_caps(ctx)->name);
    if (s == LWS_OK)
        printf("[%s] finished: validation loss %.4f, %.4f bits per byte, %.0f s\n", r->name, f.loss,
               f.bpb, res.elapsed_s);
    lws_context_destroy(ctx);
    if (lock >= 0) close(lock);
    return s;
}

int sweep_child(const sweep_plan *p, uint32_t run, const char *device, int parent, int quiet) {
    /* Stop with the sweep, however it ends (SIGKILL included): at once on
     * Linux, elsewhere at the next step (the progress callback looks). */
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
    if (getppid() != parent) return 130;
    setvbuf(stdout, NULL, _IOLBF, 0);
    stop_signal = 0;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    const int signals[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) sigaction(signals[i], &sa, NULL);
    const sweep_run *r = &p->runs[run];
    lws_status s = train_run(p, r, device, quiet, parent);
    if (s == LWS_ERR_INTERRUPTED) {
        printf("[%s] stopped: %s\n", r->name, lws_error_message());
        return 130;
    }
    if (s != LWS_OK) {
        fprintf(stderr, "[%s] lws: %s\n", r->name, lws_error_message());
        return 1;
    }
    return 0;
}
