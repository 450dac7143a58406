/* A sweep's charts: curves.svg, the validation curves of every variant
 * (seeds as a band), and profiles.svg, each variant's FFN widths and heads
 * per layer with its measured time per layer. One colour per variant in
 * both, in the sweep file's order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plot.h"
#include "cli/svg.h"
#include "cli/sweep.h"

static const cJSON *find_run(const cJSON *results, const char *name) {
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(results, "runs");
    for (const cJSON *r = runs ? runs->child : NULL; r; r = r->next) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(r, "name");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "status");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 && cJSON_IsString(st) &&
            strcmp(st->valuestring, "done") == 0)
            return r;
    }
    return NULL;
}

static int colour_of(const sweep_plan *p, const sweep_run *r) {
    return (int)(r->point * p->n_variants + r->variant);
}

static lws_status curves(const sweep_plan *p, const cJSON *results) {
    lws_plot_run *runs = calloc(p->n_runs, sizeof *runs);
    if (!runs) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    lws_status s = LWS_OK;
    int n = 0;
    for (uint32_t i = 0; s == LWS_OK && i < p->n_runs; i++) {
        const sweep_run *r = &p->runs[i];
        if (!find_run(results, r->name)) continue;
        lws_plot_run *pr = &runs[n++];
        s = lws_plot_read_log(r->dir, r->name, pr);
        if (s != LWS_OK) break;
        free(pr->group_key);
        pr->group_key = strdup(r->group);
        snprintf(pr->group_label, sizeof pr->group_label, "%s", r->group);
        pr->colour = colour_of(p, r);
    }
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(results, "metric");
    int bpb = cJSON_IsString(metric) && strcmp(metric->valuestring, "val_bpb") == 0;
    char title[256], path[1100];
    snprintf(title, sizeof title, "Sweep %s: validation %s, mean over seeds", p->name,
             bpb ? "bits per byte" : "loss");
    snprintf(path, sizeof path, "%s/curves.svg", p->dir);
    lws_plot_options o = {.title = title, .grouped = 1, .bpb = bpb, .val_only = 1, .zoom = 0.5};
    if (s == LWS_OK) s = lws_plot_draw(path, runs, n, &o);
    for (int i = 0; i < n; i++) lws_plot_run_free(&runs[i]);
    free(runs);
    return s;
}

/* Each variant's mean over its finished seeds of the per-layer median
 * forward + backward time; NULL when none finished. */
static double *layer_times(const sweep_plan *p, const cJSON *results, uint32_t variant,
                           uint32_t point) {
    uint32_t L = 0, count = 0;
    double *ms = NULL;
    for (uint32_t i = 0; i < p->n_runs; i++) {
        const sweep_run *r = &p->runs[i];
        const cJSON *o =
            r->variant == variant && r->point == point ? find_run(results, r->name) : NULL;
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "layer_fwd_ms");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "layer_bwd_ms");
        if (!o) continue;
        L = r->cfg->model.n_layers; /* the same for every seed of the variant */
        if (cJSON_GetArraySize(f) != (int)L || cJSON_GetArraySize(b) != (int)L) continue;
        if (!ms && !(ms = calloc(L, sizeof *ms))) return NULL;
        for (uint32_t l = 0; l < L; l++)
            ms[l] += cJSON_GetArrayItem(f, (int)l)->valuedouble +
                     cJSON_GetArrayItem(b, (int)l)->valuedouble;
        count++;
    }
    for (uint32_t l = 0; ms && l < L; l++) ms[l] /= count;
    return ms;
}

static lws_status profiles(const sweep_plan *p, const cJSON *results) {
    uint32_t n_groups = p->n_variants * p->n_points, k = 0;
    lws_profile_series *s = calloc(n_groups, sizeof *s);
    double **ms = calloc(n_groups, sizeof *ms);
    lws_status st = s && ms ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t i = 0; st == LWS_OK && i < p->n_runs; i++) {
        const sweep_run *r = &p->runs[i];
        if (r->seed_index != 0) continue;
        ms[k] = layer_times(p, results, r->variant, r->point);
        s[k] = (lws_profile_series){r->group, r->cfg, ms[k], colour_of(p, r)};
        k++;
    }
    char title[256], path[1100];
    snprintf(title, sizeof title, "Sweep %s: the variants' layers", p->name);
    snprintf(path, sizeof path, "%s/profiles.svg", p->dir);
    if (st == LWS_OK) st = lws_profile_chart(path, title, s, (int)k);
    for (uint32_t i = 0; ms && i < k; i++) free(ms[i]);
    free(ms), free(s);
    return st;
}

lws_status sweep_write_charts(const sweep_plan *p, const cJSON *results) {
    LWS_TRY(curves(p, results));
    return profiles(p, results);
}
