/* lws plot LOG... --svg FILE: training and validation loss against tokens
 * for several runs (the log.jsonl that `lws train` writes), one colour per
 * run, named by its run directory or --name. */
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
#include "cli/svg.h"
#include "util/files.h"

static const char *usage =
    "lws plot LOG.jsonl|RUN_DIR... --svg FILE [--name NAME]... [--title TEXT]";

typedef struct series {
    double *x, *y;
    uint32_t n, cap;
} series;

typedef struct run {
    char name[256], path[1200];
    series train, val;
} run;

static int push(series *s, double x, double y) {
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 256;
        double *x2 = realloc(s->x, cap * sizeof *x2);
        if (!x2) return 0;
        s->x = x2;
        double *y2 = realloc(s->y, cap * sizeof *y2);
        if (!y2) return 0;
        s->y = y2;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
    return 1;
}

static double number_field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A run directory stands for its log.jsonl; the run is named by the
 * directory the log is in. */
static lws_status read_log(const char *arg, const char *name, run *r) {
    struct stat st;
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
               val = number_field(o, "val_loss");
        if (isfinite(tokens) && isfinite(loss) && !push(&r->train, tokens, loss))
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory reading %s", r->path);
        if (isfinite(tokens) && isfinite(val) && !push(&r->val, tokens, val))
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory reading %s", r->path);
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (s == LWS_OK && r->train.n == 0 && r->val.n == 0)
        s = lws_fail(LWS_ERR_DATA, "%s: no line has \"tokens\" with \"loss\" or \"val_loss\"",
                     r->path);
    return s;
}

static void free_run(run *r) {
    free(r->train.x), free(r->train.y), free(r->val.x), free(r->val.y);
}

/* Data -> pixel polyline with an opacity (the helper's lines are opaque). */
static void line(lws_svg *svg, const lws_svg_axes *ax, const double *x, const double *y, uint32_t n,
                 double scale, const char *colour, double width, double opacity, const char *dash) {
    if (n == 0) return;
    fprintf(svg->f,
            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-opacity=\"%g\" "
            "stroke-linejoin=\"round\"%s%s%s points=\"",
            colour, width, opacity, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
    for (uint32_t i = 0; i < n; i++)
        fprintf(svg->f, "%s%.2f,%.2f", i ? " " : "", lws_svg_x(ax, x[i] / scale),
                lws_svg_y(ax, y[i]));
    fprintf(svg->f, "\"/>\n");
}

/* Centred moving average over 2h + 1 points (fewer at the ends): a smooth
 * line that does not lag behind the raw one. */
static void smooth(const double *y, uint32_t n, uint32_t h, double *out) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lo = i > h ? i - h : 0, hi = i + h < n ? i + h : n - 1;
        double sum = 0;
        for (uint32_t k = lo; k <= hi; k++) sum += y[k];
        out[i] = sum / (hi - lo + 1);
    }
}

/* Runs of this many logged steps or more get a smoothed line over the raw one. */
#define SMOOTH_FROM 200

static lws_status draw(const char *path, run *runs, int n, const char *title) {
    const double width = 1010, height = 580;
    lws_svg_axes ax = {80, 60, 660, 430, 0, 1, 0, 1, 0, 0};
    double x_max = 0, y_min = INFINITY, y_max = -INFINITY;
    for (int i = 0; i < n; i++) {
        const run *r = &runs[i];
        for (uint32_t k = 0; k < r->train.n; k++) {
            if (r->train.x[k] > x_max) x_max = r->train.x[k];
            if (r->train.y[k] < y_min) y_min = r->train.y[k];
        }
        for (uint32_t k = 0; k < r->val.n; k++) {
            if (r->val.x[k] > x_max) x_max = r->val.x[k];
            if (r->val.y[k] < y_min) y_min = r->val.y[k];
            if (r->val.y[k] > y_max) y_max = r->val.y[k];
        }
        /* The first steps' losses (ln vocab) would flatten the rest: the top
         * is set by the losses after the first 5% of each run. */
        for (uint32_t k = r->train.n / 20; k < r->train.n; k++)
            if (r->train.y[k] > y_max) y_max = r->train.y[k];
    }
    if (!(y_max > y_min)) y_max = y_min + 1;
    double pad = 0.05 * (y_max - y_min);
    ax.y_min = fmax(0, y_min - pad);
    ax.y_max = y_max + pad;
    double scale = 1;
    const char *unit = "tokens";
    if (x_max >= 2e9)
        scale = 1e9, unit = "tokens (billions)";
    else if (x_max >= 2e6)
        scale = 1e6, unit = "tokens (millions)";
    else if (x_max >= 2e3)
        scale = 1e3, unit = "tokens (thousands)";
    ax.x_max = x_max > 0 ? 1.02 * x_max / scale : 1; /* room for the last validation dot */

    lws_svg svg;
    LWS_TRY(lws_svg_begin(&svg, path, width, height));
    lws_svg_draw_axes(&svg, &ax, unit, "loss (nats per token)",
                      title ? title : "Training and validation loss");
    fprintf(svg.f,
            "<clipPath id=\"plot-area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
            "height=\"%.2f\"/></clipPath>\n<g clip-path=\"url(#plot-area)\">\n",
            ax.left, ax.top, ax.width, ax.height);
    int clipped = 0;
    for (int i = 0; i < n; i++) {
        const run *r = &runs[i];
        const char *colour = lws_svg_colour((uint32_t)i);
        for (uint32_t k = 0; k < r->train.n; k++)
            if (r->train.y[k] > ax.y_max) clipped = 1;
        if (r->train.n >= SMOOTH_FROM) {
            double *s = malloc(r->train.n * sizeof *s);
            line(&svg, &ax, r->train.x, r->train.y, r->train.n, scale, colour, 1, 0.3, NULL);
            if (s) {
                smooth(r->train.y, r->train.n, r->train.n / 100, s);
                line(&svg, &ax, r->train.x, s, r->train.n, scale, colour, 2, 1, NULL);
            }
            free(s);
        } else {
            line(&svg, &ax, r->train.x, r->train.y, r->train.n, scale, colour, 1.8, 1, NULL);
        }
        line(&svg, &ax, r->val.x, r->val.y, r->val.n, scale, colour, 2.4, 1, "7 4");
        for (uint32_t k = 0; k < r->val.n; k++)
            fprintf(svg.f,
                    "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"#ffffff\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n",
                    lws_svg_x(&ax, r->val.x[k] / scale), lws_svg_y(&ax, r->val.y[k]), colour);
    }
    fprintf(svg.f, "</g>\n");

    /* Legend: one row per run, then the key to the line styles. */
    double lx = ax.left + ax.width + 25, ly = ax.top + 8;
    for (int i = 0; i < n; i++) {
        const char *colour = lws_svg_colour((uint32_t)i);
        double y = ly + 22 * i;
        lws_svg_line(&svg, lx, y, lx + 26, y, colour, 3, NULL);
        char name[40];
        snprintf(name, sizeof name, "%.36s", runs[i].name);
        lws_svg_text(&svg, lx + 34, y + 4, 12, LWS_SVG_START, "#000000", 0, "%s", name);
    }
    double ky = ly + 22 * n + 20;
    const char *grey = "#555555";
    lws_svg_line(&svg, lx, ky, lx + 26, ky, grey, 2, NULL);
    int smoothed = 0;
    for (int i = 0; i < n; i++) smoothed |= runs[i].train.n >= SMOOTH_FROM;
    lws_svg_text(&svg, lx + 34, ky + 4, 11, LWS_SVG_START, grey, 0, "training loss%s",
                 smoothed ? " (smoothed)" : "");
    lws_svg_line(&svg, lx, ky + 20, lx + 26, ky + 20, grey, 2.4, "7 4");
    fprintf(svg.f,
            "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"#ffffff\" stroke=\"%s\" "
            "stroke-width=\"2\"/>\n",
            lx + 13, ky + 20, grey);
    lws_svg_text(&svg, lx + 34, ky + 24, 11, LWS_SVG_START, grey, 0, "validation loss");
    if (clipped)
        lws_svg_text(&svg, ax.left, height - 14, 11, LWS_SVG_START, grey, 0,
                     "The first steps' training losses run above the top of the plot; the scale "
                     "follows the rest of each run.");
    return lws_svg_end(&svg);
}

int lws_cli_plot(int argc, char **argv) {
    const char *svg_path = NULL, *title = NULL;
    const char **logs = calloc((size_t)argc + 1, sizeof *logs);
    const char **names = calloc((size_t)argc + 1, sizeof *names);
    int n = 0, n_names = 0;
    if (!logs || !names) {
        free(logs), free(names);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n\nPlots the training loss (and the validation loss, dashed with "
                   "dots) of each run's\nlog.jsonl against the tokens seen, one colour per run.\n"
                   "  --svg FILE    the chart to write (required)\n"
                   "  --name NAME   a run's legend; the first --name names the first log, and so "
                   "on\n                (default: the directory the log is in)\n"
                   "  --title TEXT  the chart's title\n",
                   usage);
            free(logs), free(names);
            return 0;
        } else if ((strcmp(a, "--svg") == 0 || strcmp(a, "--name") == 0 ||
                    strcmp(a, "--title") == 0)) {
            if (i + 1 >= argc) {
                free(logs), free(names);
                return lws_cli_usage(usage, "%s needs a value", a);
            }
            if (strcmp(a, "--svg") == 0)
                svg_path = argv[++i];
            else if (strcmp(a, "--title") == 0)
                title = argv[++i];
            else
                names[n_names++] = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            free(logs), free(names);
            return lws_cli_usage(usage, "unknown option '%s'", a);
        } else {
            logs[n++] = a;
        }
    }
    int rc = 0;
    if (n == 0)
        rc = lws_cli_usage(usage, "give at least one log.jsonl or run directory");
    else if (!svg_path)
        rc = lws_cli_usage(usage, "--svg FILE is required");
    else if (n_names > n)
        rc = lws_cli_usage(usage, "%d --name options for %d logs", n_names, n);
    run *runs = rc == 0 ? calloc((size_t)n, sizeof *runs) : NULL;
    if (rc == 0 && !runs) rc = 1;
    for (int i = 0; rc == 0 && i < n; i++)
        if (read_log(logs[i], i < n_names ? names[i] : NULL, &runs[i]) != LWS_OK)
            rc = lws_cli_error();
    for (int i = 0; rc == 0 && i < n; i++) {
        const run *r = &runs[i];
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
    if (rc == 0) {
        if (draw(svg_path, runs, n, title) != LWS_OK)
            rc = lws_cli_error();
        else
            printf("chart written to %s\n", svg_path);
    }
    for (int i = 0; runs && i < n; i++) free_run(&runs[i]);
    free(runs), free(logs), free(names);
    return rc;
}
