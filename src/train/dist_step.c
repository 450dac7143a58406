/* One optimizer step of a data-parallel run (include/lws/dist.h): every rank
 * runs its share of the step's micro-batches, the gradients are summed over
 * the ranks through host memory and averaged, and every rank applies the
 * same update, so the weights stay identical.
 *
 * Overlap: the last micro-batch runs in buckets of segments
 * (lws_model_run_segments), the head first and the embedding last; when a
 * bucket's segments are done its gradient range is copied to the host and
 * its reduction started, and the host progresses the reductions (MPI makes
 * progress only inside its calls) while the device runs the next bucket.
 * The step then waits for what is left, which is the last bucket's
 * reduction when the network keeps up.
 *
 * Scaling: the loss scales each micro-batch's gradient by 1/grad_accum, as
 * on one rank; the sum over N ranks is multiplied by 1/N on the host, where
 * the reduced gradients pass anyway. The recorded command buffers stay
 * those of a single-rank run, and for N a power of two the scaling is exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lws/dist.h"
#include "train/dist_internal.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct bucket {
    uint32_t first, count; /* segments */
    uint64_t lo, hi;       /* floats of the gradient block */
    lws_dist_request *req; /* NULL once done */
    double posted, done;   /* when its reduction started and was seen done (ms) */
} bucket;

struct lws_dist_step {
    lws_model *m;
    lws_dist *d;
    int rank, size;
    uint64_t floats;
    bucket *buckets;
    uint32_t n_buckets;
    float *grads;     /* host copy of the gradient block */
    lws_shard *shard; /* ZeRO-1, or NULL */
};

/* Segments grouped from the head down until a bucket holds bucket_floats
 * (0: one bucket per segment); the last bucket holds the rest. */
static lws_status plan_buckets(lws_dist_step *s, uint64_t bucket_floats) {
    uint32_t n = lws_model_segments(s->m);
    s->buckets = calloc(n, sizeof *s->buckets);
    if (!s->buckets) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t k = 0; k < n; k++) {
        uint64_t lo, hi;
        lws_model_segment_grads(s->m, k, &lo, &hi);
        bucket *b = &s->buckets[s->n_buckets];
        if (b->count == 0) {
            b->first = k;
            b->hi = hi;
        }
        b->count++;
        b->lo = lo;
        if (b->hi - b->lo >= bucket_floats || k + 1 == n) s->n_buckets++;
    }
    return LWS_OK;
}

lws_status lws_dist_step_create(lws_model *m, lws_dist *d, lws_dist_step **out) {
    *out = NULL;
    lws_dist_step *s = calloc(1, sizeof *s);
    if (!s) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    s->m = m;
    s->d = d;
    s->rank = lws_dist_rank(d);
    s->size = lws_dist_size(d);
    s->floats = lws_model_floats(m);
    s->grads = malloc(s->floats * sizeof *s->grads);
    lws_status st = s->grads ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    const lws_train_config *tc = &lws_model_get_config(m)->train;
    if (st == LWS_OK) st = plan_buckets(s, (uint64_t)(tc->bucket_mb * 1048576.0 / sizeof(float)));
    if (st == LWS_OK && tc->shard_optimizer) st = lws_shard_create(m, d, &s->shard);
    if (st != LWS_OK) {
        lws_dist_step_destroy(s);
        return st;
    }
    *out = s;
    return LWS_OK;
}

void lws_dist_step_destroy(lws_dist_step *s) {
    if (!s) return;
    for (uint32_t i = 0; i < s->n_buckets; i++)
        if (s->buckets[i].req) lws_dist_wait(s->buckets[i].req);
    lws_shard_destroy(s->shard);
    free(s->buckets);
    free(s->grads);
    free(s);
}

uint32_t lws_dist_step_buckets(const lws_dist_step *s) {
    return s->n_buckets;
}

/* Called while the device works: moves the reductions in flight on. */
static lws_status progress(void *user) {
    lws_dist_step *s = user;
    for (uint32_t i = 0; i < s->n_buckets; i++) {
        bucket *b = &s->buckets[i];
        if (!b->req) continue;
        int done = 0;
        LWS_TRY(lws_dist_test(b->req, &done));
        if (done) {
            b->req = NULL;
            b->done = now_ms();
        }
    }
    return LWS_OK;
}

/* Bucket b's gradients to the host and their reduction started. */
static lws_status send_bucket(lws_dist_step *s, bucket *b, lws_dist_stats *stats) {
    lws_model *m = s->m;
    double t0 = now_ms();
    LWS_TRY(lws_model_download_range(m, LWS_BLOCK_GRADS, b->lo, b->hi - b->lo, s->grads + b->lo));
    b->posted = now_ms();
    stats->copy_ms += b->posted - t0;
    if (s->shard) return lws_shard_reduce_start(s->shard, s->grads, b->lo, b->hi, &b->req);
    return lws_dist_allreduce_f32_start(s->d, s->grads + b->lo, b->hi - b->lo, &b->req);
}

/* The last micro-batch, its buckets' reductions overlapping the backward. */
static lws_status last_micro_batch(lws_dist_step *s, const uint32_t *inputs,
                                   const uint32_t *targets, double *loss, lws_dist_stats *stats) {
    lws_model *m = s->m;
    LWS_TRY(lws_model_segments_begin(m, inputs, targets));
    for (uint32_t i = 0; i < s->n_buckets; i++) {
        bucket *b = &s->buckets[i];
        LWS_TRY(lws_model_run_segments(m, b->first, b->count, progress, s));
        if (b->first == 0) LWS_TRY(lws_model_segments_loss(m, loss));
        LWS_TRY(send_bucket(s, b, stats));
    }
    return LWS_OK;
}

/* Waits for the reductions (the backward was done at backward_done),
 * averages and uploads the gradients. */
static lws_status finish_reductions(lws_dist_step *s, double backward_done, lws_dist_stats *stats) {
    for (uint32_t i = 0; i < s->n_buckets; i++) {
        bucket *b = &s->buckets[i];
        if (!b->req) continue;
        lws_status st = lws_dist_wait(b->req);
        b->req = NULL;
        LWS_TRY(st);
        b->done = now_ms();
    }
    double t1 = now_ms();
    stats->exposed_ms = t1 - backward_done;
    for (uint32_t i = 0; i < s->n_buckets; i++)
        stats->reduce_ms += s->buckets[i].done - s->buckets[i].posted;
    stats->buckets = s->n_buckets;
    if (s->shard) return lws_shard_take_grads(s->shard, stats);
    float scale = 1.0f / (float)s->size;
    for (uint64_t i = 0; i < s->floats; i++) s->grads[i] *= scale;
    LWS_TRY(lws_model_upload_range(s->m, LWS_BLOCK_GRADS, 0, s->floats, s->grads));
    stats->copy_ms += now_ms() - t1;
    return LWS_OK;
}

/* This rank's micro-batches of the step's size * A, the source moved past
 * the other ranks' ones; the last one in buckets. */
static lws_status accumulate(lws_dist_step *s, const lws_batch_source *src, double *loss,
                             lws_dist_stats *stats) {
    const lws_config *cfg = lws_model_get_config(s->m);
    uint32_t A = lws_train_accum(&cfg->train);
    uint32_t *inputs, *targets;
    lws_model_host_batch(s->m, &inputs, &targets);
    double sum = 0;
    for (uint32_t g = 0; g < (uint32_t)s->size * A; g++) {
        if (g / A != (uint32_t)s->rank) {
            LWS_TRY(src->next(src->state, g, NULL, NULL));
            continue;
        }
        double mb = 0;
        LWS_TRY(src->next(src->state, g, inputs, targets));
        if (g % A + 1 < A)
            LWS_TRY(lws_model_forward_backward(s->m, inputs, targets, &mb));
        else
            LWS_TRY(last_micro_batch(s, inputs, targets, &mb, stats));
        sum += mb / A;
    }
    *loss = sum;
    return LWS_OK;
}

lws_status lws_dist_train_step(lws_dist_step *s, const lws_batch_source *src, uint64_t step,
                               const lws_stop_flag *stop, lws_step_result *out,
                               lws_dist_stats *stats) {
    memset(stats, 0, sizeof *stats);
    out->lr = lws_lr_at(&lws_model_get_config(s->m)->train, step);
    out->grad_norm = 0;
    out->updated = 0;
    out->all_ranks = 0;
    out->stop = 0;
    out->loss_scale = lws_model_loss_scale(s->m).scale;
    out->skipped = 0;
    double local = 0;
    LWS_TRY(accumulate(s, src, &local, stats));
    /* The step's loss and whether any rank was asked to stop, agreed while
     * the last reductions finish: every rank takes the same decision. */
    double backward_done = now_ms();
    int signal = stop ? (int)*stop : 0;
    double agreed[3] = {local, signal != 0, signal};
    LWS_TRY(lws_dist_allreduce_f64(s->d, agreed, 3, LWS_DIST_SUM));
    LWS_TRY(finish_reductions(s, backward_done, stats));
    out->all_ranks = 1;
    out->loss = agreed[0] / s->size;
    if (agreed[1] > 0) out->stop = signal ? signal : (int)lround(agreed[2] / agreed[1]);
    if (!isfinite(out->loss))
        return lws_fail(LWS_ERR_NUMERIC, "the loss is %g; stopped before the update", out->loss);
    out->updated = 1;
    /* The update reads the reduced gradients, the same bits on every rank
     * (or, sharded, the norm summed over the ranks): an fp16 overflow on any
     * rank is non-finite for all, so every rank skips the step and halves
     * its loss scale alike. */
    if (s->shard)
        LWS_TRY(lws_shard_update(s->shard, step, out->lr, &out->grad_norm, stats));
    else
        LWS_TRY(lws_train_update(s->m, step, out->lr, &out->grad_norm));
    lws_loss_scale scale = lws_model_loss_scale(s->m);
    out->loss_scale = scale.scale;
    out->skipped = scale.skipped;
    return LWS_OK;
}
