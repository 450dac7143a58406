/* Shared by the files of src/train that run data-parallel training:
 * dist_step.c (the step), dist_shard.c (ZeRO-1), dist_run.c (what the
 * trainer does differently on several ranks). */
#ifndef LWS_TRAIN_DIST_INTERNAL_H
#define LWS_TRAIN_DIST_INTERNAL_H

#include "lws/dist.h"
#include "lws/train.h"

/* LWS_ERR_NUMERIC when an update's gradient norm is not finite (except in
 * fp16, where the loss scale skipped it) or it left parameters that are not
 * (step.c). */
lws_status lws_train_check_update(const lws_model *m, uint64_t step, double lr, double grad_norm,
                                  double nonfinite);

/* ---- ZeRO-1 (dist_shard.c) ------------------------------------------------ */

typedef struct lws_shard lws_shard;

/* The slices of every rank and the host buffers of this rank's. */
lws_status lws_shard_create(lws_model *m, lws_dist *d, lws_shard **out);
void lws_shard_destroy(lws_shard *sh);
/* Starts the reduce-scatter of the gradient range [lo, hi) of the host copy
 * grads: this rank receives the sums of its slice's part. */
lws_status lws_shard_reduce_start(lws_shard *sh, const float *grads, uint64_t lo, uint64_t hi,
                                  lws_dist_request **out);
/* After the reductions: this rank's averaged slice onto the device. */
lws_status lws_shard_take_grads(lws_shard *sh, lws_dist_stats *stats);
/* Clipping by the global norm and AdamW on this rank's slice, then the
 * updated parameters gathered from every rank. */
lws_status lws_shard_update(lws_shard *sh, uint64_t step, double lr, double *grad_norm,
                            lws_dist_stats *stats);

#endif
