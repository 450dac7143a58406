/* lws compare REPORT...: training reports of lws (on any device) and of
 * PyTorch side by side, ratios to the first; --markdown; --svg with a bar
 * chart of tokens/s and the per-layer time profiles of every report that has
 * them, overlaid (several devices on one config, or several LWS profiles). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/svg.h"
#include "train/report.h"

static const char *usage = "lws compare REPORT.json... [--markdown] [--svg FILE]";

static const char *bytes_text(double b, char *out, size_t cap) {
    if (!isfinite(b))
        snprintf(out, cap, "-");
    else if (b >= 1073741824.0)
        snprintf(out, cap, "%.2f GiB", b / 1073741824.0);
    else
        snprintf(out, cap, "%.1f MiB", b / 1048576.0);
    return out;
}

static const char *mfu_text(const lws_report *r, char *out, size_t cap) {
    if (!isfinite(r->mfu))
        snprintf(out, cap, "-");
    else if (isfinite(r->mfu_datasheet))
        snprintf(out, cap, "%.1f%% (%.1f%% sheet)", 100 * r->mfu, 100 * r->mfu_datasheet);
    else
        snprintf(out, cap, "%.1f%%", 100 * r->mfu);
    return out;
}

/* "llvmpipe (LLVM 15.0.6, 256 bits)" cut to width with an ellipsis. */
static const char *cut(const char *text, size_t width, char *out, size_t cap) {
    if (strlen(text) <= width || width < 4) {
        snprintf(out, cap, "%s", text);
        return out;
    }
    snprintf(out, cap, "%.*s...", (int)(width - 3), text);
    return out;
}

static int same_work(const lws_report *a, const lws_report *b) {
    return strcmp(a->config, b->config) == 0 && a->n_layers == b->n_layers &&
           a->micro_batch == b->micro_batch && a->seq_len == b->seq_len;
}

static void print_table(const lws_report *r, int n) {
    printf("  %-2s %-26s %-34s %-12s %-9s %12s %8s %-20s %-22s %s\n", "#", "report", "device",
           "config", "batch", "tokens/s", "x first", "MFU", "step ms (min-max)", "peak memory");
    for (int i = 0; i < n; i++) {
        char batch[32], step[200], label[64], device[64], config[64];
        char med[64], lo[64], hi[64], tok[64], mfu[64], mem[64];
        snprintf(batch, sizeof batch, "%ux%u", r[i].micro_batch, r[i].seq_len);
        if (r[i].grad_accum > 1)
            snprintf(batch + strlen(batch), sizeof batch - strlen(batch), "x%u", r[i].grad_accum);
        snprintf(step, sizeof step, "%s (%s-%s)", lws_cli_number(r[i].step_ms, med, sizeof med),
                 lws_cli_number(r[i].step_ms_min, lo, sizeof lo),
                 lws_cli_number(r[i].step_ms_max, hi, sizeof hi));
        printf("  %-2d %-26s %-34s %-12s %-9s %12s %8.2f %-20s %-22s %s (%s)\n", i + 1,
               cut(r[i].label, 26, label, sizeof label),
               cut(r[i].device, 34, device, sizeof device),
               cut(r[i].config, 12, config, sizeof config), batch,
               lws_cli_number(r[i].tokens_per_s, tok, sizeof tok),
               r[i].tokens_per_s / r[0].tokens_per_s, mfu_text(&r[i], mfu, sizeof mfu), step,
               bytes_text(r[i].memory_bytes, mem, sizeof mem), r[i].memory_kind);
    }
}

static void print_markdown(const lws_report *r, int n) {
    printf("| # | Report | Device | Config | Batch | tokens/s | x first | MFU | Step ms (min-max) "
           "| Peak memory |\n");
    printf("|---|---|---|---|---|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++) {
        char tok[64], mfu[64], step[64], lo[64], hi[64], mem[64];
        printf("| %d | %s | %s | %s | %u x %u%s | %s | %.2f | %s | %s (%s-%s) | %s (%s) |\n", i + 1,
               r[i].label, r[i].device, r[i].config, r[i].micro_batch, r[i].seq_len,
               r[i].grad_accum > 1 ? " (accumulated)" : "",
               lws_cli_number(r[i].tokens_per_s, tok, sizeof tok),
               r[i].tokens_per_s / r[0].tokens_per_s, mfu_text(&r[i], mfu, sizeof mfu),
               lws_cli_number(r[i].step_ms, step, sizeof step),
               lws_cli_number(r[i].step_ms_min, lo, sizeof lo),
               lws_cli_number(r[i].step_ms_max, hi, sizeof hi),
               bytes_text(r[i].memory_bytes, mem, sizeof mem), r[i].memory_kind);
    }
    printf("\n");
    for (int i = 0; i < n; i++)
        printf("%d. `%s`: %s %s %s on %s (%s, %s), %s, host load %.2f\n", i + 1, r[i].path,
               r[i].engine, r[i].engine_version, r[i].precision, r[i].device, r[i].driver,
               r[i].api_version, r[i].created, r[i].load_average);
}

/* ---- the chart ----------------------------------------------------------------- */

/* Horizontal bars of tokens/s, one per report, with the ratio to the first.
 * A log scale when the reports differ by more than 30x (a CPU next to a GPU). */
static void draw_bars(lws_svg *svg, const lws_report *r, int n, double top, double width) {
    const double left = 290, right = 170, row = 40;
    double plot_w = width - left - right, lo = INFINITY, hi = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].tokens_per_s < lo) lo = r[i].tokens_per_s;
        if (r[i].tokens_per_s > hi) hi = r[i].tokens_per_s;
    }
    int log_scale = hi / lo > 30;
    lws_svg_axes ax = {left, top, plot_w, row * n, 0, hi * 1.05, 0, n, 0, 1};
    if (log_scale) {
        ax.x_min = floor(log10(lo)) - (lo == pow(10, floor(log10(lo))) ? 1 : 0);
        ax.x_max = ceil(log10(hi));
        ax.x_tick = 1;
    }
    const char *ink = "#333333";
    lws_svg_text(svg, left, top - 12, 14, LWS_SVG_START, "#000000", 0,
                 "Training throughput (tokens/s%s), ratio to report 1",
                 log_scale ? ", log scale" : "");
    double step = log_scale ? 1 : lws_svg_nice_step(ax.x_max - ax.x_min, 6);
    for (double v = ax.x_min; v <= ax.x_max + 1e-9; v += step) {
        double x = lws_svg_x(&ax, v);
        lws_svg_line(svg, x, top, x, top + row * n, "#e4e4e4", 1, NULL);
        char label[64];
        double tick = log_scale ? pow(10, v) : v;
        if (tick >= 100)
            lws_cli_number(tick, label, sizeof label); /* digits grouped by thousands */
        else
            snprintf(label, sizeof label, "%g", tick);
        lws_svg_text(svg, x, top + row * n + 16, 11, LWS_SVG_MIDDLE, ink, 0, "%s", label);
    }
    for (int i = 0; i < n; i++) {
        double y = top + row * i;
        double v = log_scale ? log10(r[i].tokens_per_s) : r[i].tokens_per_s;
        double x1 = lws_svg_x(&ax, v), x0 = lws_svg_x(&ax, ax.x_min);
        lws_svg_rect(svg, x0, y + 7, x1 - x0, row - 14, lws_svg_colour((uint32_t)i), NULL);
        char label[80], device[64], value[100], tmp[64];
        lws_svg_text(svg, left - 10, y + 18, 12, LWS_SVG_END, "#000000", 0, "%d. %s", i + 1,
                     cut(r[i].label, 40, label, sizeof label));
        lws_svg_text(svg, left - 10, y + 32, 10, LWS_SVG_END, "#555555", 0, "%s, %s %ux%u",
                     cut(r[i].device, 30, device, sizeof device), r[i].config, r[i].micro_batch,
                     r[i].seq_len);
        snprintf(value, sizeof value, "%s  \u00d7%.2f",
                 lws_cli_number(r[i].tokens_per_s, tmp, sizeof tmp),
                 r[i].tokens_per_s / r[0].tokens_per_s);
        lws_svg_text(svg, x1 + 6, y + row / 2 + 4, 12, LWS_SVG_START, ink, 0, "%s", value);
    }
    lws_svg_line(svg, left, top, left, top + row * n, ink, 1, NULL);
    lws_svg_line(svg, left, top + row * n, left + plot_w, top + row * n, ink, 1, NULL);
}

/* Time and FLOPs shares of report r's layers, in percent. */
static double layer_total(const lws_report *r) {
    double total = 0;
    for (uint32_t l = 0; l < r->n_layers; l++) total += r->layer_fwd_ms[l] + r->layer_bwd_ms[l];
    return total;
}

static double flops_total(const lws_report *r) {
    double total = 0;
    for (uint32_t l = 0; l < r->n_layers; l++) total += r->layer_flops[l];
    return total;
}

/* The axes over the layers of every report with layer times. */
static int profile_axes(const lws_report *r, int n, const int *in, double top, double width,
                        double height, lws_svg_axes *ax) {
    uint32_t L = 1;
    double hi = 0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (!in[i]) continue;
        count++;
        if (r[i].n_layers > L) L = r[i].n_layers;
        double total = layer_total(&r[i]), flops = flops_total(&r[i]);
        for (uint32_t l = 0; l < r[i].n_layers; l++) {
            if (total > 0)
                hi = fmax(hi, 100 * (r[i].layer_fwd_ms[l] + r[i].layer_bwd_ms[l]) / total);
            if (isfinite(flops) && flops > 0) hi = fmax(hi, 100 * r[i].layer_flops[l] / flops);
        }
    }
    *ax = (lws_svg_axes){80,
                         top,
                         width - 80 - 230,
                         height,
                         -0.5,
                         L - 0.5,
                         0,
                         hi > 0 ? hi * 1.15 : 1,
                         fmax(1, lws_svg_nice_step(L, 12)),
                         0};
    return count;
}

/* One report's line: values[l] as percent of total, at the layer centres. */
static void share_line(lws_svg *svg, const lws_svg_axes *ax, const lws_report *r, int pass,
                       double total, const char *colour, double *px) {
    double *py = px + r->n_layers;
    for (uint32_t l = 0; l < r->n_layers; l++) {
        double v = pass == 2   ? r->layer_flops[l]
                   : pass == 0 ? r->layer_fwd_ms[l] + r->layer_bwd_ms[l]
                               : r->layer_fwd_ms[l];
        px[l] = lws_svg_x(ax, l);
        py[l] = lws_svg_y(ax, 100 * v / total);
    }
    lws_svg_polyline(svg, px, py, r->n_layers, colour, pass == 0 ? 2.2 : 1.4,
                     pass == 0   ? NULL
                     : pass == 1 ? "6 4"
                                 : "2 3");
    for (uint32_t l = 0; pass == 0 && l < r->n_layers; l++)
        lws_svg_rect(svg, px[l] - 2.5, py[l] - 2.5, 5, 5, colour, NULL);
}

/* Per-layer forward + backward time as a share of all layers' time, one line
 * per report that has layer times (configs of any depth overlaid), with the
 * share of the model FLOPs each layer has: one grey line when the reports
 * share a config, else a dotted line per report in its colour. */
static int draw_profiles(lws_svg *svg, const lws_report *r, int n, double top, double width,
                         double height) {
    int *in = calloc((size_t)n, sizeof *in), first = -1, same_config = 1;
    if (!in) return 0;
    for (int i = 0; i < n; i++) {
        in[i] = r[i].n_layer_times == r[i].n_layers && r[i].n_layers > 0 && layer_total(&r[i]) > 0;
        if (in[i] && first < 0) first = i;
        if (in[i] && strcmp(r[i].config, r[first].config) != 0) same_config = 0;
    }
    lws_svg_axes ax;
    int count = profile_axes(r, n, in, top, width, height, &ax);
    if (count == 0) {
        free(in);
        return 0;
    }
    char title[256];
    snprintf(
        title, sizeof title,
        "Per-layer device time%s%s: forward + backward (solid) and forward (dashed), %% of all "
        "layers",
        same_config ? " of " : "", same_config ? r[first].config : "");
    lws_svg_draw_axes(svg, &ax, "layer", "% of the layers' time", title);
    double *px = malloc(2 * LWS_MAX_LAYERS * sizeof *px),
           *ends = malloc(2 * (size_t)n * sizeof *ends);
    const char **names = malloc((size_t)n * sizeof *names),
               **colours = malloc((size_t)n * sizeof *colours);
    char(*text)[96] = malloc((size_t)n * sizeof *text);
    uint32_t k = 0;
    for (int i = 0; px && ends && names && colours && text && i < n; i++) {
        if (!in[i]) continue;
        const char *colour = lws_svg_colour((uint32_t)i);
        double flops = flops_total(&r[i]);
        int config_seen = 0; /* the FLOPs shares once per config */
        for (int j = 0; j < i; j++) config_seen |= in[j] && strcmp(r[j].config, r[i].config) == 0;
        if (isfinite(flops) && flops > 0 && !config_seen)
            share_line(svg, &ax, &r[i], 2, flops, same_config ? "#888888" : colour, px);
        for (int pass = 0; pass < 2; pass++)
            share_line(svg, &ax, &r[i], pass, layer_total(&r[i]), colour, px);
        uint32_t last = r[i].n_layers - 1;
        ends[k] = lws_svg_y(&ax, 100 * (r[i].layer_fwd_ms[last] + r[i].layer_bwd_ms[last]) /
                                     layer_total(&r[i]));
        ends[n + k] = lws_svg_x(&ax, last);
        snprintf(text[k], sizeof text[k], "%d. %.28s (%.24s)", i + 1, r[i].label, r[i].config);
        names[k] = text[k];
        colours[k++] = colour;
    }
    lws_svg_text(svg, ax.left + 4, ax.top + 14, 10, LWS_SVG_START, "#666666", 0,
                 "dotted: each layer's share of the model FLOPs%s",
                 same_config ? "" : " (one line per config)");
    if (k)
        lws_svg_end_labels(svg, ax.left + ax.width + 6, ends + n, ends, names, colours, k, 11, top,
                           top + height);
    free(px), free(ends), free(names), free(colours), free(text), free(in);
    return count;
}

static lws_status draw_chart(const char *path, const lws_report *r, int n) {
    const double width = 1000, bars_top = 60, row = 40;
    int profiles = 0;
    for (int i = 0; i < n; i++)
        if (r[i].n_layer_times > 0) profiles = 1;
    double bars_h = row * n + 40, profile_top = bars_top + bars_h + 60, profile_h = 300;
    double height = profiles ? profile_top + profile_h + 70 : bars_top + bars_h + 40;
    lws_svg svg;
    LWS_TRY(lws_svg_begin(&svg, path, width, height));
    lws_svg_text(&svg, 20, 28, 17, LWS_SVG_START, "#000000", 0, "lws compare: %d report%s", n,
                 n == 1 ? "" : "s");
    draw_bars(&svg, r, n, bars_top, width);
    if (profiles) {
        int shown = draw_profiles(&svg, r, n, profile_top, width, profile_h);
        lws_svg_text(&svg, 80, height - 14, 11, LWS_SVG_START, "#555555", 0,
                     "Layer profiles from timestamp queries: %d report%s with per-layer times; "
                     "reports without them (PyTorch) are left out.",
                     shown, shown == 1 ? "" : "s");
    }
    return lws_svg_end(&svg);
}

int lws_cli_compare(int argc, char **argv) {
    int markdown = 0;
    const char *svg_path = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n = 0;
    if (!files) return 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n\nA table of benchmark reports (`lws bench CONFIG --json FILE`, "
                   "bench/torch_reference.py --json FILE):\ndevice, config, batch, tokens/s with "
                   "the ratio to the first report, MFU, step time, peak memory.\n"
                   "  --markdown   the table as GitHub Markdown, with each report's origin\n"
                   "  --svg FILE   bar chart of tokens/s; the per-layer time profiles of every "
                   "report overlaid\n",
                   usage);
            free(files);
            return 0;
        } else if (strcmp(argv[i], "--markdown") == 0)
            markdown = 1;
        else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc)
            svg_path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) {
            free(files);
            return lws_cli_usage(usage, "unknown option '%s'", argv[i]);
        } else
            files[n++] = argv[i];
    }
    if (n == 0) {
        free(files);
        return lws_cli_usage(usage, "give at least one report");
    }
    lws_report *r = calloc((size_t)n, sizeof *r);
    int rc = 0, loaded = 0;
    if (!r) rc = lws_cli_usage(usage, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++, loaded++)
        if (lws_report_load(files[i], &r[i]) != LWS_OK) rc = lws_cli_error();
    if (rc == 0) {
        if (markdown)
            print_markdown(r, n);
        else
            print_table(r, n);
        int mixed = 0;
        for (int i = 1; i < n; i++)
            if (!same_work(&r[0], &r[i])) mixed = 1;
        if (mixed)
            printf("%snote: the reports differ in config or batch shape; their tokens/s "
                   "compare unlike work\n",
                   markdown ? "\n" : "");
    }
    if (rc == 0 && svg_path) {
        if (draw_chart(svg_path, r, n) != LWS_OK)
            rc = lws_cli_error();
        else
            printf("%schart written to %s\n", markdown ? "\n" : "", svg_path);
    }
    for (int i = 0; i < loaded && r; i++) lws_report_free(&r[i]);
    free(r);
    free(files);
    return rc;
}
