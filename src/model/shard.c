/* ZeRO-1 on the model's side: a model whose AdamW moments cover one slice
 * [opt_lo, opt_hi) of the flat parameter block, the optimizer table cut to
 * that slice (parts of tensors are rows of their own), and the update in two
 * submissions, so the host can sum the slices' squared gradient norms over
 * the ranks in between. */
#include <math.h>
#include <stdlib.h>

#include "model/model_internal.h"

/* Slices start on the layout's 64-float boundaries. */
#define SHARD_ALIGN 64

void lws_model_shard_bounds(uint64_t floats, uint32_t count, uint64_t *bounds) {
    for (uint32_t r = 0; r < count; r++)
        bounds[r] = (uint64_t)((double)floats * r / count) / SHARD_ALIGN * SHARD_ALIGN;
    bounds[count] = floats;
}

lws_status lws_model_set_shard(lws_model *m, const lws_model_shard *shard) {
    m->opt_lo = 0;
    m->opt_hi = m->n_floats;
    if (!shard) return LWS_OK;
    if (shard->count == 0 || shard->index >= shard->count)
        return lws_fail(LWS_ERR_INVALID, "optimizer shard %u of %u: needs 0 <= shard < count",
                        shard->index, shard->count);
    uint64_t *bounds = malloc(((size_t)shard->count + 1) * sizeof *bounds);
    if (!bounds) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    lws_model_shard_bounds(m->n_floats, shard->count, bounds);
    m->opt_lo = bounds[shard->index];
    m->opt_hi = bounds[shard->index + 1];
    free(bounds);
    if (m->opt_hi == m->opt_lo)
        return lws_fail(LWS_ERR_INVALID,
                        "%s: %llu parameters are too few to shard the optimizer over %u ranks "
                        "(each needs at least %u); set train.shard_optimizer to false",
                        m->cfg.name, (unsigned long long)m->n_floats, shard->count, SHARD_ALIGN);
    return LWS_OK;
}

void lws_model_shard_range(const lws_model *m, uint64_t *lo, uint64_t *hi) {
    *lo = m->opt_lo;
    *hi = m->opt_hi;
}

uint32_t lws_model_optim_rows(const lws_model *m, lws_optim_entry *rows, uint32_t *chunks) {
    uint32_t n = 0;
    *chunks = 0;
    for (uint32_t i = 0; i < m->n_params; i++) {
        const lws_param *p = &m->params[i];
        uint64_t from = p->offset > m->opt_lo ? p->offset : m->opt_lo;
        uint64_t to = p->offset + p->count < m->opt_hi ? p->offset + p->count : m->opt_hi;
        if (to <= from) continue;
        if (rows) {
            uint64_t skip = (from - p->offset) * 4, moment = (from - m->opt_lo) * 4;
            rows[n] = (lws_optim_entry){p->param.addr + skip,
                                        p->grad.addr + skip,
                                        m->m_block.addr + moment,
                                        m->v_block.addr + moment,
                                        (uint32_t)(to - from),
                                        (uint32_t)p->decay,
                                        *chunks,
                                        0};
        }
        n++;
        *chunks += (uint32_t)((to - from + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK);
    }
    return n;
}

/* cmd_shard_norm: the slice's gradient norm (hyper.grad_norm); cmd_shard_step:
 * AdamW with the clip scale the host wrote, the non-finite count, and every
 * gradient zeroed (the slice's by AdamW; the rest were never reduced here). */
lws_status lws_model_record_shard(lws_model *m) {
    lws_cmd *c;
    LWS_TRY(lws_cmd_begin(m->ctx, 1, &m->cmd_shard_norm));
    c = m->cmd_shard_norm;
    lws_cmd_label(c, "optimizer shard: gradient norm");
    lws_op_grad_norm(c, m->hyper, m->optim_table, m->optim_entries, m->optim_chunks,
                     m->norm_scratch);
    LWS_TRY(lws_cmd_end(c));
    LWS_TRY(lws_cmd_begin(m->ctx, 1, &m->cmd_shard_step));
    c = m->cmd_shard_step;
    lws_cmd_label(c, "optimizer shard: update");
    m->region_optim = lws_cmd_region_begin(c, m->timer, "optimizer");
    lws_op_adamw(c, m->hyper, m->optim_table, m->optim_entries, m->optim_chunks);
    lws_cmd_barrier(c);
    lws_op_count_nonfinite(c, lws_buffer_slice(m->hyper, LWS_HYPER_NONFINITE, sizeof(float)),
                           m->optim_table, m->optim_entries, m->optim_chunks, m->norm_scratch);
    lws_cmd_barrier(c);
    lws_cmd_fill(c, m->grad_block, 0);
    lws_cmd_region_end(c, m->timer, m->region_optim);
    return lws_cmd_end(c);
}

lws_status lws_model_optimizer_step_shard(lws_model *m, double lr, uint64_t step, lws_sum_fn sum,
                                          void *user, double *grad_norm, double *nonfinite) {
    if (!m->cmd_shard_step)
        return lws_fail(LWS_ERR_INVALID, "this model keeps all the optimizer state: use "
                                         "lws_model_optimizer_step");
    lws_optim_hyper h = lws_model_hyper(m, lr, step);
    LWS_TRY(lws_upload(m->ctx, m->hyper, &h, sizeof h));
    LWS_TRY(lws_submit(m->ctx, &m->cmd_shard_norm, 1));
    LWS_TRY(lws_download(m->ctx, m->hyper, &h, sizeof h));
    /* the slice's norm comes unscaled (grad_norm.comp divides it by the loss
     * scale); a non-finite one on any rank makes the sum non-finite on all */
    double squares = (double)h.grad_norm * h.grad_norm;
    LWS_TRY(sum(user, &squares, 1));
    /* clip_grad_norm_'s coefficient over the loss scale, in fp32 as
     * shaders/grad_norm.comp has it; AdamW skips the update on every rank
     * when the global norm is not finite (an fp16 overflow) */
    float norm = (float)sqrt(squares), max_norm = h.max_grad_norm;
    h.grad_norm = norm;
    h.clip_scale = (max_norm > 0.0f ? fminf(1.0f, max_norm / (norm + 1e-6f)) : 1.0f) / h.loss_scale;
    LWS_TRY(lws_upload(m->ctx, m->hyper, &h, sizeof h));
    LWS_TRY(lws_submit(m->ctx, &m->cmd_shard_step, 1));
    LWS_TRY(lws_download(m->ctx, m->hyper, &h, sizeof h));
    double total = h.nonfinite;
    LWS_TRY(sum(user, &total, 1));
    *grad_norm = norm;
    *nonfinite = total;
    /* every rank has the same norm: their loss scales stay alike */
    return lws_model_update_loss_scale(m, norm, 1);
}
