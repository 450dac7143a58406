/* Every device buffer of the model, described once (llm.c's act_sizes in
 * spirit): lws_model_describe lists them, lws_model_plan sums the list, and
 * lws_model_create allocates it. Shapes use N = batch * seq tokens. */
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

lws_dtype lws_model_activation_dtype(const lws_config *cfg) {
    if (strcmp(cfg->train.precision, "bf16") == 0) return LWS_BF16;
    if (strcmp(cfg->train.precision, "fp16") == 0) return LWS_F16;
    return LWS_F32;
}

typedef struct widths {
    uint64_t q_max, kv_max, f_max, qh_max;
} widths;

static widths max_widths(const lws_config *cfg) {
    widths w = {0, 0, 0, 0};
    uint64_t hd = cfg->model.head_dim;
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        if (s->q_heads * hd > w.q_max) w.q_max = s->q_heads * hd;
        if (s->kv_heads * hd > w.kv_max) w.kv_max = s->kv_heads * hd;
        if (s->ffn_dim > w.f_max) w.f_max = s->ffn_dim;
        if (s->q_heads > w.qh_max) w.qh_max = s->q_heads;
    }
    return w;
}

/* One layer's saved activations (lws_layer_acts), at that layer's widths. */
static void describe_layer(lws_model *m, lws_mem_table *t, uint32_t i, lws_dtype act) {
    const lws_config *cfg = &m->cfg;
    const lws_layer_shape *s = &cfg->layers[i];
    uint64_t n = m->tokens, d = cfg->model.d_model, hd = cfg->model.head_dim;
    uint64_t q = s->q_heads * hd, kv = s->kv_heads * hd, f = s->ffn_dim;
    int pre = cfg->model.block == LWS_BLOCK_PRE_NORM, qk = cfg->model.qk_norm;
    lws_layer_acts *a = &m->acts[i];
    const lws_mem_kind A = LWS_MEM_ACTIVATIONS;
    lws_mem_add(t, A, act, n * d, n * d, &a->x, "layers.%u.x", i);
    if (pre) lws_mem_add(t, A, act, n * d, n * d, &a->xn, "layers.%u.xn", i);
    lws_mem_add(t, A, act, n * q, n * q, &a->q, "layers.%u.q", i);
    lws_mem_add(t, A, act, n * kv, n * kv, &a->k, "layers.%u.k", i);
    lws_mem_add(t, A, act, n * kv, n * kv, &a->v, "layers.%u.v", i);
    if (qk) {
        lws_mem_add(t, A, act, n * q, n * q, &a->q_raw, "layers.%u.q_raw", i);
        lws_mem_add(t, A, act, n * kv, n * kv, &a->k_raw, "layers.%u.k_raw", i);
        lws_mem_add(t, A, LWS_F32, n, 0, &a->q_rstd, "layers.%u.q_rstd", i);
        lws_mem_add(t, A, LWS_F32, n, 0, &a->k_rstd, "layers.%u.k_rstd", i);
    } else {
        /* without QK-norm RoPE rotates the projection in place */
        lws_mem_alias(t, &a->q_raw, &a->q, "layers.%u.q_raw", i);
        lws_mem_alias(t, &a->k_raw, &a->k, "layers.%u.k_raw", i);
    }
    lws_mem_add(t, A, act, n * q, n * q, &a->att, "layers.%u.att", i);
    lws_mem_add(t, A, LWS_F32, n * s->q_heads, 0, &a->lse, "layers.%u.lse", i);
    if (!pre) lws_mem_add(t, A, act, n * d, n * d, &a->attn_out, "layers.%u.attn_out", i);
    lws_mem_add(t, A, LWS_F32, n, 0, &a->attn_rstd, "layers.%u.attn_rstd", i);
    lws_mem_add(t, A, act, n * d, n * d, &a->h, "layers.%u.h", i);
    if (pre) lws_mem_add(t, A, act, n * d, n * d, &a->hn, "layers.%u.hn", i);
    lws_mem_add(t, A, act, n * f, n * f, &a->gate, "layers.%u.gate", i);
    lws_mem_add(t, A, act, n * f, n * f, &a->up, "layers.%u.up", i);
    lws_mem_add(t, A, act, n * f, n * f, &a->act, "layers.%u.act", i);
    if (!pre) lws_mem_add(t, A, act, n * d, n * d, &a->ffn_out, "layers.%u.ffn_out", i);
    lws_mem_add(t, A, LWS_F32, n, 0, &a->ffn_rstd, "layers.%u.ffn_rstd", i);
}

/* Bytes of the weight gradients' partial sums over slices of k in one layer's
 * backward (ops/matmul_split.c), the largest layer's: dW2 and dWo, and where
 * the matrix units take the projections one by one (ops/matmul_cat.c) the
 * other five. A layer's regions are free again when its command buffer ends. */
static uint64_t split_k_bytes(const lws_model *m) {
    uint32_t n = m->tokens, d = m->cfg.model.d_model, hd = m->cfg.model.head_dim;
    int parts = lws_matmul_fast_possible(m->ctx);
    uint64_t most = 0;
    for (uint32_t i = 0; i < m->cfg.model.n_layers; i++) {
        const lws_layer_shape *s = &m->cfg.layers[i];
        uint32_t q = s->q_heads * hd, kv = s->kv_heads * hd, f = s->ffn_dim;
        uint64_t layer =
            lws_matmul_split_bytes(m->ctx, d, f, n) + lws_matmul_split_bytes(m->ctx, d, q, n);
        if (parts)
            layer += lws_matmul_split_bytes(m->ctx, q, d, n) +
                     2 * lws_matmul_split_bytes(m->ctx, kv, d, n) +
                     2 * lws_matmul_split_bytes(m->ctx, f, d, n);
        if (layer > most) most = layer;
    }
    return most;
}

/* The backward's scratch, shared by all layers: sized for the widest. */
static void describe_grad_scratch(lws_model *m, lws_mem_table *t, lws_dtype act) {
    lws_grad_scratch *g = &m->gs;
    uint64_t n = m->tokens, d = m->cfg.model.d_model;
    widths w = max_widths(&m->cfg);
    const lws_mem_kind S = LWS_MEM_SCRATCH;
    lws_mem_add(t, S, act, n * d, n * d, &g->dx, "grad.dx");
    lws_mem_add(t, S, act, n * w.q_max, n * w.q_max, &g->dq, "grad.dq");
    lws_mem_add(t, S, act, n * w.kv_max, n * w.kv_max, &g->dk, "grad.dk");
    lws_mem_add(t, S, act, n * w.kv_max, n * w.kv_max, &g->dv, "grad.dv");
    lws_mem_add(t, S, act, n * w.q_max, n * w.q_max, &g->dq_raw, "grad.dq_raw");
    lws_mem_add(t, S, act, n * w.kv_max, n * w.kv_max, &g->dk_raw, "grad.dk_raw");
    lws_mem_add(t, S, act, n * w.q_max, n * w.q_max, &g->datt, "grad.datt");
    lws_mem_add(t, S, act, n * w.f_max, n * w.f_max, &g->dgate, "grad.dgate");
    lws_mem_add(t, S, act, n * w.f_max, n * w.f_max, &g->dup, "grad.dup");
    lws_mem_add(t, S, LWS_F32, n * w.qh_max, 0, &g->delta, "grad.delta");
    uint64_t split = split_k_bytes(m);
    if (split) lws_mem_add(t, S, LWS_F32, split / 4, 0, &g->split_k, "grad.split_k");
}

/* The RMSNorm backwards' partial sums: the final norm's, or in training the
 * largest of the layers' norms side by side (their weight gradients are
 * summed at the layer's end, model/record.c). */
static uint64_t norm_scratch_floats(const lws_model *m) {
    uint32_t n = m->tokens, d = m->cfg.model.d_model, hd = m->cfg.model.head_dim;
    uint64_t most = lws_rmsnorm_scratch_floats(m->ctx, n, d);
    for (uint32_t i = 0; m->training && i < m->cfg.model.n_layers; i++) {
        const lws_layer_shape *s = &m->cfg.layers[i];
        uint64_t layer = 2ull * lws_rmsnorm_scratch_floats(m->ctx, n, d);
        if (m->cfg.model.qk_norm)
            layer += (uint64_t)lws_rmsnorm_scratch_floats(m->ctx, n, s->q_heads * hd) +
                     lws_rmsnorm_scratch_floats(m->ctx, n, s->kv_heads * hd);
        if (layer > most) most = layer;
    }
    return most;
}

lws_status lws_model_describe(lws_model *m, lws_mem_table *t) {
    const lws_config *cfg = &m->cfg;
    lws_context *ctx = m->ctx;
    uint64_t n = m->tokens, d = cfg->model.d_model, v = cfg->model.vocab_size;
    uint64_t P = m->n_floats;
    lws_dtype act = lws_model_activation_dtype(cfg);
    /* The largest weight is the embedding or the head, [V, d]; the optimizer
     * walks the blocks as flat arrays, never as matrices. */
    uint64_t head_elems = v * d;

    lws_mem_add(t, LWS_MEM_PARAMS, LWS_F32, P, head_elems, &m->param_block, "params");
    /* bf16 / fp16: the matmuls read a 16-bit copy of the weights, cast from
     * the fp32 master after every update (model/record.c). */
    if (act != LWS_F32)
        lws_mem_add(t, LWS_MEM_PARAMS, act, P, head_elems, &m->param16_block, "params.16");
    if (m->training) {
        lws_mem_add(t, LWS_MEM_GRADS, LWS_F32, P, head_elems, &m->grad_block, "grads");
        /* a sharded model keeps the moments of its slice only */
        uint64_t moments = m->opt_hi - m->opt_lo;
        lws_mem_add(t, LWS_MEM_OPTIMIZER, LWS_F32, moments, 0, &m->m_block, "adam.exp_avg");
        lws_mem_add(t, LWS_MEM_OPTIMIZER, LWS_F32, moments, 0, &m->v_block, "adam.exp_avg_sq");
    }
    /* inputs and targets share one buffer so one upload carries both */
    m->targets_offset = (n * 4 + 255) / 256 * 256;
    lws_mem_add(t, LWS_MEM_ACTIVATIONS, LWS_U32, m->targets_offset / 4 + n, 0, &m->io,
                "batch.tokens");
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) describe_layer(m, t, i, act);
    lws_mem_add(t, LWS_MEM_ACTIVATIONS, act, n * d, n * d, &m->final_x, "final.x");
    lws_mem_add(t, LWS_MEM_ACTIVATIONS, act, n * d, n * d, &m->final_xn, "final.xn");
    lws_mem_add(t, LWS_MEM_ACTIVATIONS, LWS_F32, n, 0, &m->final_rstd, "final.rstd");
    lws_mem_add(t, LWS_MEM_ACTIVATIONS, LWS_F32, n, 0, &m->losses, "losses");

    /* The head's logits, one chunk of tokens at a time (ops/head_loss.c):
     * no (N, V) buffer. The loss's softmax reads them in fp32 whatever the
     * activations are; their gradient is of the activations' type (in place
     * in fp32). */
    LWS_TRY(lws_head_loss_chunk_rows((uint32_t)n, (uint32_t)v, &m->head_chunk));
    uint64_t chunk = (uint64_t)m->head_chunk * v;
    lws_mem_add(t, LWS_MEM_SCRATCH, LWS_F32, chunk, chunk, &m->head_logits, "head.logits");
    if (act == LWS_F32)
        lws_mem_alias(t, &m->head_dlogits, &m->head_logits, "head.dlogits");
    else
        lws_mem_add(t, LWS_MEM_SCRATCH, act, chunk, chunk, &m->head_dlogits, "head.dlogits");
    lws_mem_add(t, LWS_MEM_SCRATCH, LWS_F32,
                lws_cross_entropy_scratch_floats(ctx, m->head_chunk, (uint32_t)v), 0,
                &m->ce_scratch, "loss.scratch");
    lws_mem_add(t, LWS_MEM_SCRATCH, LWS_F32, norm_scratch_floats(m), 0, &m->gs.norm_scratch,
                "norm.scratch");
    /* the head's input gradient; an inference model's head records into it too */
    lws_mem_add(t, LWS_MEM_SCRATCH, act, n * d, n * d, &m->gs.dnorm_in, "grad.dnorm_in");
    if (m->training) {
        describe_grad_scratch(m, t, act);
        m->optim_entries = lws_model_optim_rows(m, NULL, &m->optim_chunks);
        lws_mem_add(t, LWS_MEM_SCRATCH, LWS_U32, m->optim_entries * sizeof(lws_optim_entry) / 4, 0,
                    &m->optim_table, "optimizer.table");
        lws_mem_add(t, LWS_MEM_SCRATCH, LWS_U32, sizeof(lws_optim_hyper) / 4, 0, &m->hyper,
                    "optimizer.hyper");
        lws_mem_add(t, LWS_MEM_SCRATCH, LWS_F32, m->optim_chunks, 0, &m->norm_scratch,
                    "optimizer.norm_partials");
    }
    return t->status;
}

static lws_status plan(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                       int training, const lws_model_shard *shard, lws_memory_plan *out) {
    memset(out, 0, sizeof *out);
    lws_model *m = NULL;
    LWS_TRY(lws_model_skeleton(cfg, batch, seq, training, &m));
    m->ctx = ctx;
    lws_mem_table t = {0};
    lws_status s = lws_model_set_shard(m, shard);
    if (s == LWS_OK) s = lws_model_describe(m, &t);
    if (s == LWS_OK) lws_mem_plan(&t, out);
    lws_mem_free(&t);
    lws_model_destroy(m);
    return s;
}

lws_status lws_model_plan(lws_context *ctx, const lws_config *cfg, uint32_t batch, uint32_t seq,
                          int training, lws_memory_plan *out) {
    return plan(ctx, cfg, batch, seq, training, NULL, out);
}

lws_status lws_model_plan_shard(lws_context *ctx, const lws_config *cfg, uint32_t batch,
                                uint32_t seq, const lws_model_shard *shard, lws_memory_plan *out) {
    return plan(ctx, cfg, batch, seq, 1, shard, out);
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

/* The kernels index one matrix with 32-bit offsets that the drivers
 * sign-extend: one matmul operand stays below 2^31 elements. */
#define OPERAND_LIMIT (1ull << 31)

int lws_memory_plan_fits(const lws_memory_plan *p, const lws_device_caps *caps, char *why,
                         size_t n) {
    if (n) why[0] = 0;
    if (p->total > caps->device_local_bytes) {
        snprintf(why, n,
                 "the plan needs %.2f GiB but %s has %.2f GiB of device memory (its largest "
                 "device-local heap; the plan: parameters %.2f, gradients %.2f, optimizer "
                 "%.2f, activations %.2f, scratch %.2f GiB)",
                 p->total / 1073741824.0, caps->name, caps->device_local_bytes / 1073741824.0,
                 p->params / 1073741824.0, p->grads / 1073741824.0, p->optimizer / 1073741824.0,
                 p->activations / 1073741824.0, p->scratch / 1073741824.0);
        return 0;
    }
    if (caps->max_allocation_size && p->largest > caps->max_allocation_size) {
        snprintf(why, n,
                 "its largest buffer, %s, takes %.2f GiB but %s allows allocations of at most "
                 "%.2f GiB (maxMemoryAllocationSize)",
                 p->largest_name, p->largest / 1073741824.0, caps->name,
                 caps->max_allocation_size / 1073741824.0);
        return 0;
    }
    if (p->largest_operand >= OPERAND_LIMIT) {
        snprintf(why, n,
                 "%s has %llu elements, and one matmul operand must stay below 2^31 = %llu "
                 "(the kernels' 32-bit indexing): use a smaller micro-batch",
                 p->largest_operand_name, (unsigned long long)p->largest_operand,
                 (unsigned long long)OPERAND_LIMIT);
        return 0;
    }
    return 1;
}
