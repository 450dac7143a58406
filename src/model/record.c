/* Recording the model's command buffers, once: each layer's forward and
 * backward sized by that layer's heads and FFN width, the embedding, the head
 * with the loss, and the optimizer. Replayed every step without change: the
 * buffers' addresses are fixed, and the values that change (the tokens, the
 * learning rate and step) live in device buffers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/block.h"
#include "model/model_internal.h"

/* The launchers return a status and also mark the command buffer failed;
 * lws_cmd_end reports the first failure, so recording can go straight on. */

static void mm(lws_cmd *c, lws_mm_layout layout, lws_buffer dst, lws_buffer a, lws_buffer b,
               uint32_t m, uint32_t n, uint32_t k, int accumulate) {
    lws_op_matmul(c, layout, dst, a, b, m, n, k, accumulate);
}

/* With per-op profiling on (lws_model_create_ex), every op gets a timestamp
 * region named by its kind; lws bench adds them up by name. */
static int op_begin(lws_model *m, lws_cmd *c, const char *kind) {
    return m->op_timer ? lws_cmd_region_begin(c, m->op_timer, kind) : -1;
}
static void op_end(lws_model *m, lws_cmd *c, int region) {
    if (region >= 0) lws_cmd_region_end(c, m->op_timer, region);
}
#define OP(kind, call)                                                                             \
    do {                                                                                           \
        int op_region_ = op_begin(m, c, kind);                                                     \
        call;                                                                                      \
        op_end(m, c, op_region_);                                                                  \
    } while (0)

typedef struct shape {
    uint32_t N, d, q, kv, f, qh, kvh, hd;
} shape;

static shape layer_shape(const lws_model *m, uint32_t i) {
    const lws_layer_shape *s = &m->cfg.layers[i];
    uint32_t hd = m->cfg.model.head_dim;
    shape sh = {m->tokens,  m->cfg.model.d_model, s->q_heads * hd, s->kv_heads * hd,
                s->ffn_dim, s->q_heads,           s->kv_heads,     hd};
    return sh;
}

static lws_buffer next_x(const lws_model *m, uint32_t i) {
    return i + 1 < m->cfg.model.n_layers ? m->acts[i + 1].x : m->final_x;
}

/* ---- the forward: the block recipe (block.c) over N token rows ------------ */

static void project_rows(void *self, lws_cmd *c, lws_buffer y, lws_buffer x, lws_buffer w,
                         uint32_t n, uint32_t k) {
    lws_model *m = self;
    mm(c, LWS_MM_NT, y, x, w, m->tokens, n, k, 0);
}

/* y[p] = x . w[p]^T as one product over the concatenation of the w[p]
 * (lws_op_matmul_cat: one dispatch where the portable matmul runs them). */
static void project_rows_cat(void *self, lws_cmd *c, const lws_buffer *y, lws_buffer x,
                             const lws_buffer *w, const uint32_t *n, uint32_t parts, uint32_t k) {
    lws_model *m = self;
    lws_mm_cat p = {.layout = LWS_MM_NT, .parts = parts, .a = {x}, .m = m->tokens, .k = k};
    for (uint32_t i = 0; i < parts; i++) {
        p.size[i] = n[i], p.b[i] = w[i], p.c[i] = y[i];
        p.n += n[i];
    }
    lws_op_matmul_cat(c, &p);
}

/* gate, up and act = silu(gate) * up from one product (lws_op_matmul_swiglu). */
static void project_rows_swiglu(void *self, lws_cmd *c, const lws_block_io *io, lws_buffer x,
                                lws_buffer w1, lws_buffer w3, uint32_t f, uint32_t k) {
    lws_model *m = self;
    lws_op_matmul_swiglu(c, io->gate, io->up, io->act, x, w1, w3, m->tokens, f, k);
}

/* The rotations of layer i's q and k: token t at position t % seq. */
static void rope_shapes(const lws_model *m, uint32_t i, lws_rope_shape *q, lws_rope_shape *k) {
    shape s = layer_shape(m, i);
    float theta = (float)m->cfg.model.rope_theta;
    *q = (lws_rope_shape){m->seq, s.qh, s.hd, theta};
    *k = (lws_rope_shape){m->seq, s.kvh, s.hd, theta};
}

/* QK-norm with RoPE, q and k in one dispatch. */
static void norm_rope_sequence(void *self, lws_cmd *c, uint32_t i, const lws_block_weights *w,
                               const lws_block_io *io) {
    lws_model *m = self;
    lws_norm_rope p[2] = {{io->q, io->q_rstd, io->q_raw, w->q_norm},
                          {io->k, io->k_rstd, io->k_raw, w->k_norm}};
    rope_shapes(m, i, &p[0].rope, &p[1].rope);
    OP("rmsnorm_rope", lws_op_rmsnorm_rope_fwd_pair(c, p, m->tokens, (float)m->cfg.model.norm_eps));
}

/* RoPE in place on q and k at position t % seq (norm_rope did it with
 * QK-norm), then causal attention. */
static void attend_sequence(void *self, lws_cmd *c, uint32_t i, const lws_block_io *io) {
    lws_model *m = self;
    shape s = layer_shape(m, i);
    float theta = (float)m->cfg.model.rope_theta;
    if (!m->cfg.model.qk_norm) {
        OP("rope", lws_op_rope(c, io->q, io->q, s.N, m->seq, s.qh, s.hd, theta, 0));
        OP("rope", lws_op_rope(c, io->k, io->k, s.N, m->seq, s.kvh, s.hd, theta, 0));
        lws_cmd_barrier(c);
    }
    OP("attention", lws_op_attention_fwd(c, io->att, m->acts[i].lse, io->q, io->k, io->v, m->batch,
                                         m->seq, s.qh, s.kvh, s.hd, 1.0f / sqrtf((float)s.hd)));
    lws_cmd_barrier(c);
}

static int block_op_begin(void *self, lws_cmd *c, const char *kind) {
    return op_begin(self, c, kind);
}
static void block_op_end(void *self, lws_cmd *c, int region) {
    op_end(self, c, region);
}

static lws_block_kernels row_kernels(lws_model *m) {
    lws_block_kernels k = {m,
                           m->tokens,
                           project_rows,
                           "matmul",
                           attend_sequence,
                           block_op_begin,
                           block_op_end,
                           norm_rope_sequence,
                           project_rows_cat,
                           project_rows_swiglu};
    return k;
}

lws_block_weights lws_model_block_weights(const lws_model *m, uint32_t i, int matmul_copy) {
    const lws_layer_tensors *t = &m->layers[i];
    lws_buffer none = {0};
#define PROJ(p) (matmul_copy ? (p)->mm : (p)->param)
    lws_block_weights w = {PROJ(t->wq),
                           PROJ(t->wk),
                           PROJ(t->wv),
                           PROJ(t->wo),
                           t->q_norm ? t->q_norm->param : none,
                           t->k_norm ? t->k_norm->param : none,
                           t->attn_norm->param,
                           t->ffn_norm->param,
                           PROJ(t->w1),
                           PROJ(t->w3),
                           PROJ(t->w2)};
#undef PROJ
    return w;
}

static void layer_forward(lws_model *m, lws_cmd *c, uint32_t i) {
    const lws_layer_acts *a = &m->acts[i];
    lws_block_io io = {.x = a->x,
                       .out = next_x(m, i),
                       .xn = a->xn,
                       .hn = a->hn,
                       .q_raw = a->q_raw,
                       .k_raw = a->k_raw,
                       .q = a->q,
                       .k = a->k,
                       .v = a->v,
                       .q_rstd = a->q_rstd,
                       .k_rstd = a->k_rstd,
                       .att = a->att,
                       .attn_out = a->attn_out,
                       .attn_rstd = a->attn_rstd,
                       .h = a->h,
                       .gate = a->gate,
                       .up = a->up,
                       .act = a->act,
                       .ffn_out = a->ffn_out,
                       .ffn_rstd = a->ffn_rstd};
    if (m->cfg.model.block == LWS_BLOCK_PRE_NORM) {
        /* The next norm in this layer's last kernel: the next layer's
         * attention norm, or after the last layer the final norm (the head
         * then starts from final_xn). */
        int last = i + 1 == m->cfg.model.n_layers;
        io.next_xn = last ? m->final_xn : m->acts[i + 1].xn;
        io.next_rstd = last ? m->final_rstd : m->acts[i + 1].attn_rstd;
        io.next_norm = last ? m->final_norm->param : m->layers[i + 1].attn_norm->param;
        io.xn_ready = i > 0;
    }
    lws_block_kernels k = row_kernels(m);
    lws_block_weights w = lws_model_block_weights(m, i, 1);
    lws_block_forward(&k, c, &m->cfg, i, &w, &io);
}

/* ---- the backward ---------------------------------------------------------- */

/* A layer's norm backwards run their rows passes in place and leave their
 * weight gradients' partial sums in slices of norm_scratch; one dispatch at
 * the layer's end adds them all into the gradients (lws_op_rmsnorm_dw_sum),
 * so a layer's gradients are complete when its command buffer ends. */
static void norm_rows(lws_model *m, lws_cmd *c, lws_norm_dw_sums *sums, lws_buffer dx,
                      const lws_param *norm, lws_buffer dy, lws_buffer x, lws_buffer rstd,
                      int accumulate_dx) {
    lws_norm_bwd p = {
        dx, norm->grad, dy, x, norm->param, rstd, m->cfg.model.d_model, accumulate_dx, NULL};
    OP("rmsnorm_bwd", lws_op_rmsnorm_bwd_rows(c, &p, 1, m->tokens, sums));
}

/* The backward of `parts` projections y_p = in . W_p^T of one input:
 * din (+)= [dy_0|dy_1|..] . [W_0;W_1;..] (added into din when
 * din_holds_value) and [dW_0;dW_1;..] += [dy_0|dy_1|..]^T . in, each one
 * product over the concatenation (or, where the fast path takes the parts,
 * their products one by one). The two share no output: no barrier between. */
static void projections_backward(lws_model *m, lws_cmd *c, uint32_t parts, const lws_buffer *dy,
                                 lws_param *const *w, const uint32_t *width, lws_buffer in,
                                 lws_buffer din, int din_holds_value) {
    uint32_t N = m->tokens, d = m->cfg.model.d_model;
    lws_mm_cat dx = {.layout = LWS_MM_NN,
                     .parts = parts,
                     .c = {din},
                     .m = N,
                     .n = d,
                     .accumulate = din_holds_value};
    lws_mm_cat dw = {
        .layout = LWS_MM_TN, .parts = parts, .b = {in}, .n = d, .k = N, .accumulate = 1};
    for (uint32_t p = 0; p < parts; p++) {
        dx.size[p] = dw.size[p] = width[p];
        dx.a[p] = dw.a[p] = dy[p];
        dx.b[p] = w[p]->mm;
        dw.c[p] = w[p]->grad;
        dx.k += width[p];
        dw.m += width[p];
    }
    OP("matmul", lws_op_matmul_cat(c, &dx));
    OP("matmul", lws_op_matmul_cat(c, &dw));
}

/* From d(att) in g->datt back to the projections' input `in` (x or xn):
 * the input gradient is added into `din` when din_holds_value, else written. */
static void attention_backward(lws_model *m, lws_cmd *c, uint32_t i, lws_buffer in, lws_buffer din,
                               int din_holds_value, lws_norm_dw_sums *sums) {
    const lws_layer_tensors *t = &m->layers[i];
    lws_layer_acts *a = &m->acts[i];
    lws_grad_scratch *g = &m->gs;
    shape s = layer_shape(m, i);
    const lws_model_config *mc = &m->cfg.model;
    OP("attention_bwd", lws_op_attention_bwd(c, g->dq, g->dk, g->dv, g->datt, a->q, a->k, a->v,
                                             a->att, a->lse, g->delta, m->batch, m->seq, s.qh,
                                             s.kvh, s.hd, 1.0f / sqrtf((float)s.hd)));
    lws_cmd_barrier(c);
    lws_buffer dq = g->dq, dk = g->dk;
    if (mc->qk_norm) {
        /* RoPE's backward inside the norm's (norm_rope_sequence's forward) */
        lws_rope_shape rq, rk;
        rope_shapes(m, i, &rq, &rk);
        lws_norm_bwd qk[2] = {
            {g->dq_raw, t->q_norm->grad, g->dq, a->q_raw, t->q_norm->param, a->q_rstd, s.q, 0, &rq},
            {g->dk_raw, t->k_norm->grad, g->dk, a->k_raw, t->k_norm->param, a->k_rstd, s.kv, 0,
             &rk}};
        /* q's and k's rows passes in one dispatch */
        OP("rmsnorm_rope_bwd", lws_op_rmsnorm_bwd_rows(c, qk, 2, s.N, sums));
        lws_cmd_barrier(c);
        dq = g->dq_raw;
        dk = g->dk_raw;
    } else {
        OP("rope", lws_op_rope(c, g->dq, g->dq, s.N, m->seq, s.qh, s.hd, (float)mc->rope_theta, 1));
        OP("rope",
           lws_op_rope(c, g->dk, g->dk, s.N, m->seq, s.kvh, s.hd, (float)mc->rope_theta, 1));
        lws_cmd_barrier(c);
    }
    /* din (+)= [dq|dk|dv] . [Wq;Wk;Wv], [dWq;dWk;dWv] += [dq|dk|dv]^T . in */
    const lws_buffer dy[3] = {dq, dk, g->dv};
    lws_param *const w[3] = {t->wq, t->wk, t->wv};
    const uint32_t width[3] = {s.q, s.kv, s.kv};
    projections_backward(m, c, 3, dy, w, width, in, din, din_holds_value);
}

/* From dgate, dup back to the FFN's input `in` (h or hn): din (+)=
 * [dgate|dup] . [W1;W3], [dW1;dW3] += [dgate|dup]^T . in. */
static void ffn_in_backward(lws_model *m, lws_cmd *c, uint32_t i, lws_buffer in, lws_buffer din,
                            int din_holds_value) {
    const lws_layer_tensors *t = &m->layers[i];
    const lws_buffer dy[2] = {m->gs.dgate, m->gs.dup};
    lws_param *const w[2] = {t->w1, t->w3};
    const uint32_t width[2] = {m->cfg.layers[i].ffn_dim, m->cfg.layers[i].ffn_dim};
    projections_backward(m, c, 2, dy, w, width, in, din, din_holds_value);
}

/* From dffn_out (the FFN's output gradient) to dgate, dup: W2's input
 * gradient with SwiGLU's backward in its epilogue, and dW2 += dffn_out^T .
 * act beside it (they share no output), then a barrier. */
static void ffn_out_backward(lws_model *m, lws_cmd *c, uint32_t i, lws_buffer dffn_out) {
    const lws_layer_tensors *t = &m->layers[i];
    lws_layer_acts *a = &m->acts[i];
    lws_grad_scratch *g = &m->gs;
    shape s = layer_shape(m, i);
    OP("matmul_swiglu_bwd", lws_op_matmul_swiglu_bwd(c, g->dgate, g->dup, dffn_out, t->w2->mm,
                                                     a->gate, a->up, s.N, s.f, s.d));
    OP("matmul", mm(c, LWS_MM_TN, t->w2->grad, dffn_out, a->act, s.d, s.f, s.N, 1));
    lws_cmd_barrier(c);
}

/* g->dx holds dL/d(layer output); leaves dL/d(layer input) there. */
static void layer_backward(lws_model *m, lws_cmd *c, uint32_t i) {
    const lws_layer_tensors *t = &m->layers[i];
    lws_layer_acts *a = &m->acts[i];
    lws_grad_scratch *g = &m->gs;
    shape s = layer_shape(m, i);
    lws_norm_dw_sums sums = {.scratch = g->norm_scratch};
    if (m->cfg.model.block == LWS_BLOCK_POST_NORM) {
        /* out = h + RMSNorm_ffn(ffn_out): dffn_out from the norm backward */
        norm_rows(m, c, &sums, g->dnorm_in, t->ffn_norm, g->dx, a->ffn_out, a->ffn_rstd, 0);
        lws_cmd_barrier(c);
        ffn_out_backward(m, c, i, g->dnorm_in);
        /* dh = dout + dgate . W1 + dup . W3, accumulated in place in dx */
        ffn_in_backward(m, c, i, a->h, g->dx, 1);
        lws_cmd_barrier(c);
        /* h = x + RMSNorm_attn(attn_out) */
        norm_rows(m, c, &sums, g->dnorm_in, t->attn_norm, g->dx, a->attn_out, a->attn_rstd, 0);
        lws_cmd_barrier(c);
        OP("matmul", mm(c, LWS_MM_NN, g->datt, g->dnorm_in, t->wo->mm, s.N, s.q, s.d, 0));
        OP("matmul", mm(c, LWS_MM_TN, t->wo->grad, g->dnorm_in, a->att, s.d, s.q, s.N, 1));
        lws_cmd_barrier(c);
        /* dx = dh + the projections' input gradient; every norm's partials
         * were written before a barrier since: their sum needs none */
        attention_backward(m, c, i, a->x, g->dx, 1, &sums);
    } else {
        /* out = h + ffn(hn), hn = RMSNorm_ffn(h) */
        ffn_out_backward(m, c, i, g->dx);
        ffn_in_backward(m, c, i, a->hn, g->dnorm_in, 0);
        lws_cmd_barrier(c);
        norm_rows(m, c, &sums, g->dx, t->ffn_norm, g->dnorm_in, a->h, a->ffn_rstd, 1);
        lws_cmd_barrier(c);
        /* h = x + att . Wo^T, att from xn = RMSNorm_attn(x) */
        OP("matmul", mm(c, LWS_MM_NN, g->datt, g->dx, t->wo->mm, s.N, s.q, s.d, 0));
        OP("matmul", mm(c, LWS_MM_TN, t->wo->grad, g->dx, a->att, s.d, s.q, s.N, 1));
        lws_cmd_barrier(c);
        attention_backward(m, c, i, a->xn, g->dnorm_in, 0, &sums);
        lws_cmd_barrier(c);
        norm_rows(m, c, &sums, g->dx, t->attn_norm, g->dnorm_in, a->x, a->attn_rstd, 1);
        lws_cmd_barrier(c); /* the sum reads the attention norm's partials */
    }
    OP("rmsnorm_dw", lws_op_rmsnorm_dw_sum(c, &sums));
}

/* The final norm (pre_norm: the last layer's forward wrote it); with_loss
 * adds the head with the loss over chunks of tokens (ops/head_loss.c) and,
 * with_backward, its backward into dx. */
static void head(lws_model *m, lws_cmd *c, int with_loss, int with_backward) {
    uint32_t N = m->tokens, d = m->cfg.model.d_model, V = m->cfg.model.vocab_size;
    if (m->cfg.model.block != LWS_BLOCK_PRE_NORM) {
        lws_block_kernels k = row_kernels(m);
        lws_block_final_norm(&k, c, &m->cfg, m->final_x, m->final_xn, m->final_rstd,
                             m->final_norm->param);
        if (with_loss) lws_cmd_barrier(c);
    }
    if (!with_loss) return;
    lws_grad_scratch *g = &m->gs;
    lws_buffer none = {0};
    /* Every token counts (no ignore index in pre-training batches); the loss
     * of a step is the mean over its micro-batches, hence 1/grad_accum. */
    float grad_scale = 1.0f / (float)lws_train_accum(&m->cfg.train);
    lws_head_loss_args h = {.losses = m->losses,
                            .dx = with_backward ? g->dnorm_in : none,
                            .dw = with_backward ? m->lm_head->grad : none,
                            .x = m->final_xn,
                            .w = m->lm_head->mm,
                            .targets = m->targets,
                            .logits = m->head_logits,
                            .dlogits = m->head_dlogits,
                            .ce_scratch = m->ce_scratch,
                            .scale = m->loss_scale,
                            .rows = N,
                            .d = d,
                            .vocab = V,
                            .chunk_rows = m->head_chunk,
                            .ignore_index = UINT32_MAX,
                            .z_loss = (float)m->cfg.train.z_loss,
                            .grad_scale = grad_scale};
    OP("head_loss", lws_op_head_loss(c, &h));
    if (!with_backward) return;
    lws_cmd_barrier(c);
    OP("rmsnorm_bwd",
       lws_op_rmsnorm_bwd(c, g->dx, m->final_norm->grad, g->dnorm_in, m->final_x,
                          m->final_norm->param, m->final_rstd, g->norm_scratch, N, d, 0));
}

/* A command buffer recorded once; its label names it in hazard reports. */
static lws_status begin(lws_model *m, lws_cmd **c, const char *label) {
    LWS_TRY(lws_cmd_begin(m->ctx, 1, c));
    lws_cmd_label(*c, label);
    return LWS_OK;
}

/* One layer's forward or backward in a command buffer of its own, inside a
 * timestamp region named layerI.fwd or layerI.bwd. */
static lws_status record_layer(lws_model *m, uint32_t i, int backward) {
    lws_cmd **slot = backward ? &m->cmd_bwd[i] : &m->cmd_fwd[i];
    int *region = backward ? &m->region_bwd[i] : &m->region_fwd[i];
    char name[64];
    LWS_TRY(begin(m, slot, "layer"));
    lws_cmd *c = *slot;
    snprintf(name, sizeof name, "layer%u.%s", i, backward ? "bwd" : "fwd");
    *region = lws_cmd_region_begin(c, m->timer, name);
    snprintf(name, sizeof name, "layer %u %s", i, backward ? "backward" : "forward");
    lws_cmd_label(c, name);
    if (backward) {
        /* weight gradients split over k take their partial sums from here */
        if (m->gs.split_k.buffer) lws_cmd_set_scratch(c, m->gs.split_k);
        layer_backward(m, c, i);
        lws_cmd_settle(c); /* their sums inside the layer's time region */
    } else {
        layer_forward(m, c, i);
    }
    lws_cmd_region_end(c, m->timer, *region);
    lws_status s = lws_cmd_end(c);
    if (s != LWS_OK)
        lws_error_context("recording layer %u %s", i, backward ? "backward" : "forward");
    return s;
}

/* Clipping by the global gradient norm, AdamW, and the count of
 * parameters left non-finite, in one command buffer. */
static lws_status record_optimizer(lws_model *m) {
    lws_cmd *c;
    LWS_TRY(begin(m, &m->cmd_optim, "optimizer"));
    c = m->cmd_optim;
    m->region_optim = lws_cmd_region_begin(c, m->timer, "optimizer");
    OP("grad_norm", lws_op_grad_norm(c, m->hyper, m->optim_table, m->optim_entries, m->optim_chunks,
                                     m->norm_scratch));
    lws_cmd_barrier(c);
    OP("adamw", lws_op_adamw(c, m->hyper, m->optim_table, m->optim_entries, m->optim_chunks));
    lws_cmd_barrier(c);
    /* Every update is checked where it happened: the count lands in the
     * hyper buffer, which the host reads back after each step anyway. */
    OP("count_nonfinite",
       lws_op_count_nonfinite(c, lws_buffer_slice(m->hyper, LWS_HYPER_NONFINITE, sizeof(float)),
                              m->optim_table, m->optim_entries, m->optim_chunks, m->norm_scratch));
    /* the 16-bit copy of the new weights reads them beside the count */
    lws_model_record_weights16(m, c);
    lws_cmd_region_end(c, m->timer, m->region_optim);
    return lws_cmd_end(c);
}

lws_status lws_model_record(lws_model *m) {
    uint32_t L = m->cfg.model.n_layers, N = m->tokens, d = m->cfg.model.d_model;
    uint32_t V = m->cfg.model.vocab_size;
    lws_cmd *c;

    LWS_TRY(begin(m, &m->cmd_embed, "embedding"));
    c = m->cmd_embed;
    m->region_embed = lws_cmd_region_begin(c, m->timer, "embed");
    OP("embedding", lws_op_embedding_fwd(c, m->embed_out, m->embed->param, m->inputs, N, d, V));
    lws_cmd_region_end(c, m->timer, m->region_embed);
    LWS_TRY(lws_cmd_end(c));

    for (uint32_t i = 0; i < L; i++) LWS_TRY(record_layer(m, i, 0));

    /* The evaluation and logits heads are not part of a training step: no
     * op regions, so every region of the op timer is written by a step. */
    lws_timer *op_timer = m->op_timer;
    m->op_timer = NULL;
    LWS_TRY(begin(m, &m->cmd_eval_head, "evaluation head"));
    head(m, m->cmd_eval_head, 1, 0);
    LWS_TRY(lws_cmd_end(m->cmd_eval_head));
    LWS_TRY(begin(m, &m->cmd_final_norm, "final norm"));
    head(m, m->cmd_final_norm, 0, 0);
    LWS_TRY(lws_cmd_end(m->cmd_final_norm));
    m->op_timer = op_timer;

    uint32_t n = 0;
    m->eval_cmds[n] = m->cmd_embed;
    m->logits_cmds[n++] = m->cmd_embed;
    for (uint32_t i = 0; i < L; i++) {
        m->eval_cmds[n] = m->cmd_fwd[i];
        m->logits_cmds[n++] = m->cmd_fwd[i];
    }
    m->eval_cmds[n] = m->cmd_eval_head;
    m->logits_cmds[n++] = m->cmd_final_norm;
    m->n_eval_cmds = n;
    if (!m->training) return LWS_OK;

    LWS_TRY(begin(m, &m->cmd_head, "head, loss and head backward"));
    c = m->cmd_head;
    m->region_head = lws_cmd_region_begin(c, m->timer, "head");
    head(m, c, 1, 1);
    lws_cmd_region_end(c, m->timer, m->region_head);
    LWS_TRY(lws_cmd_end(c));

    for (uint32_t i = 0; i < L; i++) LWS_TRY(record_layer(m, i, 1));

    LWS_TRY(begin(m, &m->cmd_embed_bwd, "embedding backward"));
    c = m->cmd_embed_bwd;
    m->region_embed_bwd = lws_cmd_region_begin(c, m->timer, "embed.bwd");
    OP("embedding_bwd", lws_op_embedding_bwd(c, m->embed->grad, m->gs.dx, m->inputs, N, d, V));
    lws_cmd_region_end(c, m->timer, m->region_embed_bwd);
    LWS_TRY(lws_cmd_end(c));

    /* a sharded model records its optimizer in two (model/shard.c) */
    LWS_TRY(m->opt_lo == 0 && m->opt_hi == m->n_floats ? record_optimizer(m)
                                                       : lws_model_record_shard(m));

    n = 0;
    m->step_cmds[n++] = m->cmd_embed;
    for (uint32_t i = 0; i < L; i++) m->step_cmds[n++] = m->cmd_fwd[i];
    m->step_cmds[n++] = m->cmd_head;
    for (uint32_t i = L; i-- > 0;) m->step_cmds[n++] = m->cmd_bwd[i];
    m->step_cmds[n++] = m->cmd_embed_bwd;
    m->n_step_cmds = n;
    return LWS_OK;
}

lws_status lws_model_record_logits(lws_model *m) {
    uint32_t N = m->tokens, d = m->cfg.model.d_model, V = m->cfg.model.vocab_size;
    uint32_t chunks = (N + m->head_chunk - 1) / m->head_chunk;
    lws_cmd **cmds = calloc(chunks, sizeof *cmds);
    if (!cmds) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint64_t row = (uint64_t)lws_dtype_bytes(m->final_xn.dtype) * d;
    lws_status s = LWS_OK;
    for (uint32_t i = 0; s == LWS_OK && i < chunks; i++) {
        uint32_t r0 = i * m->head_chunk, n = N - r0 < m->head_chunk ? N - r0 : m->head_chunk;
        s = begin(m, &cmds[i], "logits of a chunk of tokens");
        if (s != LWS_OK) break;
        lws_buffer x = lws_buffer_slice(m->final_xn, r0 * row, n * row);
        mm(cmds[i], LWS_MM_NT, m->head_logits, x, m->lm_head->mm, n, V, d, 0);
        s = lws_cmd_end(cmds[i]);
    }
    if (s != LWS_OK) { /* nothing half-recorded stays for the next call */
        for (uint32_t i = 0; i < chunks; i++) lws_cmd_destroy(cmds[i]);
        free(cmds);
        return s;
    }
    m->cmd_logits = cmds;
    m->n_logits_chunks = chunks;
    return LWS_OK;
}

void lws_model_record_weights16(lws_model *m, lws_cmd *c) {
    if (m->act_dtype == LWS_F32) return;
    OP("cast", lws_op_cast(c, m->param16_block, m->param_block, m->n_floats));
}

lws_status lws_model_refresh_weights16(lws_model *m) {
    if (m->act_dtype == LWS_F32) return LWS_OK;
    lws_cmd *c = NULL;
    LWS_TRY(begin(m, &c, "16-bit copy of the weights"));
    lws_timer *op_timer = m->op_timer;
    m->op_timer = NULL; /* not part of a step */
    lws_model_record_weights16(m, c);
    m->op_timer = op_timer;
    lws_status s = lws_cmd_end(c);
    if (s == LWS_OK) s = lws_submit(m->ctx, &c, 1);
    lws_cmd_destroy(c);
    return s;
}
