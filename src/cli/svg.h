/* A small SVG writer for the plots of the command line (LWS profiles, loss
 * curves, benchmark comparisons): lines, step lines, text, axes with ticks,
 * and end-of-line labels that do not overlap, in a colour-blind-safe palette.
 *
 *   lws_svg svg;
 *   LWS_TRY(lws_svg_begin(&svg, "out.svg", 800, 500));
 *   lws_svg_axes ax = {.left = 70, .top = 40, .width = 600, .height = 380,
 *                      .x_min = 0, .x_max = 100, .y_min = 0, .y_max = 5};
 *   lws_svg_draw_axes(&svg, &ax, "step", "loss", "training loss");
 *   lws_svg_polyline_data(&svg, &ax, xs, ys, n, lws_svg_colour(0), 2);
 *   return lws_svg_end(&svg);   // reports a failed write
 */
#ifndef LWS_CLI_SVG_H
#define LWS_CLI_SVG_H

#include <stdint.h>
#include <stdio.h>

#include "lws/config.h"
#include "lws/status.h"

typedef struct lws_svg {
    FILE *f;    /* prints to text, a memory stream */
    char *text; /* the document so far */
    size_t text_len;
    char *path; /* where lws_svg_end writes it */
    double width, height;
} lws_svg;

typedef enum { LWS_SVG_START, LWS_SVG_MIDDLE, LWS_SVG_END } lws_svg_anchor;

/* A plot area in pixels and the data range it shows. */
typedef struct lws_svg_axes {
    double left, top, width, height;
    double x_min, x_max, y_min, y_max;
    double x_tick, y_tick; /* tick spacing; 0 = a nice automatic step */
} lws_svg_axes;

/* Colour i of a palette readable by colour-blind people (Okabe & Ito). */
const char *lws_svg_colour(uint32_t i);

lws_status lws_svg_begin(lws_svg *svg, const char *path, double width, double height);
/* Closes the document and writes it to the path, atomically (a reader never
 * sees half a chart); fails if it could not be written. */
lws_status lws_svg_end(lws_svg *svg);
/* Drops the document without writing anything (after another failure). */
void lws_svg_discard(lws_svg *svg);

void lws_svg_line(lws_svg *svg, double x0, double y0, double x1, double y1, const char *colour,
                  double width, const char *dash);
void lws_svg_rect(lws_svg *svg, double x, double y, double w, double h, const char *fill,
                  const char *stroke);
/* Pixel coordinates; dash NULL = solid (else an SVG dasharray like "6 3"). */
void lws_svg_polyline(lws_svg *svg, const double *x, const double *y, uint32_t n,
                      const char *colour, double width, const char *dash);
/* Text (escaped) at a pixel position; rotate in degrees (-90 for a y label). */
void lws_svg_text(lws_svg *svg, double x, double y, double size, lws_svg_anchor anchor,
                  const char *colour, double rotate, const char *fmt, ...) LWS_PRINTF(8, 9);

/* Data -> pixels. */
double lws_svg_x(const lws_svg_axes *a, double x);
double lws_svg_y(const lws_svg_axes *a, double y);
/* A tick spacing of 1, 2 or 5 x 10^k giving about `ticks` ticks over range. */
double lws_svg_nice_step(double range, int ticks);
/* Frame, grid, ticks with labels, axis labels and a title above the area. */
void lws_svg_draw_axes(lws_svg *svg, const lws_svg_axes *a, const char *x_label,
                       const char *y_label, const char *title);
/* Data coordinates, clipped to the axes' range by the caller's choice of range. */
void lws_svg_polyline_data(lws_svg *svg, const lws_svg_axes *a, const double *x, const double *y,
                           uint32_t n, const char *colour, double width);
/* A step line: value y[i] held from edges[i] to edges[i+1] (n values, n+1
 * edges), drawn dy pixels off so identical steps of several series stay
 * visible side by side. */
void lws_svg_steps(lws_svg *svg, const lws_svg_axes *a, const double *edges, const double *y,
                   uint32_t n, const char *colour, double width, double dy);
/* Labels at x for series ending at pixels (x_end[i], y[i]) (y is modified:
 * pushed apart at least `size` pixels and kept inside [top, bottom]); each in
 * its colour, with a thin dotted leader from the series' end to its label
 * when the two are apart. x_end NULL: every series ends at x. */
void lws_svg_end_labels(lws_svg *svg, double x, const double *x_end, double *y,
                        const char *const *text, const char *const *colours, uint32_t n,
                        double size, double top, double bottom);

/* ---- the per-layer profile chart (profile_chart.c) ---- */

typedef struct lws_profile_series {
    const char *name;
    const lws_config *cfg;
    const double *layer_ms; /* [n_layers] measured forward + backward time, or NULL */
    int colour;             /* palette index */
} lws_profile_series;

/* Panels over the layer index: FFN width, query heads and, when any series
 * has them, the measured times; one colour per series, each line named at
 * its right end. */
lws_status lws_profile_chart(const char *path, const char *title, const lws_profile_series *s,
                             int n);

#endif
