/* The model on the device: parameters laid out from the LWS schedule (every
 * layer its own widths), gradients and AdamW moments beside them, activations
 * for one micro-batch, and the per-layer command buffers that are recorded
 * once and replayed every step. */
#ifndef LWS_MODEL_H
#define LWS_MODEL_H

#include <stdio.h>

#include "lws/config.h"
#include "lws/model.h"
#include "lws/vk.h"
#include "model/memtable.h"

/* One named parameter tensor: a 2-D weight [rows, cols] (out, in features)
 * or a 1-D norm weight [rows] (cols == 0). */
typedef struct lws_param {
    char name[96];
    uint32_t rows, cols;
    uint64_t offset; /* in floats, within the parameter (and gradient, moment) blocks */
    uint64_t count;  /* elements */
    int decay;       /* AdamW weight decay applies */
    int is_norm, is_embedding;
    lws_buffer param, grad, m, v;
    lws_buffer mm; /* what the matmuls read: param, or its 16-bit copy (bf16, fp16) */
} lws_param;

typedef struct lws_layer_tensors {
    lws_param *wq, *wk, *wv, *wo, *q_norm, *k_norm, *attn_norm, *ffn_norm, *w1, *w3, *w2;
} lws_layer_tensors;

/* Saved activations of one layer for one micro-batch of N = batch * seq tokens. */
typedef struct lws_layer_acts {
    lws_buffer x;              /* (N, d) layer input (the residual stream) */
    lws_buffer xn;             /* (N, d) pre_norm: RMSNorm_attn(x) */
    lws_buffer q_raw, k_raw;   /* (N, q), (N, kv) projections before the QK-norm */
    lws_buffer q, k, v;        /* (N, q), (N, kv) after QK-norm and RoPE; v as projected */
    lws_buffer q_rstd, k_rstd; /* (N) */
    lws_buffer att;            /* (N, q) attention output before Wo */
    lws_buffer lse;            /* (batch, q_heads, seq) */
    lws_buffer attn_out;       /* (N, d) att . Wo^T */
    lws_buffer attn_rstd;      /* (N) */
    lws_buffer h;              /* (N, d) after the attention residual */
    lws_buffer hn;             /* (N, d) pre_norm: RMSNorm_ffn(h) */
    lws_buffer gate, up;       /* (N, ffn) W1 h, W3 h */
    lws_buffer act;            /* (N, ffn) silu(gate) * up */
    lws_buffer ffn_out;        /* (N, d) act . W2^T */
    lws_buffer ffn_rstd;       /* (N) */
} lws_layer_acts;

/* Scratch shared by all layers in the backward (sized for the widest layer). */
typedef struct lws_grad_scratch {
    lws_buffer dx; /* (N, d) gradient of the residual stream, updated in place */
    lws_buffer
        dnorm_in; /* (N, d) gradient before a block norm (post_norm) / of xn, hn (pre_norm) */
    lws_buffer dq, dk, dv;     /* (N, q_max), (N, kv_max) after attention backward */
    lws_buffer dq_raw, dk_raw; /* (N, q_max), (N, kv_max) before the QK-norm */
    lws_buffer datt;           /* (N, q_max) */
    lws_buffer dgate, dup;     /* (N, ffn_max) */
    lws_buffer delta;          /* (batch, q_heads_max, seq) attention backward */
    lws_buffer norm_scratch;   /* RMSNorm backward partial sums: a layer's norms side by side */
    lws_buffer split_k;        /* the scratch of the layers' backward command buffers: partial sums
                                  of weight gradients split over k (ops/matmul_split.c); none when
                                  the tuning never splits */
} lws_grad_scratch;

struct lws_model {
    lws_context *ctx;
    lws_config cfg;
    uint32_t batch, seq, tokens; /* micro-batch shape; tokens = batch * seq */
    int training;                /* gradients, moments and backward recorded */

    lws_param *params;
    uint32_t n_params;
    uint64_t n_floats; /* all parameters */
    lws_buffer param_block, grad_block, m_block, v_block;
    lws_dtype act_dtype;                     /* activations and matmul operands (train.precision) */
    lws_buffer param16_block;                /* bf16 / fp16: the 16-bit copy of param_block */
    lws_param *embed, *final_norm, *lm_head; /* lm_head == embed when tied */
    lws_layer_tensors *layers;

    lws_buffer io;              /* inputs then targets, uint32 (N) each */
    lws_buffer inputs, targets; /* views of io */
    uint64_t targets_offset;    /* bytes from the start of io */
    uint8_t *host_io;           /* host copy of io, reused by every upload */
    float *host_losses;         /* (N) host copy of losses */
    lws_buffer embed_out;       /* (N, d) x_0 */
    lws_layer_acts *acts;       /* [n_layers] */
    lws_buffer final_x;         /* (N, d) x_L */
    lws_buffer final_xn;        /* (N, d) RMSNorm_final(x_L) */
    lws_buffer final_rstd;      /* (N) */
    uint32_t head_chunk;        /* tokens per chunk of the output head (ops/head_loss.c) */
    lws_buffer head_logits;     /* (head_chunk, V) f32: one chunk's logits */
    lws_buffer head_dlogits;    /* (head_chunk, V): their gradient (the logits when f32) */
    lws_buffer losses;          /* (N) per-token loss */
    lws_buffer ce_scratch;
    lws_grad_scratch gs;

    /* ZeRO-1: the AdamW moments (m_block, v_block) and the optimizer table
     * cover floats [opt_lo, opt_hi) of the parameter block; [0, n_floats)
     * unless the model is sharded (model/shard.c). */
    uint64_t opt_lo, opt_hi;
    uint32_t optim_entries;                   /* rows of optim_table */
    lws_cmd *cmd_shard_norm, *cmd_shard_step; /* a sharded model's optimizer, in two */
    lws_buffer hyper;      /* lws_optim_hyper (nonfinite: written after the update) */
    lws_buffer loss_scale; /* fp16 training: hyper.loss_scale, read by the loss; else none */
    lws_loss_scale scaler;
    lws_buffer optim_table;  /* lws_optim_entry [n_params] */
    lws_buffer norm_scratch; /* grad-norm partials */
    uint32_t optim_chunks;

    /* Recorded once: embed, layers forward, head (+ its backward when
     * training), layers backward, embed backward, optimizer. */
    lws_cmd *cmd_embed, **cmd_fwd, *cmd_head, *cmd_eval_head, *cmd_final_norm, **cmd_bwd,
        *cmd_embed_bwd, *cmd_optim;
    lws_cmd **step_cmds;   /* submission order of a training micro-batch */
    lws_cmd **eval_cmds;   /* ... of an evaluation micro-batch */
    lws_cmd **logits_cmds; /* ... of a forward up to the final norm (lws_model_logits) */
    uint32_t n_step_cmds, n_eval_cmds;
    lws_cmd **cmd_logits; /* one chunk's logits each, recorded by the first lws_model_logits */
    uint32_t n_logits_chunks;
    lws_timer *timer;    /* per layer and per stage */
    lws_timer *op_timer; /* per op, when created with LWS_MODEL_PROFILE_OPS */
    int *region_fwd, *region_bwd;
    int region_embed, region_head, region_embed_bwd, region_optim;
    double *timing_ms; /* host copy of the timer's regions (lws_model_read_timing) */
    lws_mem_table mem; /* what was allocated (model/buffers.c) */

    /* One submission per optimizer step (model/whole_step.c), recorded by the
     * first lws_model_step_batch of an unsharded training model. */
    lws_host_buffer step_host; /* [A] micro-batches (io's layout), hyper in, hyper out,
                                * [A][tokens] losses; A = train.grad_accum */
    uint64_t step_io_bytes;    /* one micro-batch's inputs and targets (io's layout) */
    uint64_t step_batch_stride, step_hyper_in, step_hyper_out, step_losses; /* bytes */
    lws_cmd **cmd_step_copies; /* [A + 1]: the transfers before, between and after */
    lws_cmd **whole_step_cmds; /* the step's submission order */
    uint32_t n_whole_step_cmds;
    int loss_scale_stale; /* scaler.scale changed on the host only (lws_model_step) */
};

/* The model's device memory described once (model/buffers.c): every buffer
 * with its name, element type, size and kind, pointing at the field above
 * that receives it. */
lws_status lws_model_describe(lws_model *m, struct lws_mem_table *t);

/* Host side of a model's layout (parameters, per-layer views) without device
 * memory: what planning and building share. */
lws_status lws_model_skeleton(const lws_config *cfg, uint32_t batch, uint32_t seq, int training,
                              lws_model **out);
lws_param *lws_model_find(lws_model *m, const char *name);
/* The element type of cfg's activations: LWS_F32, LWS_BF16 or LWS_F16. */
lws_dtype lws_model_activation_dtype(const lws_config *cfg);
/* Records cmd_logits (model/record.c): chunk c's logits into head_logits. */
lws_status lws_model_record_logits(lws_model *m);

#endif
