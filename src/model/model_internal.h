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
#define LWS_HYPER_NONFINITE offsetof(lws_optim_hyper, pad)

uint32_t lws_layout_count(const lws_config *cfg);
/* Fills list[0..count) (and the per-layer pointers) and returns the floats of
 * one block (parameters, gradients and each moment have the same layout). */
uint64_t lws_layout_params(const lws_config *cfg, lws_param *list, lws_layer_tensors *layers,
                           uint32_t *count);
void lws_init_host_weights(const lws_model *m, uint64_t seed, float *host);

/* Records the command buffers of the model (src/model/record.c). */
lws_status lws_model_record(lws_model *m);
/* Layer i's weights as the block recipe takes them (model/block.h). */
struct lws_block_weights lws_model_block_weights(const lws_model *m, uint32_t i);

#endif
