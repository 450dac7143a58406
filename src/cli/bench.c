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
#include "lws/train.h"
#include "model/model.h"

static const char *usage =
    "lws bench CONFIG [--device D] [--steps N] [--warmup N] [--micro-batch N] [--seq-len N]\n"
    "                 [--grad-accum N] [--peak-tflops X] [--json FILE] [--label TEXT]\n"
    "                 [--no-op-profile] [--print-config]\n"
    "       lws bench peak [--device D] [--repeat N] [--json FILE]\n"
    "       lws bench kernels CONFIG [--micro-batch N] [--seq-len N] [--reps N] [--torch] ...";

static const char *peak_method = "lws fp32 matmul (NT) on square problems from 512^3, doubled "
                                 "while a run takes under 50 ms (up to 4096^3), the fastest";

static void help(void) {
    printf(
        "usage: %s\n\n"
        "Trains CONFIG for a few steps on random tokens (seeded by train.seed) and reports\n"
        "tokens/s, step time (median and spread), MFU, per-layer forward and backward times,\n"
        "device time per kind of op and peak device memory.\n"
        "  --device D         device index or name substring (see `lws devices`)\n"
        "  --steps N          timed steps (default 10)\n"
        "  --warmup N         untimed steps first (default 2)\n"
        "  --micro-batch N    sequences per micro-batch instead of train.micro_batch\n"
        "  --seq-len N        tokens per sequence instead of train.seq_len\n"
        "  --grad-accum N     micro-batches per optimizer step (default 1)\n"
        "  --peak-tflops X    also give MFU against a datasheet figure of X TFLOP/s\n"
        "  --json FILE        write the report (docs/bench-report.md) to FILE\n"
        "  --label TEXT       the report's name in `lws compare` (default \"lws fp32\")\n"
        "  --no-op-profile    skip the per-op profile (up to 3 more steps of a model with a\n"
        "                     timestamp region around every op)\n"
        "  --print-config     print the resolved config as JSON and stop\n\n"
        "lws bench peak: the fp32 matmul throughput MFU is measured against\n"
        "  (--repeat N runs, the fastest; --json FILE writes a \"peak\" report).\n"
        "lws bench kernels CONFIG: every op at the config's shapes; `lws bench kernels --help`.\n",
        usage);
}

/* ---- lws bench peak ------------------------------------------------------ */

static int bench_peak(int argc, char **argv) {
    const char *device = NULL, *json = NULL;
    uint32_t repeat = 3;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        }
        if (i + 1 >= argc) return lws_cli_usage(usage, "unknown option or missing value: '%s'", a);
        if (strcmp(a, "--device") == 0)
            device = argv[++i];
        else if (strcmp(a, "--json") == 0)
            json = argv[++i];
        else if (strcmp(a, "--repeat") == 0) {
            int bad = lws_parse_u32(usage, a, argv[++i], 1, 100, &repeat);
            if (bad) return bad;
        } else
            return lws_cli_usage(usage, "unknown option '%s'", a);
    }
    lws_context *ctx;
    lws_context_options opt = {.device = device, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&opt, &ctx) != LWS_OK) return lws_cli_error();
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_print_device(caps);
    double best = 0;
    for (uint32_t r = 0; r < repeat; r++) {
        double t;
        if (lws_measure_peak_tflops(ctx, &t) != LWS_OK) {
            lws_context_destroy(ctx);
            return lws_cli_error();
        }
        printf("run %u: %.4g TFLOP/s\n", r + 1, t);
        if (t > best) best = t;
    }
    printf("peak: %.4g TFLOP/s fp32, the fastest of %u runs (each: %s)\n", best, repeat,
           peak_method);
    int rc = 0;
    if (json) {
        cJSON *report = lws_report_begin("peak", "lws fp32 matmul peak", caps);
        cJSON *peak = cJSON_AddObjectToObject(report, "peak");
        cJSON_AddNumberToObject(peak, "measured_tflops", best);
        cJSON_AddStringToObject(peak, "measured_with", peak_method);
        cJSON_AddNullToObject(peak, "datasheet_tflops");
        if (lws_report_write(report, json) != LWS_OK)
            rc = lws_cli_error();
        else if (strcmp(json, "-") != 0)
            printf("report: %s\n", json);
        cJSON_Delete(report);
    }
    lws_context_destroy(ctx);
    return rc;
}

/* ---- lws bench CONFIG ---------------------------------------------------- */

typedef struct bench_options {
    const char *config, *device, *json, *label;
    uint32_t steps, warmup, micro_batch, seq_len, grad_accum;
    double datasheet_tflops;
    int op_profile, print_config;
} bench_options;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* splitmix64: the random tokens of every step, from train.seed. */
static uint32_t next_token(uint64_t *state, uint32_t vocab) {
    return (uint32_t)(lws_splitmix64(state) % vocab);
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
    uint32_t n = lws_timer_count(m->op_timer);
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
        const char *name = lws_timer_name(m->op_timer, r);
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
    uint32_t n = lws_timer_count(m->op_timer);
    LWS_TRY(lws_timer_read(m->ctx, m->op_timer, p->region_ms, n));
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
    uint64_t heap = lws_context_caps(ctx)->device_local_bytes;
    for (uint32_t b = batch; b-- > 1;)
        if (lws_model_plan(ctx, cfg, b, seq, 1).total <= heap) return b;
    return 0;
}

typedef struct bench_result {
    uint32_t steps;
    double *step_ms, *device_ms; /* [steps] */
    double *fwd_ms, *bwd_ms;     /* [steps][L] */
    double *stage_ms;            /* [steps][4]: embed, head, embed backward, optimizer */
    double first_loss, last_loss;
} bench_result;

static lws_status result_alloc(bench_result *r, uint32_t steps, uint32_t L) {
    r->steps = steps;
    r->step_ms = calloc(steps, sizeof *r->step_ms);
    r->device_ms = calloc(steps, sizeof *r->device_ms);
    r->fwd_ms = calloc((size_t)steps * L, sizeof *r->fwd_ms);
    r->bwd_ms = calloc((size_t)steps * L, sizeof *r->bwd_ms);
    r->stage_ms = calloc((size_t)steps * 4, sizeof *r->stage_ms);
    if (!r->step_ms || !r->device_ms || !r->fwd_ms || !r->bwd_ms || !r->stage_ms)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    return LWS_OK;
}

static void result_free(bench_result *r) {
    free(r->step_ms), free(r->device_ms), free(r->fwd_ms), free(r->bwd_ms), free(r->stage_ms);
}

/* `warmup` untimed then res->steps timed training steps (A micro-batches and
 * an optimizer update each) on fresh random tokens; per-layer times from the
 * model's timer after each timed step, and per-op ones when ops is given. */
static lws_status run_steps(lws_model *m, uint32_t warmup, uint32_t A, const char *phase,
                            op_profile *ops, bench_result *res) {
    lws_config *cfg = &m->cfg;
    uint32_t N = m->tokens, L = cfg->model.n_layers, V = cfg->model.vocab_size;
    uint32_t *inputs = malloc((size_t)A * N * sizeof *inputs);
    uint32_t *targets = malloc((size_t)A * N * sizeof *targets);
    double *fwd = malloc(L * sizeof *fwd), *bwd = malloc(L * sizeof *bwd);
    lws_status s = LWS_OK;
    if (!inputs || !targets || !fwd || !bwd)
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for the batch");
    uint64_t rng = cfg->train.seed ^ 0xBE7C4BE7C4ull;
    int has_timestamps = lws_context_caps(m->ctx)->timestamp_period_ns > 0;
    uint32_t total = warmup + res->steps;
    for (uint32_t step = 0; s == LWS_OK && step < total; step++) {
        for (size_t i = 0; i < (size_t)A * N; i++) {
            inputs[i] = next_token(&rng, V);
            targets[i] = next_token(&rng, V);
        }
        double t0 = now_ms(), loss = 0, norm = 0;
        for (uint32_t a = 0; s == LWS_OK && a < A; a++) {
            double mb;
            s = lws_model_forward_backward(m, inputs + (size_t)a * N, targets + (size_t)a * N, &mb);
            loss += mb / A;
        }
        if (s == LWS_OK)
            s = lws_model_optimizer_step(m, lws_lr_at(&cfg->train, step + 1), step + 1, &norm);
        double ms = now_ms() - t0;
        if (s != LWS_OK) break;
        if (step == 0) {
            res->first_loss = loss;
        }
        res->last_loss = loss;
        int timed = step >= warmup;
        printf("%s%s step %u/%u: %.2f ms, loss %.4f\n", phase, timed ? "timed" : "warm-up",
               timed ? step - warmup + 1 : step + 1, timed ? res->steps : warmup, ms, loss);
        fflush(stdout);
        if (!timed || s != LWS_OK) continue;
        uint32_t t = step - warmup;
        res->step_ms[t] = ms;
        if (!has_timestamps) continue;
        lws_timing timing = {fwd, bwd, 0, 0, 0, 0};
        s = lws_model_read_timing(m, &timing);
        if (s != LWS_OK) break;
        double busy = timing.embed_ms + timing.head_ms + timing.embed_bwd_ms + timing.optim_ms;
        for (uint32_t i = 0; i < L; i++) {
            res->fwd_ms[(size_t)t * L + i] = fwd[i];
            res->bwd_ms[(size_t)t * L + i] = bwd[i];
            busy += fwd[i] + bwd[i];
        }
        double *stage = res->stage_ms + (size_t)t * 4;
        stage[0] = timing.embed_ms;
        stage[1] = timing.head_ms;
        stage[2] = timing.embed_bwd_ms;
        stage[3] = timing.optim_ms;
        res->device_ms[t] = busy;
        if (ops) s = op_profile_read(m, ops, t);
    }
    free(inputs), free(targets), free(fwd), free(bwd);
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

static void add_number_or_null(cJSON *o, const char *name, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* Explains a model that does not fit: what would fit, or that nothing does. */
static void explain_refusal(lws_context *ctx, const lws_config *cfg, uint32_t B, uint32_t T) {
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_memory_plan plan = lws_model_plan(ctx, cfg, B, T, 1);
    if (plan.total <= caps->device_local_bytes) return;
    double state = (double)(plan.params + plan.grads + plan.optimizer);
    uint32_t fits = fitting_micro_batch(ctx, cfg, B, T);
    fprintf(stderr, "lws bench: %s at micro-batch %u x %u does not fit %s.\n", cfg->name, B, T,
            caps->name);
    if (fits)
        fprintf(stderr, "lws bench: --micro-batch %u fits (plan %.2f GiB).\n", fits,
                lws_model_plan(ctx, cfg, fits, T, 1).total / 1073741824.0);
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
                              uint32_t A, uint32_t steps, double plain_step_ms, cJSON **out) {
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
    if (s == LWS_OK && usable) s = run_steps(m, 1, A, "  profiled ", &ops, &res);
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

static int bench_train(const bench_options *o) {
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return lws_cli_usage(usage, "out of memory");
    if (lws_config_load(o->config, cfg) != LWS_OK) {
        free(cfg);
        return lws_cli_error();
    }
    if (o->micro_batch) cfg->train.micro_batch = o->micro_batch;
    if (o->seq_len) cfg->train.seq_len = o->seq_len;
    cfg->train.grad_accum = o->grad_accum;
    if (o->print_config) {
        char *text = lws_config_to_json(cfg);
        if (text) printf("%s\n", text);
        free(text);
        free(cfg);
        return text ? 0 : 1;
    }
    uint32_t B = cfg->train.micro_batch, T = cfg->train.seq_len, L = cfg->model.n_layers;
    uint32_t A = o->grad_accum;
    if (B == 0 || T == 0) {
        free(cfg);
        return lws_cli_usage(usage,
                             "%s: no train.micro_batch or train.seq_len: give "
                             "--micro-batch and --seq-len",
                             o->config);
    }
    lws_context *ctx = NULL;
    lws_context_options copt = {.device = o->device, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&copt, &ctx) != LWS_OK) {
        free(cfg);
        return lws_cli_error();
    }
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_print_device(caps);
    lws_print_config(cfg);
    uint64_t tokens_per_step = (uint64_t)B * T * A;
    printf("shape: micro-batch %u x %u tokens x %u accumulation = %llu tokens per step; %u "
           "warm-up + %u timed steps on random tokens\n",
           B, T, A, (unsigned long long)tokens_per_step, o->warmup, o->steps);
    lws_memory_plan plan = lws_model_plan(ctx, cfg, B, T, 1);
    if (plan.total <= caps->device_local_bytes) lws_memory_plan_print(&plan, stdout);
    fflush(stdout); /* before a refusal on stderr */

    int rc = 0, has_timestamps = caps->timestamp_period_ns > 0;
    bench_result res = {0};
    cJSON *layers_json = NULL, *stages_json = NULL, *ops_json = NULL;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_model *m = NULL;
    if (lws_model_create(ctx, cfg, B, T, 1, &m) != LWS_OK) {
        rc = lws_cli_error();
        explain_refusal(ctx, cfg, B, T);
        goto done;
    }
    /* The peak is measured in a context of its own, so its buffers do not
     * count in the model's peak memory. */
    double peak = NAN;
    {
        lws_context *peak_ctx = NULL;
        lws_status s = lws_context_create(&copt, &peak_ctx);
        if (s == LWS_OK) s = lws_measure_peak_tflops(peak_ctx, &peak);
        lws_context_destroy(peak_ctx);
        if (s != LWS_OK) {
            rc = lws_cli_error();
            goto done;
        }
        printf("peak: %.4g TFLOP/s measured (%s)\n", peak, peak_method);
    }
    if (result_alloc(&res, o->steps, L) != LWS_OK ||
        run_steps(m, o->warmup, A, "", NULL, &res) != LWS_OK) {
        lws_error_context("%s: benchmark step", cfg->name);
        rc = lws_cli_error();
        goto done;
    }
    double mem_peak = (double)lws_memory_peak(ctx), mem_reserved = (double)lws_memory_reserved(ctx);
    lws_model_destroy(m);
    m = NULL;
    lws_arena_reset(ctx, mark);

    lws_stats step = lws_stats_of(res.step_ms, o->steps);
    double tok_s = tokens_per_step / (step.median * 1e-3);
    double flops_per_token = lws_config_train_flops_per_token_at(cfg, T);
    double mfu = tok_s * flops_per_token / (peak * 1e12);
    double mfu_sheet =
        o->datasheet_tflops > 0 ? tok_s * flops_per_token / (o->datasheet_tflops * 1e12) : NAN;
    double device_ms = has_timestamps ? lws_stats_of(res.device_ms, o->steps).median : NAN;

    printf("\nthroughput: %.1f tokens/s; step %.2f ms median (min %.2f, max %.2f, stdev %.2f "
           "over %u steps)",
           tok_s, step.median, step.min, step.max, step.stdev, o->steps);
    if (has_timestamps) printf("; device busy %.2f ms", device_ms);
    printf("\nMFU: %.2f%% of the measured %.4g TFLOP/s", 100 * mfu, peak);
    if (isfinite(mfu_sheet))
        printf(", %.2f%% of the datasheet %.4g TFLOP/s", 100 * mfu_sheet, o->datasheet_tflops);
    printf(" (%.4g GFLOP per token)\n", flops_per_token * 1e-9);
    printf("peak device memory: %.1f MiB (arena high-water mark); %.1f MiB reserved from the "
           "driver\n",
           mem_peak / 1048576.0, mem_reserved / 1048576.0);

    if (has_timestamps) {
        printf("\nper layer (median ms over the timed steps):\n");
        printf("  %5s %7s %8s %7s %10s %10s %11s\n", "layer", "q_heads", "kv_heads", "ffn_dim",
               "forward", "backward", "fwd TFLOP/s");
        layers_json = cJSON_CreateArray();
        for (uint32_t i = 0; i < L; i++) {
            const lws_layer_shape *s = &cfg->layers[i];
            double f = column_median(res.fwd_ms, o->steps, L, i);
            double b = column_median(res.bwd_ms, o->steps, L, i);
            double flops = lws_layer_flops_per_token(cfg, i, T) * B * T;
            printf("  %5u %7u %8u %7u %10.3f %10.3f %11.3g\n", i, s->q_heads, s->kv_heads,
                   s->ffn_dim, f, b, f > 0 ? flops / (f * 1e-3) / 1e12 : 0.0);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "layer", i);
            cJSON_AddNumberToObject(e, "q_heads", s->q_heads);
            cJSON_AddNumberToObject(e, "kv_heads", s->kv_heads);
            cJSON_AddNumberToObject(e, "ffn_dim", s->ffn_dim);
            cJSON_AddNumberToObject(e, "forward_ms", f);
            cJSON_AddNumberToObject(e, "backward_ms", b);
            cJSON_AddNumberToObject(e, "forward_flops", flops);
            cJSON_AddItemToArray(layers_json, e);
        }
        static const char *const stage_names[4] = {"embed_ms", "head_ms", "embed_bwd_ms",
                                                   "optimizer_ms"};
        double stage[4];
        stages_json = cJSON_CreateObject();
        for (uint32_t j = 0; j < 4; j++) {
            stage[j] = column_median(res.stage_ms, o->steps, 4, j);
            cJSON_AddNumberToObject(stages_json, stage_names[j], stage[j]);
        }
        printf("  embedding %.3f, head (norm, logits, loss and backward) %.3f, embedding "
               "backward %.3f, optimizer %.3f\n",
               stage[0], stage[1], stage[2], stage[3]);
        if (o->op_profile && profile_ops(ctx, cfg, B, T, A, o->steps < 3 ? o->steps : 3,
                                         step.median, &ops_json) != LWS_OK) {
            lws_error_context("%s: per-op profile", cfg->name);
            rc = lws_cli_error();
            goto done;
        }
    }

    if (o->json) {
        cJSON *r = lws_report_begin("train", o->label, caps);
        cJSON_AddItemToObject(r, "config", lws_report_config(cfg, T));
        cJSON *shape = cJSON_AddObjectToObject(r, "shape");
        cJSON_AddNumberToObject(shape, "micro_batch", B);
        cJSON_AddNumberToObject(shape, "seq_len", T);
        cJSON_AddNumberToObject(shape, "grad_accum", A);
        cJSON_AddNumberToObject(shape, "tokens_per_step", (double)tokens_per_step);
        cJSON *steps = cJSON_AddObjectToObject(r, "steps");
        cJSON_AddNumberToObject(steps, "warmup", o->warmup);
        cJSON_AddNumberToObject(steps, "timed", o->steps);
        cJSON *thr = cJSON_AddObjectToObject(r, "throughput");
        cJSON_AddNumberToObject(thr, "tokens_per_s", tok_s);
        cJSON_AddItemToObject(thr, "step_ms", stats_json(res.step_ms, o->steps));
        add_number_or_null(thr, "device_ms", device_ms);
        cJSON *pk = cJSON_AddObjectToObject(r, "peak");
        cJSON_AddNumberToObject(pk, "measured_tflops", peak);
        cJSON_AddStringToObject(pk, "measured_with", peak_method);
        add_number_or_null(pk, "datasheet_tflops",
                           o->datasheet_tflops > 0 ? o->datasheet_tflops : NAN);
        cJSON *mf = cJSON_AddObjectToObject(r, "mfu");
        add_number_or_null(mf, "measured", mfu);
        add_number_or_null(mf, "datasheet", mfu_sheet);
        cJSON_AddItemToObject(r, "layers", layers_json ? layers_json : cJSON_CreateNull());
        cJSON_AddItemToObject(r, "stages", stages_json ? stages_json : cJSON_CreateNull());
        cJSON_AddItemToObject(r, "ops", ops_json ? ops_json : cJSON_CreateNull());
        layers_json = stages_json = ops_json = NULL;
        cJSON *mem = cJSON_AddObjectToObject(r, "memory");
        cJSON_AddNumberToObject(mem, "peak_bytes", mem_peak);
        cJSON_AddStringToObject(mem, "kind", "device arena");
        cJSON_AddNumberToObject(mem, "reserved_bytes", mem_reserved);
        cJSON *pl = cJSON_AddObjectToObject(mem, "plan");
        cJSON_AddNumberToObject(pl, "params", (double)plan.params);
        cJSON_AddNumberToObject(pl, "grads", (double)plan.grads);
        cJSON_AddNumberToObject(pl, "optimizer", (double)plan.optimizer);
        cJSON_AddNumberToObject(pl, "activations", (double)plan.activations);
        cJSON_AddNumberToObject(pl, "scratch", (double)plan.scratch);
        cJSON_AddNumberToObject(pl, "total", (double)plan.total);
        cJSON *loss = cJSON_AddObjectToObject(r, "loss");
        cJSON_AddNumberToObject(loss, "first", res.first_loss);
        cJSON_AddNumberToObject(loss, "last", res.last_loss);
        if (lws_report_write(r, o->json) != LWS_OK)
            rc = lws_cli_error();
        else if (strcmp(o->json, "-") != 0)
            printf("report: %s\n", o->json);
        cJSON_Delete(r);
    }

done:
    cJSON_Delete(layers_json);
    cJSON_Delete(stages_json);
    cJSON_Delete(ops_json);
    result_free(&res);
    lws_model_destroy(m);
    lws_context_destroy(ctx);
    free(cfg);
    return rc;
}

int lws_cli_bench(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "peak") == 0) return bench_peak(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "kernels") == 0)
        return lws_cli_bench_kernels(argc - 1, argv + 1);
    bench_options o = {
        .steps = 10, .warmup = 2, .grad_accum = 1, .label = "lws fp32", .op_profile = 1};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--no-op-profile") == 0) {
            o.op_profile = 0;
        } else if (strcmp(a, "--print-config") == 0) {
            o.print_config = 1;
        } else if (a[0] == '-' && a[1]) {
            if (i + 1 >= argc) return lws_cli_usage(usage, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--device") == 0)
                o.device = v;
            else if (strcmp(a, "--json") == 0)
                o.json = v;
            else if (strcmp(a, "--label") == 0)
                o.label = v;
            else if (strcmp(a, "--steps") == 0)
                bad = lws_parse_u32(usage, a, v, 1, 1000000, &o.steps);
            else if (strcmp(a, "--warmup") == 0)
                bad = lws_parse_u32(usage, a, v, 0, 1000000, &o.warmup);
            else if (strcmp(a, "--micro-batch") == 0)
                bad = lws_parse_u32(usage, a, v, 1, 1u << 20, &o.micro_batch);
            else if (strcmp(a, "--seq-len") == 0)
                bad = lws_parse_u32(usage, a, v, 1, 1u << 20, &o.seq_len);
            else if (strcmp(a, "--grad-accum") == 0)
                bad = lws_parse_u32(usage, a, v, 1, 1u << 16, &o.grad_accum);
            else if (strcmp(a, "--peak-tflops") == 0)
                bad = lws_parse_positive(usage, a, v, &o.datasheet_tflops);
            else
                return lws_cli_usage(usage, "unknown option '%s'", a);
        } else if (!o.config) {
            o.config = a;
        } else {
            return lws_cli_usage(usage, "one CONFIG only (got '%s' and '%s')", o.config, a);
        }
        if (bad) return bad;
    }
    if (!o.config) return lws_cli_usage(usage, "no CONFIG given");
    return bench_train(&o);
}
