/* lws sweep: the plan of a sweep file (sweep_file.c), the runs (sweep.c),
 * their results (sweep_results.c) and charts (sweep_charts.c).
 *
 * A sweep is variants x grid points x seeds. Each run is the base config
 * with, in order: the sweep's "set" overrides, the variant's LWS profile
 * (the base's profile keys removed first, so a variant differs from the base
 * only in its profile unless it says otherwise), the variant's own "set",
 * the parameter budget (lws.match_params), the grid point, and the run's
 * seed, steps, evaluation, name and directory. */
#ifndef LWS_CLI_SWEEP_H
#define LWS_CLI_SWEEP_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lws/config.h"
#include "lws/status.h"

#define SWEEP_NAME_MAX     64
#define SWEEP_MAX_VARIANTS 64
#define SWEEP_MAX_AXES     8
#define SWEEP_MAX_SEEDS    256
#define SWEEP_MAX_SETS     128

/* A list of "PATH=VALUE" overrides, each malloc'd. */
typedef struct sweep_sets {
    char *items[SWEEP_MAX_SETS];
    uint32_t n;
} sweep_sets;

typedef struct sweep_variant {
    char name[SWEEP_NAME_MAX];
    sweep_sets sets; /* the profile and the variant's own "set" */
    int match;       /* takes the sweep's budget */
} sweep_variant;

/* One grid axis: a config path and its values (as --set text and as names). */
typedef struct sweep_axis {
    char path[128];
    uint32_t n;
    char **values; /* "3e-3", "[1, 2]", "\"text\"" */
    char **labels; /* "lr3e-3": the path's last key and the value, for run names */
    cJSON *json;   /* the values as given, for results.json */
} sweep_axis;

typedef struct sweep_run {
    char name[300];  /* crown-lr0.003-s1 */
    char group[256]; /* crown-lr0.003: the run's variant at its grid point */
    char dir[1400];  /* SWEEP_DIR/runs/<name> */
    uint32_t variant, point, seed_index;
    uint64_t seed;
    lws_config *cfg;   /* resolved */
    char *config_json; /* lws_config_to_json(cfg): what the run directory's config.json holds */
} sweep_run;

typedef struct sweep_plan {
    char path[1024]; /* the sweep file */
    char name[SWEEP_NAME_MAX];
    char description[1024];
    char base[1200];   /* the base config, relative to the working directory */
    char dir[1024];    /* SWEEP_DIR */
    sweep_sets common; /* the sweep's "set" */
    sweep_variant variants[SWEEP_MAX_VARIANTS];
    uint32_t n_variants, baseline;
    sweep_axis axes[SWEEP_MAX_AXES];
    uint32_t n_axes, n_points; /* grid points: the product of the axes' sizes (1 without) */
    uint64_t seeds[SWEEP_MAX_SEEDS];
    uint32_t n_seeds;
    uint64_t tokens, steps, tokens_per_step;
    uint64_t eval_tokens; /* 0: the whole validation split */
    uint32_t eval_every;  /* 0: the base's */
    int has_eval_every;
    int match_kind; /* 0 none, 1 a number, 2 a variant of the sweep, 3 a config file */
    uint64_t budget_params;
    char budget_from[1200]; /* the variant or config the budget is taken from */
    uint64_t *budgets;      /* [n_points] the budget at each grid point (0: no matching) */
    sweep_run *runs;
    uint32_t n_runs;
    char *text; /* the sweep file as read */
} sweep_plan;

/* Reads and checks a sweep file and resolves every run's config (so any
 * problem is reported before training starts, naming the sweep file's field).
 * out_dir: SWEEP_DIR (NULL: runs/<name>). */
lws_status sweep_plan_load(const char *path, const char *out_dir, sweep_plan *plan);
void sweep_plan_free(sweep_plan *plan);

/* The grid point's values as {path: value}, a new object. */
cJSON *sweep_point_json(const sweep_plan *p, uint32_t point);

/* ---- one run (sweep_run.c) ------------------------------------------------------ */

/* The body of the process that trains run `run` of the plan on `device`
 * (forked by the sweep, whose pid is `parent`): resumes from the run's newest
 * checkpoint when there is one, writes result.json when it finishes.
 * Returns the process's exit status: 0 done, 130 stopped by a signal, 1
 * failed (the message on stderr). */
int sweep_child(const sweep_plan *p, uint32_t run, const char *device, int parent, int quiet);

/* ---- results (sweep_results.c) --------------------------------------------- */

/* Reads every finished run's result.json and writes SWEEP_DIR/results.json
 * and results.md; *done gets the number of finished runs. */
lws_status sweep_write_results(const sweep_plan *p, uint32_t *done);

/* Mean and sample standard deviation (n - 1; 0 for one value). */
void sweep_mean_std(const double *v, uint32_t n, double *mean, double *std);

/* ---- charts (sweep_charts.c) ------------------------------------------------ */

/* curves.svg (validation loss against tokens, one colour per variant, seeds as
 * a band) and profiles.svg (FFN width, heads and measured time per layer). */
lws_status sweep_write_charts(const sweep_plan *p, const cJSON *results);

#endif
