/* lws sweep SWEEP.json: the LWS ablation in one command. Trains every run
 * of the sweep file (variants x grid points x seeds) in SWEEP_DIR/runs/<run>,
 * one process per run and at most one run per device at a time, and writes
 * results.json, results.md, curves.svg and profiles.svg. A finished run has
 * result.json and is skipped when the sweep starts again; an interrupted one
 * resumes from its newest checkpoint. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/sweep.h"
#include "lws/model.h"
#include "util/files.h"

static const char *usage =
    "lws sweep SWEEP.json [--out DIR] [--devices D[,D...]] [--dry-run] [--quiet]";

static void help(void) {
    printf("usage: %s\n\n"
           "Trains every run of a sweep file (docs/ablation.md describes the format): each\n"
           "variant at each grid point with each seed, on the same data and token budget,\n"
           "in SWEEP_DIR/runs/<run>/, then writes SWEEP_DIR/results.json, results.md,\n"
           "curves.svg and profiles.svg. Started again, it skips finished runs and resumes\n"
           "interrupted ones from their newest checkpoint.\n"
           "  --out DIR          SWEEP_DIR (default runs/<the sweep's name>)\n"
           "  --devices D,D      devices to train on, side by side, one run per device at a\n"
           "                     time (indices or name substrings, see `lws devices`; a\n"
           "                     device named twice takes two runs at once); default: the\n"
           "                     first device, or LWS_DEVICE\n"
           "  --dry-run          check the file, resolve every run and print the plan and\n"
           "                     each variant's memory plan on the first device; train nothing\n"
           "  --quiet            no validation lines while runs train\n",
           usage);
}

#define MAX_DEVICES 16

typedef struct sweep_args {
    const char *file, *out, *devices;
    int dry_run, quiet;
    char device_text[1024];
    const char *device[MAX_DEVICES];
    uint32_t n_devices;
} sweep_args;

static int parse(int argc, char **argv, sweep_args *a) {
    memset(a, 0, sizeof *a);
    const lws_cli_option options[] = {
        {"--out", LWS_OPT_TEXT, &a->out},
        {"--devices", LWS_OPT_TEXT, &a->devices},
        {"--dry-run", LWS_OPT_FLAG, &a->dry_run},
        {"--quiet", LWS_OPT_FLAG, &a->quiet},
    };
    lws_cli_command c = {usage,        help,     options, sizeof options / sizeof *options,
                         "SWEEP.json", &a->file, NULL};
    int rc = lws_cli_parse(&c, argc, argv);
    if (rc) return rc;
    const char *list = a->devices ? a->devices : getenv("LWS_DEVICE");
    snprintf(a->device_text, sizeof a->device_text, "%s", list ? list : "");
    if (!a->devices) { /* one device: LWS_DEVICE (a name may hold a comma) or the first */
        a->device[a->n_devices++] = a->device_text;
        return 0;
    }
    for (char *d = a->device_text, *next; d; d = next) {
        next = strchr(d, ',');
        if (next) *next++ = 0;
        if (!*d) return lws_cli_usage(usage, "--devices '%s': an empty device name", a->devices);
        if (a->n_devices == MAX_DEVICES)
            return lws_cli_usage(usage, "--devices: more than %d devices", MAX_DEVICES);
        a->device[a->n_devices++] = d;
    }
    return 0;
}

/* ---- the plan ------------------------------------------------------------------- */

static void print_list(const lws_config *cfg, int heads) {
    for (uint32_t i = 0; i < cfg->model.n_layers; i++)
        printf("%s%u", i ? " " : "", heads ? cfg->layers[i].q_heads : cfg->layers[i].ffn_dim);
}

/* A profile whose attention widths vary but whose head counts do not: the
 * rounding to whole KV groups erases its attention scaling at this size. */
static void note_flat_heads(const sweep_run *run) {
    const lws_config *c = run->cfg;
    double lo = c->layers[0].alpha, hi = lo;
    int same = 1;
    for (uint32_t i = 1; i < c->model.n_layers; i++) {
        lo = fmin(lo, c->layers[i].alpha), hi = fmax(hi, c->layers[i].alpha);
        same &= c->layers[i].q_heads == c->layers[0].q_heads;
    }
    if (!same || hi - lo < 0.01 || c->lws.has_q_heads) return;
    uint32_t unit = c->lws.gqa == LWS_GQA_GROUP_SIZE ? c->lws.gqa_value : c->layers[0].kv_heads;
    printf("  note: %s scales attention from %.2f to %.2f of d_model, but every layer rounds to "
           "%u query heads (widths are multiples of %u heads x head_dim %u): its heads do not "
           "vary at this size\n",
           run->group, lo, hi, c->layers[0].q_heads, unit, c->model.head_dim);
}

static void print_plan(const sweep_plan *p) {
    const lws_config *c0 = p->runs[0].cfg;
    printf("sweep %s (%s): %u variant%s x %u grid point%s x %u seed%s = %u runs in %s\n", p->name,
           p->path, p->n_variants, p->n_variants == 1 ? "" : "s", p->n_points,
           p->n_points == 1 ? "" : "s", p->n_seeds, p->n_seeds == 1 ? "" : "s", p->n_runs, p->dir);
    printf("base %s; every run %llu tokens (%u steps of %llu); final validation on %s\n", p->base,
           (unsigned long long)p->tokens, c0->train.steps,
           (unsigned long long)(p->tokens / c0->train.steps),
           p->eval_tokens ? "the first eval.tokens of the validation split"
                          : "the whole validation split");
    if (p->match_kind)
        printf("parameter budget: %llu (%s); baseline %s\n", (unsigned long long)p->budget_params,
               p->budget_from, p->variants[p->baseline].name);
    else
        printf("no parameter matching; baseline %s\n", p->variants[p->baseline].name);
    printf("  %-16s %6s %12s %12s %11s  %s | %s\n", "variant", "layers", "parameters", "non-emb",
           "FLOPs/tok", "query heads per layer", "FFN width per layer");
    for (uint32_t r = 0; r < p->n_runs; r++) {
        const sweep_run *run = &p->runs[r];
        if (run->seed_index != 0) continue;
        const lws_config *c = run->cfg;
        uint64_t params = lws_config_params(c);
        printf("  %-16s %6u %12llu %12llu %11.4g  ", run->group, c->model.n_layers,
               (unsigned long long)params,
               (unsigned long long)(params - lws_config_embedding_params(c)),
               lws_config_train_flops_per_token(c));
        print_list(c, 1);
        printf(" | ");
        print_list(c, 0);
        printf("\n");
    }
    for (uint32_t r = 0; r < p->n_runs; r++)
        if (p->runs[r].seed_index == 0) note_flat_heads(&p->runs[r]);
}

/* --dry-run: the plan and every variant's memory plan on the device. */
static int dry_run(const sweep_plan *p, const char *device) {
    print_plan(p);
    lws_context *ctx = NULL;
    lws_context_options copt = {.device = device, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&copt, &ctx) != LWS_OK) return lws_cli_error();
    const lws_device_caps *caps = lws_context_caps(ctx);
    printf("memory on %s (%.2f GiB), micro-batch %u x %u, nothing allocated:\n", caps->name,
           caps->device_local_bytes / 1073741824.0, p->runs[0].cfg->train.micro_batch,
           p->runs[0].cfg->train.seq_len);
    int rc = 0;
    for (uint32_t r = 0; r < p->n_runs && rc == 0; r++) {
        const sweep_run *run = &p->runs[r];
        if (run->seed_index != 0) continue;
        const lws_train_config *t = &run->cfg->train;
        lws_memory_plan plan;
        char why[768];
        if (lws_model_plan(ctx, run->cfg, t->micro_batch, t->seq_len, 1, &plan) != LWS_OK) {
            rc = lws_cli_error();
            break;
        }
        int fits = lws_memory_plan_fits(&plan, caps, why, sizeof why);
        printf("  %-16s %9.2f GiB  %s%s\n", run->group, plan.total / 1073741824.0,
               fits ? "fits" : "does not fit: ", fits ? "" : why);
    }
    lws_context_destroy(ctx);
    if (rc == 0) printf("dry run: the sweep file is valid; nothing trained\n");
    return rc;
}

/* ---- state of the runs ------------------------------------------------------------ */

enum { RUN_PENDING, RUN_RUNNING, RUN_DONE, RUN_FAILED };

static int file_exists(const char *dir, const char *name) {
    char path[1500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Done when it has result.json. A run directory whose config.json differs
 * from the run's config now was trained for another sweep file: refused. */
static lws_status run_state(const sweep_plan *p, const sweep_run *r, int *state) {
    char path[1500];
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    *state = RUN_PENDING;
    if (access(path, F_OK) == 0) {
        char *text = NULL;
        size_t len = 0;
        LWS_TRY(lws_read_file(path, 16 << 20, &text, &len));
        int same = strcmp(text, r->config_json) == 0;
        free(text);
        if (!same)
            return lws_fail(LWS_ERR_INVALID,
                            "%s holds a run of another config than %s now gives it (its "
                            "config.json differs: the sweep file, its base or the working "
                            "directory changed); move the run directory away to train it again, "
                            "or choose another directory with --out",
                            r->dir, p->path);
    }
    if (file_exists(r->dir, "result.json")) *state = RUN_DONE;
    return LWS_OK;
}

/* Every token file the runs read exists, before hours of training start. */
static lws_status check_data(const sweep_plan *p) {
    for (uint32_t r = 0; r < p->n_runs; r++) {
        const lws_data_config *d = &p->runs[r].cfg->data;
        const char *files[2] = {d->train, d->val};
        for (int k = 0; k < 2; k++)
            if (files[k][0] && access(files[k], R_OK) != 0)
                return lws_fail(LWS_ERR_IO,
                                "%s: run %s reads data.%s = %s: %s (make token files with `lws "
                                "prepare`, or point the base config or the sweep's \"set\" at "
                                "yours)",
                                p->path, p->runs[r].name, k ? "val" : "train", files[k],
                                strerror(errno));
    }
    return LWS_OK;
}

/* One sweep per directory at a time. The descriptor stays open (and locked)
 * until the sweep ends; run processes close their copy. */
static lws_status lock_sweep(const sweep_plan *p, int *fd) {
    char path[1100];
    LWS_TRY(lws_mkdir_p(p->dir));
    snprintf(path, sizeof path, "%s/.lock", p->dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return lws_fail(LWS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
        return lws_fail(LWS_ERR_INVALID, "%s: another lws sweep is running in this directory",
                        p->dir);
    return LWS_OK;
}

/* ---- running ----------------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

typedef struct scheduler {
    const sweep_plan *plan;
    const sweep_args *args;
    int *state;
    pid_t pid[MAX_DEVICES];
    uint32_t run[MAX_DEVICES];
    double started[MAX_DEVICES];
    uint32_t done, failed, todo, finished_now, started_n, done_before;
    double time_now; /* wall seconds of the runs finished by this sweep */
    int lock_fd, forwarded;
} scheduler;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void format_duration(double s, char *out, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
}

static int start_run(scheduler *s, uint32_t slot, uint32_t run) {
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        fprintf(stderr, "lws: cannot start a process for run %s: %s\n", s->plan->runs[run].name,
                strerror(errno));
        return -1;
    }
    if (pid == 0) {
        close(s->lock_fd);
        _exit(sweep_child(s->plan, run, s->args->device[slot], (int)parent, s->args->quiet));
    }
    s->pid[slot] = pid;
    s->run[slot] = run;
    s->started[slot] = now_s();
    s->state[run] = RUN_RUNNING;
    printf("run %u/%u: %s on device %s\n", s->done_before + ++s->started_n, s->plan->n_runs,
           s->plan->runs[run].name,
           s->args->device[slot][0] ? s->args->device[slot] : "0 (the first)");
    fflush(stdout);
    return 0;
}

static void finish_run(scheduler *s, uint32_t slot, int status) {
    uint32_t run = s->run[slot];
    const char *name = s->plan->runs[run].name;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    s->pid[slot] = 0;
    if (code == 0) {
        s->state[run] = RUN_DONE;
        s->done++, s->todo--, s->finished_now++;
        s->time_now += now_s() - s->started[slot];
        double each = s->time_now / s->finished_now;
        char eta[32];
        format_duration(each * s->todo / s->args->n_devices, eta, sizeof eta);
        printf("done %u/%u runs; about %s to go\n", s->done, s->plan->n_runs, eta);
    } else if (stop_signal || code == 130 || code == 128 + SIGTERM || code == 128 + SIGINT) {
        s->state[run] = RUN_PENDING; /* resumes from its checkpoint next time */
        printf("run %s stopped (it resumes from its checkpoint when the sweep starts again)\n",
               name);
    } else {
        s->state[run] = RUN_FAILED;
        s->failed++, s->todo--;
        fprintf(stderr, "lws: run %s failed (exit status %d); the sweep goes on without it\n", name,
                code);
    }
    fflush(stdout);
}

/* Starts runs on free devices until none is left or a stop signal comes. */
static void schedule(scheduler *s) {
    const sweep_args *a = s->args;
    uint32_t next = 0;
    for (;;) {
        for (uint32_t slot = 0; slot < a->n_devices && !stop_signal; slot++) {
            while (next < s->plan->n_runs && s->state[next] != RUN_PENDING) next++;
            if (s->pid[slot] || next == s->plan->n_runs) continue;
            if (start_run(s, slot, next) != 0) {
                s->state[next] = RUN_FAILED, s->failed++, s->todo--;
                continue;
            }
        }
        int live = 0;
        for (uint32_t slot = 0; slot < a->n_devices; slot++) live += s->pid[slot] != 0;
        if (!live) return;
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR) {
            /* A signal sent to the sweep alone (a terminal's reaches the runs too). */
            for (uint32_t slot = 0; stop_signal && !s->forwarded && slot < a->n_devices; slot++)
                if (s->pid[slot]) kill(s->pid[slot], SIGTERM);
            s->forwarded = stop_signal != 0;
            continue;
        }
        for (uint32_t slot = 0; pid > 0 && slot < a->n_devices; slot++)
            if (s->pid[slot] == pid) finish_run(s, slot, status);
    }
}

static int run_sweep(const sweep_plan *p, const sweep_args *a) {
    scheduler s = {.plan = p, .args = a, .lock_fd = -1};
    s.state = calloc(p->n_runs, sizeof *s.state);
    if (!s.state) return 1;
    char copy[1200];
    snprintf(copy, sizeof copy, "%s/sweep.json", p->dir);
    lws_status st = check_data(p);
    if (st == LWS_OK) st = lock_sweep(p, &s.lock_fd);
    if (st == LWS_OK) st = lws_write_file_atomic(copy, p->text, strlen(p->text));
    for (uint32_t r = 0; st == LWS_OK && r < p->n_runs; r++) {
        st = run_state(p, &p->runs[r], &s.state[r]);
        s.done += s.state[r] == RUN_DONE;
    }
    if (st != LWS_OK) {
        if (s.lock_fd >= 0) close(s.lock_fd);
        free(s.state);
        return lws_cli_error();
    }
    s.todo = p->n_runs - s.done;
    s.done_before = s.done;
    print_plan(p);
    printf("%u of %u runs done; %u to train on %u device%s\n", s.done, p->n_runs, s.todo,
           a->n_devices, a->n_devices == 1 ? "" : "s");
    fflush(stdout);
    stop_signal = 0;
    struct sigaction sa = {0}, old[3];
    sa.sa_handler = on_signal; /* no SA_RESTART: waitpid returns to forward the stop */
    const int signals[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) sigaction(signals[i], &sa, &old[i]);
    double t0 = now_s();
    schedule(&s);
    for (int i = 0; i < 3; i++) sigaction(signals[i], &old[i], NULL);
    uint32_t done = 0;
    int rc = sweep_write_results(p, &done) == LWS_OK ? 0 : lws_cli_error();
    char took[32];
    format_duration(now_s() - t0, took, sizeof took);
    if (rc == 0)
        printf("%u of %u runs done (%s this time); results in %s/results.md\n", done, p->n_runs,
               took, p->dir);
    if (rc == 0 && stop_signal) rc = 130;
    if (rc == 0 && s.failed) rc = 1;
    close(s.lock_fd);
    free(s.state);
    return rc;
}

int lws_cli_sweep(int argc, char **argv) {
    sweep_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return LWS_CLI_PARSE_EXIT(rc);
    sweep_plan *p = malloc(sizeof *p);
    if (!p) return 1;
    if (sweep_plan_load(a.file, a.out, p) != LWS_OK)
        rc = lws_cli_error();
    else if (a.dry_run)
        rc = dry_run(p, a.device[0]);
    else
        rc = run_sweep(p, &a);
    sweep_plan_free(p);
    free(p);
    return rc;
}
