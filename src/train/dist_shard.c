/* ZeRO-1 (optimizer-state sharding) over the ranks of a run: rank r keeps
 * the AdamW moments of slice r of the flat parameter block
 * (lws_model_create_shard). The gradients are reduce-scattered (each rank
 * receives the sums of its slice only), each rank clips with the global norm
 * (the slices' squared norms summed) and updates its slice, and the updated
 * slices are gathered by every rank. The moments take 1/N of the memory;
 * the traffic is that of an all-reduce (a reduce-scatter and an all-gather). */
#include <stdlib.h>
#include <time.h>

#include "train/dist_internal.h"

struct lws_shard {
    lws_model *m;
    lws_dist *d;
    int rank, size;
    uint64_t *bounds; /* [size + 1] */
    uint64_t lo, hi;  /* this rank's slice */
    float *grads;     /* [hi - lo] this rank's reduced gradients */
    float *params;    /* [floats] the parameters, gathered */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

lws_status lws_shard_create(lws_model *m, lws_dist *d, lws_shard **out) {
    *out = NULL;
    lws_shard *sh = calloc(1, sizeof *sh);
    if (!sh) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    sh->m = m;
    sh->d = d;
    sh->rank = lws_dist_rank(d);
    sh->size = lws_dist_size(d);
    uint64_t floats = lws_model_floats(m);
    sh->bounds = malloc(((size_t)sh->size + 1) * sizeof *sh->bounds);
    lws_model_shard_range(m, &sh->lo, &sh->hi);
    if (sh->bounds) lws_model_shard_bounds(floats, (uint32_t)sh->size, sh->bounds);
    sh->grads = malloc((sh->hi - sh->lo + 1) * sizeof *sh->grads);
    sh->params = malloc(floats * sizeof *sh->params);
    lws_status s = sh->bounds && sh->grads && sh->params
                       ? LWS_OK
                       : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK && (sh->bounds[sh->rank] != sh->lo || sh->bounds[sh->rank + 1] != sh->hi))
        s = lws_fail(LWS_ERR_INVALID,
                     "the model keeps optimizer slice %llu .. %llu, but rank %d of %d has "
                     "%llu .. %llu: build it with lws_model_create_shard for this rank",
                     (unsigned long long)sh->lo, (unsigned long long)sh->hi, sh->rank, sh->size,
                     (unsigned long long)sh->bounds[sh->rank],
                     (unsigned long long)sh->bounds[sh->rank + 1]);
    if (s != LWS_OK) {
        lws_shard_destroy(sh);
        return s;
    }
    *out = sh;
    return LWS_OK;
}

void lws_shard_destroy(lws_shard *sh) {
    if (!sh) return;
    free(sh->bounds);
    free(sh->grads);
    free(sh->params);
    free(sh);
}

lws_status lws_shard_reduce_start(lws_shard *sh, const float *grads, uint64_t lo, uint64_t hi,
                                  lws_dist_request **out) {
    return lws_dist_reduce_scatter_f32_start(sh->d, grads, lo, hi, sh->bounds, sh->grads, out);
}

lws_status lws_shard_take_grads(lws_shard *sh, lws_dist_stats *stats) {
    double t0 = now_ms();
    float scale = 1.0f / (float)sh->size;
    for (uint64_t i = 0; i < sh->hi - sh->lo; i++) sh->grads[i] *= scale;
    LWS_TRY(lws_model_upload_range(sh->m, LWS_BLOCK_GRADS, sh->lo, sh->hi - sh->lo, sh->grads));
    stats->copy_ms += now_ms() - t0;
    return LWS_OK;
}

static lws_status sum_over_ranks(void *user, double *x, uint32_t n) {
    return lws_dist_allreduce_f64(user, x, n, LWS_DIST_SUM);
}

lws_status lws_shard_update(lws_shard *sh, uint64_t step, double lr, double *grad_norm,
                            lws_dist_stats *stats) {
    double nonfinite = 0;
    LWS_TRY(lws_model_optimizer_step_shard(sh->m, lr, step, sum_over_ranks, sh->d, grad_norm,
                                           &nonfinite));
    /* every rank has the same norm and count: they fail together, and an
     * fp16 overflow skipped the update on all (no slice changed) */
    LWS_TRY(lws_train_check_update(sh->m, step, lr, *grad_norm, nonfinite));
    if (lws_model_loss_scale(sh->m).skipped) return LWS_OK;
    double t0 = now_ms();
    LWS_TRY(lws_model_download_range(sh->m, LWS_BLOCK_PARAMS, sh->lo, sh->hi - sh->lo,
                                     sh->params + sh->lo));
    double t1 = now_ms();
    LWS_TRY(lws_dist_allgather_f32(sh->d, sh->params, sh->bounds));
    double t2 = now_ms();
    LWS_TRY(lws_model_upload(sh->m, LWS_BLOCK_PARAMS, sh->params));
    stats->copy_ms += (t1 - t0) + (now_ms() - t2);
    stats->gather_ms += t2 - t1;
    return LWS_OK;
}
