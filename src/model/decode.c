/* Decoding with a key/value cache (see decode.h): the single-token forward,
 * recorded once per layer and replayed at every position. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/block.h"
#include "model/decode.h"
#include "model/model_internal.h"
#include "ops/decode_ops.h"
#include "ops/ops.h"

/* ---- one token through the block recipe (block.c) ------------------------ */

static void project_one(void *self, lws_cmd *c, lws_buffer y, lws_buffer x, lws_buffer w,
                        uint32_t n, uint32_t k) {
    (void)self;
    lws_op_matvec(c, y, w, x, n, k); /* (1, n) = (1, k) . (n, k)^T */
}

/* RoPE at the position in dec->pos; the key and value go to that row of the
 * caches, and the query attends to rows 0..pos. */
static void attend_cache(void *self, lws_cmd *c, uint32_t i, const lws_block_io *io) {
    lws_decoder *dec = self;
    const lws_config *cfg = &dec->m->cfg;
    const lws_layer_shape *s = &cfg->layers[i];
    uint32_t hd = cfg->model.head_dim, kv = s->kv_heads * hd, last = dec->max_seq - 1;
    float theta = (float)cfg->model.rope_theta;
    lws_op_rope_decode(c, io->q, io->q, dec->pos, s->q_heads, hd, 0, 0, theta);
    lws_op_rope_decode(c, dec->k_cache[i], io->k, dec->pos, s->kv_heads, hd, kv, last, theta);
    lws_op_store_row(c, dec->v_cache[i], io->v, dec->pos, kv, kv, last);
    lws_cmd_barrier(c);
    lws_op_attention_decode(c, io->att, io->q, dec->k_cache[i], dec->v_cache[i], dec->pos,
                            dec->max_seq, s->q_heads, s->kv_heads, hd, 1.0f / sqrtf((float)hd));
    lws_cmd_barrier(c);
}

static lws_block_kernels one_token_kernels(lws_decoder *dec) {
    lws_block_kernels k = {dec, 1, project_one, "matvec", attend_cache, NULL, NULL, NULL};
    return k;
}

/* One layer for one token: reads and rewrites dec->blk.x. */
static void layer_step(lws_decoder *dec, lws_cmd *c, uint32_t i) {
    lws_block_kernels k = one_token_kernels(dec);
    lws_block_weights w = lws_model_block_weights(dec->m, i, 0);
    lws_block_forward(&k, c, &dec->m->cfg, i, &w, &dec->blk);
}

/* The first `elems` elements of the model's src into the decoder's fp32 dst:
 * a copy, or a cast where the model stores activations in 16 bits (the
 * decoder runs in fp32 from the fp32 master weights). */
static void take_rows(lws_cmd *c, lws_buffer dst, lws_buffer src, uint64_t elems) {
    if (src.dtype == LWS_F32)
        lws_cmd_copy(c, src, dst, 4 * elems);
    else
        lws_op_cast(c, dst, src, elems);
}

/* The decoder's buffers: one token's activations at the widest layer, and
 * each layer's key/value cache at its own width. */
static lws_status describe(lws_decoder *dec, lws_mem_table *t) {
    const lws_config *cfg = &dec->m->cfg;
    uint64_t d = cfg->model.d_model, V = cfg->model.vocab_size, hd = cfg->model.head_dim;
    uint64_t q_max = 0, kv_max = 0, f_max = 0;
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        if (s->q_heads * hd > q_max) q_max = s->q_heads * hd;
        if (s->kv_heads * hd > kv_max) kv_max = s->kv_heads * hd;
        if (s->ffn_dim > f_max) f_max = s->ffn_dim;
    }
    const lws_mem_kind A = LWS_MEM_ACTIVATIONS;
    lws_block_io *b = &dec->blk;
    lws_mem_add(t, A, LWS_U32, 2, 0, &dec->io, "decode.token_pos");
    lws_mem_add(t, A, LWS_F32, d, 0, &b->x, "decode.x");
    lws_mem_alias(t, &b->out, &b->x, "decode.out");
    lws_mem_add(t, A, LWS_F32, d, 0, &b->h, "decode.h");
    if (cfg->model.block == LWS_BLOCK_PRE_NORM) {
        lws_mem_add(t, A, LWS_F32, d, 0, &b->xn, "decode.xn");
        lws_mem_add(t, A, LWS_F32, d, 0, &b->hn, "decode.hn");
    } else {
        lws_mem_add(t, A, LWS_F32, d, 0, &b->attn_out, "decode.proj");
        lws_mem_alias(t, &b->ffn_out, &b->attn_out, "decode.ffn_out");
    }
    lws_mem_add(t, A, LWS_F32, q_max, 0, &b->q_raw, "decode.q_raw");
    lws_mem_add(t, A, LWS_F32, kv_max, 0, &b->k_raw, "decode.k_raw");
    if (cfg->model.qk_norm) {
        lws_mem_add(t, A, LWS_F32, q_max, 0, &b->q, "decode.q");
        lws_mem_add(t, A, LWS_F32, kv_max, 0, &b->k, "decode.k");
    } else { /* RoPE rotates the projection in place */
        lws_mem_alias(t, &b->q, &b->q_raw, "decode.q");
        lws_mem_alias(t, &b->k, &b->k_raw, "decode.k");
    }
    lws_mem_add(t, A, LWS_F32, kv_max, 0, &b->v, "decode.v");
    lws_mem_add(t, A, LWS_F32, q_max, 0, &b->att, "decode.att");
    lws_mem_add(t, A, LWS_F32, f_max, 0, &b->gate, "decode.gate");
    lws_mem_add(t, A, LWS_F32, f_max, 0, &b->up, "decode.up");
    lws_mem_add(t, A, LWS_F32, f_max, 0, &b->act, "decode.act");
    lws_mem_add(t, A, LWS_F32, 1, 0, &b->q_rstd, "decode.q_rstd");
    lws_mem_add(t, A, LWS_F32, 1, 0, &b->k_rstd, "decode.k_rstd");
    lws_mem_add(t, A, LWS_F32, 1, 0, &b->attn_rstd, "decode.rstd");
    lws_mem_alias(t, &b->ffn_rstd, &b->attn_rstd, "decode.ffn_rstd");
    lws_mem_add(t, A, LWS_F32, d, 0, &dec->final_xn, "decode.final_xn");
    lws_mem_add(t, A, LWS_F32, V, 0, &dec->logits, "decode.logits");
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        uint64_t kv = cfg->layers[i].kv_heads * hd;
        lws_mem_add(t, A, LWS_F32, (uint64_t)dec->max_seq * kv, 0, &dec->k_cache[i],
                    "decode.layers.%u.k_cache", i);
        lws_mem_add(t, A, LWS_F32, (uint64_t)dec->max_seq * kv, 0, &dec->v_cache[i],
                    "decode.layers.%u.v_cache", i);
    }
    return t->status;
}

static lws_status allocate(lws_decoder *dec) {
    LWS_TRY(describe(dec, &dec->mem));
    LWS_TRY(lws_mem_allocate(dec->m->ctx, &dec->mem));
    dec->token = lws_buffer_slice(dec->io, 0, 4);
    dec->pos = lws_buffer_slice(dec->io, 4, 4);
    return LWS_OK;
}

static lws_status record(lws_decoder *dec) {
    lws_model *m = dec->m;
    const lws_config *cfg = &m->cfg;
    uint32_t L = cfg->model.n_layers, d = cfg->model.d_model, V = cfg->model.vocab_size;
    lws_cmd *c;

    LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_embed));
    c = dec->cmd_embed;
    lws_op_embedding_fwd(c, dec->blk.x, m->embed->param, dec->token, 1, d, V);
    LWS_TRY(lws_cmd_end(c));

    for (uint32_t i = 0; i < L; i++) {
        LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_layer[i]));
        c = dec->cmd_layer[i];
        char label[48];
        snprintf(label, sizeof label, "decode layer %u", i);
        lws_cmd_label(c, label);
        layer_step(dec, c, i);
        lws_status s = lws_cmd_end(c);
        if (s != LWS_OK) {
            lws_error_context("recording the decode step of layer %u", i);
            return s;
        }
    }

    LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_head));
    c = dec->cmd_head;
    lws_cmd_label(c, "decode head");
    lws_block_kernels k = one_token_kernels(dec);
    lws_block_head(&k, c, cfg, dec->blk.x, dec->final_xn, dec->blk.attn_rstd, m->final_norm->param,
                   m->lm_head->param, dec->logits);
    LWS_TRY(lws_cmd_end(c));

    /* The prefill forward leaves each layer's keys (after QK-norm and RoPE
     * at position t, since row 0 of the batch has t % seq = t) and values in
     * m->acts, token-major like the caches: its first rows are the caches'. */
    uint32_t rows = m->seq < dec->max_seq ? m->seq : dec->max_seq;
    LWS_TRY(lws_cmd_begin(m->ctx, 1, &dec->cmd_prefill_kv));
    c = dec->cmd_prefill_kv;
    for (uint32_t i = 0; i < L; i++) {
        uint64_t elems = (uint64_t)rows * cfg->layers[i].kv_heads * cfg->model.head_dim;
        take_rows(c, dec->k_cache[i], m->acts[i].k, elems);
        take_rows(c, dec->v_cache[i], m->acts[i].v, elems);
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
    lws_mem_free(&dec->mem);
    free(dec);
}

uint32_t lws_decoder_max_seq(const lws_decoder *dec) {
    return dec->max_seq;
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
        VkDeviceSize row = (VkDeviceSize)d * lws_dtype_bytes(m->final_x.dtype);
        take_rows(last_row, dec->blk.x, lws_buffer_slice(m->final_x, (forward - 1) * row, row), d);
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
