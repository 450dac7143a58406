/* Shared by the files of `lws bench` (bench.c: the training benchmark and the
 * matmul peak; bench_kernels.c: per-op timings; bench_report.c: the parts of
 * a report, docs/bench-report.md). */
#ifndef LWS_CLI_BENCH_H
#define LWS_CLI_BENCH_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "lws/config.h"
#include "lws/vk.h"

int lws_cli_bench_kernels(int argc, char **argv);

/* Summary of n samples (n >= 1); v is left unchanged. */
typedef struct lws_stats {
    double median, min, max, mean, stdev;
} lws_stats;
lws_stats lws_stats_of(const double *v, uint32_t n);

/* A new report object with the fields every kind carries: version, kind,
 * label, created, engine, host, device. */
cJSON *lws_report_begin(const char *kind, const char *label, const char *precision,
                        const lws_device_caps *caps);
/* The config section (name, path, shape of every layer, FLOPs per token at seq_len). */
cJSON *lws_report_config(const lws_config *cfg, uint32_t seq_len);
/* Writes the report, pretty-printed, to path ("-" = stdout). */
lws_status lws_report_write(cJSON *report, const char *path);
/* Writes the report, says where, deletes it; returns the exit status. */
int lws_report_finish(cJSON *report, const char *path);

/* o[name] = v, or null when v is not finite. */
void lws_json_number_or_null(cJSON *o, const char *name, double v);

/* Several ranks (bench_dist.c): every rank's tokens/s (tokens_per_step of its
 * own over its median step), and the gradient reductions' medians and hidden
 * fraction; printed, and the report's "distributed" section in *out. Every
 * rank calls it. */
struct lws_dist;
struct lws_dist_stats;
lws_status lws_bench_dist_report(struct lws_dist *d, const double *step_ms,
                                 const struct lws_dist_stats *stats, uint32_t steps,
                                 double tokens_per_step, cJSON **out);

/* Human summary of the device and the config (one or two lines each). */
void lws_print_device(const lws_device_caps *caps);
void lws_print_config(const lws_config *cfg);

#endif
