/* Drawing loss curves (see plot.h): groups of runs as mean lines with
 * min-max bands, a zoomed panel on the end of training, colours and dash
 * patterns that stay distinct past the palette's eight colours. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plot.h"
#include "cli/svg.h"

/* Runs with this many logged steps or more get a smoothed training line. */
#define SMOOTH_FROM 200

typedef struct group {
    const char *label;
    int colour;
    uint32_t n;                  /* member runs */
    lws_plot_series train;       /* mean training loss (smoothed for long runs) */
    lws_plot_series val, lo, hi; /* mean, lowest and highest validation value */
} group;

int lws_plot_push(lws_plot_series *s, double x, double y) {
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 64;
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

static void free_series(lws_plot_series *s) {
    free(s->x), free(s->y);
    memset(s, 0, sizeof *s);
}

/* Centred moving average over 2h + 1 points (fewer at the ends). */
static void smooth(double *y, uint32_t n, uint32_t h) {
    double *out = malloc((n ? n : 1) * sizeof *out);
    if (!out) return;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lo = i > h ? i - h : 0, hi = i + h < n ? i + h : n - 1;
        double sum = 0;
        for (uint32_t k = lo; k <= hi; k++) sum += y[k];
        out[i] = sum / (hi - lo + 1);
    }
    memcpy(y, out, n * sizeof *y);
    free(out);
}

/* The members' series averaged point by point: training losses over the
 * steps every member has, validation at each evaluation of the longest
 * member, with the lowest and highest of the members that have it. */
static int summarise(group *g, lws_plot_run *const *m, int bpb) {
    uint32_t steps = m[0]->train.n, longest = 0;
    for (uint32_t k = 0; k < g->n; k++) {
        if (m[k]->train.n < steps) steps = m[k]->train.n;
        const lws_plot_series *v = bpb ? &m[k]->bpb : &m[k]->val;
        if (v->n > (bpb ? m[longest]->bpb.n : m[longest]->val.n)) longest = k;
    }
    for (uint32_t i = 0; i < steps; i++) {
        double sum = 0;
        for (uint32_t k = 0; k < g->n; k++) sum += m[k]->train.y[i];
        if (!lws_plot_push(&g->train, m[0]->train.x[i], sum / g->n)) return 0;
    }
    if (steps >= SMOOTH_FROM) smooth(g->train.y, steps, steps / 100);
    const lws_plot_series *ref = bpb ? &m[longest]->bpb : &m[longest]->val;
    for (uint32_t i = 0; i < ref->n; i++) {
        double x = ref->x[i], sum = 0, lo = INFINITY, hi = -INFINITY;
        uint32_t count = 0;
        for (uint32_t k = 0; k < g->n; k++) {
            const lws_plot_series *v = bpb ? &m[k]->bpb : &m[k]->val;
            for (uint32_t j = 0; j < v->n; j++)
                if (v->x[j] == x) {
                    sum += v->y[j], count++;
                    lo = fmin(lo, v->y[j]), hi = fmax(hi, v->y[j]);
                }
        }
        if (!lws_plot_push(&g->val, x, sum / count) || !lws_plot_push(&g->lo, x, lo) ||
            !lws_plot_push(&g->hi, x, hi))
            return 0;
    }
    return 1;
}

/* Runs into groups: by group key when grouped, else one group per run. */
static lws_status make_groups(lws_plot_run *runs, int n, const lws_plot_options *o, group *g,
                              uint32_t *n_groups) {
    lws_plot_run **members = malloc((size_t)n * sizeof *members);
    int *taken = calloc((size_t)n, sizeof *taken);
    lws_status s = members && taken ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
    *n_groups = 0;
    for (int i = 0; s == LWS_OK && i < n; i++) {
        if (taken[i]) continue;
        group *gr = &g[(*n_groups)++];
        memset(gr, 0, sizeof *gr);
        gr->label = o->grouped && runs[i].group_label[0] ? runs[i].group_label : runs[i].name;
        gr->colour = runs[i].colour >= 0 ? runs[i].colour : (int)*n_groups - 1;
        for (int j = i; j < n; j++) {
            int same = j == i || (o->grouped && runs[i].group_key && runs[j].group_key &&
                                  strcmp(runs[i].group_key, runs[j].group_key) == 0);
            if (!same || taken[j]) continue;
            taken[j] = 1;
            members[gr->n++] = &runs[j];
        }
        if (!summarise(gr, members, o->bpb))
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory summarising the runs");
    }
    free(members), free(taken);
    return s;
}

static const char *dash_of(int colour) {
    static const char *const dashes[] = {NULL, "9 4", "3 3", "12 3 3 3"};
    return dashes[(colour / 8) % 4];
}

/* ---- panels ------------------------------------------------------------------ */

typedef struct panel {
    lws_svg_axes ax;
    double scale; /* tokens per x unit */
    int show_train;
} panel;

static void y_extent(const lws_plot_series *s, double x_from, uint32_t skip, double *lo,
                     double *hi) {
    for (uint32_t k = skip; k < s->n; k++) {
        if (s->x[k] < x_from) continue;
        *lo = fmin(*lo, s->y[k]);
        *hi = fmax(*hi, s->y[k]);
    }
}

/* The y range of everything drawn from x_from on; the first 5% of the
 * training losses (near ln vocab) would flatten the rest and are left out. */
static uint32_t fit_y(const group *g, uint32_t n, double x_from, int train, double *lo,
                      double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    uint32_t points = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (train) y_extent(&g[i].train, x_from, g[i].train.n / 20, lo, hi);
        y_extent(&g[i].lo, x_from, 0, lo, hi);
        y_extent(&g[i].hi, x_from, 0, lo, hi);
        for (uint32_t k = 0; k < g[i].val.n; k++) points += g[i].val.x[k] >= x_from;
    }
    if (!(*hi > *lo)) *hi = *lo + 1;
    double pad = 0.06 * (*hi - *lo);
    *lo -= pad, *hi += pad;
    return points;
}

static void series_line(lws_svg *svg, const panel *p, const lws_plot_series *s, const char *colour,
                        double width, double opacity, const char *dash) {
    if (s->n == 0) return;
    fprintf(svg->f,
            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-opacity=\"%g\" "
            "stroke-linejoin=\"round\"%s%s%s points=\"",
            colour, width, opacity, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
    for (uint32_t i = 0; i < s->n; i++)
        fprintf(svg->f, "%s%.2f,%.2f", i ? " " : "", lws_svg_x(&p->ax, s->x[i] / p->scale),
                lws_svg_y(&p->ax, s->y[i]));
    fprintf(svg->f, "\"/>\n");
}

static void band(lws_svg *svg, const panel *p, const group *g, const char *colour) {
    if (g->n < 2 || g->lo.n < 2) return;
    fprintf(svg->f, "<polygon fill=\"%s\" fill-opacity=\"0.16\" stroke=\"none\" points=\"", colour);
    for (uint32_t i = 0; i < g->hi.n; i++)
        fprintf(svg->f, "%.2f,%.2f ", lws_svg_x(&p->ax, g->hi.x[i] / p->scale),
                lws_svg_y(&p->ax, g->hi.y[i]));
    for (uint32_t i = g->lo.n; i-- > 0;)
        fprintf(svg->f, "%.2f,%.2f ", lws_svg_x(&p->ax, g->lo.x[i] / p->scale),
                lws_svg_y(&p->ax, g->lo.y[i]));
    fprintf(svg->f, "\"/>\n");
}

static void draw_panel(lws_svg *svg, const panel *p, const group *g, uint32_t n, int grouped,
                       const char *id) {
    fprintf(svg->f,
            "<clipPath id=\"%s\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>"
            "</clipPath>\n<g clip-path=\"url(#%s)\">\n",
            id, p->ax.left, p->ax.top, p->ax.width, p->ax.height, id);
    for (uint32_t i = 0; i < n; i++) band(svg, p, &g[i], lws_svg_colour((uint32_t)g[i].colour));
    for (uint32_t i = 0; i < n; i++) {
        const char *colour = lws_svg_colour((uint32_t)g[i].colour);
        const char *dash = dash_of(g[i].colour);
        if (p->show_train)
            series_line(svg, p, &g[i].train, colour, grouped ? 1.2 : 1.8, grouped ? 0.4 : 1, dash);
        series_line(svg, p, &g[i].val, colour, 2.4, 1, grouped || !p->show_train ? dash : "7 4");
        for (uint32_t k = 0; k < g[i].val.n; k++)
            fprintf(svg->f,
                    "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"#ffffff\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n",
                    lws_svg_x(&p->ax, g[i].val.x[k] / p->scale), lws_svg_y(&p->ax, g[i].val.y[k]),
                    colour);
    }
    fprintf(svg->f, "</g>\n");
}

static void legend(lws_svg *svg, const group *g, uint32_t n, double x, double y, int grouped,
                   const panel *p, const lws_plot_options *o) {
    for (uint32_t i = 0; i < n; i++, y += 22) {
        const char *colour = lws_svg_colour((uint32_t)g[i].colour);
        lws_svg_line(svg, x, y, x + 26, y, colour, 3, dash_of(g[i].colour));
        char runs[32] = "";
        if (grouped && g[i].n > 1) snprintf(runs, sizeof runs, " (%u runs)", g[i].n);
        lws_svg_text(svg, x + 34, y + 4, 12, LWS_SVG_START, "#000000", 0, "%.30s%s", g[i].label,
                     runs);
    }
    const char *grey = "#555555";
    y += 14;
    if (p->show_train) {
        lws_svg_line(svg, x, y, x + 26, y, grey, grouped ? 1.2 : 2, NULL);
        lws_svg_text(svg, x + 34, y + 4, 11, LWS_SVG_START, grey, 0, "training loss%s",
                     grouped ? " (mean)" : "");
        y += 20;
    }
    lws_svg_line(svg, x, y, x + 26, y, grey, 2.4, grouped || !p->show_train ? NULL : "7 4");
    fprintf(svg->f,
            "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"#ffffff\" stroke=\"%s\" "
            "stroke-width=\"2\"/>\n",
            x + 13, y, grey);
    lws_svg_text(svg, x + 34, y + 4, 11, LWS_SVG_START, grey, 0, "validation %s%s",
                 o->bpb ? "bits per byte" : "loss", grouped ? " (mean)" : "");
    if (grouped) {
        y += 20;
        lws_svg_rect(svg, x, y - 6, 26, 12, "#888888", NULL);
        lws_svg_text(svg, x + 34, y + 4, 11, LWS_SVG_START, grey, 0, "lowest to highest run");
    }
}

static void x_scale(double x_max, double *scale, const char **unit) {
    *scale = 1, *unit = "tokens";
    if (x_max >= 2e9)
        *scale = 1e9, *unit = "tokens (billions)";
    else if (x_max >= 2e6)
        *scale = 1e6, *unit = "tokens (millions)";
    else if (x_max >= 2e3)
        *scale = 1e3, *unit = "tokens (thousands)";
}

static lws_status draw(const char *path, group *g, uint32_t n, const lws_plot_options *o) {
    double x_max = 0;
    int any_val = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (g[i].train.n) x_max = fmax(x_max, g[i].train.x[g[i].train.n - 1]);
        if (g[i].val.n) x_max = fmax(x_max, g[i].val.x[g[i].val.n - 1]), any_val = 1;
    }
    panel main = {.show_train = !o->val_only && !o->bpb};
    const char *unit;
    x_scale(x_max, &main.scale, &unit);
    double lo, hi, zoom_from = x_max * (1 - o->zoom);
    fit_y(g, n, 0, main.show_train, &lo, &hi);
    panel zoom = main;
    int zoomed = any_val && o->zoom > 0 && o->zoom < 1;
    double zlo = 0, zhi = 1;
    if (zoomed) zoomed = fit_y(g, n, zoom_from, 0, &zlo, &zhi) >= 2 * n;
    const double height = 560, width = zoomed ? 1240 : 1010;
    main.ax = (lws_svg_axes){80,
                             60,
                             zoomed ? 560 : 660,
                             420,
                             0,
                             x_max > 0 ? 1.02 * x_max / main.scale : 1,
                             fmax(0, lo),
                             hi,
                             0,
                             0};
    lws_svg svg;
    LWS_TRY(lws_svg_begin(&svg, path, width, height));
    const char *y_label = o->bpb ? "validation bits per byte" : "loss (nats per token)";
    lws_svg_draw_axes(&svg, &main.ax, unit, y_label,
                      o->title          ? o->title
                      : main.show_train ? "Training and validation loss"
                                        : "Validation");
    draw_panel(&svg, &main, g, n, o->grouped, "main");
    if (zoomed) {
        zoom.show_train = 0;
        zoom.ax =
            (lws_svg_axes){main.ax.left + main.ax.width + 90, 60,  260, 420, zoom_from / zoom.scale,
                           1.02 * x_max / zoom.scale,         zlo, zhi, 0,   0};
        zoom.ax.x_tick = lws_svg_nice_step(zoom.ax.x_max - zoom.ax.x_min, 3);
        char title[96];
        snprintf(title, sizeof title, "the last %.0f%% of training", 100 * o->zoom);
        lws_svg_draw_axes(&svg, &zoom.ax, unit, NULL, title);
        draw_panel(&svg, &zoom, g, n, o->grouped, "zoom");
    }
    double lx = (zoomed ? zoom.ax.left + zoom.ax.width : main.ax.left + main.ax.width) + 25;
    legend(&svg, g, n, lx, 68, o->grouped, &main, o);
    if (o->grouped)
        lws_svg_text(
            &svg, 80, height - 14, 11, LWS_SVG_START, "#555555", 0,
            "Runs that differ only in the seed form a group: its mean, and a band from its "
            "lowest to its highest run at each evaluation.");
    return lws_svg_end(&svg);
}

lws_status lws_plot_draw(const char *path, lws_plot_run *runs, int n, const lws_plot_options *o) {
    group *g = calloc((size_t)(n ? n : 1), sizeof *g);
    if (!g) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
    uint32_t n_groups = 0;
    lws_status s = make_groups(runs, n, o, g, &n_groups);
    if (s == LWS_OK) s = draw(path, g, n_groups, o);
    for (uint32_t i = 0; i < n_groups; i++) {
        free_series(&g[i].train), free_series(&g[i].val);
        free_series(&g[i].lo), free_series(&g[i].hi);
    }
    free(g);
    return s;
}
