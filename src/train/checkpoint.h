/* Checkpoints: a directory step-NNNNNNNN/ under <run>/checkpoints holding
 *   model.safetensors      parameters (fp32, [out, in]) + the resolved config
 *                          in the metadata under "lws_config"
 *   optimizer.safetensors  AdamW moments: <name>.exp_avg, <name>.exp_avg_sq
 *   state.json             step, tokens seen, data sampler (seed, counter), the
 *                          ranks of the run that wrote it, and in fp16 the loss
 *                          scale and its count of good updates
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
    uint32_t world_size; /* ranks of the run that wrote it (1 when state.json has none) */
    /* fp16: the loss scale and its count of good updates (has_loss_scale 0
     * in other precisions' checkpoints: the scale then starts afresh). */
    int has_loss_scale;
    double loss_scale;
    uint32_t loss_scale_good_steps;
} lws_train_state;

lws_status lws_checkpoint_save(lws_model *m, const char *run_dir, const lws_train_state *st,
                               uint32_t keep, char *saved, size_t saved_size);
/* The checkpoint's state.json, every field checked (type, range) and its
 * step against the directory's name when that is step-NNNNNNNN; fails
 * naming the file and the field. */
lws_status lws_checkpoint_read_state(const char *dir, lws_train_state *st);
/* The same with the moments given as host copies of whole blocks (a sharded
 * run gathers them): NULL reads them from the model. */
lws_status lws_checkpoint_save_moments(lws_model *m, const char *run_dir, const lws_train_state *st,
                                       uint32_t keep, const float *exp_avg, const float *exp_avg_sq,
                                       char *saved, size_t saved_size);
/* Reads a checkpoint into host copies of the parameter and moment blocks
 * (lws_model_floats each) and its state, checked as lws_checkpoint_load
 * checks them, touching no device memory. */
lws_status lws_checkpoint_read_host(lws_model *m, const char *dir, float *params, float *exp_avg,
                                    float *exp_avg_sq, lws_train_state *st);
/* Loads parameters (and, when st is not NULL, the moments and the state). */
lws_status lws_checkpoint_load(lws_model *m, const char *dir, lws_train_state *st);
/* In fp16 training, the loss scale of st (read from checkpoint dir) onto the
 * model; nothing when st has none or the model does not scale. */
lws_status lws_checkpoint_take_loss_scale(lws_model *m, const char *dir, const lws_train_state *st);
/* The step-NNNNNNNN directories under a run's checkpoints/ (ckpt_root),
 * newest first: malloc'd names, and their steps in *steps when steps is not
 * NULL; NULL when there are none. Free with lws_checkpoint_list_free. */
char **lws_checkpoint_list(const char *ckpt_root, uint64_t **steps, uint32_t *count);
void lws_checkpoint_list_free(char **names, uint64_t *steps, uint32_t count);
/* Removes a checkpoint directory. */
lws_status lws_checkpoint_remove(const char *dir);
/* Writes the parameters of m (or of a host copy) as a safetensors file. */
lws_status lws_save_params(lws_model *m, const float *host, const char *path);

#endif
