/* The model on the device: memory plan, allocation, and running a step. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

/* After allocation: the per-tensor views into the blocks, the batch views,
 * the optimizer's table of addresses, and zeroed gradients and moments. */
static lws_status bind_buffers(lws_model *m) {
    lws_context *ctx = m->ctx;
    uint64_t n = m->tokens;
    char name[128];
    for (uint32_t i = 0; i < m->n_params; i++) {
        lws_param *p = &m->params[i];
        p->param = lws_buffer_slice(m->param_block, p->offset * 4, p->count * 4);
        lws_buffer_name(ctx, p->param, p->name);
        p->mm = p->param;
        if (m->act_dtype != LWS_F32) {
            p->mm = lws_buffer_slice(m->param16_block, p->offset * 2, p->count * 2);
            snprintf(name, sizeof name, "%s (%s)", p->name, lws_dtype_name(m->act_dtype));
            lws_buffer_name(ctx, p->mm, name);
        }
        if (!m->training) continue;
        p->grad = lws_buffer_slice(m->grad_block, p->offset * 4, p->count * 4);
        if (m->opt_lo == 0 && m->opt_hi == m->n_floats) { /* a sharded model's rows cut them */
            p->m = lws_buffer_slice(m->m_block, p->offset * 4, p->count * 4);
            p->v = lws_buffer_slice(m->v_block, p->offset * 4, p->count * 4);
        }
        snprintf(name, sizeof name, "grad %s", p->name);
        lws_buffer_name(ctx, p->grad, name);
    }
    m->inputs = lws_buffer_slice(m->io, 0, n * 4);
    m->targets = lws_buffer_slice(m->io, m->targets_offset, n * 4);
    m->embed_out = m->acts[0].x;
    m->host_io = calloc(1, m->targets_offset + n * 4);
    m->host_losses = calloc(n, sizeof *m->host_losses);
    if (!m->host_io || !m->host_losses)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for the batch");
    if (!m->training) return LWS_OK;

    /* The optimizer's table: one row per tensor, chunk offsets running. */
    lws_optim_entry *table = calloc(m->optim_entries, sizeof *table);
    if (!table) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint32_t chunks;
    lws_model_optim_rows(m, table, &chunks);
    lws_status s = lws_upload(ctx, m->optim_table, table, m->optim_entries * sizeof *table);
    free(table);
    LWS_TRY(s);
    LWS_TRY(lws_fill(ctx, m->grad_block, 0));
    LWS_TRY(lws_fill(ctx, m->m_block, 0));
    LWS_TRY(lws_fill(ctx, m->v_block, 0));
    /* fp16: the loss reads the scale from the hyperparameters from the first
     * step on (model/record.c); it is set here and after every update. */
    if (m->act_dtype == LWS_F16) {
        m->scaler.dynamic = 1;
        m->loss_scale = lws_buffer_slice(m->hyper, offsetof(lws_optim_hyper, loss_scale), 4);
        m->loss_scale.dtype = LWS_F32; /* one float of the (u32-typed) hyperparameters */
        return lws_model_set_loss_scale(m, m->cfg.train.loss_scale, 0);
    }
    return LWS_OK;
}

lws_loss_scale lws_model_loss_scale(const lws_model *m) {
    return m->scaler;
}

/* Sets the scale on the host and, with upload, in the hyper buffer the loss
 * reads; without, the device copy is marked stale (loss_scale_stale) and
 * written before the next submission that reads it. */
static lws_status store_loss_scale(lws_model *m, double scale, uint32_t good_steps, int upload) {
    int exponent = 0;
    if (!m->scaler.dynamic)
        return lws_fail(LWS_ERR_INVALID,
                        "%s: a loss scale is for fp16 training (train.precision "
                        "is \"%s\"%s)",
                        m->cfg.name, m->cfg.train.precision,
                        m->training ? "" : ", and this model is for inference");
    if (!(scale >= 1 && scale <= LWS_LOSS_SCALE_MAX) || frexp(scale, &exponent) != 0.5)
        return lws_fail(LWS_ERR_INVALID, "loss scale %g: it must be a power of two from 1 to 2^24",
                        scale);
    m->scaler.scale = scale;
    m->scaler.good_steps = good_steps;
    m->loss_scale_stale = !upload;
    if (!upload) return LWS_OK;
    float value = (float)scale;
    return lws_upload(m->ctx, m->loss_scale, &value, sizeof value);
}

lws_status lws_model_set_loss_scale(lws_model *m, double scale, uint32_t good_steps) {
    return store_loss_scale(m, scale, good_steps, 1);
}

lws_status lws_model_update_loss_scale(lws_model *m, double grad_norm, int upload) {
    lws_loss_scale *s = &m->scaler;
    s->skipped = !isfinite(grad_norm);
    if (!s->dynamic) return LWS_OK;
    if (s->skipped) {
        if (s->scale <= 1)
            return lws_fail(LWS_ERR_NUMERIC,
                            "the gradients overflow fp16 at a loss scale of 1 (the gradient norm "
                            "is %g): train in bf16 or fp32 (train.precision)",
                            grad_norm);
        return store_loss_scale(m, s->scale / 2, 0, upload);
    }
    if (++s->good_steps < LWS_LOSS_SCALE_GROWTH_STEPS || s->scale >= LWS_LOSS_SCALE_MAX)
        return LWS_OK;
    return store_loss_scale(m, s->scale * 2, 0, upload);
}

lws_status lws_model_skeleton(const lws_config *cfg, uint32_t batch, uint32_t seq, int training,
                              lws_model **out) {
    *out = NULL;
    if (batch == 0 || seq == 0)
        return lws_fail(LWS_ERR_INVALID, "micro-batch %u x sequence %u: both must be positive",
                        batch, seq);
    uint64_t tokens = (uint64_t)batch * seq;
    if (tokens > 0x7FFFFFFFull)
        return lws_fail(LWS_ERR_INVALID,
                        "micro-batch %u x sequence %u = %llu tokens: at most 2^31 - 1 tokens "
                        "per micro-batch",
                        batch, seq, (unsigned long long)tokens);
    lws_model *m = calloc(1, sizeof *m);
    if (!m) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    m->cfg = *cfg;
    m->batch = batch;
    m->seq = seq;
    m->tokens = (uint32_t)tokens;
    m->training = training;
    uint32_t L = cfg->model.n_layers;
    m->params = calloc(lws_layout_count(cfg), sizeof *m->params);
    m->layers = calloc(L, sizeof *m->layers);
    m->acts = calloc(L, sizeof *m->acts);
    m->cmd_fwd = calloc(L, sizeof *m->cmd_fwd);
    m->cmd_bwd = calloc(L, sizeof *m->cmd_bwd);
    m->step_cmds = calloc(2 * L + 4, sizeof *m->step_cmds);
    m->eval_cmds = calloc(L + 2, sizeof *m->eval_cmds);
    m->logits_cmds = calloc(L + 2, sizeof *m->logits_cmds);
    m->region_fwd = calloc(L, sizeof *m->region_fwd);
    m->region_bwd = calloc(L, sizeof *m->region_bwd);
    if (!m->params || !m->layers || !m->acts || !m->cmd_fwd || !m->cmd_bwd || !m->step_cmds ||
        !m->eval_cmds || !m->logits_cmds || !m->region_fwd || !m->region_bwd) {
        lws_model_destroy(m);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    m->n_floats = lws_layout_params(cfg, m->params, m->layers, &m->n_params);
    m->opt_lo = 0;
    m->opt_hi = m->n_floats;
    m->act_dtype = lws_model_activation_dtype(cfg);
    m->embed = &m->params[0];
    m->final_norm = lws_model_find(m, "final_norm.weight");
    m->lm_head = cfg->model.tied_embeddings ? m->embed : lws_model_find(m, "lm_head.weight");
    m->scaler.scale = 1;
    *out = m;
    return LWS_OK;
}

lws_status lws_model_check_device(const lws_config *cfg, const lws_device_caps *caps) {
    if (lws_model_activation_dtype(cfg) == LWS_F32 || caps->storage_buffer_16bit) return LWS_OK;
    return lws_fail(LWS_ERR_INVALID,
                    "%s: train.precision \"%s\" stores activations in 16 bits, which needs the "
                    "Vulkan feature storageBuffer16BitAccess; %s does not have it: use "
                    "\"precision\": \"fp32\" (or --set train.precision=fp32)",
                    cfg->path, cfg->train.precision, caps->name);
}

lws_status lws_model_create(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                            int training, lws_model **out) {
    return lws_model_create_ex(ctx, cfg, batch, seq, training, 0, out);
}

static lws_status create(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                         int training, uint32_t flags, const lws_model_shard *shard,
                         lws_model **out) {
    *out = NULL;
    lws_model *m = NULL;
    LWS_TRY(lws_model_skeleton(cfg, batch, seq, training, &m));
    m->ctx = ctx;
    lws_status s = lws_model_check_device(cfg, lws_context_caps(ctx));
    if (s == LWS_OK) s = lws_model_set_shard(m, shard);
    if (s == LWS_OK) s = lws_model_describe(m, &m->mem);
    lws_memory_plan plan;
    char why[768];
    if (s == LWS_OK) {
        lws_mem_plan(&m->mem, &plan);
        if (!lws_memory_plan_fits(&plan, lws_context_caps(ctx), why, sizeof why))
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY,
                         "%s at micro-batch %u x %u does not fit: %s; use a smaller micro_batch "
                         "or seq_len (`lws train CONFIG --dry-run` prints the plan)",
                         cfg->name, batch, seq, why);
    }
    uint32_t L = cfg->model.n_layers;
    if (s == LWS_OK) s = lws_timer_create(ctx, 2 * L + 8, &m->timer);
    /* about 25 ops per layer forward and backward, plus head and optimizer */
    if (s == LWS_OK && (flags & LWS_MODEL_PROFILE_OPS))
        s = lws_timer_create(ctx, 64 * L + 64, &m->op_timer);
    if (s == LWS_OK) s = lws_mem_allocate(ctx, &m->mem);
    if (s == LWS_OK) s = bind_buffers(m);
    if (s == LWS_OK) s = lws_model_init_weights(m, cfg->train.seed);
    if (s == LWS_OK) s = lws_model_record(m);
    if (s != LWS_OK) {
        lws_model_destroy(m);
        return s;
    }
    *out = m;
    return LWS_OK;
}

lws_status lws_model_create_ex(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                               uint32_t seq, int training, uint32_t flags, lws_model **out) {
    return create(ctx, cfg, batch, seq, training, flags, NULL, out);
}

lws_status lws_model_create_shard(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                                  uint32_t seq, uint32_t flags, const lws_model_shard *shard,
                                  lws_model **out) {
    return create(ctx, cfg, batch, seq, 1, flags, shard, out);
}

void lws_model_destroy(lws_model *m) {
    if (!m) return;
    uint32_t L = m->cfg.model.n_layers;
    lws_cmd_destroy(m->cmd_embed);
    lws_cmd_destroy(m->cmd_head);
    lws_cmd_destroy(m->cmd_eval_head);
    lws_cmd_destroy(m->cmd_final_norm);
    for (uint32_t i = 0; m->cmd_logits && i < m->n_logits_chunks; i++)
        lws_cmd_destroy(m->cmd_logits[i]);
    free(m->cmd_logits);
    lws_cmd_destroy(m->cmd_embed_bwd);
    lws_cmd_destroy(m->cmd_optim);
    lws_cmd_destroy(m->cmd_shard_norm);
    lws_cmd_destroy(m->cmd_shard_step);
    lws_model_destroy_whole_step(m);
    for (uint32_t i = 0; i < L; i++) {
        if (m->cmd_fwd) lws_cmd_destroy(m->cmd_fwd[i]);
        if (m->cmd_bwd) lws_cmd_destroy(m->cmd_bwd[i]);
    }
    lws_timer_destroy(m->timer);
    lws_timer_destroy(m->op_timer);
    free(m->timing_ms);
    free(m->host_io);
    free(m->host_losses);
    free(m->params);
    free(m->layers);
    free(m->acts);
    free(m->cmd_fwd);
    free(m->cmd_bwd);
    free(m->step_cmds);
    free(m->eval_cmds);
    free(m->logits_cmds);
    free(m->region_fwd);
    free(m->region_bwd);
    lws_mem_free(&m->mem);
    free(m);
}

const lws_config *lws_model_get_config(const lws_model *m) {
    return &m->cfg;
}
lws_context *lws_model_context(const lws_model *m) {
    return m->ctx;
}
uint32_t lws_model_batch(const lws_model *m) {
    return m->batch;
}
uint32_t lws_model_seq(const lws_model *m) {
    return m->seq;
}
uint64_t lws_model_floats(const lws_model *m) {
    return m->n_floats;
}
lws_timer *lws_model_op_timer(const lws_model *m) {
    return m->op_timer;
}

void lws_model_host_batch(lws_model *m, uint32_t **inputs, uint32_t **targets) {
    *inputs = (uint32_t *)m->host_io;
    *targets = (uint32_t *)(m->host_io + m->targets_offset);
}

lws_param *lws_model_find(lws_model *m, const char *name) {
    for (uint32_t i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

lws_status lws_model_init_weights(lws_model *m, uint64_t seed) {
    float *host = malloc(m->n_floats * sizeof *host);
    if (!host) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for the weights");
    lws_init_host_weights(m, seed, host);
    lws_status s = lws_upload(m->ctx, m->param_block, host, m->n_floats * sizeof *host);
    free(host);
    return s == LWS_OK ? lws_model_refresh_weights16(m) : s;
}

lws_status lws_model_check_tokens(const lws_model *m, const uint32_t *inputs,
                                  const uint32_t *targets, const char *batch) {
    uint32_t V = m->cfg.model.vocab_size;
    for (uint32_t i = 0; i < m->tokens; i++)
        if (inputs[i] >= V || (targets && targets[i] >= V))
            return lws_fail(LWS_ERR_DATA,
                            "token %u at position %u of %s is outside the vocabulary (%u)",
                            inputs[i] >= V ? inputs[i] : targets[i], i, batch, V);
    return LWS_OK;
}

lws_status lws_model_upload_batch(lws_model *m, const uint32_t *inputs, const uint32_t *targets) {
    LWS_TRY(lws_model_check_tokens(m, inputs, targets, "the batch"));
    /* a one-submission step changed the scale on the host only */
    if (m->loss_scale_stale)
        LWS_TRY(lws_model_set_loss_scale(m, m->scaler.scale, m->scaler.good_steps));
    uint8_t *io = m->host_io;
    if ((const uint8_t *)inputs != io) memcpy(io, inputs, (size_t)m->tokens * 4);
    if (!targets)
        memset(io + m->targets_offset, 0, (size_t)m->tokens * 4);
    else if ((const uint8_t *)targets != io + m->targets_offset)
        memcpy(io + m->targets_offset, targets, (size_t)m->tokens * 4);
    return lws_upload(m->ctx, m->io, io, m->targets_offset + (size_t)m->tokens * 4);
}

/* Sums the per-token losses in a fixed order (double), so the reported loss
 * is as deterministic as the kernels. */
lws_status lws_model_sum_losses(lws_model *m, uint32_t count, double *sum) {
    float *losses = m->host_losses;
    LWS_TRY(lws_download(m->ctx, m->losses, losses, (size_t)m->tokens * sizeof *losses));
    *sum = lws_model_loss_total(losses, count);
    return LWS_OK;
}

double lws_model_loss_total(const float *losses, uint32_t count) {
    double total = 0;
    for (uint32_t i = 0; i < count; i++) total += losses[i];
    return total;
}

lws_status lws_model_forward_backward(lws_model *m, const uint32_t *inputs, const uint32_t *targets,
                                      double *loss) {
    if (!m->training) return lws_fail(LWS_ERR_INVALID, "this model was built for inference only");
    LWS_TRY(lws_model_upload_batch(m, inputs, targets));
    LWS_TRY(lws_submit(m->ctx, m->step_cmds, m->n_step_cmds));
    double sum = 0;
    LWS_TRY(lws_model_sum_losses(m, m->tokens, &sum));
    *loss = sum / m->tokens;
    return LWS_OK;
}

lws_status lws_model_eval_rows(lws_model *m, const uint32_t *inputs, const uint32_t *targets,
                               uint32_t rows, double *loss_sum) {
    if (rows > m->batch) rows = m->batch;
    LWS_TRY(lws_model_upload_batch(m, inputs, targets));
    LWS_TRY(lws_submit(m->ctx, m->eval_cmds, m->n_eval_cmds));
    return lws_model_sum_losses(m, rows * m->seq, loss_sum);
}

/* The forward to the final norm, then the logits chunk by chunk (the head's
 * chunks, ops/head_loss.c) into host memory. */
lws_status lws_model_logits(lws_model *m, const uint32_t *inputs, float *logits) {
    if (!m->cmd_logits) LWS_TRY(lws_model_record_logits(m));
    LWS_TRY(lws_model_upload_batch(m, inputs, NULL));
    LWS_TRY(lws_submit(m->ctx, m->logits_cmds, m->n_eval_cmds));
    size_t V = m->cfg.model.vocab_size;
    for (uint32_t i = 0; i < m->n_logits_chunks; i++) {
        size_t r0 = (size_t)i * m->head_chunk;
        size_t n = m->tokens - r0 < m->head_chunk ? m->tokens - r0 : m->head_chunk;
        LWS_TRY(lws_submit(m->ctx, &m->cmd_logits[i], 1));
        LWS_TRY(lws_download(m->ctx, m->head_logits, logits + r0 * V, n * V * sizeof *logits));
    }
    return LWS_OK;
}

lws_optim_hyper lws_model_hyper(const lws_model *m, double lr, uint64_t step) {
    const lws_train_config *t = &m->cfg.train;
    lws_optim_hyper h = {0};
    h.lr = (float)lr;
    h.beta1 = (float)t->beta1;
    h.beta2 = (float)t->beta2;
    h.eps = (float)t->eps;
    h.weight_decay = (float)t->weight_decay;
    h.bias_correction1 = (float)(1.0 - pow(t->beta1, (double)step));
    h.bias_correction2 = (float)(1.0 - pow(t->beta2, (double)step));
    h.max_grad_norm = (float)t->grad_clip;
    h.loss_scale = m->scaler.dynamic ? (float)m->scaler.scale : 1.0f;
    return h;
}

lws_status lws_model_optimizer_step(lws_model *m, double lr, uint64_t step, double *grad_norm,
                                    double *nonfinite) {
    lws_optim_hyper h = lws_model_hyper(m, lr, step);
    LWS_TRY(lws_upload(m->ctx, m->hyper, &h, sizeof h));
    LWS_TRY(lws_submit(m->ctx, &m->cmd_optim, 1));
    LWS_TRY(lws_download(m->ctx, m->hyper, &h, sizeof h));
    *grad_norm = h.grad_norm;
    *nonfinite = h.nonfinite;
    return lws_model_update_loss_scale(m, h.grad_norm, 1);
}

static void add_counts(lws_record_counts *sum, lws_cmd *const *cmds, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        if (!cmds[i]) continue;
        uint32_t d, b;
        lws_cmd_counts(cmds[i], &d, &b);
        sum->buffers++;
        sum->dispatches += d;
        sum->barriers += b;
    }
}

void lws_model_record_counts(const lws_model *m, lws_record_counts *micro_batch,
                             lws_record_counts *optimizer) {
    *micro_batch = (lws_record_counts){0};
    *optimizer = (lws_record_counts){0};
    if (!m->training) return;
    add_counts(micro_batch, m->step_cmds, m->n_step_cmds);
    /* one optimizer buffer, or a sharded model's two */
    lws_cmd *const optim[3] = {m->cmd_optim, m->cmd_shard_norm, m->cmd_shard_step};
    add_counts(optimizer, optim, 3);
}

lws_status lws_model_read_timing(lws_model *m, lws_timing *t) {
    /* The regions are fixed once the model is recorded: one buffer serves
     * every step. */
    uint32_t count = lws_timer_count(m->timer);
    if (!m->timing_ms && !(m->timing_ms = calloc(count ? count : 1, sizeof *m->timing_ms)))
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    double *ms = m->timing_ms;
    lws_status s = lws_timer_read(m->ctx, m->timer, ms, count);
#define AT(r) ((r) >= 0 && (uint32_t)(r) < count ? ms[r] : 0.0)
    if (s == LWS_OK) {
        for (uint32_t i = 0; i < m->cfg.model.n_layers; i++) {
            t->layer_fwd_ms[i] = AT(m->region_fwd[i]);
            t->layer_bwd_ms[i] = AT(m->region_bwd[i]);
        }
        t->embed_ms = AT(m->region_embed);
        t->head_ms = AT(m->region_head);
        t->embed_bwd_ms = AT(m->region_embed_bwd);
        t->optim_ms = AT(m->region_optim);
    }
#undef AT
    return s;
}

static lws_buffer block_of(lws_model *m, lws_block_kind kind) {
    switch (kind) {
    case LWS_BLOCK_GRADS:
        return m->grad_block;
    case LWS_BLOCK_ADAM_M:
        return m->m_block;
    case LWS_BLOCK_ADAM_V:
        return m->v_block;
    default:
        return m->param_block;
    }
}

/* The floats of a block the model holds: a sharded model's moments hold
 * [opt_lo, opt_hi) only. */
static void block_span(const lws_model *m, lws_block_kind kind, uint64_t *lo, uint64_t *hi) {
    int moments = kind == LWS_BLOCK_ADAM_M || kind == LWS_BLOCK_ADAM_V;
    *lo = moments ? m->opt_lo : 0;
    *hi = moments ? m->opt_hi : m->n_floats;
}

/* Floats [first, first + count) of a block as a device range. */
static lws_status block_range(lws_model *m, lws_block_kind kind, uint64_t first, uint64_t count,
                              lws_buffer *out) {
    if (kind != LWS_BLOCK_PARAMS && !m->training)
        return lws_fail(LWS_ERR_INVALID, "an inference model has no gradients or moments");
    uint64_t lo, hi;
    block_span(m, kind, &lo, &hi);
    if (first < lo || first > hi || count > hi - first)
        return lws_fail(LWS_ERR_INVALID,
                        "floats %llu .. %llu of a block: this model holds %llu .. %llu of it",
                        (unsigned long long)first, (unsigned long long)(first + count),
                        (unsigned long long)lo, (unsigned long long)hi);
    *out = lws_buffer_slice(block_of(m, kind), (first - lo) * 4, count * 4);
    return LWS_OK;
}

lws_status lws_model_download_range(lws_model *m, lws_block_kind kind, uint64_t first,
                                    uint64_t count, float *host) {
    lws_buffer b;
    LWS_TRY(block_range(m, kind, first, count, &b));
    return lws_download(m->ctx, b, host, count * sizeof *host);
}

lws_status lws_model_upload_range(lws_model *m, lws_block_kind kind, uint64_t first, uint64_t count,
                                  const float *host) {
    lws_buffer b;
    LWS_TRY(block_range(m, kind, first, count, &b));
    LWS_TRY(lws_upload(m->ctx, b, host, count * sizeof *host));
    /* the matmuls of bf16 / fp16 read the 16-bit copy of what was written */
    return kind == LWS_BLOCK_PARAMS ? lws_model_refresh_weights16(m) : LWS_OK;
}

/* The moments of a sharded model: its slice of the host array. */
lws_status lws_model_download(lws_model *m, lws_block_kind kind, float *host) {
    uint64_t lo, hi;
    block_span(m, kind, &lo, &hi);
    return lws_model_download_range(m, kind, lo, hi - lo, host + lo);
}

lws_status lws_model_upload(lws_model *m, lws_block_kind kind, const float *host) {
    uint64_t lo, hi;
    block_span(m, kind, &lo, &hi);
    return lws_model_upload_range(m, kind, lo, hi - lo, host + lo);
}
