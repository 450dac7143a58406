/* lws bench under mpirun: what data parallelism costs. Each rank measured
 * its own steps; rank 0 reports every rank's throughput and its own view of
 * the gradient reductions (the ranks wait for each other, so the views
 * differ little). Hidden is the share of the reductions' time in flight
 * that the backward covered: 1 - exposed / reduce, summed over the timed
 * steps. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench.h"
#include "lws/train.h"

static double median_of(const lws_dist_stats *stats, uint32_t n, size_t field) {
    double *v = malloc(n * sizeof *v);
    if (!v) return NAN;
    for (uint32_t i = 0; i < n; i++) v[i] = *(const double *)((const char *)&stats[i] + field);
    double m = lws_stats_of(v, n).median;
    free(v);
    return m;
}

lws_status lws_bench_dist_report(lws_dist *d, const double *step_ms, const lws_dist_stats *stats,
                                 uint32_t steps, double tokens_per_step, cJSON **out) {
    int size = lws_dist_size(d), rank = lws_dist_rank(d);
    double *tok_s = calloc((size_t)size, sizeof *tok_s);
    if (!tok_s) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    tok_s[rank] = tokens_per_step / (lws_stats_of(step_ms, steps).median * 1e-3);
    lws_status s = lws_dist_allreduce_f64(d, tok_s, (uint32_t)size, LWS_DIST_SUM);
    if (s != LWS_OK) {
        free(tok_s);
        return s;
    }
    double reduce = 0, exposed = 0, total = 0;
    for (uint32_t i = 0; i < steps; i++)
        reduce += stats[i].reduce_ms, exposed += stats[i].exposed_ms;
    double hidden = reduce > 0 ? 1.0 - exposed / reduce : NAN;
    if (hidden < 0) hidden = 0; /* exposed counts the wait for the stop and loss agreement too */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ranks", size);
    cJSON_AddStringToObject(o, "mpi", lws_dist_library());
    cJSON *per = cJSON_AddArrayToObject(o, "tokens_per_s_per_rank");
    for (int r = 0; r < size; r++) {
        cJSON_AddItemToArray(per, cJSON_CreateNumber(tok_s[r]));
        total += tok_s[r];
    }
    cJSON_AddNumberToObject(o, "tokens_per_s_total", total);
    cJSON_AddNumberToObject(o, "buckets", steps ? stats[0].buckets : 0);
    cJSON_AddNumberToObject(o, "reduce_ms",
                            median_of(stats, steps, offsetof(lws_dist_stats, reduce_ms)));
    cJSON_AddNumberToObject(o, "exposed_ms",
                            median_of(stats, steps, offsetof(lws_dist_stats, exposed_ms)));
    cJSON_AddNumberToObject(o, "host_copy_ms",
                            median_of(stats, steps, offsetof(lws_dist_stats, copy_ms)));
    cJSON_AddNumberToObject(o, "gather_ms",
                            median_of(stats, steps, offsetof(lws_dist_stats, gather_ms)));
    lws_json_number_or_null(o, "hidden_fraction", hidden);
    printf("\nranks: %d (%s); tokens/s per rank:", size, lws_dist_library());
    for (int r = 0; r < size; r++) printf(" %.1f", tok_s[r]);
    printf(" (total %.1f)\n", total);
    printf("gradient reductions: %u bucket%s, %.2f ms per step (median), %.2f ms of it exposed; "
           "%.0f%% hidden behind the backward; host copies %.2f ms\n",
           steps ? stats[0].buckets : 0, steps && stats[0].buckets == 1 ? "" : "s",
           median_of(stats, steps, offsetof(lws_dist_stats, reduce_ms)),
           median_of(stats, steps, offsetof(lws_dist_stats, exposed_ms)), 100 * hidden,
           median_of(stats, steps, offsetof(lws_dist_stats, copy_ms)));
    free(tok_s);
    *out = o;
    return LWS_OK;
}
