/* lws bench CONFIG: training throughput, MFU, per-layer and per-op device
 * times and peak memory of a config on a device, on random tokens, written
 * as a report (docs/bench-report.md). Sub-forms: `lws bench peak` (the
 * device's fp32 matmul peak) and `lws bench kernels` (bench_kernels.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "lws/data.h"
#include "lws/model.h"
#include "lws/train.h"

static const char *usage =
    "lws bench CONFIG [--device D] [--steps N] [--warmup N] [--micro-batch N] [--seq-len N]\n"
    "                 [--grad-accum N] [--peak-tflops X] [--json FILE] [--label TEXT]\n"
    "                 [--no-op-profile] [--dry-run] [--set PATH=VALUE]... [--print-config]\n"
    "       lws bench peak [--device D] [--repeat N] [--json FILE]\n"
    "       lws bench kernels CONFIG [--micro-batch N] [--seq-len N] [--reps N] [--torch] ...";

static const char *peak_method = "lws fp32 matmul (NT) on square problems from 512^3, doubled "
                                 "while a run takes under 50 ms (up to 4096^3), the fastest";

static void help(void) {
    printf(
        "usage: %s\n\n"
        "Trains CONFIG for a few steps on random tokens (seeded by train.seed) and reports\n"
        "tokens/s, step time (median and spread), MFU, per-layer forward and backward times,\n"
        "device time per kind of op and peak device memory. Under mpirun (mpirun -np N lws\n"
        "bench CONFIG) every rank trains its share of each step on its own GPU; the report\n"
        "(rank 0's) adds each rank's tokens/s, the gradient reductions' time per step and\n"
        "how much of it the backward hid.\n"
        "  --device D         device index or name substring (see `lws devices`)\n"
        "  --steps N          timed steps (default 10)\n"
        "  --warmup N         untimed steps first (default 2)\n"
        "  --micro-batch N    sequences per micro-batch instead of train.micro_batch\n"
        "  --seq-len N        tokens per sequence instead of train.seq_len\n"
        "  --grad-accum N     micro-batches per optimizer step (default 1; so does\n"
        "                     --set train.grad_accum=N, the config's own is not used)\n"
        "  --peak-tflops X    also give MFU against a datasheet figure of X TFLOP/s\n"
        "  --json FILE        write the report (docs/bench-report.md) to FILE\n"
        "  --label TEXT       the report's name in `lws compare` (default \"lws PRECISION\":\n"
        "                     \"lws fp32\", \"lws bf16\" or \"lws fp16\" by train.precision)\n"
        "  --no-op-profile    skip the per-op profile (up to 3 more steps of a model with a\n"
        "                     timestamp region around every op)\n"
        "  --dry-run          print the memory plan for the device and whether it fits;\n"
        "                     allocate nothing (exit 0 if it fits, 1 if not)\n"
        "%s\n"
        "lws bench peak: the fp32 matmul throughput MFU is measured against\n"
        "  (--repeat N runs, the fastest; --json FILE writes a \"peak\" report), cached per\n"
        "  device and driver in $XDG_CACHE_HOME/lws for the MFU of lws train and lws bench.\n"
        "lws bench kernels CONFIG: every op at the config's shapes; `lws bench kernels --help`.\n",
        usage, lws_cli_sets_help);
}

/* ---- lws bench peak ------------------------------------------------------ */

static int bench_peak(int argc, char **argv) {
    const char *device = NULL, *json = NULL;
    uint32_t repeat = 3;
    const lws_cli_option options[] = {
        {"--device", LWS_OPT_TEXT, &device},
        {"--json", LWS_OPT_TEXT, &json},
        {"--repeat", LWS_OPT_U32, &repeat, 1, 100},
    };
    lws_cli_command c = {usage, help, options, sizeof options / sizeof *options, NULL, NULL, NULL};
    int rc = lws_cli_parse(&c, argc, argv);
    if (rc) return LWS_CLI_PARSE_EXIT(rc);
    lws_context *ctx;
    lws_context_options opt = {.device = device, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&opt, &ctx) != LWS_OK) return lws_cli_error();
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_print_device(caps);
    lws_peak p;
    if (lws_peak_get(ctx, 1, repeat, &p) != LWS_OK) {
        lws_context_destroy(ctx);
        return lws_cli_error();
    }
    double best = p.tflops;
    printf("peak: %.4g TFLOP/s fp32, the fastest of %u runs (each: %s)\n", best, repeat,
           peak_method);
    if (p.path[0] && best > 0)
        printf("cached in %s: lws train and lws bench use it until `lws bench peak` runs again\n",
               p.path);
    if (json) {
        cJSON *report = lws_report_begin("peak", "lws fp32 matmul peak", "fp32", caps);
        cJSON *peak = cJSON_AddObjectToObject(report, "peak");
        cJSON_AddNumberToObject(peak, "measured_tflops", best);
        cJSON_AddStringToObject(peak, "measured_with", peak_method);
        cJSON_AddNullToObject(peak, "datasheet_tflops");
        rc = lws_report_finish(report, json);
    }
    lws_context_destroy(ctx);
    return rc;
}

/* ---- lws bench CONFIG ---------------------------------------------------- */

typedef struct bench_options {
    const char *config, *device, *json, *label;
    uint32_t steps, warmup, grad_accum;
    double datasheet_tflops;
    int no_op_profile, dry_run;
    lws_cli_sets sets; /* --set, and --micro-batch, --seq-len as overrides */
    lws_dist *dist;    /* the ranks: one, or several under mpirun */
} bench_options;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* The random tokens of every step: splitmix64 from train.seed, input and
 * target of each position in turn. */
static lws_status random_batch(void *state, uint32_t micro, uint32_t *inputs, uint32_t *targets) {
    const lws_model *m = ((void **)state)[0];
    uint64_t *rng = ((void **)state)[1];
    uint32_t V = lws_model_get_config(m)->model.vocab_size;
    size_t N = (size_t)lws_model_batch(m) * lws_model_seq(m);
    (void)micro;
    if (!inputs) { /* another rank's micro-batch: the same draws, unused */
        for (size_t i = 0; i < 2 * N; i++) lws_splitmix64(rng);
        return LWS_OK;
    }
    for (size_t i = 0; i < N; i++) {
        inputs[i] = (uint32_t)(lws_splitmix64(rng) % V);
        targets[i] = (uint32_t)(lws_splitmix64(rng) % V);
    }
    return LWS_OK;
}

#define MAX_OP_KINDS 32

typedef struct op_profile {
    uint32_t kinds;
    const char *name[MAX_OP_KINDS];
    uint32_t launches[MAX_OP_KINDS];
    uint32_t *kind_of; /* [region] -> kind, or UINT32_MAX when not in a step */
    double *region_ms; /* [regions] scratch */
    double *ms;        /* [steps][MAX_OP_KINDS] */
} op_profile;

static lws_status op_profile_init(const lws_model *m, uint32_t steps, op_profile *p, int *usable) {
    memset(p, 0, sizeof *p);
    *usable = 0;
    lws_timer *timer = lws_model_op_timer(m);
    uint32_t n = lws_timer_count(timer);
    if (n == 0) return LWS_OK; /* no timestamps on this device */
    /* Every op region belongs to the training step (the model records none in
     * its evaluation and logits heads). */
    p->kind_of = malloc(n * sizeof *p->kind_of);
    p->region_ms = malloc(n * sizeof *p->region_ms);
    p->ms = calloc((size_t)steps * MAX_OP_KINDS, sizeof *p->ms);
    if (!p->kind_of || !p->region_ms || !p->ms)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t r = 0; r < n; r++) {
        p->kind_of[r] = UINT32_MAX;
        const char *name = lws_timer_name(timer, r);
        uint32_t k = 0;
        while (k < p->kinds && strcmp(p->name[k], name) != 0) k++;
        if (k == p->kinds) {
            if (p->kinds == MAX_OP_KINDS) continue;
            p->name[p->kinds++] = name;
        }
        p->kind_of[r] = k;
        p->launches[k]++;
    }
    *usable = 1;
    return LWS_OK;
}

static lws_status op_profile_read(const lws_model *m, op_profile *p, uint32_t step) {
    lws_timer *timer = lws_model_op_timer(m);
    uint32_t n = lws_timer_count(timer);
    LWS_TRY(lws_timer_read(lws_model_context(m), timer, p->region_ms, n));
    double *row = p->ms + (size_t)step * MAX_OP_KINDS;
    for (uint32_t r = 0; r < n; r++)
        if (p->kind_of[r] != UINT32_MAX) row[p->kind_of[r]] += p->region_ms[r];
    return LWS_OK;
}

static void op_profile_free(op_profile *p) {
    free(p->kind_of);
    free(p->region_ms);
    free(p->ms);
}

/* The largest micro-batch below `batch` whose plan fits the device, or 0. */
static uint32_t fitting_micro_batch(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                                    uint32_t seq) {
    lws_memory_plan plan;
    for (uint32_t b = batch; b-- > 1;)
        if (lws_model_plan(ctx, cfg, b, seq, 1, &plan) == LWS_OK &&
            lws_memory_plan_fits(&plan, lws_context_caps(ctx), NULL, 0))
            return b;
    return 0;
}

typedef struct bench_result {
    uint32_t steps;
    double *step_ms, *device_ms; /* [steps] */
    double *fwd_ms, *bwd_ms;     /* [steps][L] */
    double *stage_ms;            /* [steps][4]: embed, head, embed backward, optimizer */
    double first_loss, last_loss;
    uint64_t host_waits;    /* over the timed steps (lws_context_host_waits) */
    lws_dist_step *dstep;   /* several ranks: their step */
    lws_dist_stats *dstats; /* [steps] its reductions */
} bench_result;

static lws_status result_alloc(bench_result *r, uint32_t steps, uint32_t L) {
    r->steps = steps;
    r->step_ms = calloc(steps, sizeof *r->step_ms);
    r->device_ms = calloc(steps, sizeof *r->device_ms);
    r->fwd_ms = calloc((size_t)steps * L, sizeof *r->fwd_ms);
    r->bwd_ms = calloc((size_t)steps * L, sizeof *r->bwd_ms);
    r->stage_ms = calloc((size_t)steps * 4, sizeof *r->stage_ms);
    r->dstats = calloc(steps, sizeof *r->dstats);
    if (!r->step_ms || !r->device_ms || !r->fwd_ms || !r->bwd_ms || !r->stage_ms || !r->dstats)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    return LWS_OK;
}

static void result_free(bench_result *r) {
    free(r->step_ms), free(r->device_ms), free(r->fwd_ms), free(r->bwd_ms), free(r->stage_ms);
    free(r->dstats);
    lws_dist_step_destroy(r->dstep);
}

/* Per-layer and per-stage device times of the step just run: the layers,
 * embedding and head of its last micro-batch (lws_model_read_timing), so the
 * device's busy time counts that micro-batch grad_accum times. */
static lws_status read_step_times(lws_model *m, bench_result *res, uint32_t t, double *fwd,
                                  double *bwd) {
    const lws_config *cfg = lws_model_get_config(m);
    uint32_t L = cfg->model.n_layers, A = lws_train_accum(&cfg->train);
    lws_timing timing = {fwd, bwd, 0, 0, 0, 0};
    LWS_TRY(lws_model_read_timing(m, &timing));
    double micro = timing.embed_ms + timing.head_ms + timing.embed_bwd_ms;
    for (uint32_t i = 0; i < L; i++) {
        res->fwd_ms[(size_t)t * L + i] = fwd[i];
        res->bwd_ms[(size_t)t * L + i] = bwd[i];
        micro += fwd[i] + bwd[i];
    }
    double busy = A * micro + timing.optim_ms;
    double *stage = res->stage_ms + (size_t)t * 4;
    stage[0] = timing.embed_ms;
    stage[1] = timing.head_ms;
    stage[2] = timing.embed_bwd_ms;
    stage[3] = timing.optim_ms;
    res->device_ms[t] = busy;
    return LWS_OK;
}

/* `warmup` untimed then res->steps timed training steps (lws_train_step) on
 * fresh random tokens; per-layer times from the model's timer after each
 * timed step, and per-op ones when ops is given. */
static lws_status run_steps(lws_model *m, uint32_t warmup, const char *phase, op_profile *ops,
                            bench_result *res) {
    const lws_config *cfg = lws_model_get_config(m);
    uint32_t L = cfg->model.n_layers;
    double *fwd = malloc(L * sizeof *fwd), *bwd = malloc(L * sizeof *bwd);
    lws_status s = fwd && bwd ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint64_t rng = cfg->train.seed ^ 0xBE7C4BE7C4ull;
    void *state[2] = {m, &rng};
    lws_batch_source src = {random_batch, state};
    int has_timestamps = lws_context_caps(lws_model_context(m))->timestamp_period_ns > 0;
    uint32_t total = warmup + res->steps;
    for (uint32_t step = 0; s == LWS_OK && step < total; step++) {
        double t0 = now_ms();
        uint64_t waits = lws_context_host_waits(lws_model_context(m));
        lws_step_result r;
        lws_dist_stats dstats;
        if (res->dstep)
            s = lws_dist_train_step(res->dstep, &src, step + 1, NULL, &r, &dstats);
        else
            s = lws_train_step(m, &src, step + 1, NULL, &r);
        double ms = now_ms() - t0;
        if (s != LWS_OK) break;
        if (step == 0) res->first_loss = r.loss;
        res->last_loss = r.loss;
        int timed = step >= warmup;
        printf("%s%s step %u/%u: %.2f ms, loss %.4f\n", phase, timed ? "timed" : "warm-up",
               timed ? step - warmup + 1 : step + 1, timed ? res->steps : warmup, ms, r.loss);
        fflush(stdout);
        if (!timed) continue;
        uint32_t t = step - warmup;
        res->step_ms[t] = ms;
        res->host_waits += lws_context_host_waits(lws_model_context(m)) - waits;
        if (res->dstep) res->dstats[t] = dstats;
        if (has_timestamps) s = read_step_times(m, res, t, fwd, bwd);
        if (s == LWS_OK && has_timestamps && ops) s = op_profile_read(m, ops, t);
    }
    free(fwd), free(bwd);
    return s;
}

/* Median over the steps of column j of a [steps][width] table. */
static double column_median(const double *table, uint32_t steps, uint32_t width, uint32_t j) {
    double *column = malloc(steps * sizeof *column);
    if (!column) return NAN;
    for (uint32_t t = 0; t < steps; t++) column[t] = table[(size_t)t * width + j];
    double median = lws_stats_of(column, steps).median;
    free(column);
    return median;
}

static cJSON *stats_json(const double *v, uint32_t n) {
    lws_stats s = lws_stats_of(v, n);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "median", s.median);
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "max", s.max);
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "stdev", s.stdev);
    cJSON *all = cJSON_AddArrayToObject(o, "all");
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(all, cJSON_CreateNumber(v[i]));
    return o;
}

/* Explains a model that does not fit: what would fit, or that nothing does. */
static void explain_refusal(lws_context *ctx, const lws_config *cfg, uint32_t B, uint32_t T) {
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_memory_plan plan;
    if (lws_model_plan(ctx, cfg, B, T, 1, &plan) != LWS_OK ||
        lws_memory_plan_fits(&plan, caps, NULL, 0))
        return;
    double state = (double)(plan.params + plan.grads + plan.optimizer);
    uint32_t fits = fitting_micro_batch(ctx, cfg, B, T);
    fprintf(stderr, "lws bench: %s at micro-batch %u x %u does not fit %s.\n", cfg->name, B, T,
            caps->name);
    lws_memory_plan smaller;
    if (fits && lws_model_plan(ctx, cfg, fits, T, 1, &smaller) == LWS_OK)
        fprintf(stderr, "lws bench: --micro-batch %u fits (plan %.2f GiB).\n", fits,
                smaller.total / 1073741824.0);
    else if (state > caps->device_local_bytes)
        fprintf(stderr,
                "lws bench: its parameters, gradients and AdamW moments alone need %.2f GiB, "
                "more than the device has: train it on a larger device; `lws bench kernels "
                "%s --micro-batch 1` times its ops here.\n",
                state / 1073741824.0, cfg->path);
    else
        fprintf(stderr,
                "lws bench: not even micro-batch 1 fits at seq_len %u: try a smaller "
                "--seq-len.\n",
                T);
}

/* The per-op breakdown: a second model with a timestamp region around every
 * op (those regions slow a step down, so the throughput comes from a model
 * without them), `steps` timed steps. Returns a JSON array or NULL. */
static lws_status profile_ops(lws_context *ctx, const lws_config *cfg, uint32_t B, uint32_t T,
                              uint32_t steps, double plain_step_ms, cJSON **out) {
    *out = NULL;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_model *m = NULL;
    op_profile ops;
    memset(&ops, 0, sizeof ops);
    bench_result res = {0};
    int usable = 0;
    printf("\nper-op profile: %u more steps of a model with a timestamp region around every op\n",
           steps);
    lws_status s = lws_model_create_ex(ctx, cfg, B, T, 1, LWS_MODEL_PROFILE_OPS, &m);
    if (s == LWS_OK) s = result_alloc(&res, steps, cfg->model.n_layers);
    if (s == LWS_OK) s = op_profile_init(m, steps, &ops, &usable);
    if (s == LWS_OK && usable) s = run_steps(m, 1, "  profiled ", &ops, &res);
    if (s == LWS_OK && usable) {
        double ms[MAX_OP_KINDS], total = 0;
        for (uint32_t k = 0; k < ops.kinds; k++) {
            ms[k] = column_median(ops.ms, steps, MAX_OP_KINDS, k);
            total += ms[k];
        }
        uint32_t order[MAX_OP_KINDS]; /* largest first */
        for (uint32_t k = 0; k < ops.kinds; k++) order[k] = k;
        for (uint32_t i = 1; i < ops.kinds; i++)
            for (uint32_t j = i; j > 0 && ms[order[j]] > ms[order[j - 1]]; j--) {
                uint32_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        double profiled = lws_stats_of(res.step_ms, steps).median;
        printf("per op (median ms per step, summed over its launches; the profiled step took "
               "%.2f ms, %+.0f%% of an unprofiled one):\n",
               profiled, 100 * (profiled / plain_step_ms - 1));
        printf("  %-14s %9s %10s %7s\n", "op", "launches", "ms", "share");
        *out = cJSON_CreateArray();
        for (uint32_t i = 0; i < ops.kinds; i++) {
            uint32_t k = order[i];
            double share = total > 0 ? ms[k] / total : 0;
            printf("  %-14s %9u %10.3f %6.1f%%\n", ops.name[k], ops.launches[k], ms[k],
                   100 * share);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "op", ops.name[k]);
            cJSON_AddNumberToObject(e, "launches", ops.launches[k]);
            cJSON_AddNumberToObject(e, "ms", ms[k]);
            cJSON_AddNumberToObject(e, "fraction", share);
            cJSON_AddItemToArray(*out, e);
        }
    }
    op_profile_free(&ops);
    result_free(&res);
    lws_model_destroy(m);
    lws_arena_reset(ctx, mark);
    return s;
}

/* What one benchmark run measured, for the printout and the report. */
typedef struct bench_run {
    const lws_config *cfg;
    const lws_device_caps *caps;
    uint32_t B, T, A;
    lws_memory_plan plan;
    bench_result res;
    double peak, tok_s, mfu, mfu_sheet, device_ms, mem_peak, mem_reserved;
    uint64_t barriers, unneeded_barriers; /* recorded by the model; unneeded ones when checked */
    uint64_t dispatches;                  /* recorded by the model */
    lws_record_counts micro_batch, optimizer; /* what a training step submits */
    double host_waits_per_step;               /* mean over the timed steps */
    int barriers_checked;
    lws_stats step;
    cJSON *layers_json, *stages_json, *ops_json, *dist_json;
} bench_run;

lws_status lws_cli_peak(const char *device, double *peak) {
    lws_context *peak_ctx = NULL;
    lws_context_options copt = {.device = device, .validation = -1, .pipeline_cache = -1};
    lws_peak p = {0};
    lws_status s = lws_context_create(&copt, &peak_ctx);
    if (s == LWS_OK) s = lws_peak_get(peak_ctx, 0, 3, &p);
    lws_context_destroy(peak_ctx);
    *peak = s == LWS_OK && p.tflops > 0 ? p.tflops : NAN;
    if (s == LWS_OK && p.tflops > 0)
        printf("peak: %.4g TFLOP/s, %s %s (%s; `lws bench peak` measures again)\n", p.tflops,
               p.cached ? "cached, measured on" : "measured now,", p.measured,
               p.path[0] ? p.path : "no cache directory");
    else if (s == LWS_OK)
        printf("peak: unknown (the device gives no timestamps)\n");
    return s;
}

static void print_layers(bench_run *r) {
    const lws_config *cfg = r->cfg;
    uint32_t L = cfg->model.n_layers, steps = r->res.steps;
    printf("\nper layer (median ms over the timed steps%s):\n",
           r->A > 1 ? "; each step's last micro-batch" : "");
    printf("  %5s %7s %8s %7s %10s %10s %11s\n", "layer", "q_heads", "kv_heads", "ffn_dim",
           "forward", "backward", "fwd TFLOP/s");
    r->layers_json = cJSON_CreateArray();
    for (uint32_t i = 0; i < L; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        double f = column_median(r->res.fwd_ms, steps, L, i);
        double b = column_median(r->res.bwd_ms, steps, L, i);
        double flops = lws_layer_flops_per_token(cfg, i, r->T) * r->B * r->T;
        printf("  %5u %7u %8u %7u %10.3f %10.3f %11.3g\n", i, s->q_heads, s->kv_heads, s->ffn_dim,
               f, b, f > 0 ? flops / (f * 1e-3) / 1e12 : 0.0);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", i);
        cJSON_AddNumberToObject(e, "q_heads", s->q_heads);
        cJSON_AddNumberToObject(e, "kv_heads", s->kv_heads);
        cJSON_AddNumberToObject(e, "ffn_dim", s->ffn_dim);
        cJSON_AddNumberToObject(e, "forward_ms", f);
        cJSON_AddNumberToObject(e, "backward_ms", b);
        cJSON_AddNumberToObject(e, "forward_flops", flops);
        cJSON_AddItemToArray(r->layers_json, e);
    }
    static const char *const stage_names[4] = {"embed_ms", "head_ms", "embed_bwd_ms",
                                               "optimizer_ms"};
    double stage[4];
    r->stages_json = cJSON_CreateObject();
    for (uint32_t j = 0; j < 4; j++) {
        stage[j] = column_median(r->res.stage_ms, steps, 4, j);
        cJSON_AddNumberToObject(r->stages_json, stage_names[j], stage[j]);
    }
    printf("  embedding %.3f, head (norm, logits, loss and backward) %.3f, embedding "
           "backward %.3f, optimizer %.3f\n",
           stage[0], stage[1], stage[2], stage[3]);
}

static void print_summary(const bench_run *r, const bench_options *o) {
    printf("\nthroughput: %.1f tokens/s; step %.2f ms median (min %.2f, max %.2f, stdev %.2f "
           "over %u steps)",
           r->tok_s, r->step.median, r->step.min, r->step.max, r->step.stdev, o->steps);
    if (isfinite(r->device_ms))
        printf("; device busy %.2f ms%s", r->device_ms,
               r->A > 1 ? " (the last micro-batch's times x grad_accum, and the optimizer)" : "");
    if (isfinite(r->mfu))
        printf("\nMFU: %.2f%% of the measured %.4g TFLOP/s", 100 * r->mfu, r->peak);
    else
        printf("\nMFU: n/a (no measured peak)");
    if (isfinite(r->mfu_sheet))
        printf(", %.2f%% of the datasheet %.4g TFLOP/s", 100 * r->mfu_sheet, o->datasheet_tflops);
    printf(" (%.4g GFLOP per token)\n", lws_config_train_flops_per_token_at(r->cfg, r->T) * 1e-9);
    printf("peak device memory: %.1f MiB (arena high-water mark); %.1f MiB reserved from the "
           "driver\n",
           r->mem_peak / 1048576.0, r->mem_reserved / 1048576.0);
    printf("host waits per step: %.2f (the host waiting for the device: submissions, uploads "
           "and downloads)\n",
           r->host_waits_per_step);
    printf("per training micro-batch: %u dispatches and %u barriers in %u command buffers; "
           "optimizer: %u dispatches and %u barriers in %u\n",
           r->micro_batch.dispatches, r->micro_batch.barriers, r->micro_batch.buffers,
           r->optimizer.dispatches, r->optimizer.barriers, r->optimizer.buffers);
    printf("dispatches: %llu recorded in the model's command buffers\n",
           (unsigned long long)r->dispatches);
    printf("barriers: %llu recorded in the model's command buffers",
           (unsigned long long)r->barriers);
    if (r->barriers_checked)
        printf(", %llu of them unneeded (the hazard checker finds no hazard across them)\n",
               (unsigned long long)r->unneeded_barriers);
    else
        printf(" (LWS_CHECK_HAZARDS=1 also counts the unneeded ones)\n");
}

static cJSON *counts_json(const lws_record_counts *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "command_buffers", c->buffers);
    cJSON_AddNumberToObject(o, "dispatches", c->dispatches);
    cJSON_AddNumberToObject(o, "barriers", c->barriers);
    return o;
}

static cJSON *plan_json(const lws_memory_plan *p) {
    cJSON *pl = cJSON_CreateObject();
    cJSON_AddNumberToObject(pl, "params", (double)p->params);
    cJSON_AddNumberToObject(pl, "grads", (double)p->grads);
    cJSON_AddNumberToObject(pl, "optimizer", (double)p->optimizer);
    cJSON_AddNumberToObject(pl, "activations", (double)p->activations);
    cJSON_AddNumberToObject(pl, "scratch", (double)p->scratch);
    cJSON_AddNumberToObject(pl, "total", (double)p->total);
    return pl;
}

static int write_report(bench_run *r, const bench_options *o) {
    char label[64];
    snprintf(label, sizeof label, "lws %s", r->cfg->train.precision);
    cJSON *j =
        lws_report_begin("train", o->label ? o->label : label, r->cfg->train.precision, r->caps);
    cJSON_AddItemToObject(j, "config", lws_report_config(r->cfg, r->T));
    cJSON *shape = cJSON_AddObjectToObject(j, "shape");
    cJSON_AddNumberToObject(shape, "micro_batch", r->B);
    cJSON_AddNumberToObject(shape, "seq_len", r->T);
    cJSON_AddNumberToObject(shape, "grad_accum", r->A);
    cJSON_AddNumberToObject(shape, "tokens_per_step", (double)r->B * r->T * r->A);
    cJSON *steps = cJSON_AddObjectToObject(j, "steps");
    cJSON_AddNumberToObject(steps, "warmup", o->warmup);
    cJSON_AddNumberToObject(steps, "timed", o->steps);
    cJSON *thr = cJSON_AddObjectToObject(j, "throughput");
    cJSON_AddNumberToObject(thr, "tokens_per_s", r->tok_s);
    cJSON_AddItemToObject(thr, "step_ms", stats_json(r->res.step_ms, o->steps));
    lws_json_number_or_null(thr, "device_ms", r->device_ms);
    cJSON_AddNumberToObject(thr, "host_waits_per_step", r->host_waits_per_step);
    cJSON *pk = cJSON_AddObjectToObject(j, "peak");
    lws_json_number_or_null(pk, "measured_tflops", r->peak);
    cJSON_AddStringToObject(pk, "measured_with", peak_method);
    lws_json_number_or_null(pk, "datasheet_tflops",
                            o->datasheet_tflops > 0 ? o->datasheet_tflops : NAN);
    cJSON *mf = cJSON_AddObjectToObject(j, "mfu");
    lws_json_number_or_null(mf, "measured", r->mfu);
    lws_json_number_or_null(mf, "datasheet", r->mfu_sheet);
    cJSON_AddItemToObject(j, "layers", r->layers_json ? r->layers_json : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "stages", r->stages_json ? r->stages_json : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "ops", r->ops_json ? r->ops_json : cJSON_CreateNull());
    if (r->dist_json) cJSON_AddItemToObject(j, "distributed", r->dist_json);
    r->layers_json = r->stages_json = r->ops_json = r->dist_json = NULL;
    cJSON *mem = cJSON_AddObjectToObject(j, "memory");
    cJSON_AddNumberToObject(mem, "peak_bytes", r->mem_peak);
    cJSON_AddStringToObject(mem, "kind", "device arena");
    cJSON_AddNumberToObject(mem, "reserved_bytes", r->mem_reserved);
    cJSON_AddItemToObject(mem, "plan", plan_json(&r->plan));
    cJSON_AddNumberToObject(j, "dispatches", (double)r->dispatches);
    cJSON *bar = cJSON_AddObjectToObject(j, "barriers");
    cJSON_AddNumberToObject(bar, "recorded", (double)r->barriers);
    lws_json_number_or_null(bar, "unneeded",
                            r->barriers_checked ? (double)r->unneeded_barriers : NAN);
    cJSON_AddItemToObject(j, "micro_batch_recording", counts_json(&r->micro_batch));
    cJSON_AddItemToObject(j, "optimizer_recording", counts_json(&r->optimizer));
    cJSON *loss = cJSON_AddObjectToObject(j, "loss");
    cJSON_AddNumberToObject(loss, "first", r->res.first_loss);
    cJSON_AddNumberToObject(loss, "last", r->res.last_loss);
    return lws_report_finish(j, o->json);
}

/* Builds the model, measures the peak, runs the steps; the model is gone
 * (its memory reset) when this returns. */
static int measure(lws_context *ctx, bench_run *r, const bench_options *o) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_model *m = NULL;
    int rank = lws_dist_rank(o->dist), ranks = lws_dist_size(o->dist);
    lws_model_shard shard = {(uint32_t)rank, (uint32_t)ranks};
    int sharded = ranks > 1 && r->cfg->train.shard_optimizer;
    if (lws_model_create_shard(ctx, r->cfg, r->B, r->T, 0, sharded ? &shard : NULL, &m) != LWS_OK ||
        (ranks > 1 && lws_dist_step_create(m, o->dist, &r->res.dstep) != LWS_OK)) {
        int rc = lws_cli_error();
        explain_refusal(ctx, r->cfg, r->B, r->T);
        return rc;
    }
    lws_context_barrier_stats(ctx, &r->barriers, &r->unneeded_barriers);
    r->dispatches = lws_context_dispatches(ctx);
    lws_model_record_counts(m, &r->micro_batch, &r->optimizer);
    r->barriers_checked = lws_context_checks_hazards(ctx);
    int rc = 0;
    r->peak = NAN; /* rank 0 reports it */
    if (rank == 0 && lws_cli_peak(o->device, &r->peak) != LWS_OK) {
        rc = lws_cli_error();
    } else if (result_alloc(&r->res, o->steps, r->cfg->model.n_layers) != LWS_OK ||
               run_steps(m, o->warmup, "", NULL, &r->res) != LWS_OK) {
        lws_error_context("%s: benchmark step", r->cfg->name);
        rc = lws_cli_error();
    }
    r->mem_peak = (double)lws_memory_peak(ctx);
    r->mem_reserved = (double)lws_memory_reserved(ctx);
    lws_dist_step_destroy(r->res.dstep);
    r->res.dstep = NULL;
    lws_model_destroy(m);
    lws_arena_reset(ctx, mark);
    return rc;
}

static int bench_train(const bench_options *o, const lws_config *cfg) {
    bench_run r = {.cfg = cfg,
                   .B = cfg->train.micro_batch,
                   .T = cfg->train.seq_len,
                   .A = cfg->train.grad_accum};
    lws_context *ctx = NULL;
    lws_context_options copt = {.device = o->device, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&copt, &ctx) != LWS_OK) return lws_cli_error();
    r.caps = lws_context_caps(ctx);
    lws_print_device(r.caps);
    lws_print_config(cfg);
    printf("shape: micro-batch %u x %u tokens x %u accumulation = %llu tokens per step; %u "
           "warm-up + %u timed steps on random tokens\n",
           r.B, r.T, r.A, (unsigned long long)r.B * r.T * r.A, o->warmup, o->steps);
    if (lws_model_plan(ctx, cfg, r.B, r.T, 1, &r.plan) == LWS_OK &&
        lws_memory_plan_fits(&r.plan, r.caps, NULL, 0))
        lws_memory_plan_print(&r.plan, stdout);
    fflush(stdout); /* before a refusal on stderr */
    int rc = measure(ctx, &r, o);
    if (rc == 0) {
        int has_timestamps = r.caps->timestamp_period_ns > 0;
        r.step = lws_stats_of(r.res.step_ms, o->steps);
        r.host_waits_per_step = (double)r.res.host_waits / o->steps;
        r.tok_s = (double)r.B * r.T * r.A / (r.step.median * 1e-3);
        double flops_per_token = lws_config_train_flops_per_token_at(cfg, r.T);
        r.mfu = r.tok_s * flops_per_token / (r.peak * 1e12);
        r.mfu_sheet = o->datasheet_tflops > 0
                          ? r.tok_s * flops_per_token / (o->datasheet_tflops * 1e12)
                          : NAN;
        r.device_ms = has_timestamps ? lws_stats_of(r.res.device_ms, o->steps).median : NAN;
        print_summary(&r, o);
        int ranks = lws_dist_size(o->dist);
        if (ranks > 1 && lws_bench_dist_report(o->dist, r.res.step_ms, r.res.dstats, o->steps,
                                               (double)r.B * r.T * r.A, &r.dist_json) != LWS_OK)
            rc = lws_cli_error();
        if (has_timestamps) {
            print_layers(&r);
            /* the per-op profile builds a model of one rank */
            if (!o->no_op_profile && ranks == 1 &&
                profile_ops(ctx, cfg, r.B, r.T, o->steps < 3 ? o->steps : 3, r.step.median,
                            &r.ops_json) != LWS_OK) {
                lws_error_context("%s: per-op profile", cfg->name);
                rc = lws_cli_error();
            }
        }
    }
    if (rc == 0 && o->json && lws_dist_rank(o->dist) == 0) rc = write_report(&r, o);
    cJSON_Delete(r.layers_json);
    cJSON_Delete(r.stages_json);
    cJSON_Delete(r.ops_json);
    cJSON_Delete(r.dist_json);
    result_free(&r.res);
    lws_context_destroy(ctx);
    return rc;
}

/* Loads the config with the command's shape overrides, then the benchmark,
 * its dry run, or the resolved config. */
static int bench_config(const bench_options *o) {
    lws_config *cfg = lws_cli_config(o->config, &o->sets);
    if (!cfg) return 1;
    /* the benchmark's own accumulation: --grad-accum, else an explicit
     * --set train.grad_accum, else 1 (not the config's) */
    int set_accum = 0;
    for (uint32_t i = 0; i < o->sets.n; i++)
        set_accum |= strncmp(o->sets.items[i], "train.grad_accum=", 17) == 0;
    if (o->grad_accum || !set_accum) cfg->train.grad_accum = o->grad_accum ? o->grad_accum : 1;
    int rc;
    if (o->sets.print_config) {
        rc = lws_cli_print_config(cfg);
    } else if (cfg->train.micro_batch == 0 || cfg->train.seq_len == 0) {
        rc = lws_cli_usage(usage,
                           "%s: no train.micro_batch or train.seq_len: give --micro-batch and "
                           "--seq-len",
                           o->config);
    } else if (o->dry_run) {
        rc = lws_cli_dry_run(cfg, o->device, cfg->train.micro_batch, cfg->train.seq_len);
    } else {
        rc = bench_train(o, cfg);
    }
    free(cfg);
    return rc;
}

int lws_cli_bench(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "peak") == 0) return bench_peak(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "kernels") == 0)
        return lws_cli_bench_kernels(argc - 1, argv + 1);
    bench_options o = {.steps = 10, .warmup = 2, .grad_accum = 0};
    const lws_cli_option options[] = {
        {"--device", LWS_OPT_TEXT, &o.device},
        {"--json", LWS_OPT_TEXT, &o.json},
        {"--label", LWS_OPT_TEXT, &o.label},
        {"--steps", LWS_OPT_U32, &o.steps, 1, 1000000},
        {"--warmup", LWS_OPT_U32, &o.warmup, 0, 1000000},
        {"--grad-accum", LWS_OPT_U32, &o.grad_accum, 1, 1u << 16},
        {"--micro-batch", LWS_OPT_SET, NULL, 1, 1u << 20, .set = "train.micro_batch"},
        {"--seq-len", LWS_OPT_SET, NULL, 1, 1u << 20, .set = "train.seq_len"},
        {"--peak-tflops", LWS_OPT_REAL, &o.datasheet_tflops, 0, INFINITY, LWS_LO_OPEN},
        {"--no-op-profile", LWS_OPT_FLAG, &o.no_op_profile},
        {"--dry-run", LWS_OPT_FLAG, &o.dry_run},
    };
    lws_cli_command c = {usage,    help,      options, sizeof options / sizeof *options,
                         "CONFIG", &o.config, &o.sets};
    int rc = lws_cli_parse(&c, argc, argv);
    if (rc) return LWS_CLI_PARSE_EXIT(rc);
    /* under mpirun: one rank per GPU, each measuring its share of a step */
    char device[256];
    if (!(o.dist = lws_cli_dist_start())) return 1;
    if (lws_cli_rank_device(o.dist, o.device, device, sizeof device) != LWS_OK)
        rc = lws_cli_dist_fail(o.dist, 1);
    o.device = device[0] ? device : NULL;
    if (rc == 0) rc = bench_config(&o);
    if (rc != 0 && lws_dist_size(o.dist) > 1) lws_dist_abort(o.dist, rc);
    lws_dist_finish(o.dist);
    return rc;
}
