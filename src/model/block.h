/* One transformer block's forward, written once for training, evaluation and
 * decoding (src/model/block.c). The callers differ in how a projection runs
 * (a matmul over N token rows, or a matvec for the one new token) and in
 * RoPE + attention (over the whole sequence, or against the key/value cache,
 * and whether QK-norm and RoPE run as one kernel);
 * everything else — the norms, the residual adds, QK-norm, SwiGLU and the
 * barriers between them — is this recipe. */
#ifndef LWS_MODEL_BLOCK_H
#define LWS_MODEL_BLOCK_H

#include "lws/config.h"
#include "ops/ops.h"

/* The buffers of one layer's forward for `rows` tokens: shapes (rows, d),
 * (rows, q), (rows, kv), (rows, ffn) and (rows) for the rstd vectors. */
typedef struct lws_block_io {
    lws_buffer x;              /* the layer input (residual stream) */
    lws_buffer out;            /* the layer output; may be x itself (decoding) */
    lws_buffer xn, hn;         /* pre_norm: RMSNorm_attn(x), RMSNorm_ffn(h) */
    lws_buffer q_raw, k_raw;   /* projections (the same buffers as q, k without QK-norm) */
    lws_buffer q, k, v;        /* after QK-norm; RoPE is the attention step's */
    lws_buffer q_rstd, k_rstd; /* QK-norm statistics */
    lws_buffer att;            /* attention output before Wo */
    lws_buffer attn_out;       /* post_norm: att . Wo^T */
    lws_buffer attn_rstd;
    lws_buffer h;        /* after the attention residual */
    lws_buffer gate, up; /* W1 h, W3 h */
    lws_buffer act;      /* silu(gate) * up */
    lws_buffer ffn_out;  /* post_norm: act . W2^T */
    lws_buffer ffn_rstd;
    /* pre_norm, optional (size 0: none): the norm after this layer, its
     * output (rows, d), statistics (rows) and weight (d): the next layer's
     * attention norm, or the final norm. The FFN's residual add writes them
     * in its kernel, and the next layer runs with xn_ready. */
    lws_buffer next_xn, next_rstd, next_norm;
    int xn_ready; /* pre_norm: xn and attn_rstd hold RMSNorm_attn(x) already */
} lws_block_io;

/* The block's weights (a view of the model's parameters). */
typedef struct lws_block_weights {
    lws_buffer wq, wk, wv, wo, q_norm, k_norm, attn_norm, ffn_norm, w1, w3, w2;
} lws_block_weights;

/* What differs between the callers. */
typedef struct lws_block_kernels {
    void *self;
    uint32_t rows; /* tokens the block runs on */
    /* y (rows, n) = x (rows, k) . W^T, W (n, k) */
    void (*project)(void *self, lws_cmd *c, lws_buffer y, lws_buffer x, lws_buffer w, uint32_t n,
                    uint32_t k);
    const char *project_kind; /* its name in op profiles: "matmul" or "matvec" */
    /* RoPE on io->q and io->k (unless norm_rope rotated them) and attention
     * into io->att (with the barriers it needs, ending with one after the
     * attention). */
    void (*attend)(void *self, lws_cmd *c, uint32_t layer, const lws_block_io *io);
    /* Optional timestamp regions around each op (lws bench's per-op profile). */
    int (*op_begin)(void *self, lws_cmd *c, const char *kind);
    void (*op_end)(void *self, lws_cmd *c, int region);
    /* Optional, with QK-norm: io->q = RoPE(RMSNorm_q(io->q_raw)) and the same
     * for k, one kernel each, so attend does not rotate. NULL: the recipe
     * runs QK-norm and attend rotates. */
    void (*norm_rope)(void *self, lws_cmd *c, uint32_t layer, const lws_block_weights *w,
                      const lws_block_io *io);
    /* Optional: y[p] (rows, n[p]) = x (rows, k) . w[p]^T for `parts` (up to
     * 3) projections of one input, as one product over the concatenation of
     * the w[p] (lws_op_matmul_cat). NULL: one project call each. */
    void (*project_cat)(void *self, lws_cmd *c, const lws_buffer *y, lws_buffer x,
                        const lws_buffer *w, const uint32_t *n, uint32_t parts, uint32_t k);
    /* Optional: io->gate, io->up (rows, f) = x . w1^T, x . w3^T and io->act =
     * silu(gate) * up as one product with SwiGLU in its epilogue
     * (lws_op_matmul_swiglu). NULL: two projections, then the swiglu kernel. */
    void (*project_swiglu)(void *self, lws_cmd *c, const lws_block_io *io, lws_buffer x,
                           lws_buffer w1, lws_buffer w3, uint32_t f, uint32_t k);
} lws_block_kernels;

/* Records layer `layer` of cfg (its widths from the schedule). */
void lws_block_forward(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg,
                       uint32_t layer, const lws_block_weights *w, const lws_block_io *io);

/* The final norm: xn = RMSNorm_final(x) over the block's rows. */
void lws_block_final_norm(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg,
                          lws_buffer x, lws_buffer xn, lws_buffer rstd, lws_buffer norm_w);
/* The head: the final norm, then logits (rows, V) = xn . W_out^T. */
void lws_block_head(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg, lws_buffer x,
                    lws_buffer xn, lws_buffer rstd, lws_buffer norm_w, lws_buffer head_w,
                    lws_buffer logits);

#endif
