/* The model on the device: memory plan, allocation, and running a step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

typedef struct widths {
    uint32_t q_max, kv_max, f_max, qh_max;
} widths;

static widths max_widths(const lws_config *cfg) {
    widths w = {0, 0, 0, 0};
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        uint32_t q = s->q_heads * cfg->model.head_dim, kv = s->kv_heads * cfg->model.head_dim;
        if (q > w.q_max) w.q_max = q;
        if (kv > w.kv_max) w.kv_max = kv;
        if (s->ffn_dim > w.f_max) w.f_max = s->ffn_dim;
        if (s->q_heads > w.qh_max) w.qh_max = s->q_heads;
    }
    return w;
}

/* Floats of one layer's saved activations for N tokens (see lws_layer_acts). */
static uint64_t layer_act_floats(const lws_config *cfg, uint32_t i, uint64_t n, int training) {
    const lws_layer_shape *s = &cfg->layers[i];
    uint64_t d = cfg->model.d_model, hd = cfg->model.head_dim;
    uint64_t q = s->q_heads * hd, kv = s->kv_heads * hd, f = s->ffn_dim;
    int pre = cfg->model.block == LWS_BLOCK_PRE_NORM, qk = cfg->model.qk_norm;
    uint64_t total = n * d                     /* x */
                     + (pre ? n * d : 0)       /* xn */
                     + (qk ? n * (q + kv) : 0) /* q_raw, k_raw */
                     + n * (q + 2 * kv)        /* q, k, v */
                     + (qk ? 2 * n : 0)        /* q_rstd, k_rstd */
                     + n * q                   /* att */
                     + n * s->q_heads          /* lse */
                     + (pre ? 0 : n * d)       /* attn_out */
                     + n                       /* attn_rstd */
                     + n * d                   /* h */
                     + (pre ? n * d : 0)       /* hn */
                     + 3 * n * f               /* gate, up, act */
                     + (pre ? 0 : n * d)       /* ffn_out */
                     + n;                      /* ffn_rstd */
    (void)training;
    return total;
}

/* Every allocation is rounded up to 256 bytes by the arena. */
static uint64_t padded(uint64_t floats) {
    return (floats * 4 + 255) / 256 * 256;
}

lws_memory_plan lws_model_plan(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                               uint32_t seq, int training) {
    lws_memory_plan p = {0};
    lws_param *list = calloc(lws_layout_count(cfg), sizeof *list);
    lws_layer_tensors *layers = calloc(cfg->model.n_layers, sizeof *layers);
    uint32_t count = 0;
    uint64_t floats = list && layers ? lws_layout_params(cfg, list, layers, &count) : 0;
    free(list);
    free(layers);
    uint64_t n = (uint64_t)batch * seq, d = cfg->model.d_model, v = cfg->model.vocab_size;
    widths w = max_widths(cfg);
    p.params = padded(floats);
    if (training) {
        p.grads = padded(floats);
        p.optimizer = 2 * padded(floats);
    }
    for (uint32_t i = 0; i < cfg->model.n_layers; i++)
        p.activations += padded(layer_act_floats(cfg, i, n, training));
    p.activations += padded(2 * n) + 3 * padded(n * d) + 2 * padded(n) + padded(n * v);
    uint32_t norm_cols = w.q_max > d ? w.q_max : (uint32_t)d;
    p.scratch = padded(lws_cross_entropy_scratch_floats(ctx, (uint32_t)n, (uint32_t)v)) +
                padded(lws_rmsnorm_scratch_floats(ctx, (uint32_t)n, norm_cols));
    if (training) {
        p.scratch += 2 * padded(n * d) + 4 * padded(n * w.q_max) + 3 * padded(n * w.kv_max) +
                     3 * padded(n * w.f_max) + padded(n * w.qh_max);
        uint64_t chunks = floats / LWS_OPTIM_CHUNK + lws_layout_count(cfg) + 1;
        p.scratch += padded(16) + padded(lws_layout_count(cfg) * 12) + padded(chunks);
    }
    p.total = p.params + p.grads + p.optimizer + p.activations + p.scratch;
    return p;
}

static void print_bytes(FILE *out, const char *what, uint64_t bytes) {
    if (bytes >= (1ull << 30))
        fprintf(out, "  %-12s %10.2f GiB\n", what, bytes / 1073741824.0);
    else
        fprintf(out, "  %-12s %10.2f MiB\n", what, bytes / 1048576.0);
}

void lws_memory_plan_print(const lws_memory_plan *p, FILE *out) {
    fprintf(out, "memory plan:\n");
    print_bytes(out, "parameters", p->params);
    print_bytes(out, "gradients", p->grads);
    print_bytes(out, "optimizer", p->optimizer);
    print_bytes(out, "activations", p->activations);
    print_bytes(out, "scratch", p->scratch);
    print_bytes(out, "total", p->total);
}

static lws_status alloc_floats(lws_context *ctx, uint64_t floats, lws_buffer *out) {
    return lws_alloc(ctx, floats * 4, out);
}

static lws_status allocate(lws_model *m) {
    lws_context *ctx = m->ctx;
    const lws_config *cfg = &m->cfg;
    uint64_t n = m->tokens, d = cfg->model.d_model, v = cfg->model.vocab_size;
    uint64_t hd = cfg->model.head_dim;
    int pre = cfg->model.block == LWS_BLOCK_PRE_NORM, qk = cfg->model.qk_norm;

    LWS_TRY(alloc_floats(ctx, m->n_floats, &m->param_block));
    if (m->training) {
        LWS_TRY(alloc_floats(ctx, m->n_floats, &m->grad_block));
        LWS_TRY(alloc_floats(ctx, m->n_floats, &m->m_block));
        LWS_TRY(alloc_floats(ctx, m->n_floats, &m->v_block));
    }
    for (uint32_t i = 0; i < m->n_params; i++) {
        lws_param *p = &m->params[i];
        p->param = lws_buffer_slice(m->param_block, p->offset * 4, p->count * 4);
        if (m->training) {
            p->grad = lws_buffer_slice(m->grad_block, p->offset * 4, p->count * 4);
            p->m = lws_buffer_slice(m->m_block, p->offset * 4, p->count * 4);
            p->v = lws_buffer_slice(m->v_block, p->offset * 4, p->count * 4);
        }
    }

    /* inputs and targets share one buffer so one upload carries both */
    m->targets_offset = (n * 4 + 255) / 256 * 256;
    m->host_io = calloc(1, m->targets_offset + n * 4);
    m->host_losses = calloc(n, sizeof *m->host_losses);
    if (!m->host_io || !m->host_losses)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for the batch");
    LWS_TRY(lws_alloc(ctx, m->targets_offset + n * 4, &m->io));
    m->inputs = lws_buffer_slice(m->io, 0, n * 4);
    m->targets = lws_buffer_slice(m->io, m->targets_offset, n * 4);

    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        uint64_t q = s->q_heads * hd, kv = s->kv_heads * hd, f = s->ffn_dim;
        lws_layer_acts *a = &m->acts[i];
        LWS_TRY(alloc_floats(ctx, n * d, &a->x));
        if (pre) LWS_TRY(alloc_floats(ctx, n * d, &a->xn));
        LWS_TRY(alloc_floats(ctx, n * q, &a->q));
        LWS_TRY(alloc_floats(ctx, n * kv, &a->k));
        LWS_TRY(alloc_floats(ctx, n * kv, &a->v));
        if (qk) {
            LWS_TRY(alloc_floats(ctx, n * q, &a->q_raw));
            LWS_TRY(alloc_floats(ctx, n * kv, &a->k_raw));
            LWS_TRY(alloc_floats(ctx, n, &a->q_rstd));
            LWS_TRY(alloc_floats(ctx, n, &a->k_rstd));
        } else {
            a->q_raw = a->q; /* without QK-norm RoPE rotates the projection in place */
            a->k_raw = a->k;
        }
        LWS_TRY(alloc_floats(ctx, n * q, &a->att));
        LWS_TRY(alloc_floats(ctx, n * s->q_heads, &a->lse));
        if (!pre) LWS_TRY(alloc_floats(ctx, n * d, &a->attn_out));
        LWS_TRY(alloc_floats(ctx, n, &a->attn_rstd));
        LWS_TRY(alloc_floats(ctx, n * d, &a->h));
        if (pre) LWS_TRY(alloc_floats(ctx, n * d, &a->hn));
        LWS_TRY(alloc_floats(ctx, n * f, &a->gate));
        LWS_TRY(alloc_floats(ctx, n * f, &a->up));
        LWS_TRY(alloc_floats(ctx, n * f, &a->act));
        if (!pre) LWS_TRY(alloc_floats(ctx, n * d, &a->ffn_out));
        LWS_TRY(alloc_floats(ctx, n, &a->ffn_rstd));
    }
    m->embed_out = m->acts[0].x;
    LWS_TRY(alloc_floats(ctx, n * d, &m->final_x));
    LWS_TRY(alloc_floats(ctx, n * d, &m->final_xn));
    LWS_TRY(alloc_floats(ctx, n, &m->final_rstd));
    LWS_TRY(alloc_floats(ctx, n * v, &m->logits));
    LWS_TRY(alloc_floats(ctx, n, &m->losses));
    LWS_TRY(alloc_floats(ctx, lws_cross_entropy_scratch_floats(ctx, (uint32_t)n, (uint32_t)v),
                         &m->ce_scratch));

    widths w = max_widths(cfg);
    uint32_t norm_cols = w.q_max > d ? w.q_max : (uint32_t)d;
    lws_grad_scratch *g = &m->gs;
    LWS_TRY(alloc_floats(ctx, lws_rmsnorm_scratch_floats(ctx, (uint32_t)n, norm_cols),
                         &g->norm_scratch));
    LWS_TRY(alloc_floats(ctx, n * d, &g->dnorm_in)); /* also the head's dxn when eval-only */
    if (m->training) {
        LWS_TRY(alloc_floats(ctx, n * d, &g->dx));
        LWS_TRY(alloc_floats(ctx, n * w.q_max, &g->dq));
        LWS_TRY(alloc_floats(ctx, n * w.kv_max, &g->dk));
        LWS_TRY(alloc_floats(ctx, n * w.kv_max, &g->dv));
        LWS_TRY(alloc_floats(ctx, n * w.q_max, &g->dq_raw));
        LWS_TRY(alloc_floats(ctx, n * w.kv_max, &g->dk_raw));
        LWS_TRY(alloc_floats(ctx, n * w.q_max, &g->datt));
        LWS_TRY(alloc_floats(ctx, n * w.f_max, &g->dgate));
        LWS_TRY(alloc_floats(ctx, n * w.f_max, &g->dup));
        LWS_TRY(alloc_floats(ctx, n * w.f_max, &g->dact));
        LWS_TRY(alloc_floats(ctx, n * w.qh_max, &g->delta));

        /* The optimizer's table: one row per tensor, chunk offsets running. */
        lws_optim_entry *table = calloc(m->n_params, sizeof *table);
        if (!table) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
        uint32_t chunks = 0;
        for (uint32_t i = 0; i < m->n_params; i++) {
            lws_param *p = &m->params[i];
            table[i] =
                (lws_optim_entry){p->param.addr,      p->grad.addr,       p->m.addr, p->v.addr,
                                  (uint32_t)p->count, (uint32_t)p->decay, chunks,    0};
            chunks += (uint32_t)((p->count + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK);
        }
        m->optim_chunks = chunks;
        lws_status s = lws_alloc(ctx, m->n_params * sizeof *table, &m->optim_table);
        if (s == LWS_OK) s = lws_upload(ctx, m->optim_table, table, m->n_params * sizeof *table);
        free(table);
        LWS_TRY(s);
        LWS_TRY(lws_alloc(ctx, sizeof(lws_optim_hyper), &m->hyper));
        LWS_TRY(alloc_floats(ctx, chunks, &m->norm_scratch));
        LWS_TRY(lws_fill(ctx, m->grad_block, 0));
        LWS_TRY(lws_fill(ctx, m->m_block, 0));
        LWS_TRY(lws_fill(ctx, m->v_block, 0));
    }
    return LWS_OK;
}

lws_status lws_model_create(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                            int training, lws_model **out) {
    return lws_model_create_ex(ctx, cfg, batch, seq, training, 0, out);
}

lws_status lws_model_create_ex(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                               uint32_t seq, int training, uint32_t flags, lws_model **out) {
    *out = NULL;
    if (batch == 0 || seq == 0)
        return lws_fail(LWS_ERR_INVALID, "micro-batch %u x sequence %u: both must be positive",
                        batch, seq);
    uint64_t tokens = (uint64_t)batch * seq;
    if (tokens * cfg->model.vocab_size > 0xFFFFFFFFull)
        return lws_fail(LWS_ERR_INVALID,
                        "micro-batch %u x sequence %u x vocabulary %u logits exceed 2^32 "
                        "elements: use a smaller micro-batch",
                        batch, seq, cfg->model.vocab_size);
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_memory_plan plan = lws_model_plan(ctx, cfg, batch, seq, training);
    if (plan.total > caps->device_local_bytes) {
        lws_memory_plan_print(&plan, stderr);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY,
                        "the model needs %.2f GiB (plan above) but %s has %.2f GiB of device "
                        "memory: use a smaller micro_batch or seq_len",
                        plan.total / 1073741824.0, caps->name,
                        caps->device_local_bytes / 1073741824.0);
    }
    lws_model *m = calloc(1, sizeof *m);
    if (!m) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    m->ctx = ctx;
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
    m->embed = &m->params[0];
    m->final_norm = lws_model_find(m, "final_norm.weight");
    m->lm_head = cfg->model.tied_embeddings ? m->embed : lws_model_find(m, "lm_head.weight");

    lws_status s = lws_timer_create(ctx, 2 * L + 8, &m->timer);
    /* about 25 ops per layer forward and backward, plus head and optimizer */
    if (s == LWS_OK && (flags & LWS_MODEL_PROFILE_OPS))
        s = lws_timer_create(ctx, 64 * L + 64, &m->op_timer);
    if (s == LWS_OK) s = allocate(m);
    if (s == LWS_OK) s = lws_model_init_weights(m, cfg->train.seed);
    if (s == LWS_OK) s = lws_model_record(m);
    if (s != LWS_OK) {
        lws_model_destroy(m);
        return s;
    }
    *out = m;
    return LWS_OK;
}

void lws_model_destroy(lws_model *m) {
    if (!m) return;
    uint32_t L = m->cfg.model.n_layers;
    lws_cmd_destroy(m->cmd_embed);
    lws_cmd_destroy(m->cmd_head);
    lws_cmd_destroy(m->cmd_eval_head);
    lws_cmd_destroy(m->cmd_logits_head);
    lws_cmd_destroy(m->cmd_embed_bwd);
    lws_cmd_destroy(m->cmd_optim);
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
    free(m);
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
    return s;
}

static lws_status upload_batch(lws_model *m, const uint32_t *inputs, const uint32_t *targets) {
    uint32_t V = m->cfg.model.vocab_size;
    for (uint32_t i = 0; i < m->tokens; i++)
        if (inputs[i] >= V || (targets && targets[i] >= V))
            return lws_fail(LWS_ERR_DATA,
                            "token %u at position %u of the batch is outside the vocabulary (%u)",
                            inputs[i] >= V ? inputs[i] : targets[i], i, V);
    uint8_t *io = m->host_io;
    memcpy(io, inputs, (size_t)m->tokens * 4);
    if (targets)
        memcpy(io + m->targets_offset, targets, (size_t)m->tokens * 4);
    else
        memset(io + m->targets_offset, 0, (size_t)m->tokens * 4);
    return lws_upload(m->ctx, m->io, io, m->targets_offset + (size_t)m->tokens * 4);
}

/* Sums the per-token losses in a fixed order (double), so the reported loss
 * is as deterministic as the kernels. */
static lws_status sum_losses(lws_model *m, uint32_t count, double *sum) {
    float *losses = m->host_losses;
    LWS_TRY(lws_download(m->ctx, m->losses, losses, (size_t)m->tokens * sizeof *losses));
    double total = 0;
    for (uint32_t i = 0; i < count; i++) total += losses[i];
    *sum = total;
    return LWS_OK;
}

lws_status lws_model_forward_backward(lws_model *m, const uint32_t *inputs, const uint32_t *targets,
                                      double *loss) {
    if (!m->training) return lws_fail(LWS_ERR_INVALID, "this model was built for inference only");
    LWS_TRY(upload_batch(m, inputs, targets));
    LWS_TRY(lws_submit(m->ctx, m->step_cmds, m->n_step_cmds));
    double sum = 0;
    LWS_TRY(sum_losses(m, m->tokens, &sum));
    *loss = sum / m->tokens;
    return LWS_OK;
}

lws_status lws_model_eval_rows(lws_model *m, const uint32_t *inputs, const uint32_t *targets,
                               uint32_t rows, double *loss_sum) {
    if (rows > m->batch) rows = m->batch;
    LWS_TRY(upload_batch(m, inputs, targets));
    LWS_TRY(lws_submit(m->ctx, m->eval_cmds, m->n_eval_cmds));
    return sum_losses(m, rows * m->seq, loss_sum);
}

lws_status lws_model_logits(lws_model *m, const uint32_t *inputs, float *logits) {
    LWS_TRY(upload_batch(m, inputs, NULL));
    LWS_TRY(lws_submit(m->ctx, m->logits_cmds, m->n_eval_cmds));
    return lws_download(m->ctx, m->logits, logits,
                        (size_t)m->tokens * m->cfg.model.vocab_size * sizeof *logits);
}

lws_status lws_model_optimizer_step(lws_model *m, double lr, uint64_t step, double *grad_norm) {
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
    LWS_TRY(lws_upload(m->ctx, m->hyper, &h, sizeof h));
    LWS_TRY(lws_submit(m->ctx, &m->cmd_optim, 1));
    LWS_TRY(lws_download(m->ctx, m->hyper, &h, sizeof h));
    *grad_norm = h.grad_norm;
    return LWS_OK;
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

lws_status lws_model_download(lws_model *m, lws_block_kind kind, float *host) {
    if (kind != LWS_BLOCK_PARAMS && !m->training)
        return lws_fail(LWS_ERR_INVALID, "an inference model has no gradients or moments");
    return lws_download(m->ctx, block_of(m, kind), host, m->n_floats * sizeof *host);
}

lws_status lws_model_upload(lws_model *m, lws_block_kind kind, const float *host) {
    if (kind != LWS_BLOCK_PARAMS && !m->training)
        return lws_fail(LWS_ERR_INVALID, "an inference model has no gradients or moments");
    return lws_upload(m->ctx, block_of(m, kind), host, m->n_floats * sizeof *host);
}
