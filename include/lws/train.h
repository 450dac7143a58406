/* lws — training as a library: one optimizer step, one evaluation, the
 * training run (data, schedule, validation, checkpoints, resume), and the
 * checkpoints themselves. A caller owns the device context, the stop flag
 * (its signal handlers set it) and what is printed (a progress callback). */
#ifndef LWS_TRAIN_H
#define LWS_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "lws/config.h"
#include "lws/data.h"
#include "lws/dist.h"
#include "lws/model.h"
#include "lws/status.h"
#include "lws/vk.h"

/* A stop request: non-zero (the signal number, by convention) stops the work
 * at the next safe point. NULL = never. */
typedef volatile sig_atomic_t lws_stop_flag;

/* ---- one optimizer step (src/train/step.c) --------------------------------- */

/* Fills micro-batch `micro` (0-based within the step's global batch: in a
 * data-parallel run of N ranks the step has N * grad_accum) of batch * seq
 * inputs and targets. With inputs and targets NULL it only moves past
 * micro-batch `micro` (another rank's), so that every rank's source stays
 * where a single rank's would be. */
typedef lws_status (*lws_batch_fn)(void *state, uint32_t micro, uint32_t *inputs,
                                   uint32_t *targets);
typedef struct lws_batch_source {
    lws_batch_fn next;
    void *state;
} lws_batch_source;

typedef struct lws_step_result {
    double loss;      /* mean over the step's micro-batches */
    double grad_norm; /* before clipping; not finite when the update was skipped */
    double lr;
    int updated; /* the update ran: after a failure, the weights are no longer the last step's */
    double loss_scale; /* fp16: the scale after this step (lws_model_loss_scale); else 1 */
    int skipped;       /* fp16: the gradients overflowed, the update was skipped */
    /* data-parallel steps (lws_dist_train_step): */
    int all_ranks; /* the step reached the point where every rank decides alike: a failure
                      after it is every rank's (0: a failure of this rank alone) */
    int stop;      /* the stop signal one of the ranks had at the step's end (0: none) */
} lws_step_result;

/* Forward and backward over cfg.train.grad_accum micro-batches from src (the
 * gradients accumulate) and their mean loss. The stop flag is checked between
 * micro-batches: LWS_ERR_INTERRUPTED leaves the weights as they were (the
 * gradients partial). A non-finite loss is LWS_ERR_NUMERIC, before any update. */
lws_status lws_train_accumulate(lws_model *m, const lws_batch_source *src,
                                const lws_stop_flag *stop, double *loss);
/* Clipping and AdamW as update number `step` (1-based) at learning rate lr;
 * zeroes the gradients. A non-finite gradient norm (except in fp16, where the
 * loss scale skips the update and is lowered), or any parameter NaN or
 * infinite after the update (counted on the device), is LWS_ERR_NUMERIC. */
lws_status lws_train_update(lws_model *m, uint64_t step, double lr, double *grad_norm);
/* Both: optimizer step number `step` at the schedule's learning rate, with
 * the same results bit for bit while the loss is finite. A model that is not a ZeRO-1 shard runs it
 * as one submission with one host wait (lws_model_step; a step of more than
 * LWS_STEP_GROUP micro-batches, one per group): the stop flag is checked
 * before each submission, so LWS_ERR_INTERRUPTED still leaves the weights as
 * they were; a non-finite loss is LWS_ERR_NUMERIC after the update
 * (`updated` says whether it changed the weights). */
lws_status lws_train_step(lws_model *m, const lws_batch_source *src, uint64_t step,
                          const lws_stop_flag *stop, lws_step_result *out);

/* ---- one data-parallel step (src/train/dist_step.c) ------------------------- */

typedef struct lws_dist_step lws_dist_step;

/* Where a data-parallel step's time went besides the device work. */
typedef struct lws_dist_stats {
    double reduce_ms;  /* the reductions' time in flight, summed over the buckets (waiting
                          for the other ranks to reach a bucket included) */
    double exposed_ms; /* the time the step waited for them after its backward (the stop
                          and loss agreement included): not hidden */
    double copy_ms;    /* gradients (and, sharded, parameters) between device and host */
    double gather_ms;  /* sharded: the updated parameters gathered from every rank */
    uint32_t buckets;  /* reductions per step */
} lws_dist_stats;

/* The gradient buckets (cfg.train.bucket_mb) and host buffers of a model in
 * a run of lws_dist_size(d) ranks; with cfg.train.shard_optimizer the model
 * must have been built with lws_model_create_shard for this rank. */
lws_status lws_dist_step_create(lws_model *m, lws_dist *d, lws_dist_step **out);
void lws_dist_step_destroy(lws_dist_step *s);
/* One optimizer step over all ranks: this rank's cfg.train.grad_accum
 * micro-batches of the step's ranks * grad_accum (the source moves past the
 * others'), the gradients averaged over the ranks, the loss their mean, the
 * same update on every rank. The stop flag is not acted on here: out->stop
 * says whether any rank had one, the same on every rank. A failure with
 * out->all_ranks 0 is this rank's alone: the caller must end the run
 * (lws_dist_abort), since the others wait for this rank. */
lws_status lws_dist_train_step(lws_dist_step *s, const lws_batch_source *src, uint64_t step,
                               const lws_stop_flag *stop, lws_step_result *out,
                               lws_dist_stats *stats);
uint32_t lws_dist_step_buckets(const lws_dist_step *s);

/* Learning rate of update `step` (1-based) under cfg's schedule. */
double lws_lr_at(const lws_train_config *t, uint64_t step);

/* ---- evaluation (src/train/eval.c) ------------------------------------------ */

/* What bits per byte needs of a tokenizer: the bytes of text each token
 * spells, and the name token files made with it carry. */
typedef struct lws_text_measure {
    int bytes_known;                         /* bits per byte can be given */
    uint32_t *token_bytes;                   /* [vocab] bytes per token id; NULL: one byte each */
    uint32_t vocab;                          /* entries of token_bytes */
    char name[LWS_TOKENIZER_NAME_MAX + 192]; /* the name token files must carry ("": any) */
    char why[512];                           /* why bits per byte is unknown */
} lws_text_measure;

/* For a config's data.tokenizer (`stored`, "" = bytes), or `given` in its
 * place (a vocabulary for a tokenizer the config names only by hash).
 * strict: a stored vocabulary that cannot be loaded is an error rather than
 * "bits per byte unknown". model_vocab bounds token ids. */
lws_status lws_text_measure_open(const char *stored, const char *given, uint32_t model_vocab,
                                 int strict, lws_text_measure *out);
void lws_text_measure_free(lws_text_measure *t);

typedef struct lws_eval_result {
    double loss_sum;  /* nats, summed over the predicted tokens */
    uint64_t tokens;  /* predicted tokens */
    uint64_t windows; /* seq_len windows */
    uint64_t bytes;   /* bytes of text the targets spell (tokens when byte-level) */
    int bytes_known;
    double seconds;
} lws_eval_result;

/* The loss over consecutive seq_len windows of `range` of `file` (every token
 * after the first predicted once), the first max_tokens of them (0: all;
 * rounded up to whole windows). A partial last batch is padded with copies of
 * its first row, whose losses are dropped, so the result does not depend on
 * the batch size. The stop flag is checked between batches. */
lws_status lws_evaluate(lws_model *m, const lws_tokens *file, lws_token_range range,
                        uint64_t max_tokens, const lws_text_measure *text,
                        const lws_stop_flag *stop, lws_eval_result *out);
double lws_eval_loss(const lws_eval_result *r);
/* NAN when the bytes are unknown. */
double lws_eval_bits_per_byte(const lws_eval_result *r);

/* ---- evaluating a checkpoint (src/train/eval_checkpoint.c) ------------------ */

/* The tokens a checkpoint is scored on, open. */
typedef struct lws_eval_data {
    lws_tokens file;
    int open;
    lws_token_range range;
    lws_text_measure text;
    char source[2200]; /* what is scored, for messages: a path or "the last N tokens of PATH" */
} lws_eval_data;

/* file: a token file (all of it), or NULL for cfg's validation split as its
 * training validated on it: data.val, else the last data.val_tokens of
 * data.train (an error naming both when cfg has neither). tokenizer: a
 * vocabulary for a config that names its tokenizer only by hash (NULL:
 * none); without one, bits per byte is unknown and says why. */
lws_status lws_eval_data_open(const lws_config *cfg, const char *file, const char *tokenizer,
                              lws_eval_data *out);
void lws_eval_data_close(lws_eval_data *d);

/* The parameters of checkpoint `dir` (cfg: its config) scored on d as
 * lws_evaluate does, max_tokens of it (0: all), `batch` windows per forward
 * pass (0: train.micro_batch; never more than there are windows, so no work
 * goes to padding). *batch_used (may be NULL) gets the batch. The model
 * lives in ctx's arena only during the call. */
lws_status lws_eval_checkpoint(lws_context *ctx, const char *dir, const lws_config *cfg,
                               const lws_eval_data *d, uint64_t max_tokens, uint32_t batch,
                               const lws_stop_flag *stop, lws_eval_result *out,
                               uint32_t *batch_used);

/* ---- a training run (src/train/trainer.c) ----------------------------------- */

typedef enum lws_progress_kind {
    LWS_PROGRESS_START,      /* data opened (and a checkpoint loaded) */
    LWS_PROGRESS_STEP,       /* an optimizer step done */
    LWS_PROGRESS_EVAL,       /* a validation pass done */
    LWS_PROGRESS_CHECKPOINT, /* a checkpoint written */
} lws_progress_kind;

typedef struct lws_train_progress {
    lws_progress_kind kind;
    uint64_t step;   /* the step just done (START: the step training resumes after) */
    uint64_t steps;  /* train.steps */
    uint64_t tokens; /* trained on so far */
    /* START */
    const char *run_dir;
    const char *resumed_from;          /* NULL when starting afresh */
    const char *superseded;            /* where --branch moved later checkpoints, or NULL */
    uint64_t train_tokens, val_tokens; /* in the data */
    const char *val_source;            /* the validation file, or NULL */
    uint32_t ranks;                    /* ranks training together */
    uint32_t resumed_ranks;            /* ranks of the run that wrote the checkpoint (0: none) */
    /* STEP */
    double loss, lr, grad_norm, step_ms, tokens_per_s;
    double mfu; /* NAN when no peak is known */
    double eta_s, elapsed_s;
    uint32_t n_layers;
    const double *layer_fwd_ms, *layer_bwd_ms; /* device times, 0 without timestamps */
    double head_ms, optimizer_ms;
    int loss_scaling;  /* fp16: the two below are meaningful */
    double loss_scale; /* after this step */
    int skipped;       /* this step's update was skipped (overflow) */
    /* EVAL */
    double val_loss, val_ppl, val_bpb; /* val_bpb NAN when unknown */
    uint64_t val_count;                /* tokens evaluated */
    /* CHECKPOINT */
    const char *checkpoint;
} lws_train_progress;

typedef void (*lws_progress_fn)(const lws_train_progress *p, void *user);

typedef struct lws_train_options {
    const char *resume;  /* a checkpoint, or a run directory (its newest checkpoint) */
    const char *run_dir; /* where log.jsonl, config.json and checkpoints/ go; NULL: the
                            resumed run's directory when resuming a run, else train.out_dir */
    int overwrite;       /* start afresh in a run directory that already holds a run */
    int branch;          /* resume from a checkpoint older than the run's newest: the
                            later ones move to RUN/superseded/ (refused without it) */
    double peak_tflops;  /* the MFU reference; 0: MFU unknown */
    const lws_stop_flag *stop;
    lws_progress_fn progress; /* may be NULL */
    void *user;
    /* The run's ranks (NULL: one). On several, each rank trains its share of
     * every step (lws_dist_train_step) and only rank 0 writes the run
     * directory, the log and the checkpoints; the stop flag takes effect at
     * the end of a step, the same one on every rank. */
    lws_dist *dist;
} lws_train_options;

typedef struct lws_train_result {
    uint64_t step;                     /* the last step done */
    uint64_t tokens;                   /* trained on, in all */
    double final_loss;                 /* the last step's training loss (NAN when no step ran) */
    int has_val;                       /* a validation pass ran */
    double val_loss, val_ppl, val_bpb; /* the last one; val_bpb NAN when unknown */
    uint64_t val_tokens;
    double tokens_per_s;  /* this call's steps */
    double wall_s;        /* this call */
    double elapsed_s;     /* in all, with the runs it resumed */
    uint64_t peak_memory; /* the device arena's high-water mark */
    char run_dir[1024];
    char checkpoint[2048]; /* the last checkpoint written ("" when none) */
    int all_ranks;         /* several ranks: every rank ended the run at this point with this status
                              (0: a failure of this rank alone; end the others with lws_dist_abort) */
} lws_train_result;

/* Trains cfg on ctx's device. Returns LWS_ERR_INTERRUPTED after saving a
 * checkpoint when *opt->stop became non-zero; out is filled either way. */
lws_status lws_train(lws_context *ctx, const lws_config *cfg, const lws_train_options *opt,
                     lws_train_result *out);

/* The files tests/torch_reference.py checks lws against (src/train/parity.c):
 * the initial weights, one batch of random tokens, the first step's
 * gradients, and the losses of `steps` AdamW steps on that batch. */
lws_status lws_train_parity_dump(lws_context *ctx, const lws_config *cfg, const char *dir,
                                 uint32_t steps);

/* Achievable fp32 TFLOP/s of this device with lws's matmul (a short timed
 * run), the reference for MFU when no datasheet figure is given; LWS_OK with
 * *tflops = 0 on a device without timestamps (MFU unknown). Call it in a
 * context of its own: its buffers count in the arena's peak. */
lws_status lws_measure_peak_tflops(lws_context *ctx, double *tflops);

/* The measured peak, cached per device and driver so that MFU does not
 * follow the machine's load at each start: the file
 * $XDG_CACHE_HOME/lws/peak-<vendor>-<device>-<driver>-<uuid>.json (ids in
 * hex, see `lws devices`) holds the fastest of `repeat` measurements and when
 * they were taken. */
typedef struct lws_peak {
    double tflops;     /* 0 when the device gives no timestamps (nothing is cached) */
    int cached;        /* read from the cache file, not measured by this call */
    char measured[32]; /* when it was measured, ISO 8601 UTC ("" when unknown) */
    char path[1100];   /* the cache file ("" without a cache directory) */
} lws_peak;

/* The cached peak of ctx's device; measured (and cached, atomically) when
 * the cache has none for this device and driver, or when remeasure is set
 * (`lws bench peak`). A cache file that cannot be read or is not one of
 * this device is measured over. A cache that cannot be written is not an
 * error (the peak is still measured). */
lws_status lws_peak_get(lws_context *ctx, int remeasure, uint32_t repeat, lws_peak *out);

/* ---- checkpoints (src/train/checkpoint.c) ------------------------------------- */

/* path: a checkpoint directory, a model.safetensors file, or a run directory
 * (its newest checkpoint). */
lws_status lws_checkpoint_find(const char *path, char *dir, size_t dir_size);
/* The resolved config stored in a checkpoint. */
lws_status lws_checkpoint_config(const char *dir, lws_config *cfg);
/* Loads a checkpoint's parameters into m (a model built from its config). */
lws_status lws_checkpoint_load_params(lws_model *m, const char *dir);

#endif
