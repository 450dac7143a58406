/* A sweep's results: every finished run's result.json (the numbers of the
 * run's own final evaluation) gathered into results.json, with each
 * variant's mean and spread over seeds and its difference from the
 * baseline, paired by seed; results.md is the same as tables. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/sweep.h"
#include "util/files.h"

void sweep_mean_std(const double *v, uint32_t n, double *mean, double *std) {
    double sum = 0, sq = 0;
    for (uint32_t i = 0; i < n; i++) sum += v[i];
    *mean = n ? sum / n : NAN;
    for (uint32_t i = 0; i < n; i++) sq += (v[i] - *mean) * (v[i] - *mean);
    *std = n > 1 ? sqrt(sq / (n - 1)) : 0;
}

static double number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The run's result.json, or NULL when the run has not finished. */
static cJSON *read_result(const sweep_run *r) {
    char path[1500];
    snprintf(path, sizeof path, "%s/result.json", r->dir);
    if (access(path, F_OK) != 0) return NULL;
    char *text = NULL;
    size_t len = 0;
    if (lws_read_file(path, 16 << 20, &text, &len) != LWS_OK) return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(o) || !isfinite(number(o, "val_loss"))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void add_stat(cJSON *o, const char *key, const double *v, uint32_t n) {
    int finite = n > 0;
    for (uint32_t i = 0; i < n; i++) finite &= isfinite(v[i]);
    if (!finite) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    double mean, std;
    sweep_mean_std(v, n, &mean, &std);
    cJSON *s = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(s, "mean", mean);
    cJSON_AddNumberToObject(s, "std", std);
}

/* The runs of one variant at one grid point, in seed order (NULL: not done). */
static void group_runs(const sweep_plan *p, cJSON *const *res, uint32_t variant, uint32_t point,
                       const cJSON **out) {
    for (uint32_t r = 0; r < p->n_runs; r++)
        if (p->runs[r].variant == variant && p->runs[r].point == point)
            out[p->runs[r].seed_index] = res[r];
}

/* Values of `key` of the done runs; n gets their number. */
static void values(const cJSON **runs, uint32_t n_seeds, const char *key, double *v, uint32_t *n) {
    *n = 0;
    for (uint32_t s = 0; s < n_seeds; s++)
        if (runs[s]) v[(*n)++] = number(runs[s], key);
}

/* The difference from the baseline over the seeds both finished. */
static cJSON *versus(const sweep_plan *p, const cJSON **runs, const cJSON **base,
                     const char *metric) {
    double d[SWEEP_MAX_SEEDS], a[SWEEP_MAX_SEEDS], b[SWEEP_MAX_SEEDS], ratio[SWEEP_MAX_SEEDS];
    uint32_t k = 0;
    for (uint32_t s = 0; s < p->n_seeds; s++) {
        if (!runs[s] || !base[s]) continue;
        a[k] = number(runs[s], metric), b[k] = number(base[s], metric);
        d[k] = a[k] - b[k];
        ratio[k] = number(runs[s], "tokens_per_s") / number(base[s], "tokens_per_s");
        k++;
    }
    if (k == 0) return cJSON_CreateNull();
    double mean, std, ma, sa, mb, sb, mr, sr;
    sweep_mean_std(d, k, &mean, &std);
    sweep_mean_std(a, k, &ma, &sa);
    sweep_mean_std(b, k, &mb, &sb);
    sweep_mean_std(ratio, k, &mr, &sr);
    double seed_std = sqrt(0.5 * (sa * sa + sb * sb));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "baseline", p->variants[p->baseline].name);
    cJSON_AddStringToObject(o, "metric", metric);
    cJSON_AddNumberToObject(o, "pairs", k);
    cJSON_AddNumberToObject(o, "diff_mean", mean);
    cJSON_AddNumberToObject(o, "diff_std", std);
    cJSON_AddNumberToObject(o, "seed_std", seed_std);
    cJSON_AddBoolToObject(o, "exceeds_seed_spread", k > 1 && fabs(mean) > seed_std);
    cJSON_AddBoolToObject(o, "exceeds_paired_2se", k > 1 && fabs(mean) > 2 * std / sqrt(k));
    cJSON_AddNumberToObject(o, "tokens_per_s_ratio", mr);
    return o;
}

static cJSON *variant_json(const sweep_plan *p, cJSON *const *res, uint32_t v, uint32_t point,
                           const char *metric) {
    const cJSON *runs[SWEEP_MAX_SEEDS] = {0}, *base[SWEEP_MAX_SEEDS] = {0};
    group_runs(p, res, v, point, runs);
    group_runs(p, res, p->baseline, point, base);
    const sweep_run *first = NULL;
    for (uint32_t r = 0; r < p->n_runs && !first; r++)
        if (p->runs[r].variant == v && p->runs[r].point == point) first = &p->runs[r];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", first->group);
    cJSON_AddStringToObject(o, "variant", p->variants[v].name);
    cJSON_AddItemToObject(o, "grid", sweep_point_json(p, point));
    double x[SWEEP_MAX_SEEDS];
    uint32_t n = 0;
    values(runs, p->n_seeds, "seed", x, &n);
    cJSON *seeds = cJSON_AddArrayToObject(o, "seeds");
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(seeds, cJSON_CreateNumber(x[i]));
    cJSON_AddNumberToObject(o, "runs", n);
    uint64_t params = lws_config_params(first->cfg);
    cJSON_AddNumberToObject(o, "params", (double)params);
    cJSON_AddNumberToObject(o, "non_embedding_params",
                            (double)(params - lws_config_embedding_params(first->cfg)));
    cJSON_AddNumberToObject(o, "flops_per_token", lws_config_train_flops_per_token(first->cfg));
    static const char *const keys[] = {"val_loss", "val_bpb", "val_ppl",           "tokens_per_s",
                                       "wall_s",   "step_ms", "peak_memory_bytes", NULL};
    for (const char *const *k = keys; *k; k++) {
        values(runs, p->n_seeds, *k, x, &n);
        add_stat(o, *k, x, n);
    }
    cJSON_AddItemToObject(o, "vs_baseline",
                          v == p->baseline ? cJSON_CreateNull() : versus(p, runs, base, metric));
    return o;
}

/* ---- results.md ------------------------------------------------------------------- */

/* "mean ± std" of a statistic; fmt NULL: digits grouped by thousands. */
static const char *stat_text(const cJSON *o, const char *key, const char *fmt, double scale,
                             char *out, size_t n) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsObject(s)) return snprintf(out, n, "-"), out;
    char a[40], b[40];
    if (fmt) {
        snprintf(a, sizeof a, fmt, number(s, "mean") * scale);
        snprintf(b, sizeof b, fmt, number(s, "std") * scale);
    } else {
        lws_cli_number(number(s, "mean") * scale, a, sizeof a);
        lws_cli_number(number(s, "std") * scale, b, sizeof b);
    }
    snprintf(out, n, "%s ± %s", a, b);
    return out;
}

/* The baseline columns of a variant: the paired difference, whether it
 * exceeds the seed spread, the throughput ratio. */
static void versus_text(const cJSON *v, char *diff, char *exceeds, char *ratio, size_t n) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "vs_baseline");
    snprintf(diff, n, "%s", number(v, "runs") == 0 ? "-" : "baseline");
    snprintf(exceeds, n, "%s", "");
    snprintf(ratio, n, "%s", number(v, "runs") == 0 ? "-" : "1");
    if (!cJSON_IsObject(d)) return;
    snprintf(diff, n, "%+.4f (%.4f, n=%.0f)", number(d, "diff_mean"), number(d, "diff_std"),
             number(d, "pairs"));
    snprintf(exceeds, n, "%s (seed sd %.4f)",
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "exceeds_seed_spread")) ? "yes"
                                                                                      : "no",
             number(d, "seed_std"));
    snprintf(ratio, n, "%.2f", number(d, "tokens_per_s_ratio"));
}

static void md_variant_row(FILE *f, const cJSON *v) {
    char loss[96], bpb[96], ppl[96], tok[96], wall[96], mem[96], diff[96], exceeds[96], ratio[96],
        params[32], non_emb[32], flops[32];
    versus_text(v, diff, exceeds, ratio, 96);
    fprintf(f, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
            cJSON_GetObjectItemCaseSensitive(v, "name")->valuestring, number(v, "runs"),
            lws_cli_number(number(v, "params"), params, sizeof params),
            lws_cli_number(number(v, "non_embedding_params"), non_emb, sizeof non_emb),
            lws_cli_number(number(v, "flops_per_token"), flops, sizeof flops),
            stat_text(v, "val_loss", "%.4f", 1, loss, 96),
            stat_text(v, "val_bpb", "%.4f", 1, bpb, 96),
            stat_text(v, "val_ppl", "%.2f", 1, ppl, 96), diff, exceeds,
            stat_text(v, "tokens_per_s", NULL, 1, tok, 96), ratio,
            stat_text(v, "wall_s", "%.0f", 1, wall, 96),
            stat_text(v, "peak_memory_bytes", "%.1f", 1 / 1048576.0, mem, 96));
}

static void md_variants(FILE *f, const cJSON *results, const char *metric) {
    const char *unit = strcmp(metric, "val_bpb") == 0 ? "bits/byte" : "loss";
    fprintf(f,
            "| Variant | Runs | Parameters | Non-embedding | FLOPs/token | Val loss | Bits/byte "
            "| Perplexity | Δ %s vs baseline (paired sd) | Exceeds seed spread | tokens/s "
            "| × baseline | Wall s | Peak MiB |\n",
            unit);
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|\n");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(results, "variants");
    for (const cJSON *v = vs ? vs->child : NULL; v; v = v->next) md_variant_row(f, v);
}

static void md_runs(FILE *f, const cJSON *results) {
    fprintf(f, "| Run | Variant | Seed | Val loss | Bits/byte | Perplexity | Val tokens | tokens/s "
               "| Wall s | Peak MiB | Status |\n");
    fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(results, "runs");
    for (const cJSON *r = runs ? runs->child : NULL; r; r = r->next) {
        const char *status = cJSON_GetObjectItemCaseSensitive(r, "status")->valuestring;
        fprintf(f, "| %s | %s | %.0f |", cJSON_GetObjectItemCaseSensitive(r, "name")->valuestring,
                cJSON_GetObjectItemCaseSensitive(r, "group")->valuestring, number(r, "seed"));
        if (strcmp(status, "done") == 0)
            fprintf(f, " %.4f | %.4f | %.2f | %.0f | %.0f | %.0f | %.1f | done |\n",
                    number(r, "val_loss"), number(r, "val_bpb"), number(r, "val_ppl"),
                    number(r, "val_tokens"), number(r, "tokens_per_s"), number(r, "wall_s"),
                    number(r, "peak_memory_bytes") / 1048576.0);
        else
            fprintf(f, " - | - | - | - | - | - | - | %s |\n", status);
    }
}

static lws_status write_markdown(const sweep_plan *p, const cJSON *results, const char *metric,
                                 uint32_t done) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    fprintf(f, "# Sweep %s\n\n", p->name);
    if (p->description[0]) fprintf(f, "%s\n\n", p->description);
    fprintf(f,
            "%u of %u runs finished (`%s`, base `%s`). Every run trains on %llu tokens; its "
            "final validation scores %s. Baseline: %s%s%s.\n\n",
            done, p->n_runs, p->path, p->base, (unsigned long long)p->tokens,
            p->eval_tokens ? "the first eval.tokens of the validation split"
                           : "the whole validation split",
            p->variants[p->baseline].name, p->match_kind ? "; parameter budget " : "",
            p->match_kind ? p->budget_from : "");
    const cJSON *devices = cJSON_GetObjectItemCaseSensitive(results, "devices");
    const cJSON *load = cJSON_GetObjectItemCaseSensitive(results, "load_average_range");
    if (cJSON_GetArraySize(devices) > 0) {
        fprintf(f, "Trained on");
        for (const cJSON *d = devices->child; d; d = d->next)
            fprintf(f, "%s %s", d == devices->child ? "" : ",", d->valuestring);
        fprintf(f, "; %.1f minutes of training in all", number(results, "wall_s_total") / 60);
        if (cJSON_GetArraySize(load) == 2)
            fprintf(f, "; the host's load average was %.2f to %.2f as runs finished",
                    cJSON_GetArrayItem(load, 0)->valuedouble,
                    cJSON_GetArrayItem(load, 1)->valuedouble);
        fprintf(f, ".\n\n");
    }
    fprintf(f, "## Variants: mean ± standard deviation over seeds\n\n");
    md_variants(f, results, metric);
    fprintf(f, "\nΔ is the mean over seeds of (variant − baseline) at the same seed; the paired "
               "sd is the standard deviation of those differences. A difference exceeds the seed "
               "spread when |Δ| is larger than the pooled standard deviation over seeds of the "
               "two variants, sqrt((sd_variant² + sd_baseline²) / 2).\n\n## Runs\n\n");
    md_runs(f, results);
    fclose(f);
    char path[1100];
    snprintf(path, sizeof path, "%s/results.md", p->dir);
    lws_status s = text ? lws_write_file_atomic(path, text, len)
                        : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    free(text);
    return s;
}

/* ---- results.json ------------------------------------------------------------------ */

static cJSON *run_json(const sweep_plan *p, const sweep_run *r, cJSON *res) {
    cJSON *o = res ? cJSON_Duplicate(res, 1) : cJSON_CreateObject();
    if (!res) {
        cJSON_AddStringToObject(o, "name", r->name);
        cJSON_AddStringToObject(o, "variant", p->variants[r->variant].name);
        cJSON_AddStringToObject(o, "group", r->group);
        cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    }
    cJSON_AddStringToObject(o, "status", res ? "done" : "not finished");
    cJSON_AddStringToObject(o, "run_dir", r->dir);
    return o;
}

/* Where the finished runs ran: their devices, the training time they took
 * in all, and the range of the host's load when they finished. */
static void add_machine(cJSON *o, const sweep_plan *p, cJSON *const *res) {
    cJSON *devices = cJSON_AddArrayToObject(o, "devices");
    double wall = 0, lo = INFINITY, hi = -INFINITY;
    for (uint32_t r = 0; r < p->n_runs; r++) {
        if (!res[r]) continue;
        wall += number(res[r], "wall_s");
        lo = fmin(lo, number(res[r], "load_average"));
        hi = fmax(hi, number(res[r], "load_average"));
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(res[r], "device");
        int known = !cJSON_IsString(d);
        for (const cJSON *k = devices->child; k && !known; k = k->next)
            known = strcmp(k->valuestring, d->valuestring) == 0;
        if (!known) cJSON_AddItemToArray(devices, cJSON_CreateString(d->valuestring));
    }
    cJSON_AddNumberToObject(o, "wall_s_total", wall);
    cJSON *load = cJSON_AddArrayToObject(o, "load_average_range");
    if (isfinite(lo)) {
        cJSON_AddItemToArray(load, cJSON_CreateNumber(lo));
        cJSON_AddItemToArray(load, cJSON_CreateNumber(hi));
    }
}

lws_status sweep_write_results(const sweep_plan *p, uint32_t *done) {
    cJSON **res = calloc(p->n_runs, sizeof *res);
    if (!res) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    /* bits per byte when every finished run knows it, else the loss */
    const char *metric = "val_bpb";
    *done = 0;
    for (uint32_t r = 0; r < p->n_runs; r++) {
        res[r] = read_result(&p->runs[r]);
        if (res[r] && !isfinite(number(res[r], "val_bpb"))) metric = "val_loss";
        *done += res[r] != NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "lws_sweep_version", 1);
    cJSON_AddStringToObject(o, "sweep", p->name);
    cJSON_AddStringToObject(o, "file", p->path);
    cJSON_AddStringToObject(o, "base", p->base);
    cJSON_AddStringToObject(o, "baseline", p->variants[p->baseline].name);
    cJSON_AddStringToObject(o, "metric", metric);
    cJSON_AddNumberToObject(o, "tokens", (double)p->tokens);
    cJSON_AddNumberToObject(o, "eval_tokens", (double)p->eval_tokens);
    if (p->match_kind) cJSON_AddNumberToObject(o, "budget_params", (double)p->budget_params);
    cJSON_AddNumberToObject(o, "runs_done", *done);
    cJSON_AddNumberToObject(o, "runs_total", p->n_runs);
    add_machine(o, p, res);
    cJSON *variants = cJSON_AddArrayToObject(o, "variants");
    for (uint32_t point = 0; point < p->n_points; point++)
        for (uint32_t v = 0; v < p->n_variants; v++)
            cJSON_AddItemToArray(variants, variant_json(p, res, v, point, metric));
    cJSON *runs = cJSON_AddArrayToObject(o, "runs");
    for (uint32_t r = 0; r < p->n_runs; r++)
        cJSON_AddItemToArray(runs, run_json(p, &p->runs[r], res[r]));
    char path[1100];
    snprintf(path, sizeof path, "%s/results.json", p->dir);
    lws_status s = lws_write_json_atomic(path, o);
    if (s == LWS_OK) s = write_markdown(p, o, metric, *done);
    if (s == LWS_OK && *done) s = sweep_write_charts(p, o);
    cJSON_Delete(o);
    for (uint32_t r = 0; r < p->n_runs; r++) cJSON_Delete(res[r]);
    free(res);
    return s;
}
