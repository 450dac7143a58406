/* The ranks of a run in an lws built without MPI (include/lws/dist.h):
 * always one rank, so every collective leaves its data as it is, and a
 * reduce-scatter is a copy of this rank's slice. */
#include <stdlib.h>
#include <string.h>

#include "lws/dist.h"

struct lws_dist {
    int unused;
};

/* Requests complete when they start: one shared, never freed. */
struct lws_dist_request {
    int unused;
};
static lws_dist_request done_request;

lws_status lws_dist_start(int *argc, char ***argv, lws_dist **out) {
    (void)argc, (void)argv;
    *out = NULL;
    /* Started as one of several ranks, each would train alone into the same
     * run directory. */
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const char *n = getenv(sizes[i]);
        if (n && atoi(n) > 1)
            return lws_fail(LWS_ERR_INVALID,
                            "started as one of %s ranks (%s), but this lws is built without "
                            "MPI: install an MPI library (Debian: libopenmpi-dev) and build "
                            "again, or run one process",
                            n, sizes[i]);
    }
    *out = calloc(1, sizeof **out);
    return *out ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
}

void lws_dist_finish(lws_dist *d) {
    free(d);
}

void lws_dist_abort(lws_dist *d, int code) {
    (void)d;
    exit(code);
}

int lws_dist_rank(const lws_dist *d) {
    return (void)d, 0;
}
int lws_dist_size(const lws_dist *d) {
    return (void)d, 1;
}
int lws_dist_local_rank(const lws_dist *d) {
    return (void)d, 0;
}
int lws_dist_local_size(const lws_dist *d) {
    return (void)d, 1;
}

const char *lws_dist_library(void) {
    return NULL;
}

lws_status lws_dist_allreduce_f64(lws_dist *d, double *x, uint32_t n, lws_dist_op op) {
    (void)d, (void)x, (void)n, (void)op;
    return LWS_OK;
}

lws_status lws_dist_broadcast(lws_dist *d, void *buf, uint64_t bytes, int root) {
    (void)d, (void)buf, (void)bytes, (void)root;
    return LWS_OK;
}

lws_status lws_dist_allgather_f32(lws_dist *d, float *x, const uint64_t *bounds) {
    (void)d, (void)x, (void)bounds;
    return LWS_OK;
}

lws_status lws_dist_gather_f32(lws_dist *d, float *x, const uint64_t *bounds, int root) {
    (void)d, (void)x, (void)bounds, (void)root;
    return LWS_OK;
}

lws_status lws_dist_allreduce_f32_start(lws_dist *d, float *x, uint64_t n, lws_dist_request **out) {
    (void)d, (void)x, (void)n;
    *out = &done_request;
    return LWS_OK;
}

lws_status lws_dist_reduce_scatter_f32_start(lws_dist *d, const float *x, uint64_t lo, uint64_t hi,
                                             const uint64_t *bounds, float *shard,
                                             lws_dist_request **out) {
    (void)d;
    uint64_t from = lo > bounds[0] ? lo : bounds[0], to = hi < bounds[1] ? hi : bounds[1];
    if (to > from) memcpy(shard + (from - bounds[0]), x + from, (to - from) * sizeof *x);
    *out = &done_request;
    return LWS_OK;
}

lws_status lws_dist_test(lws_dist_request *r, int *done) {
    (void)r;
    *done = 1;
    return LWS_OK;
}

lws_status lws_dist_wait(lws_dist_request *r) {
    (void)r;
    return LWS_OK;
}
