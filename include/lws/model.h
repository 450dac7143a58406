/* lws — the model on a Vulkan device: parameters laid out from the LWS
 * schedule (every layer its own widths), gradients and AdamW moments beside
 * them, activations for one micro-batch, and per-layer command buffers
 * recorded once and replayed every step. */
#ifndef LWS_MODEL_PUBLIC_H
#define LWS_MODEL_PUBLIC_H

#include <signal.h>
#include <stdio.h>

#include "lws/config.h"
#include "lws/vk.h"

typedef struct lws_model lws_model;

/* ---- the memory plan ------------------------------------------------------ */

/* What a device buffer holds, which is also how long it lives. */
typedef enum lws_mem_kind {
    LWS_MEM_PARAMS,      /* the weights */
    LWS_MEM_GRADS,       /* their gradients (training) */
    LWS_MEM_OPTIMIZER,   /* AdamW moments (training) */
    LWS_MEM_ACTIVATIONS, /* what one micro-batch's forward saves for its backward */
    LWS_MEM_SCRATCH,     /* reused within a step */
    LWS_MEM_KINDS
} lws_mem_kind;

/* The device memory a model needs, in bytes as the arena holds them (each
 * buffer rounded up to 256 bytes). Building the model allocates exactly
 * `total`. */
typedef struct lws_memory_plan {
    uint64_t params, grads, optimizer, activations, scratch, total;
    uint32_t tensors;         /* buffers allocated */
    uint64_t largest;         /* bytes of the largest buffer */
    char largest_name[64];    /* ... and its name */
    uint64_t largest_operand; /* elements of the largest matrix a matmul touches */
    char largest_operand_name[64];
} lws_memory_plan;

/* The plan for cfg at micro-batch (batch, seq); training adds gradients,
 * moments and the backward's scratch. ctx gives the device (scratch sizes
 * follow its tuning); nothing is allocated. */
lws_status lws_model_plan(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                          int training, lws_memory_plan *out);
void lws_memory_plan_print(const lws_memory_plan *plan, FILE *out);
/* 1 when the plan fits the device; otherwise 0 and `why` names the limit it
 * breaks (the device-local heap, the largest allocation the driver allows,
 * the elements one matmul operand may have) with the numbers. */
int lws_memory_plan_fits(const lws_memory_plan *plan, const lws_device_caps *caps, char *why,
                         size_t why_size);

/* ---- building ------------------------------------------------------------- */

/* Whether the device has what cfg's precision needs: bf16 and fp16 store
 * tensors in 16 bits (the Vulkan feature storageBuffer16BitAccess); fp32 runs
 * anywhere lws does. LWS_OK, or an error naming the feature, the device and
 * the way out. */
lws_status lws_model_check_device(const lws_config *cfg, const lws_device_caps *caps);

/* Flags of lws_model_create_ex. */
#define LWS_MODEL_PROFILE_OPS 1u /* a timestamp region around every op (lws bench) */

/* Lays out and allocates the model (refusing, with the plan in the message,
 * when it does not fit the device), initialises the weights from
 * cfg->train.seed, and records the command buffers. training = 0 builds a
 * forward-only model. */
lws_status lws_model_create(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                            int training, lws_model **out);
lws_status lws_model_create_ex(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                               uint32_t seq, int training, uint32_t flags, lws_model **out);
void lws_model_destroy(lws_model *m);

/* ZeRO-1 (src/model/shard.c): a training model that keeps the AdamW moments
 * of slice `index` of `count` of the flat parameter block only, and updates
 * only that slice (lws_model_optimizer_step_shard); the other ranks of a
 * data-parallel run hold the other slices. */
typedef struct lws_model_shard {
    uint32_t index, count;
} lws_model_shard;
lws_status lws_model_create_shard(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                                  uint32_t seq, uint32_t flags, const lws_model_shard *shard,
                                  lws_model **out);
/* The slices of a block of `floats` cut `count` ways: slice r is
 * [bounds[r], bounds[r + 1]), each starting on a 64-float boundary. */
void lws_model_shard_bounds(uint64_t floats, uint32_t count, uint64_t *bounds);
/* The model's slice ([0, floats) when it is not sharded). */
void lws_model_shard_range(const lws_model *m, uint64_t *lo, uint64_t *hi);
/* The memory plan of a sharded training model (shard NULL: as lws_model_plan). */
lws_status lws_model_plan_shard(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                                uint32_t seq, const lws_model_shard *shard, lws_memory_plan *out);

const lws_config *lws_model_get_config(const lws_model *m);
lws_context *lws_model_context(const lws_model *m);
uint32_t lws_model_batch(const lws_model *m);
uint32_t lws_model_seq(const lws_model *m);
/* Floats of each of the parameter, gradient and moment blocks. */
uint64_t lws_model_floats(const lws_model *m);

/* Truncated-normal initialisation (std cfg.model.init_std, cut at +-3 std;
 * norm weights 1), deterministic in the seed and independent of the device. */
lws_status lws_model_init_weights(lws_model *m, uint64_t seed);

/* ---- running -------------------------------------------------------------- */

/* The model's host buffers for one micro-batch (batch * seq uint32 each),
 * reused by every call: a caller may fill them and pass them back to the
 * functions below, which then copy nothing. */
void lws_model_host_batch(lws_model *m, uint32_t **inputs, uint32_t **targets);
/* One micro-batch: uploads inputs and targets (batch * seq uint32 each), runs
 * the forward and the backward (gradients accumulate, dlogits scaled by
 * 1/grad_accum), and returns the mean loss over the micro-batch's tokens. */
lws_status lws_model_forward_backward(lws_model *m, const uint32_t *inputs, const uint32_t *targets,
                                      double *loss);
/* Forward only over a full micro-batch; returns the summed loss of the
 * tokens of its first `rows` rows (the rest may be padding). */
lws_status lws_model_eval_rows(lws_model *m, const uint32_t *inputs, const uint32_t *targets,
                               uint32_t rows, double *loss_sum);
/* Forward only; the logits (batch * seq, vocab) into host memory. */
lws_status lws_model_logits(lws_model *m, const uint32_t *inputs, float *logits);
/* Clips the gradients by global norm (cfg.train.grad_clip) and applies AdamW
 * (betas, eps, weight decay from cfg.train) with learning rate lr as update
 * number `step` (1-based, for the bias corrections); zeroes the gradients and
 * returns the gradient norm before clipping and how many parameters are not
 * finite after the update (NaN or infinite; counted on the device). A
 * non-finite norm skips the update; in fp16 that is the loss scale's
 * overflow (lws_model_loss_scale says it was skipped and the scale is
 * halved), otherwise the caller's error. A skipped step still counts in
 * `step`: the schedule and the bias corrections go on as if it had run. */
lws_status lws_model_optimizer_step(lws_model *m, double lr, uint64_t step, double *grad_norm,
                                    double *nonfinite);
/* Micro-batches per submission of lws_model_step: a step of up to this many
 * is one submission; a longer one is submitted this many at a time, so that
 * a stop (SIGTERM) waits for at most this many micro-batches, not for a
 * whole long accumulation. */
#define LWS_STEP_GROUP 8u
/* A whole optimizer step in one submission with one host wait, for a
 * training model that is not sharded (model/whole_step.c): the copy of each
 * micro-batch's tokens, its forward, head and backward (the command buffers
 * of lws_model_forward_backward, submitted once per micro-batch), the copy
 * of its per-token losses, then the optimizer of lws_model_optimizer_step
 * with the hyperparameters copied in and read back, all from and into one
 * host-visible buffer. Gives the same losses, norms and weights, bit for
 * bit, as grad_accum lws_model_forward_backward calls and an
 * lws_model_optimizer_step. Whether this model can (training, unsharded): */
int lws_model_has_whole_step(const lws_model *m);
/* Where micro-batch a (0 .. grad_accum - 1) of the next lws_model_step goes:
 * batch * seq uint32 inputs and targets in host-visible memory, for the
 * caller to fill. The first call records the step. */
lws_status lws_model_step_batch(lws_model *m, uint32_t a, uint32_t **inputs, uint32_t **targets);
/* Runs the step on the micro-batches filled through lws_model_step_batch
 * (each checked against the vocabulary before anything is submitted): loss
 * is the mean over the micro-batches of each one's mean token loss (summed
 * in double in the order of lws_model_forward_backward), grad_norm and
 * nonfinite as lws_model_optimizer_step gives them. The update has run when
 * this returns, whatever the loss: a non-finite gradient norm skipped it
 * (parameters and moments stay), as in lws_model_optimizer_step. In fp16 the
 * loss scale is updated on the host (when the loss is finite) and reaches the
 * device with the next step's hyperparameters. stop (may be NULL) is read
 * before each submission: non-zero returns LWS_ERR_INTERRUPTED before the
 * update (the gradients of the micro-batches run so far stay accumulated). */
lws_status lws_model_step(lws_model *m, double lr, uint64_t step, const volatile sig_atomic_t *stop,
                          double *loss, double *grad_norm, double *nonfinite);
/* The same for a sharded model, over its slice: the slice's squared gradient
 * norm is summed over the ranks by sum(user, x, 1) (every rank calls it, in
 * the same order), clipping uses the global norm, and the non-finite counts
 * are summed the same way. Zeroes the whole gradient block. The caller then
 * gathers the updated slices of the parameters. In fp16 a non-finite global
 * norm (an overflow on any rank's slice) skips the update on every rank and
 * halves every rank's loss scale alike. */
typedef lws_status (*lws_sum_fn)(void *user, double *x, uint32_t n);
lws_status lws_model_optimizer_step_shard(lws_model *m, double lr, uint64_t step, lws_sum_fn sum,
                                          void *user, double *grad_norm, double *nonfinite);

/* A training micro-batch in segments, for data parallelism: the same
 * command buffers as lws_model_forward_backward, split where gradients
 * become final. Segment 0 is the forward, the head and its backward (the
 * final norm's and an untied head's gradients are final after it), segment
 * k in 1 .. L the backward of layer L - k, and segment L + 1 the embedding's
 * backward. Run them all, in order, after lws_model_segments_begin. */
uint32_t lws_model_segments(const lws_model *m);
/* Floats [lo, hi) of the gradient block that are final once segment k has
 * run; the segments' ranges tile the block from its end down. */
void lws_model_segment_grads(const lws_model *m, uint32_t k, uint64_t *lo, uint64_t *hi);
/* Uploads a micro-batch (checked as lws_model_forward_backward checks it). */
lws_status lws_model_segments_begin(lws_model *m, const uint32_t *inputs, const uint32_t *targets);
/* Runs segments first .. first + count - 1 and waits for them, calling
 * poll(user) while the device works (lws_submit_polling). */
lws_status lws_model_run_segments(lws_model *m, uint32_t first, uint32_t count, lws_poll_fn poll,
                                  void *user);
/* After segment 0: the micro-batch's mean loss. */
lws_status lws_model_segments_loss(lws_model *m, double *loss);

/* The loss scale of fp16 training (train.precision "fp16"): the loss's
 * gradient is multiplied by `scale` so that small activation gradients do not
 * underflow fp16, and the optimizer divides it out. An update whose gradients
 * overflowed (a non-finite gradient norm) is skipped and halves the scale;
 * LWS_LOSS_SCALE_GROWTH_STEPS good updates in a row double it. It starts at
 * LWS_LOSS_SCALE_INIT. fp32 and bf16 keep scale 1 and never skip. */
#define LWS_LOSS_SCALE_INIT         65536.0
#define LWS_LOSS_SCALE_GROWTH_STEPS 2000u
#define LWS_LOSS_SCALE_MAX          16777216.0 /* 2^24 */
typedef struct lws_loss_scale {
    int dynamic;         /* fp16: the scale changes with overflows */
    double scale;        /* a power of two in [1, LWS_LOSS_SCALE_MAX] */
    uint32_t good_steps; /* updates since the scale last changed */
    int skipped;         /* the last update was skipped (its gradients overflowed) */
} lws_loss_scale;
lws_loss_scale lws_model_loss_scale(const lws_model *m);
/* Restores a loss scale (a checkpoint's): scale a power of two in
 * [1, LWS_LOSS_SCALE_MAX]; only for an fp16 training model. */
lws_status lws_model_set_loss_scale(lws_model *m, double scale, uint32_t good_steps);

/* What a training micro-batch records (embedding, layers, head and loss,
 * backward) and what the optimizer records: command buffers, dispatches
 * and barriers between dispatches (each command buffer also ends with a
 * full barrier, not counted here). */
typedef struct lws_record_counts {
    uint32_t buffers, dispatches, barriers;
} lws_record_counts;
void lws_model_record_counts(const lws_model *m, lws_record_counts *micro_batch,
                             lws_record_counts *optimizer);

/* Device times of the last step, from timestamp queries (0 without them).
 * Each micro-batch rewrites the layer, embedding and head regions, so with
 * grad_accum > 1 they time the step's last micro-batch (in either way of
 * running a step); the optimizer runs once per step. */
typedef struct lws_timing {
    double *layer_fwd_ms, *layer_bwd_ms; /* [n_layers], given by the caller */
    double embed_ms, head_ms, embed_bwd_ms, optim_ms;
} lws_timing;
lws_status lws_model_read_timing(lws_model *m, lws_timing *t);
/* The per-op timer of a model built with LWS_MODEL_PROFILE_OPS (else NULL):
 * one region per op of a training step, named by the op's kind. */
lws_timer *lws_model_op_timer(const lws_model *m);

/* Host copies of the parameter, gradient or moment blocks (lws_model_floats
 * floats, in the layout of the parameter list). */
typedef enum {
    LWS_BLOCK_PARAMS,
    LWS_BLOCK_GRADS,
    LWS_BLOCK_ADAM_M,
    LWS_BLOCK_ADAM_V
} lws_block_kind;
/* A sharded model's moments: only its slice of host is read or written. */
lws_status lws_model_download(lws_model *m, lws_block_kind kind, float *host);
lws_status lws_model_upload(lws_model *m, lws_block_kind kind, const float *host);
/* Floats [first, first + count) of a block (inside the model's slice for
 * the moments of a sharded model). */
lws_status lws_model_download_range(lws_model *m, lws_block_kind kind, uint64_t first,
                                    uint64_t count, float *host);
lws_status lws_model_upload_range(lws_model *m, lws_block_kind kind, uint64_t first, uint64_t count,
                                  const float *host);

/* ---- decoding with a key/value cache (src/model/decode.c) ------------------ */

typedef struct lws_decoder lws_decoder;

/* Allocates the caches and single-token activations for positions
 * 0 .. max_seq - 1 and records the step. m holds the parameters (any batch
 * and seq; training or not) and must outlive the decoder; its own forward
 * (batch row 0) serves as the prefill. */
lws_status lws_decoder_create(lws_model *m, uint32_t max_seq, lws_decoder **out);
/* Frees the host side; the device memory stays in the arena (as a model's). */
void lws_decoder_destroy(lws_decoder *d);
uint32_t lws_decoder_max_seq(const lws_decoder *d);
/* Runs `token` at position pos: positions 0 .. pos-1 must already be in the
 * caches (earlier steps or a prefill). Writes the next-token logits (vocab
 * floats) when logits is not NULL. */
lws_status lws_decoder_step(lws_decoder *d, uint32_t token, uint32_t pos, float *logits);
/* Runs a prompt of n tokens (1 <= n <= max_seq) into the caches: the first
 * min(n, m's seq) in one forward of the model, the rest one step each.
 * Writes the logits after the last prompt token when logits is not NULL. */
lws_status lws_decoder_prefill(lws_decoder *d, const uint32_t *tokens, uint32_t n, float *logits);

#endif
