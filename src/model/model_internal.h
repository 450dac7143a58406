/* Shared by the files of src/model/ that build and record the model. */
#ifndef LWS_MODEL_INTERNAL_H
#define LWS_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "model/model.h"
#include "ops/nonfinite.h"
#include "ops/ops.h"

/* Where in the hyper buffer the update's count of non-finite parameters
 * goes: a float the optimizer kernels leave alone. */
#define LWS_HYPER_NONFINITE offsetof(lws_optim_hyper, nonfinite)

uint32_t lws_layout_count(const lws_config *cfg);
/* Fills list[0..count) (and the per-layer pointers) and returns the floats of
 * one block (parameters, gradients and each moment have the same layout). */
uint64_t lws_layout_params(const lws_config *cfg, lws_param *list, lws_layer_tensors *layers,
                           uint32_t *count);
void lws_init_host_weights(const lws_model *m, uint64_t seed, float *host);

/* Checks a micro-batch's tokens (targets NULL: none) against the
 * vocabulary; `batch` names it in the message ("the batch"). */
lws_status lws_model_check_tokens(const lws_model *m, const uint32_t *inputs,
                                  const uint32_t *targets, const char *batch);
/* Checks a micro-batch's tokens against the vocabulary and uploads them
 * (targets NULL: zeros); writes a loss scale left stale first. */
lws_status lws_model_upload_batch(lws_model *m, const uint32_t *inputs, const uint32_t *targets);
/* The per-token losses of the last forward, summed in a fixed order over the
 * first `count` tokens. */
lws_status lws_model_sum_losses(lws_model *m, uint32_t count, double *sum);
/* The sum of count per-token losses in double, in order: every path sums
 * a micro-batch's losses here, so their reported losses agree bit for bit. */
double lws_model_loss_total(const float *losses, uint32_t count);

/* The optimizer table's rows (model/shard.c): one per tensor, or per part
 * of a tensor inside [opt_lo, opt_hi); rows NULL counts them. Returns the
 * row count and sets *chunks to their LWS_OPTIM_CHUNK chunks. */
uint32_t lws_model_optim_rows(const lws_model *m, lws_optim_entry *rows, uint32_t *chunks);
/* The optimizer's hyperparameters for update `step` at learning rate lr. */
lws_optim_hyper lws_model_hyper(const lws_model *m, double lr, uint64_t step);
/* After an update (or a skipped one) of gradient norm grad_norm: in fp16
 * training an overflow (non-finite norm) halves the loss scale,
 * LWS_LOSS_SCALE_GROWTH_STEPS good updates double it; sets scaler.skipped.
 * upload: a changed scale is written to the device now; else it is marked
 * stale, written by the next lws_model_upload_batch, and carried by the next
 * one-submission step's hyperparameters (model/whole_step.c). */
lws_status lws_model_update_loss_scale(lws_model *m, double grad_norm, int upload);
/* Sets the model's optimizer slice (NULL: all of it) before it is described. */
lws_status lws_model_set_shard(lws_model *m, const lws_model_shard *shard);
/* A sharded model's two optimizer command buffers (model/shard.c). */
lws_status lws_model_record_shard(lws_model *m);

/* Frees what the one-submission step recorded (model/whole_step.c). */
void lws_model_destroy_whole_step(lws_model *m);

/* Records the command buffers of the model (src/model/record.c). */
lws_status lws_model_record(lws_model *m);
/* Layer i's weights as the block recipe takes them (model/block.h): the
 * projections as the matmuls read them (matmul_copy: the 16-bit copy in
 * bf16 / fp16) or the fp32 master (the decoder's matvecs); norms in fp32. */
struct lws_block_weights lws_model_block_weights(const lws_model *m, uint32_t i, int matmul_copy);
/* Records a cast of the fp32 master weights into their 16-bit copy (bf16,
 * fp16; nothing in fp32), and runs it now (after the weights were written). */
void lws_model_record_weights16(lws_model *m, lws_cmd *c);
lws_status lws_model_refresh_weights16(lws_model *m);

#endif
