/* lws — run configuration and the Layer-Wise Scaling schedule.
 *
 * One JSON file describes a run: `model` (the transformer), `lws` (the
 * per-layer profile), `train`, `data` and `eval`. `"extends": "base.json"`
 * merges the file over a base (objects merge key by key, a `null` value
 * removes the base's key, `name` is never inherited). Loading resolves the
 * profile into one lws_layer_shape per layer, following docs/design.md §1.1:
 *
 *   d_ffn(i)   = make_divisible(beta(i)  * d_model, ffn_divisor)
 *   q_width(i) = make_divisible(alpha(i) * d_model, group * head_dim)
 *
 * where alpha and beta are interpolated from 2 or 3 control points and the
 * first and last layer optionally "framed". Every error names the file, the
 * JSON path (`lws.ffn_points[1]`), the value and what is allowed. */
#ifndef LWS_CONFIG_H
#define LWS_CONFIG_H

#include <stdint.h>

#include "lws/status.h"

typedef enum { LWS_BLOCK_POST_NORM, LWS_BLOCK_PRE_NORM } lws_block_style;
typedef enum { LWS_LR_CONSTANT, LWS_LR_COSINE, LWS_LR_WSD } lws_lr_schedule;
/* GQA policy: a fixed group size (query heads per KV head; KV heads vary by
 * layer, as in the paper's code and OpenELM) or a fixed number of KV heads
 * (query heads rounded to a multiple of it). */
typedef enum { LWS_GQA_GROUP_SIZE, LWS_GQA_KV_HEADS } lws_gqa_policy;

#define LWS_MAX_LAYERS 256
#define LWS_MAX_POINTS 3
/* Budget matching must land this close to the target (relative). */
#define LWS_MATCH_TOLERANCE 0.005

typedef struct lws_layer_shape {
    uint32_t q_heads, kv_heads, ffn_dim;
    double alpha, beta; /* the multipliers of d_model the widths were rounded from */
} lws_layer_shape;

typedef struct lws_model_config {
    uint32_t d_model, n_layers, head_dim, vocab_size;
    lws_block_style block;
    int tied_embeddings;
    double rope_theta, norm_eps;
    int qk_norm;
    double init_std;
} lws_model_config;

typedef struct lws_train_config {
    uint32_t seq_len, micro_batch, grad_accum, steps;
    double lr, min_lr_ratio;
    lws_lr_schedule schedule;
    uint32_t warmup_steps;
    double decay_fraction, beta1, beta2, eps, weight_decay;
    int decay_embeddings, decay_norms;
    double grad_clip, z_loss; /* grad_clip 0 = off */
    uint64_t seed;
    uint32_t log_every, checkpoint_every, keep_checkpoints; /* checkpoint_every 0 = at the end;
                                                               keep_checkpoints 0 = keep all */
    char out_dir[1024];
    char precision[16]; /* "fp32", "bf16" or "fp16": how activations and the matmuls'
                           operands are stored (fp32 master weights, gradients and
                           AdamW in every case; docs/design.md) */
    double loss_scale;  /* fp16: the first loss scale, a power of two from 1 to 2^24
                           (lws_model_loss_scale; default LWS_LOSS_SCALE_INIT) */
    /* data parallelism (several ranks): ZeRO-1, each rank keeping the AdamW
     * moments of its slice of the parameters; and the gradient bytes one
     * reduction carries at least (whole layers, from the head down) */
    int shard_optimizer;
    double bucket_mb;
} lws_train_config;
/* Micro-batches per optimizer step: a config read from a file has
 * grad_accum >= 1; one built in code may leave it 0, meaning 1. */
static inline uint32_t lws_train_accum(const lws_train_config *t) {
    return t->grad_accum ? t->grad_accum : 1;
}

typedef struct lws_data_config {
    char train[1024], val[1024]; /* val "" = hold out val_tokens from the end of train */
    uint64_t val_tokens;
    char tokenizer[256];
} lws_data_config;

typedef struct lws_eval_config {
    uint32_t every;  /* 0 = never */
    uint64_t tokens; /* 0 = the whole validation set */
} lws_eval_config;

/* The profile as written (after the variant preset is applied). Each side
 * (FFN: beta, attention: alpha) comes either from control points or from an
 * explicit per-layer list, which lives in cfg->layers. */
typedef struct lws_profile {
    char variant[16];                    /* "" when none was named */
    uint32_t n_ffn_points, n_qkv_points; /* 0 when that side is an explicit list */
    double ffn_points[LWS_MAX_POINTS], qkv_points[LWS_MAX_POINTS];
    int frame;
    double frame_ffn, frame_qkv;
    int has_ffn_dims, has_q_heads, has_kv_heads; /* explicit lists given */
    uint32_t ffn_divisor;
    lws_gqa_policy gqa;
    uint32_t gqa_value; /* the group size or the number of KV heads */
    /* Budget matching: the FFN points are scaled by match_scale so that the
     * total lands within LWS_MATCH_TOLERANCE of match_target. */
    uint64_t match_target;   /* 0 = no matching */
    char match_config[1024]; /* the config the target came from ("" = match_params) */
    double match_scale;      /* 1 without matching */
} lws_profile;

typedef struct lws_config {
    char path[1024]; /* the file loaded, or the origin given to lws_config_parse */
    char name[128];
    char description[1024];
    lws_model_config model;
    lws_profile lws;
    lws_layer_shape layers[LWS_MAX_LAYERS];
    int has_train, has_data; /* sections present (their required keys were given) */
    lws_train_config train;
    lws_data_config data;
    lws_eval_config eval;
} lws_config;

/* A file (+ the files it extends) -> a resolved config with every layer shaped. */
lws_status lws_config_load(const char *path, lws_config *out);
/* The same with overrides, each "PATH=VALUE" (the text of `--set`), applied
 * in order to the merged document (after extends) before any section is
 * read, so an overridden value is checked as one in the file; errors about it
 * name "--set" as its origin. PATH is a dotted key of the schema
 * ("train.lr", "lws.gqa.group_size"); an unknown one is refused with the
 * nearest known path. VALUE is typed by the schema: a JSON number for numeric
 * keys, true/false, the text itself for strings (a quoted JSON string also
 * works), a JSON array or object for list and object keys; `null` removes
 * the key, as in a file. The value replaces what is at PATH, an object
 * included. Paths in values (lws.match_config) are relative to the working
 * directory. lws_config_load is the case n_sets = 0. */
lws_status lws_config_load_with(const char *path, const char *const *sets, uint32_t n_sets,
                                lws_config *out);
/* The same from text; origin names it in errors and anchors relative paths. */
lws_status lws_config_parse(const char *json, const char *origin, lws_config *out);
/* A resolved config (lws_config_to_json's text, as a checkpoint stores it):
 * it names no other file, so "extends" and lws.match_config are refused and
 * nothing but the text is read. Every config lws_config_to_json writes is
 * read back. */
lws_status lws_config_parse_resolved(const char *json, const char *origin, lws_config *out);
/* malloc'd JSON of the RESOLVED config: the lws section holds explicit
 * ffn_dims, q_heads and kv_heads lists plus the GQA policy, every section has
 * its defaults filled in. lws_config_parse reads it back to the same layers. */
char *lws_config_to_json(const lws_config *cfg);

/* ---- the schedule (src/model/schedule.c) ------------------------------- */

/* OpenELM's rounding: n = max(d, floor(v + d/2) / d * d); n += d if n < 0.9 v. */
uint32_t lws_make_divisible(double v, uint32_t divisor);
/* alpha or beta per layer from 2 points (linear, rounded to 2 decimals as
 * OpenELM does) or 3 points (piecewise linear, peak held on the two middle
 * layers for even n_layers). Fails for other point counts or 3 points with
 * fewer than 3 layers. */
lws_status lws_interpolate_points(const double *points, uint32_t n_points, uint32_t n_layers,
                                  double *out);
/* Recomputes cfg->layers from cfg->lws (runs the budget match when
 * match_target is set). lws_config_load calls it; programs that edit a
 * profile call it again. */
lws_status lws_config_resolve_layers(lws_config *cfg);

/* Widths in elements: q_heads * head_dim and kv_heads * head_dim. */
uint64_t lws_layer_q_width(const lws_config *cfg, uint32_t layer);
uint64_t lws_layer_kv_width(const lws_config *cfg, uint32_t layer);
/* d·q·2 + d·kv·2 (Wq, Wo, Wk, Wv) + q + kv (QK-norm) + 2d (block norms) + 3·d·d_ffn. */
uint64_t lws_layer_params(const lws_config *cfg, uint32_t layer);
/* Total: embeddings (one V·d when tied, two untied) + final norm + layers. */
uint64_t lws_config_params(const lws_config *cfg);
uint64_t lws_config_embedding_params(const lws_config *cfg);
/* Forward FLOPs per token of one layer: 2 per weight of every projection
 * (norm weights are elementwise and left out) plus attention, QK^T and AV,
 * 4 · seq_len · q_width. The attention term counts the full seq_len x
 * seq_len score matrix as PaLM's MFU convention does, not the causal half. */
double lws_layer_flops_per_token(const lws_config *cfg, uint32_t layer, uint32_t seq_len);
/* Weights that take part in a matmul: every projection and the output head
 * (the input embedding is a lookup; norms are elementwise). */
uint64_t lws_config_matmul_params(const lws_config *cfg);
/* 6 · matmul params + 12 · seq_len · sum of q widths, at train.seq_len. */
double lws_config_train_flops_per_token(const lws_config *cfg);
double lws_config_train_flops_per_token_at(const lws_config *cfg, uint32_t seq_len);

#endif
