/* The per-layer profile chart of `lws schedule --svg` and `lws sweep`'s
 * profiles.svg (see svg.h for lws_profile_chart). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/svg.h"

static double value_of(const lws_profile_series *s, int panel, uint32_t layer) {
    const lws_layer_shape *l = &s->cfg->layers[layer];
    return panel == 0 ? l->ffn_dim : panel == 1 ? l->q_heads : s->layer_ms[layer];
}

/* The panels: FFN width and query heads, and the measured time when any
 * series has it. Layer i spans [i - 0.5, i + 0.5], so integer ticks sit
 * under layer centres. */
static int layout(const lws_profile_series *s, int n, lws_svg_axes *panels, double left,
                  double plot_w) {
    uint32_t max_layers = 1;
    double top[3] = {1, 1, 0};
    int timed = 0;
    for (int k = 0; k < n; k++) {
        uint32_t L = s[k].cfg->model.n_layers;
        if (L > max_layers) max_layers = L;
        timed |= s[k].layer_ms != NULL;
        for (uint32_t i = 0; i < L; i++)
            for (int p = 0; p < (s[k].layer_ms ? 3 : 2); p++)
                top[p] = fmax(top[p], value_of(&s[k], p, i));
    }
    double layer_tick = fmax(1, lws_svg_nice_step(max_layers, 12));
    double heads_tick = fmax(1, lws_svg_nice_step(top[1], 5));
    double heights[3] = {timed ? 230 : 300, timed ? 150 : 190, 190};
    double y = 75;
    for (int p = 0; p < 2 + timed; p++) {
        panels[p] = (lws_svg_axes){left,       y,
                                   plot_w,     heights[p],
                                   -0.5,       max_layers - 0.5,
                                   0,          top[p] * (p == 1 ? 1.15 : 1.1) + (p == 1 ? 0.5 : 0),
                                   layer_tick, p == 1 ? heads_tick : 0};
        y += heights[p] + 70;
    }
    return 2 + timed;
}

lws_status lws_profile_chart(const char *path, const char *title, const lws_profile_series *s,
                             int n) {
    const double left = 80, plot_w = 690, width = 980;
    lws_svg_axes panels[3];
    int n_panels = layout(s, n, panels, left, plot_w);
    double height = panels[n_panels - 1].top + panels[n_panels - 1].height + 75;
    lws_svg svg;
    LWS_TRY(lws_svg_begin(&svg, path, width, height));
    lws_svg_text(&svg, left, 28, 17, LWS_SVG_START, "#000000", 0, "%s", title);
    static const char *const titles[3] = {"FFN width (d_ffn) per layer", "query heads per layer",
                                          ("measured forward + backward time per layer (ms, "
                                           "median over the steps)")};
    static const char *const y_labels[3] = {"FFN width", "query heads", "ms"};
    for (int p = 0; p < n_panels; p++)
        lws_svg_draw_axes(&svg, &panels[p], p == n_panels - 1 ? "layer" : NULL, y_labels[p],
                          titles[p]);
    double edges[LWS_MAX_LAYERS + 1], values[LWS_MAX_LAYERS];
    double *ends = malloc(2 * (size_t)n * sizeof *ends);
    const char **names = malloc((size_t)n * sizeof *names),
               **colours = malloc((size_t)n * sizeof *colours);
    if (!ends || !names || !colours) {
        free(ends), free(names), free(colours);
        lws_svg_discard(&svg);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory drawing the chart", path);
    }
    for (int p = 0; p < n_panels; p++) {
        const lws_svg_axes *ax = &panels[p];
        uint32_t k_drawn = 0;
        for (int k = 0; k < n; k++) {
            if (p == 2 && !s[k].layer_ms) continue;
            uint32_t layers = s[k].cfg->model.n_layers;
            for (uint32_t i = 0; i <= layers; i++) edges[i] = i - 0.5;
            for (uint32_t i = 0; i < layers; i++) values[i] = value_of(&s[k], p, i);
            /* Identical steps of several series would hide each other: each
             * sits a little above or below the exact height. */
            double dy = n > 1 ? (k - (n - 1) / 2.0) * 2.5 : 0;
            const char *colour = lws_svg_colour((uint32_t)s[k].colour);
            lws_svg_steps(&svg, ax, edges, values, layers, colour, 2.2, dy);
            ends[k_drawn] = lws_svg_y(ax, values[layers - 1]) + dy;
            ends[n + k_drawn] = lws_svg_x(ax, edges[layers]);
            names[k_drawn] = s[k].name;
            colours[k_drawn++] = colour;
        }
        lws_svg_end_labels(&svg, left + plot_w + 4, ends + n, ends, names, colours, k_drawn, 12,
                           ax->top, ax->top + ax->height);
    }
    free(ends), free(names), free(colours);
    lws_svg_text(&svg, left, height - 12, 11, LWS_SVG_START, "#555555", 0,
                 "Series that coincide are drawn a few pixels apart; each line is named at its "
                 "last layer.");
    return lws_svg_end(&svg);
}
