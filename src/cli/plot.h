/* Loss curves of training runs (log.jsonl), for `lws plot` and the curves
 * of `lws sweep`: runs that differ only in their seed form a group, drawn
 * in one colour as the mean over its runs with a band from the lowest to the
 * highest; a second panel zooms on the end of training.
 *
 *   lws_plot_run runs[2] = {0};
 *   LWS_TRY(lws_plot_read_log("runs/a", NULL, &runs[0]));
 *   ...
 *   lws_plot_options o = {.grouped = 1, .zoom = 0.5};
 *   lws_plot_draw("loss.svg", runs, 2, &o);
 */
#ifndef LWS_CLI_PLOT_H
#define LWS_CLI_PLOT_H

#include <stdint.h>

#include "lws/status.h"

typedef struct lws_plot_series {
    double *x, *y; /* tokens, value */
    uint32_t n, cap;
} lws_plot_series;

typedef struct lws_plot_run {
    char name[256], path[1200];
    /* The group key: the run's config.json without its seed and directory
     * (runs that differ only in the seed share it); label: how the group is
     * named (the config's name). */
    char *group_key;
    char group_label[256];
    int colour;                      /* the group's colour index; -1: in order of the groups */
    lws_plot_series train, val, bpb; /* training loss, validation loss, validation bits/byte */
} lws_plot_run;

/* Appends (x, y); 0 when out of memory. */
int lws_plot_push(lws_plot_series *s, double x, double y);

/* A run directory (its log.jsonl) or a log file; name NULL: the directory's
 * name. The group comes from config.json beside the log (without one, the
 * run is a group of its own). */
lws_status lws_plot_read_log(const char *arg, const char *name, lws_plot_run *r);
void lws_plot_run_free(lws_plot_run *r);

typedef struct lws_plot_options {
    const char *title;
    int grouped;  /* groups as mean lines with bands (else one line per run) */
    int bpb;      /* the y axis in bits per byte (validation only: training loss is in nats) */
    int val_only; /* validation curves only */
    double zoom;  /* > 0: a second panel with the last `zoom` of the tokens, fitted to the
                     validation curves there */
} lws_plot_options;

lws_status lws_plot_draw(const char *path, lws_plot_run *runs, int n, const lws_plot_options *o);

#endif
