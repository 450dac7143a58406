/* The training run's parts that differ on several ranks (train/dist_run.c). */
#ifndef LWS_TRAIN_DIST_RUN_H
#define LWS_TRAIN_DIST_RUN_H

#include "lws/dist.h"
#include "lws/train.h"
#include "train/checkpoint.h"

/* Rank 0 finds the checkpoint at path (its directory into dir) and reads it;
 * every rank receives the state, dir and the three blocks and uploads them
 * (a sharded model its slice of the moments). */
lws_status lws_dist_resume(lws_dist *d, lws_model *m, const char *path, char *dir, size_t dir_size,
                           lws_train_state *st);
/* Rank 0 writes the checkpoint; a sharded model's moments are gathered
 * from every rank first (every rank calls this). */
lws_status lws_dist_save(lws_dist *d, lws_model *m, const char *run_dir, const lws_train_state *st,
                         uint32_t keep, char *saved, size_t saved_size);
/* The validation windows one rank would evaluate (as lws_evaluate), cut
 * into one consecutive share per rank and summed over the ranks. */
lws_status lws_dist_evaluate(lws_dist *d, lws_model *m, const lws_tokens *file,
                             lws_token_range range, uint64_t max_tokens,
                             const lws_text_measure *text, lws_eval_result *r);

#endif
