/* lws plot LOG... --svg FILE: training and validation loss against tokens
 * for several runs (the log.jsonl that `lws train` writes). Runs that differ
 * only in their seed are grouped (one colour, the mean with a band), and a
 * second panel zooms on the end of training; a sweep directory stands for
 * all its runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/plot.h"
#include "util/files.h"

static const char *usage = "lws plot LOG.jsonl|RUN_DIR|SWEEP_DIR... --svg FILE [--name NAME]... "
                           "[--title TEXT] [--runs] [--bpb] [--val-only] [--zoom F]";

static double number_field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The group of the run whose log is at r->path: its config.json without the
 * seed and the run directory, named by the config's name. */
static void read_group(lws_plot_run *r) {
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s", r->path);
    snprintf(path, sizeof path, "%s/config.json", dirname(dir));
    char *text = NULL;
    size_t len = 0;
    if (access(path, F_OK) != 0 || lws_read_file(path, 16 << 20, &text, &len) != LWS_OK) {
        lws_error_clear();
        return;
    }
    cJSON *c = cJSON_Parse(text);
    free(text);
    cJSON *train = cJSON_GetObjectItemCaseSensitive(c, "train");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
    if (cJSON_IsObject(train)) {
        cJSON_DeleteItemFromObjectCaseSensitive(train, "seed");
        cJSON_DeleteItemFromObjectCaseSensitive(train, "out_dir");
        r->group_key = cJSON_PrintUnformatted(c);
        if (cJSON_IsString(name))
            snprintf(r->group_label, sizeof r->group_label, "%s", name->valuestring);
    }
    cJSON_Delete(c);
}

static lws_status read_lines(FILE *f, lws_plot_run *r) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint32_t line_no = 0;
    lws_status s = LWS_OK;
    while (s == LWS_OK && (len = getline(&line, &cap, f)) >= 0) {
        line_no++;
        if (len <= 1) continue;
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            s = lws_fail(LWS_ERR_DATA,
                         "%s: line %u is not a JSON object (a log.jsonl of `lws "
                         "train` has one per line)",
                         r->path, line_no);
            break;
        }
        double tokens = number_field(o, "tokens"), loss = number_field(o, "loss"),
               val = number_field(o, "val_loss"), bpb = number_field(o, "val_bpb");
        int ok = 1;
        if (isfinite(tokens) && isfinite(loss)) ok &= lws_plot_push(&r->train, tokens, loss);
        if (isfinite(tokens) && isfinite(val)) ok &= lws_plot_push(&r->val, tokens, val);
        if (isfinite(tokens) && isfinite(bpb)) ok &= lws_plot_push(&r->bpb, tokens, bpb);
        if (!ok) s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory reading %s", r->path);
        cJSON_Delete(o);
    }
    free(line);
    return s;
}

lws_status lws_plot_read_log(const char *arg, const char *name, lws_plot_run *r) {
    struct stat st;
    memset(r, 0, sizeof *r);
    r->colour = -1;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(r->path, sizeof r->path, "%s/log.jsonl", arg);
    else
        snprintf(r->path, sizeof r->path, "%s", arg);
    if (name) {
        snprintf(r->name, sizeof r->name, "%s", name);
    } else {
        char dir[1200];
        snprintf(dir, sizeof dir, "%s", r->path);
        snprintf(r->name, sizeof r->name, "%s", basename(dirname(dir)));
    }
    int fd;
    LWS_TRY(lws_open_regular(r->path, O_RDONLY, &fd, NULL));
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return lws_fail(LWS_ERR_IO, "%s: cannot read the log: %s", r->path, strerror(errno));
    }
    lws_status s = read_lines(f, r);
    fclose(f);
    if (s == LWS_OK && r->train.n == 0 && r->val.n == 0)
        s = lws_fail(LWS_ERR_DATA, "%s: no line has \"tokens\" with \"loss\" or \"val_loss\"",
                     r->path);
    if (s == LWS_OK) read_group(r);
    if (name) snprintf(r->group_label, sizeof r->group_label, "%s", name);
    return s;
}

void lws_plot_run_free(lws_plot_run *r) {
    free(r->train.x), free(r->train.y), free(r->val.x), free(r->val.y);
    free(r->bpb.x), free(r->bpb.y), free(r->group_key);
    memset(r, 0, sizeof *r);
}

/* ---- the command ------------------------------------------------------------- */

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A sweep directory (runs/ inside, no log.jsonl): its run directories with a
 * log, sorted; else the argument itself. */
static int expand(const char *arg, char ***out, int *n, int *cap) {
    char runs[1200], log[1600];
    snprintf(runs, sizeof runs, "%s/runs", arg);
    snprintf(log, sizeof log, "%s/log.jsonl", arg);
    DIR *d = access(log, F_OK) != 0 ? opendir(runs) : NULL;
    int first = *n;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        snprintf(log, sizeof log, "%s/%s/log.jsonl", runs, e->d_name);
        if (e->d_name[0] == '.' || access(log, F_OK) != 0) continue;
        if (*n == *cap) {
            char **more = realloc(*out, (size_t)(*cap *= 2) * sizeof *more);
            if (!more) break;
            *out = more;
        }
        size_t len = strlen(runs) + strlen(e->d_name) + 2;
        if (((*out)[*n] = malloc(len)) != NULL)
            snprintf((*out)[(*n)++], len, "%s/%s", runs, e->d_name);
    }
    if (d) closedir(d);
    if (*n > first) {
        qsort(*out + first, (size_t)(*n - first), sizeof **out, by_name);
        return 0;
    }
    if (*n == *cap) {
        char **more = realloc(*out, (size_t)(*cap *= 2) * sizeof *more);
        if (!more) return 1;
        *out = more;
    }
    return ((*out)[(*n)++] = strdup(arg)) == NULL;
}

static void help(void) {
    printf("usage: %s\n\nPlots the training loss and the validation loss (with dots) of runs' "
           "log.jsonl\nagainst the tokens seen. Runs that differ only in their seed (their "
           "config.json\nis the same but for train.seed) share a colour: their mean, with a band "
           "from the\nlowest to the highest. A sweep directory stands for all its runs.\n"
           "  --svg FILE    the chart to write (required)\n"
           "  --name NAME   a run's legend; the first --name names the first log, and so on\n"
           "                (default: the run's config name, or its directory)\n"
           "  --title TEXT  the chart's title\n"
           "  --runs        one line per run, no grouping\n"
           "  --bpb         validation bits per byte on the y axis (training loss left out)\n"
           "  --val-only    validation curves only\n"
           "  --zoom F      a second panel with the last fraction F of the tokens, fitted to\n"
           "                the validation curves there (default 0.5; 0: none)\n",
           usage);
}

static int parse_value(const char *opt, const char *value, const char **svg, const char **title,
                       double *zoom, const char **names, int *n_names) {
    if (strcmp(opt, "--svg") == 0)
        *svg = value;
    else if (strcmp(opt, "--title") == 0)
        *title = value;
    else if (strcmp(opt, "--zoom") == 0)
        return lws_parse_real(usage, "--zoom", value, 0, 1, LWS_HI_OPEN, "0: no zoomed panel",
                              zoom);
    else
        names[(*n_names)++] = value;
    return 0;
}

static int plot(lws_plot_run *runs, int n, const char *svg_path, const lws_plot_options *o) {
    for (int i = 0; i < n; i++) {
        const lws_plot_run *r = &runs[i];
        printf("%s: %s", r->name, r->path);
        if (r->train.n)
            printf(", %u steps to %.0f tokens, last training loss %.4f", r->train.n,
                   r->train.x[r->train.n - 1], r->train.y[r->train.n - 1]);
        if (r->val.n) {
            uint32_t best = 0;
            for (uint32_t k = 1; k < r->val.n; k++)
                if (r->val.y[k] < r->val.y[best]) best = k;
            printf(", best validation loss %.4f at %.0f tokens", r->val.y[best], r->val.x[best]);
        }
        printf("\n");
    }
    if (lws_plot_draw(svg_path, runs, n, o) != LWS_OK) return lws_cli_error();
    printf("chart written to %s\n", svg_path);
    return 0;
}

int lws_cli_plot(int argc, char **argv) {
    const char *svg_path = NULL;
    lws_plot_options o = {.grouped = 1, .zoom = 0.5};
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    int cap = 16, n = 0, n_names = 0, rc = 0, ungrouped = 0;
    char **logs = malloc((size_t)cap * sizeof *logs);
    for (int i = 0; rc == 0 && names && logs && i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            rc = -1;
        } else if (strcmp(a, "--runs") == 0 || strcmp(a, "--bpb") == 0 ||
                   strcmp(a, "--val-only") == 0) {
            *(a[2] == 'r' ? &ungrouped : a[2] == 'b' ? &o.bpb : &o.val_only) = 1;
        } else if (strcmp(a, "--svg") == 0 || strcmp(a, "--name") == 0 ||
                   strcmp(a, "--title") == 0 || strcmp(a, "--zoom") == 0) {
            if (i + 1 >= argc)
                rc = lws_cli_usage(usage, "%s needs a value", a);
            else
                rc = parse_value(a, argv[++i], &svg_path, &o.title, &o.zoom, names, &n_names);
        } else if (a[0] == '-' && a[1]) {
            rc = lws_cli_usage(usage, "unknown option '%s'", a);
        } else if (expand(a, &logs, &n, &cap) != 0) {
            rc = 1;
        }
    }
    o.grouped = !ungrouped;
    if (rc == 0 && (!names || !logs)) rc = 1;
    if (rc == 0 && n == 0)
        rc = lws_cli_usage(usage, "give at least one log.jsonl or run directory");
    if (rc == 0 && !svg_path) rc = lws_cli_usage(usage, "--svg FILE is required");
    if (rc == 0 && n_names > n)
        rc = lws_cli_usage(usage, "%d --name options for %d logs", n_names, n);
    lws_plot_run *runs = rc == 0 ? calloc((size_t)n, sizeof *runs) : NULL;
    if (rc == 0 && !runs) rc = 1;
    for (int i = 0; rc == 0 && i < n; i++)
        if (lws_plot_read_log(logs[i], i < n_names ? names[i] : NULL, &runs[i]) != LWS_OK)
            rc = lws_cli_error();
    if (rc == 0) rc = plot(runs, n, svg_path, &o);
    for (int i = 0; runs && i < n; i++) lws_plot_run_free(&runs[i]);
    for (int i = 0; logs && i < n; i++) free(logs[i]);
    free(runs), free(logs), free(names);
    return rc < 0 ? 0 : rc;
}
