/* What the training run does differently on several ranks (train/trainer.c
 * calls these when lws_dist_size > 1): rank 0 reads a checkpoint and every
 * rank takes it from there (the checkpoint need not be on every node), each
 * rank evaluates its share of the validation windows, and rank 0 writes the
 * checkpoints, with the moments of a sharded run gathered first. */
#include <stdlib.h>
#include <string.h>

#include "train/checkpoint.h"
#include "train/dist_internal.h"
#include "train/dist_run.h"

/* Host copies of the three blocks. */
typedef struct blocks {
    float *params, *exp_avg, *exp_avg_sq;
} blocks;

static lws_status blocks_alloc(blocks *b, uint64_t floats) {
    b->params = calloc(floats, sizeof(float));
    b->exp_avg = calloc(floats, sizeof(float));
    b->exp_avg_sq = calloc(floats, sizeof(float));
    return b->params && b->exp_avg && b->exp_avg_sq
               ? LWS_OK
               : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for a checkpoint's copy");
}

static void blocks_free(blocks *b) {
    free(b->params);
    free(b->exp_avg);
    free(b->exp_avg_sq);
}

lws_status lws_dist_resume(lws_dist *d, lws_model *m, const char *path, char *dir, size_t dir_size,
                           lws_train_state *st) {
    uint64_t floats = lws_model_floats(m);
    blocks b = {0};
    lws_status s = blocks_alloc(&b, floats);
    if (s == LWS_OK && lws_dist_rank(d) == 0) {
        s = lws_checkpoint_find(path, dir, dir_size);
        if (s == LWS_OK)
            s = lws_checkpoint_read_host(m, dir, b.params, b.exp_avg, b.exp_avg_sq, st);
    }
    /* a rank 0 that failed ends the run (its caller aborts); the others wait here */
    if (s == LWS_OK) s = lws_dist_broadcast(d, st, sizeof *st, 0);
    if (s == LWS_OK) s = lws_dist_broadcast(d, dir, dir_size, 0);
    float *all[3] = {b.params, b.exp_avg, b.exp_avg_sq};
    for (int i = 0; s == LWS_OK && i < 3; i++)
        s = lws_dist_broadcast(d, all[i], floats * sizeof(float), 0);
    if (s == LWS_OK) s = lws_model_upload(m, LWS_BLOCK_PARAMS, b.params);
    if (s == LWS_OK) s = lws_model_upload(m, LWS_BLOCK_ADAM_M, b.exp_avg);
    if (s == LWS_OK) s = lws_model_upload(m, LWS_BLOCK_ADAM_V, b.exp_avg_sq);
    if (s == LWS_OK) s = lws_checkpoint_take_loss_scale(m, dir, st);
    blocks_free(&b);
    return s;
}

lws_status lws_dist_save(lws_dist *d, lws_model *m, const char *run_dir, const lws_train_state *st,
                         uint32_t keep, char *saved, size_t saved_size) {
    uint64_t lo, hi, floats = lws_model_floats(m);
    lws_model_shard_range(m, &lo, &hi);
    int sharded = lo != 0 || hi != floats, root = lws_dist_rank(d) == 0;
    if (!sharded)
        return root ? lws_checkpoint_save(m, run_dir, st, keep, saved, saved_size) : LWS_OK;
    int size = lws_dist_size(d);
    uint64_t *bounds = malloc(((size_t)size + 1) * sizeof *bounds);
    blocks b = {0};
    lws_status s =
        bounds ? blocks_alloc(&b, floats) : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK) {
        lws_model_shard_bounds(floats, (uint32_t)size, bounds);
        s = lws_model_download(m, LWS_BLOCK_ADAM_M, b.exp_avg);
    }
    if (s == LWS_OK) s = lws_model_download(m, LWS_BLOCK_ADAM_V, b.exp_avg_sq);
    if (s == LWS_OK) s = lws_dist_gather_f32(d, b.exp_avg, bounds, 0);
    if (s == LWS_OK) s = lws_dist_gather_f32(d, b.exp_avg_sq, bounds, 0);
    if (s == LWS_OK && root)
        s = lws_checkpoint_save_moments(m, run_dir, st, keep, b.exp_avg, b.exp_avg_sq, saved,
                                        saved_size);
    blocks_free(&b);
    free(bounds);
    return s;
}

lws_status lws_dist_evaluate(lws_dist *d, lws_model *m, const lws_tokens *file,
                             lws_token_range range, uint64_t max_tokens,
                             const lws_text_measure *text, lws_eval_result *r) {
    uint32_t T = lws_model_seq(m);
    uint64_t windows = lws_eval_window_count(range, T);
    if (max_tokens && (max_tokens + T - 1) / T < windows) windows = (max_tokens + T - 1) / T;
    uint64_t rank = (uint64_t)lws_dist_rank(d), size = (uint64_t)lws_dist_size(d);
    /* this rank's windows [lo, hi): consecutive, as one rank would see them */
    uint64_t lo = windows * rank / size, hi = windows * (rank + 1) / size;
    memset(r, 0, sizeof *r);
    if (hi > lo) {
        lws_token_range mine = {range.begin + lo * T, range.begin + hi * T + 1};
        LWS_TRY(lws_evaluate(m, file, mine, 0, text, NULL, r));
    }
    double sums[4] = {r->loss_sum, (double)r->tokens, (double)r->windows, (double)r->bytes};
    LWS_TRY(lws_dist_allreduce_f64(d, sums, 4, LWS_DIST_SUM));
    r->loss_sum = sums[0];
    r->tokens = (uint64_t)sums[1];
    r->windows = (uint64_t)sums[2];
    r->bytes = (uint64_t)sums[3];
    r->bytes_known = text && text->bytes_known;
    return LWS_OK;
}
