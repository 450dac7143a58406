/* SVG writing for the command line's plots (see svg.h). */
#include "cli/svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/files.h"

static const char *const palette[] = {
    "#0072B2", /* blue */
    "#D55E00", /* vermillion */
    "#009E73", /* bluish green */
    "#CC79A7", /* reddish purple */
    "#E69F00", /* orange */
    "#56B4E9", /* sky blue */
    "#000000", /* black */
    "#F0E442", /* yellow: last, it is faint on white */
};

const char *lws_svg_colour(uint32_t i) {
    return palette[i % (sizeof palette / sizeof *palette)];
}

lws_status lws_svg_begin(lws_svg *svg, const char *path, double width, double height) {
    memset(svg, 0, sizeof *svg);
    svg->path = strdup(path);
    svg->f = svg->path ? open_memstream(&svg->text, &svg->text_len) : NULL;
    if (!svg->f) {
        lws_svg_discard(svg);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory starting the chart", path);
    }
    svg->width = width;
    svg->height = height;
    fprintf(svg->f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            width, height, width, height);
    lws_svg_rect(svg, 0, 0, width, height, "#ffffff", NULL);
    return LWS_OK;
}

lws_status lws_svg_end(lws_svg *svg) {
    if (!svg->f) return lws_fail(LWS_ERR_INVALID, "the chart was not started");
    fprintf(svg->f, "</svg>\n");
    int bad = ferror(svg->f);
    if (fclose(svg->f) != 0) bad = 1;
    svg->f = NULL;
    lws_status s =
        bad ? lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory drawing the chart", svg->path)
            : lws_write_file_atomic(svg->path, svg->text, svg->text_len);
    lws_svg_discard(svg);
    return s;
}

void lws_svg_discard(lws_svg *svg) {
    if (svg->f) fclose(svg->f);
    free(svg->text), free(svg->path);
    svg->f = NULL, svg->text = NULL, svg->path = NULL;
}

void lws_svg_line(lws_svg *svg, double x0, double y0, double x1, double y1, const char *colour,
                  double width, const char *dash) {
    fprintf(svg->f,
            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
            "stroke-width=\"%g\"%s%s%s/>\n",
            x0, y0, x1, y1, colour, width, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
}

void lws_svg_rect(lws_svg *svg, double x, double y, double w, double h, const char *fill,
                  const char *stroke) {
    fprintf(svg->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"", x, y,
            w, h, fill ? fill : "none");
    if (stroke) fprintf(svg->f, " stroke=\"%s\"", stroke);
    fprintf(svg->f, "/>\n");
}

void lws_svg_polyline(lws_svg *svg, const double *x, const double *y, uint32_t n,
                      const char *colour, double width, const char *dash) {
    fprintf(svg->f,
            "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" "
            "stroke-linejoin=\"round\"",
            colour, width);
    if (dash) fprintf(svg->f, " stroke-dasharray=\"%s\"", dash);
    fprintf(svg->f, " points=\"");
    for (uint32_t i = 0; i < n; i++) fprintf(svg->f, "%s%.2f,%.2f", i ? " " : "", x[i], y[i]);
    fprintf(svg->f, "\"/>\n");
}

void lws_svg_text(lws_svg *svg, double x, double y, double size, lws_svg_anchor anchor,
                  const char *colour, double rotate, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    static const char *const anchors[] = {"start", "middle", "end"};
    fprintf(svg->f, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" text-anchor=\"%s\" fill=\"%s\"",
            x, y, size, anchors[anchor], colour);
    if (rotate != 0) fprintf(svg->f, " transform=\"rotate(%g %.2f %.2f)\"", rotate, x, y);
    fputc('>', svg->f);
    for (const char *p = text; *p; p++) {
        if (*p == '<')
            fputs("&lt;", svg->f);
        else if (*p == '>')
            fputs("&gt;", svg->f);
        else if (*p == '&')
            fputs("&amp;", svg->f);
        else
            fputc(*p, svg->f);
    }
    fputs("</text>\n", svg->f);
}

double lws_svg_x(const lws_svg_axes *a, double x) {
    return a->left + (x - a->x_min) / (a->x_max - a->x_min) * a->width;
}

double lws_svg_y(const lws_svg_axes *a, double y) {
    return a->top + a->height - (y - a->y_min) / (a->y_max - a->y_min) * a->height;
}

double lws_svg_nice_step(double range, int ticks) {
    if (!(range > 0) || ticks < 1) return 1;
    double raw = range / ticks, power = pow(10, floor(log10(raw)));
    double unit = raw / power;
    return power * (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10);
}

static void tick_label(char *out, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    if (step >= 1 && fabs(v) < 1e7)
        snprintf(out, n, "%.0f", v);
    else
        snprintf(out, n, "%g", v);
}

void lws_svg_draw_axes(lws_svg *svg, const lws_svg_axes *a, const char *x_label,
                       const char *y_label, const char *title) {
    const char *grid = "#e4e4e4", *ink = "#333333";
    double bottom = a->top + a->height, right = a->left + a->width;
    double xs = a->x_tick > 0 ? a->x_tick : lws_svg_nice_step(a->x_max - a->x_min, 10);
    double ys = a->y_tick > 0 ? a->y_tick : lws_svg_nice_step(a->y_max - a->y_min, 5);
    char label[64];
    for (double v = ceil(a->y_min / ys - 1e-9) * ys; v <= a->y_max + ys * 1e-9; v += ys) {
        double y = lws_svg_y(a, v);
        lws_svg_line(svg, a->left, y, right, y, grid, 1, NULL);
        lws_svg_line(svg, a->left - 4, y, a->left, y, ink, 1, NULL);
        tick_label(label, sizeof label, v, ys);
        lws_svg_text(svg, a->left - 7, y + 4, 11, LWS_SVG_END, ink, 0, "%s", label);
    }
    for (double v = ceil(a->x_min / xs - 1e-9) * xs; v <= a->x_max + xs * 1e-9; v += xs) {
        double x = lws_svg_x(a, v);
        lws_svg_line(svg, x, a->top, x, bottom, grid, 1, NULL);
        lws_svg_line(svg, x, bottom, x, bottom + 4, ink, 1, NULL);
        tick_label(label, sizeof label, v, xs);
        lws_svg_text(svg, x, bottom + 16, 11, LWS_SVG_MIDDLE, ink, 0, "%s", label);
    }
    lws_svg_rect(svg, a->left, a->top, a->width, a->height, NULL, ink);
    if (x_label && x_label[0])
        lws_svg_text(svg, a->left + a->width / 2, bottom + 34, 12, LWS_SVG_MIDDLE, ink, 0, "%s",
                     x_label);
    if (y_label && y_label[0])
        lws_svg_text(svg, a->left - 48, a->top + a->height / 2, 12, LWS_SVG_MIDDLE, ink, -90, "%s",
                     y_label);
    if (title && title[0])
        lws_svg_text(svg, a->left, a->top - 10, 14, LWS_SVG_START, "#000000", 0, "%s", title);
}

void lws_svg_polyline_data(lws_svg *svg, const lws_svg_axes *a, const double *x, const double *y,
                           uint32_t n, const char *colour, double width) {
    double *px = malloc(2 * (n ? n : 1) * sizeof *px);
    if (!px) return;
    double *py = px + n;
    for (uint32_t i = 0; i < n; i++) px[i] = lws_svg_x(a, x[i]), py[i] = lws_svg_y(a, y[i]);
    lws_svg_polyline(svg, px, py, n, colour, width, NULL);
    free(px);
}

void lws_svg_steps(lws_svg *svg, const lws_svg_axes *a, const double *edges, const double *y,
                   uint32_t n, const char *colour, double width, double dy) {
    if (n == 0) return;
    double *px = malloc(4 * n * sizeof *px);
    if (!px) return;
    double *py = px + 2 * n;
    /* Two points per step: its left and right end at its height. */
    for (uint32_t i = 0; i < n; i++) {
        double h = lws_svg_y(a, y[i]) + dy;
        px[2 * i] = lws_svg_x(a, edges[i]);
        px[2 * i + 1] = lws_svg_x(a, edges[i + 1]);
        py[2 * i] = py[2 * i + 1] = h;
    }
    lws_svg_polyline(svg, px, py, 2 * n, colour, width, NULL);
    free(px);
}

void lws_svg_end_labels(lws_svg *svg, double x, const double *x_end, double *y,
                        const char *const *text, const char *const *colours, uint32_t n,
                        double size, double top, double bottom) {
    if (n == 0) return;
    uint32_t *order = malloc(n * sizeof *order);
    double *placed = malloc(n * sizeof *placed);
    if (!order || !placed) {
        free(order);
        free(placed);
        return;
    }
    /* Sort by height, then sweep down pushing each label below the one
     * above it and sweep up pulling them back inside the bottom edge. */
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && y[order[j]] < y[order[j - 1]]; j--) {
            uint32_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double gap = size * 1.15;
    for (uint32_t k = 0; k < n; k++) {
        double want = y[order[k]];
        if (want < top + size / 2) want = top + size / 2;
        if (k && want < placed[order[k - 1]] + gap) want = placed[order[k - 1]] + gap;
        placed[order[k]] = want;
    }
    for (uint32_t k = n; k-- > 0;) {
        double limit = k + 1 < n ? placed[order[k + 1]] - gap : bottom - size / 2;
        if (placed[order[k]] > limit) placed[order[k]] = limit;
    }
    for (uint32_t i = 0; i < n; i++) {
        double from = x_end ? x_end[i] : x;
        if (fabs(placed[i] - y[i]) > 0.5 || from < x - 0.5)
            lws_svg_line(svg, from, y[i], x + 10, placed[i], colours[i], 1,
                         from < x - 0.5 ? "2 3" : NULL);
        lws_svg_text(svg, x + 13, placed[i] + size * 0.35, size, LWS_SVG_START, colours[i], 0, "%s",
                     text[i]);
        y[i] = placed[i];
    }
    free(order);
    free(placed);
}
