/* Decoding with a key/value cache (see decode.h): the single-token forward,
 * recorded once per layer and replayed at every position. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/decode.h"
#include "ops/decode_ops.h"
#include "ops/ops.h"

/* Launchers mark the command buffer failed; lws_cmd_end reports it. */
#define B lws_cmd_barrier(c)

typedef struct shape {
    uint32_t d, q, kv, f, qh, kvh, hd;
} shape;

static shape layer_shape(const lws_decoder *dec, uint32_t i) {
    const lws_config *cfg = &dec->m->cfg;
    const lws_layer_shape *s = &cfg->layers[i];
    uint32_t hd = cfg->model.head_dim;
    shape sh = {cfg->model.d_model,
                s->q_heads * hd,
                s->kv_heads * hd,
                s->ffn_dim,
                s->q_heads,
                s->kv_heads,
                hd};
    return sh;
}

static void mm(lws_cmd *c, lws_buffer dst, lws_buffer x, lws_buffer w, uint32_t n, uint32_t k) {
    /* (1, n) = (1, k) . (n, k)^T */
    lws_op_matvec(c, dst, w, x, n, k);
}

/* The attention sub-block for the new token, from the (normed, for
 * pre_norm) input `in` to dec->att, storing its key and value in row pos. */
static void attention_step(lws_decoder *dec, lws_cmd *c, uint32_t i, lws_buffer in) {
    const lws_layer_tensors *t = &dec->m->layers[i];
    const lws_model_config *mc = &dec->m->cfg.model;
    shape s = layer_shape(dec, i);
    float eps = (float)mc->norm_eps, theta = (float)mc->rope_theta;
    uint32_t last = dec->max_seq - 1;
    mm(c, dec->q_raw, in, t->wq->param, s.q, s.d);
    mm(c, dec->k_raw, in, t->wk->param, s.kv, s.d);
    mm(c, dec->v, in, t->wv->param, s.kv, s.d);
    B;
    if (mc->qk_norm) {
        /* QK-norm over the whole projection (q_heads * head_dim), as in training. */
        lws_op_rmsnorm_fwd(c, dec->q, dec->q_rstd, dec->q_raw, t->q_norm->param, 1, s.q, eps);
        lws_op_rmsnorm_fwd(c, dec->k, dec->k_rstd, dec->k_raw, t->k_norm->param, 1, s.kv, eps);
        B;
    }
    lws_op_rope_decode(c, dec->q, dec->q, dec->pos, s.qh, s.hd, 0, 0, theta);
    lws_op_rope_decode(c, dec->k_cache[i], dec->k, dec->pos, s.kvh, s.hd, s.kv, last, theta);
    lws_op_store_row(c, dec->v_cache[i], dec->v, dec->pos, s.kv, s.kv, last);
    B;
    lws_op_attention_decode(c, dec->att, dec->q, dec->k_cache[i], dec->v_cache[i], dec->pos,
                            dec->max_seq, s.qh, s.kvh, s.hd, 1.0f / sqrtf((float)s.hd));
    B;
}

/* One layer for one token: reads and rewrites dec->x. */
static void layer_step(lws_decoder *dec, lws_cmd *c, uint32_t i) {
    const lws_layer_tensors *t = &dec->m->layers[i];
    shape s = layer_shape(dec, i);
    float eps = (float)dec->m->cfg.model.norm_eps;
    if (dec->m->cfg.model.block == LWS_BLOCK_POST_NORM) {
        /* h = x + RMSNorm_attn(Attn(x)); x = h + RMSNorm_ffn(SwiGLU(h)) */
        attention_step(dec, c, i, dec->x);
        mm(c, dec->proj, dec->att, t->wo->param, s.d, s.q);
        B;
        lws_op_rmsnorm_fwd(c, dec->h, dec->rstd, dec->proj, t->attn_norm->param, 1, s.d, eps);
        B;
        lws_op_axpby(c, dec->h, dec->x, dec->h, 1.0f, 1.0f, s.d);
        B;
        mm(c, dec->gate, dec->h, t->w1->param, s.f, s.d);
        mm(c, dec->up, dec->h, t->w3->param, s.f, s.d);
        B;
        lws_op_swiglu_fwd(c, dec->act, dec->gate, dec->up, s.f);
        B;
        mm(c, dec->proj, dec->act, t->w2->param, s.d, s.f);
        B;
        lws_op_rmsnorm_fwd(c, dec->x, dec->rstd, dec->proj, t->ffn_norm->param, 1, s.d, eps);
        B;
        lws_op_axpby(c, dec->x, dec->h, dec->x, 1.0f, 1.0f, s.d);
    } else {
        /* h = x + Attn(RMSNorm_attn(x)); x = h + SwiGLU(RMSNorm_ffn(h)) */
        lws_op_rmsnorm_fwd(c, dec->xn, dec->rstd, dec->x, t->attn_norm->param, 1, s.d, eps);
        B;
        attention_step(dec, c, i, dec->xn);
        mm(c, dec->h, dec->att, t->wo->param, s.d, s.q);
        B;
        lws_op_axpby(c, dec->h, dec->x, dec->h, 1.0f, 1.0f, s.d);
        B;
        lws_op_rmsnorm_fwd(c, dec->hn, dec->rstd, dec->h, t->ffn_norm->param, 1, s.d, eps);
        B;
        mm(c, dec->gate, dec->hn, t->w1->param, s.f, s.d);
        mm(c, dec->up, dec->hn, t->w3->param, s.f, s.d);
        B;
        lws_op_swiglu_fwd(c, dec->act, dec->gate, dec->up, s.f);
        B;
        mm(c, dec->x, dec->act, t->w2->param, s.d, s.f);
        B;
        lws_op_axpby(c, dec->x, dec->h, dec->x, 1.0f, 1.0f, s.d);
    }
}

static lws_status alloc_floats(lws_context *ctx, uint64_t floats, lws_buffer *out) {
    return lws_alloc(ctx, floats * 4, out);
}

static lws_status allocate(lws_decoder *dec) {
    lws_model *m = dec->m;
    lws_context *ctx = m->ctx;
    const lws_config *cfg = &m->cfg;
    uint64_t d = cfg->model.d_model, V = cfg->model.vocab_size, hd = cfg->model.head_dim;
    uint64_t q_max = 0, kv_max = 0, f_max = 0;
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        if (s->q_heads * hd > q_max) q_max = s->q_heads * hd;
        if (s->kv_heads * hd > kv_max) kv_max = s->kv_heads * hd;
        if (s->ffn_dim > f_max) f_max = s->ffn_dim;
    }
    LWS_TRY(lws_alloc(ctx, 8, &dec->io));
    dec->token = lws_buffer_slice(dec->io, 0, 4);
    dec->pos = lws_buffer_slice(dec->io, 4, 4);
    LWS_TRY(alloc_floats(ctx, d, &dec->x));
    LWS_TRY(alloc_floats(ctx, d, &dec->h));
    if (cfg->model.block == LWS_BLOCK_PRE_NORM) {
        LWS_TRY(alloc_floats(ctx, d, &dec->xn));
        LWS_TRY(alloc_floats(ctx, d, &dec->hn));
    } else {
        LWS_TRY(alloc_floats(ctx, d, &dec->proj));
    }
    LWS_TRY(alloc_floats(ctx, q_max, &dec->q_raw));
    LWS_TRY(alloc_floats(ctx, kv_max, &dec->k_raw));
    if (cfg->model.qk_norm) {
        LWS_TRY(alloc_floats(ctx, q_max, &dec->q));
        LWS_TRY(alloc_floats(ctx, kv_max, &dec->k));
    } else {
        dec->q = dec->q_raw; /* RoPE rotates the projection in place */
        dec->k = dec->k_raw;
    }
    LWS_TRY(alloc_floats(ctx, kv_max, &dec->v));
    LWS_TRY(alloc_floats(ctx, q_max, &dec->att));
    LWS_TRY(alloc_floats(ctx, f_max, &dec->gate));
    LWS_TRY(alloc_floats(ctx, f_max, &dec->up));
    LWS_TRY(alloc_floats(ctx, f_max, &dec->act));
    LWS_TRY(alloc_floats(ctx, 1, &dec->q_rstd));
    LWS_TRY(alloc_floats(ctx, 1, &dec->k_rstd));
    LWS_TRY(alloc_floats(ctx, 1, &dec->rstd));
    LWS_TRY(alloc_floats(ctx, d, &dec->final_xn));
    LWS_TRY(alloc_floats(ctx, V, &dec->logits));
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        uint64_t kv = cfg->layers[i].kv_heads * hd;
        lws_status s = alloc_floats(ctx, dec->max_seq * kv, &dec->k_cache[i]);
        if (s == LWS_OK) s = alloc_floats(ctx, dec->max_seq * kv, &dec->v_cache[i]);
        if (s != LWS_OK) {
            lws_error_context("allocating the key/value cache of layer %u (%u positions)", i,
                              dec->max_seq);
            return s;
        }
    }
    return LWS_OK;
}

static lws_status record(lws_decoder *dec) {
    lws_model *m = dec->m;
    const lws_config *cfg = &m->cfg;
    uint32_t L = cfg->model.n_layers, d = cfg->model.d_model, V = cfg->model.vocab_size;
    lws_cmd *c;

    LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_embed));
    c = dec->cmd_embed;
    lws_op_embedding_fwd(c, dec->x, m->embed->param, dec->token, 1, d, V);
    LWS_TRY(lws_cmd_end(c));

    for (uint32_t i = 0; i < L; i++) {
        LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_layer[i]));
        c = dec->cmd_layer[i];
        layer_step(dec, c, i);
        lws_status s = lws_cmd_end(c);
        if (s != LWS_OK) {
            lws_error_context("recording the decode step of layer %u", i);
            return s;
        }
    }

    LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_head));
    c = dec->cmd_head;
    lws_op_rmsnorm_fwd(c, dec->final_xn, dec->rstd, dec->x, m->final_norm->param, 1, d,
                       (float)cfg->model.norm_eps);
    B;
    mm(c, dec->logits, dec->final_xn, m->lm_head->param, V, d);
    LWS_TRY(lws_cmd_end(c));

    /* The prefill forward leaves each layer's keys (after QK-norm and RoPE
     * at position t, since row 0 of the batch has t % seq = t) and values in
     * m->acts, token-major like the caches: its first rows are the caches'. */
    uint32_t rows = m->seq < dec->max_seq ? m->seq : dec->max_seq;
    LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_prefill_kv));
    c = dec->cmd_prefill_kv;
    for (uint32_t i = 0; i < L; i++) {
        VkDeviceSize bytes = (VkDeviceSize)rows * cfg->layers[i].kv_heads * cfg->model.head_dim * 4;
        lws_cmd_copy(c, m->acts[i].k, dec->k_cache[i], bytes);
        lws_cmd_copy(c, m->acts[i].v, dec->v_cache[i], bytes);
    }
    LWS_TRY(lws_cmd_end(c));

    uint32_t n = 0;
    dec->step_cmds[n++] = dec->cmd_embed;
    for (uint32_t i = 0; i < L; i++) dec->step_cmds[n++] = dec->cmd_layer[i];
    dec->step_cmds[n++] = dec->cmd_head;
    dec->n_step_cmds = n;
    return LWS_OK;
}

lws_status lws_decoder_create(lws_model *m, uint32_t max_seq, lws_decoder **out) {
    *out = NULL;
    const lws_model_config *mc = &m->cfg.model;
    if (max_seq == 0 || max_seq > (1u << 24))
        return lws_fail(LWS_ERR_INVALID, "decoder: max_seq %u; allowed 1 .. 16777216", max_seq);
    if (mc->head_dim > 128 || mc->head_dim % 2 != 0)
        return lws_fail(LWS_ERR_INVALID,
                        "decoder: head_dim %u is not supported; decoding needs an even head_dim "
                        "of at most 128",
                        mc->head_dim);
    lws_decoder *dec = calloc(1, sizeof *dec);
    if (!dec) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint32_t L = mc->n_layers;
    dec->m = m;
    dec->max_seq = max_seq;
    dec->k_cache = calloc(L, sizeof *dec->k_cache);
    dec->v_cache = calloc(L, sizeof *dec->v_cache);
    dec->cmd_layer = calloc(L, sizeof *dec->cmd_layer);
    dec->step_cmds = calloc(L + 2, sizeof *dec->step_cmds);
    lws_status s = dec->k_cache && dec->v_cache && dec->cmd_layer && dec->step_cmds
                       ? LWS_OK
                       : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK) s = allocate(dec);
    if (s == LWS_OK) s = record(dec);
    if (s != LWS_OK) {
        lws_decoder_destroy(dec);
        return s;
    }
    *out = dec;
    return LWS_OK;
}

void lws_decoder_destroy(lws_decoder *dec) {
    if (!dec) return;
    lws_cmd_destroy(dec->cmd_embed);
    lws_cmd_destroy(dec->cmd_head);
    lws_cmd_destroy(dec->cmd_prefill_kv);
    for (uint32_t i = 0; dec->cmd_layer && i < dec->m->cfg.model.n_layers; i++)
        lws_cmd_destroy(dec->cmd_layer[i]);
    free(dec->cmd_layer);
    free(dec->step_cmds);
    free(dec->k_cache);
    free(dec->v_cache);
    free(dec);
}

static lws_status check_token(const lws_decoder *dec, uint32_t token, uint32_t pos) {
    uint32_t V = dec->m->cfg.model.vocab_size;
    if (token >= V)
        return lws_fail(LWS_ERR_INVALID,
                        "decode: token %u at position %u is outside the vocabulary (%u)", token,
                        pos, V);
    if (pos >= dec->max_seq)
        return lws_fail(LWS_ERR_INVALID,
                        "decode: position %u is beyond the key/value cache (%u positions)", pos,
                        dec->max_seq);
    return LWS_OK;
}

lws_status lws_decoder_step(lws_decoder *dec, uint32_t token, uint32_t pos, float *logits) {
    LWS_TRY(check_token(dec, token, pos));
    lws_context *ctx = dec->m->ctx;
    uint32_t io[2] = {token, pos};
    LWS_TRY(lws_upload(ctx, dec->io, io, sizeof io));
    LWS_TRY(lws_submit(ctx, dec->step_cmds, dec->n_step_cmds));
    if (!logits) return LWS_OK;
    return lws_download(ctx, dec->logits, logits,
                        (size_t)dec->m->cfg.model.vocab_size * sizeof *logits);
}

lws_status lws_decoder_prefill(lws_decoder *dec, const uint32_t *tokens, uint32_t n,
                               float *logits) {
    lws_model *m = dec->m;
    if (n == 0) return lws_fail(LWS_ERR_INVALID, "decode: an empty prompt has nothing to prefill");
    if (n > dec->max_seq)
        return lws_fail(LWS_ERR_INVALID,
                        "decode: a prompt of %u tokens does not fit the key/value cache (%u "
                        "positions)",
                        n, dec->max_seq);
    for (uint32_t i = 0; i < n; i++) LWS_TRY(check_token(dec, tokens[i], i));
    uint32_t forward = n < m->seq ? n : m->seq;
    uint32_t *inputs = calloc(m->tokens, sizeof *inputs); /* padding: token 0 */
    if (!inputs) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    memcpy(inputs, tokens, forward * sizeof *inputs);
    lws_status s = lws_upload(m->ctx, m->inputs, inputs, (size_t)m->tokens * sizeof *inputs);
    free(inputs);
    LWS_TRY(s);

    /* embed, every layer's forward, the key/value copy; then the last
     * position's residual row into the decoder for its head. */
    uint32_t L = m->cfg.model.n_layers, d = m->cfg.model.d_model;
    lws_cmd **cmds = calloc(L + 4, sizeof *cmds);
    lws_cmd *last_row = NULL;
    if (!cmds) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint32_t k = 0;
    cmds[k++] = m->cmd_embed;
    for (uint32_t i = 0; i < L; i++) cmds[k++] = m->cmd_fwd[i];
    cmds[k++] = dec->cmd_prefill_kv;
    s = forward == n ? lws_cmd_begin(m->ctx, 0, &last_row) : LWS_OK;
    if (s == LWS_OK && last_row) {
        VkDeviceSize row = (VkDeviceSize)d * 4;
        lws_cmd_copy(last_row, lws_buffer_slice(m->final_x, (forward - 1) * row, row), dec->x, row);
        s = lws_cmd_end(last_row);
    }
    if (s == LWS_OK && last_row) {
        cmds[k++] = last_row;
        cmds[k++] = dec->cmd_head;
    }
    if (s == LWS_OK) s = lws_submit(m->ctx, cmds, k);
    lws_cmd_destroy(last_row);
    free(cmds);
    LWS_TRY(s);

    /* Positions past the model's sequence, one step each. */
    for (uint32_t i = forward; i < n; i++)
        LWS_TRY(lws_decoder_step(dec, tokens[i], i, i + 1 == n ? logits : NULL));
    if (forward < n || !logits) return LWS_OK;
    return lws_download(m->ctx, dec->logits, logits,
                        (size_t)m->cfg.model.vocab_size * sizeof *logits);
}
