/* The block recipe (see block.h). */
#include "model/block.h"

/* A timestamp region around one op when the caller profiles ops. */
#define OP(kind, call)                                                                             \
    do {                                                                                           \
        int op_region_ = k->op_begin ? k->op_begin(k->self, c, kind) : -1;                         \
        call;                                                                                      \
        if (k->op_end) k->op_end(k->self, c, op_region_);                                          \
    } while (0)
#define PROJECT(y, x, w, n, kk) OP(k->project_kind, k->project(k->self, c, y, x, w, n, kk))

/* Attention sub-block from `in` (x, or xn for pre_norm) to io->att. */
static void attention(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg, uint32_t layer,
                      const lws_block_weights *w, const lws_block_io *io, lws_buffer in) {
    const lws_layer_shape *s = &cfg->layers[layer];
    uint32_t d = cfg->model.d_model, hd = cfg->model.head_dim, R = k->rows;
    uint32_t q = s->q_heads * hd, kv = s->kv_heads * hd;
    float eps = (float)cfg->model.norm_eps;
    if (k->project_cat) {
        const lws_buffer y[3] = {io->q_raw, io->k_raw, io->v}, ws[3] = {w->wq, w->wk, w->wv};
        const uint32_t n[3] = {q, kv, kv};
        OP(k->project_kind, k->project_cat(k->self, c, y, in, ws, n, 3, d));
    } else {
        PROJECT(io->q_raw, in, w->wq, q, d);
        PROJECT(io->k_raw, in, w->wk, kv, d);
        PROJECT(io->v, in, w->wv, kv, d);
    }
    lws_cmd_barrier(c);
    if (cfg->model.qk_norm) {
        /* QK-norm over the whole projection of a token (q_heads * head_dim). */
        if (k->norm_rope) {
            k->norm_rope(k->self, c, layer, w, io);
        } else {
            OP("rmsnorm",
               lws_op_rmsnorm_fwd(c, io->q, io->q_rstd, io->q_raw, w->q_norm, R, q, eps));
            OP("rmsnorm",
               lws_op_rmsnorm_fwd(c, io->k, io->k_rstd, io->k_raw, w->k_norm, R, kv, eps));
        }
        lws_cmd_barrier(c);
    }
    k->attend(k->self, c, layer, io);
}

/* SwiGLU from `in` (h, or hn for pre_norm) to y = W2 (silu(W1 in) * W3 in). */
static void ffn(const lws_block_kernels *k, lws_cmd *c, uint32_t d, uint32_t f,
                const lws_block_weights *w, const lws_block_io *io, lws_buffer in, lws_buffer y) {
    if (k->project_swiglu) {
        OP(k->project_kind, k->project_swiglu(k->self, c, io, in, w->w1, w->w3, f, d));
    } else {
        PROJECT(io->gate, in, w->w1, f, d);
        PROJECT(io->up, in, w->w3, f, d);
        lws_cmd_barrier(c);
        OP("swiglu", lws_op_swiglu_fwd(c, io->act, io->gate, io->up, k->rows * f));
    }
    lws_cmd_barrier(c);
    PROJECT(y, io->act, w->w2, d, f);
    lws_cmd_barrier(c);
}

void lws_block_forward(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg,
                       uint32_t layer, const lws_block_weights *w, const lws_block_io *io) {
    const lws_layer_shape *s = &cfg->layers[layer];
    uint32_t d = cfg->model.d_model, R = k->rows;
    uint32_t q = s->q_heads * cfg->model.head_dim, f = s->ffn_dim;
    float eps = (float)cfg->model.norm_eps;
    if (cfg->model.block == LWS_BLOCK_POST_NORM) {
        /* h = x + RMSNorm_attn(Attn(x)); out = h + RMSNorm_ffn(SwiGLU(h)),
         * each norm and its residual add one kernel */
        attention(k, c, cfg, layer, w, io, io->x);
        PROJECT(io->attn_out, io->att, w->wo, d, q);
        lws_cmd_barrier(c);
        OP("rmsnorm_add", lws_op_rmsnorm_add(c, io->h, io->attn_rstd, io->x, io->attn_out,
                                             w->attn_norm, R, d, eps));
        lws_cmd_barrier(c);
        ffn(k, c, d, f, w, io, io->h, io->ffn_out);
        OP("rmsnorm_add", lws_op_rmsnorm_add(c, io->out, io->ffn_rstd, io->h, io->ffn_out,
                                             w->ffn_norm, R, d, eps));
    } else {
        /* h = x + Attn(RMSNorm_attn(x)); out = h + SwiGLU(RMSNorm_ffn(h)) */
        if (!io->xn_ready) {
            OP("rmsnorm",
               lws_op_rmsnorm_fwd(c, io->xn, io->attn_rstd, io->x, w->attn_norm, R, d, eps));
            lws_cmd_barrier(c);
        }
        attention(k, c, cfg, layer, w, io, io->xn);
        PROJECT(io->h, io->att, w->wo, d, q);
        lws_cmd_barrier(c);
        /* the residual add in place over the projection, and the FFN's norm */
        OP("add_rmsnorm", lws_op_add_rmsnorm(c, io->h, io->hn, io->ffn_rstd, io->x, io->h,
                                             w->ffn_norm, R, d, eps));
        lws_cmd_barrier(c);
        ffn(k, c, d, f, w, io, io->hn, io->out);
        if (io->next_xn.size) /* the residual add in place, and the next norm */
            OP("add_rmsnorm", lws_op_add_rmsnorm(c, io->out, io->next_xn, io->next_rstd, io->h,
                                                 io->out, io->next_norm, R, d, eps));
        else
            OP("axpby", lws_op_axpby(c, io->out, io->h, io->out, 1.0f, 1.0f, R * d));
    }
}

void lws_block_final_norm(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg,
                          lws_buffer x, lws_buffer xn, lws_buffer rstd, lws_buffer norm_w) {
    uint32_t d = cfg->model.d_model;
    OP("rmsnorm",
       lws_op_rmsnorm_fwd(c, xn, rstd, x, norm_w, k->rows, d, (float)cfg->model.norm_eps));
}

void lws_block_head(const lws_block_kernels *k, lws_cmd *c, const lws_config *cfg, lws_buffer x,
                    lws_buffer xn, lws_buffer rstd, lws_buffer norm_w, lws_buffer head_w,
                    lws_buffer logits) {
    uint32_t d = cfg->model.d_model, V = cfg->model.vocab_size;
    lws_block_final_norm(k, c, cfg, x, xn, rstd, norm_w);
    lws_cmd_barrier(c);
    PROJECT(logits, xn, head_w, V, d);
}
