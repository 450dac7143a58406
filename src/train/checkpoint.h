/* Checkpoints: a directory step-NNNNNNNN/ under <run>/checkpoints holding
 *   model.safetensors      parameters (fp32, [out, in]) + the resolved config
 *                          in the metadata under "lws_config"
 *   optimizer.safetensors  AdamW moments: <name>.exp_avg, <name>.exp_avg_sq
 *   state.json             step, tokens seen, data sampler (seed, counter), and
 *                          in fp16 the loss scale and its count of good updates
 * written as step-NNNNNNNN.tmp/ and renamed, so a crash never leaves a torn
 * checkpoint; the last `keep` are kept. */
#ifndef LWS_TRAIN_CHECKPOINT_H
#define LWS_TRAIN_CHECKPOINT_H

#include <stddef.h>

#include "lws/train.h"
#include "model/model.h"

typedef struct lws_train_state {
    uint64_t step;
    uint64_t tokens_seen;
    uint64_t sampler_seed, sampler_counter;
    double elapsed_s;
} lws_train_state;

lws_status lws_checkpoint_save(lws_model *m, const char *run_dir, const lws_train_state *st,
                               uint32_t keep, char *saved, size_t saved_size);
/* Loads parameters (and, when st is not NULL, the moments and the state). */
lws_status lws_checkpoint_load(lws_model *m, const char *dir, lws_train_state *st);
/* Removes a checkpoint directory. */
lws_status lws_checkpoint_remove(const char *dir);
/* Writes the parameters of m (or of a host copy) as a safetensors file. */
lws_status lws_save_params(lws_model *m, const float *host, const char *path);

#endif
