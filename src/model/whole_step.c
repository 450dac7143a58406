/* One optimizer step as one submission and one host wait. The host fills a
 * host-visible buffer with every micro-batch's tokens and the update's
 * hyperparameters, submits
 *
 *   copies[0]  hyperparameters in, micro-batch 0 in
 *   step_cmds  micro-batch 0: embedding, layers, head and loss, backward
 *   copies[1]  losses of micro-batch 0 out, micro-batch 1 in
 *   step_cmds  micro-batch 1
 *   ...
 *   cmd_optim  gradient norm and clipping, AdamW, non-finite count, 16-bit copy
 *   copies[A]  losses of micro-batch A - 1 out, hyperparameters out
 *
 * and waits once (a step of more than LWS_STEP_GROUP micro-batches is
 * submitted that many at a time, so that a stop is honoured within a group:
 * the transfers between micro-batches work across submissions alike). The
 * micro-batch buffers are the ones every other way of running a step
 * submits (recorded for simultaneous use, so one submission holds them A
 * times); every command buffer ends with a full barrier, which orders each
 * copy against the kernels before and after it (src/vk/cmd.c).
 *
 * Layout of the host buffer (bytes): [A] micro-batches of step_batch_stride
 * (inputs, then targets at targets_offset: io's layout), the hyperparameters
 * in, the hyperparameters out, then [A][tokens] float losses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

static uint32_t accum_of(const lws_model *m) {
    return lws_train_accum(&m->cfg.train);
}

static uint64_t round_up(uint64_t x, uint64_t to) {
    return (x + to - 1) / to * to;
}

int lws_model_has_whole_step(const lws_model *m) {
    return m->training && m->opt_lo == 0 && m->opt_hi == m->n_floats;
}

static lws_buffer host_range(const lws_model *m, uint64_t offset, uint64_t bytes,
                             const char *name) {
    lws_buffer b = lws_buffer_slice(m->step_host.range, offset, bytes);
    lws_buffer_name(m->ctx, b, name);
    return b;
}

/* Transfers a of A + 1: the losses of micro-batch a - 1 out (a > 0), the
 * hyperparameters in (a == 0) and out (a == A), micro-batch a in (a < A).
 * No two of them touch the same bytes, so none waits for another. */
static lws_status record_copies(lws_model *m, uint32_t a) {
    uint32_t A = accum_of(m);
    uint64_t hyper = sizeof(lws_optim_hyper), losses = (uint64_t)m->tokens * sizeof(float);
    char name[96];
    LWS_TRY(lws_cmd_begin(m->ctx, 1, &m->cmd_step_copies[a]));
    lws_cmd *c = m->cmd_step_copies[a];
    snprintf(name, sizeof name, "step transfers %u of %u", a, A);
    lws_cmd_label(c, name);
    if (a == 0)
        lws_cmd_copy(c, host_range(m, m->step_hyper_in, hyper, "step hyperparameters in"), m->hyper,
                     hyper);
    if (a > 0) {
        snprintf(name, sizeof name, "step losses of micro-batch %u", a - 1);
        lws_buffer out = host_range(m, m->step_losses + (uint64_t)(a - 1) * losses, losses, name);
        lws_cmd_copy(c, m->losses, out, losses);
    }
    if (a < A) {
        snprintf(name, sizeof name, "step micro-batch %u", a);
        lws_buffer in = host_range(m, (uint64_t)a * m->step_batch_stride, m->step_io_bytes, name);
        lws_cmd_copy(c, in, m->io, m->step_io_bytes);
    }
    if (a == A) {
        lws_cmd_copy(c, m->hyper,
                     host_range(m, m->step_hyper_out, hyper, "step hyperparameters out"), hyper);
        lws_cmd_host_barrier(c);
    }
    lws_status s = lws_cmd_end(c);
    if (s != LWS_OK) lws_error_context("recording the step's transfers %u of %u", a, A);
    return s;
}

/* The host buffer, the transfers and the submission order. */
static lws_status record_whole_step(lws_model *m) {
    uint32_t A = accum_of(m);
    uint64_t hyper = round_up(sizeof(lws_optim_hyper), 16);
    m->step_io_bytes = m->targets_offset + (uint64_t)m->tokens * 4;
    m->step_batch_stride = round_up(m->step_io_bytes, 16);
    m->step_hyper_in = (uint64_t)A * m->step_batch_stride;
    m->step_hyper_out = m->step_hyper_in + hyper;
    m->step_losses = m->step_hyper_out + hyper;
    uint64_t bytes = m->step_losses + (uint64_t)A * m->tokens * sizeof(float);
    uint64_t n = (uint64_t)A * (m->n_step_cmds + 1) + 2;
    if (n > UINT32_MAX)
        return lws_fail(LWS_ERR_INVALID, "train.grad_accum %u: too many micro-batches", A);
    m->cmd_step_copies = calloc(A + 1, sizeof *m->cmd_step_copies);
    m->whole_step_cmds = calloc(n, sizeof *m->whole_step_cmds);
    if (!m->cmd_step_copies || !m->whole_step_cmds)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    LWS_TRY(lws_host_buffer_create(m->ctx, bytes, &m->step_host));
    for (uint32_t a = 0; a <= A; a++) LWS_TRY(record_copies(m, a));
    uint32_t k = 0;
    for (uint32_t a = 0; a < A; a++) {
        m->whole_step_cmds[k++] = m->cmd_step_copies[a];
        for (uint32_t i = 0; i < m->n_step_cmds; i++) m->whole_step_cmds[k++] = m->step_cmds[i];
    }
    m->whole_step_cmds[k++] = m->cmd_optim;
    m->whole_step_cmds[k++] = m->cmd_step_copies[A];
    m->n_whole_step_cmds = k;
    return LWS_OK;
}

void lws_model_destroy_whole_step(lws_model *m) {
    for (uint32_t a = 0; m->cmd_step_copies && a <= accum_of(m); a++)
        lws_cmd_destroy(m->cmd_step_copies[a]);
    free(m->cmd_step_copies);
    free(m->whole_step_cmds);
    m->cmd_step_copies = m->whole_step_cmds = NULL;
    m->n_whole_step_cmds = 0;
    if (m->ctx) lws_host_buffer_destroy(m->ctx, &m->step_host);
}

lws_status lws_model_step_batch(lws_model *m, uint32_t a, uint32_t **inputs, uint32_t **targets) {
    if (!lws_model_has_whole_step(m))
        return lws_fail(LWS_ERR_INVALID, "a step in one submission needs a training model that "
                                         "is not sharded");
    if (a >= accum_of(m))
        return lws_fail(LWS_ERR_INVALID, "micro-batch %u of a step of %u (train.grad_accum)", a,
                        accum_of(m));
    if (!m->whole_step_cmds) {
        lws_status s = record_whole_step(m);
        if (s != LWS_OK) { /* nothing half-recorded stays for the next call */
            lws_model_destroy_whole_step(m);
            return s;
        }
    }
    uint8_t *batch = (uint8_t *)m->step_host.map + (uint64_t)a * m->step_batch_stride;
    *inputs = (uint32_t *)batch;
    *targets = (uint32_t *)(batch + m->targets_offset);
    return LWS_OK;
}

/* Submits the step, LWS_STEP_GROUP micro-batches at a time (one submission
 * unless grad_accum is larger), checking the stop flag before each. */
static lws_status submit_groups(lws_model *m, const volatile sig_atomic_t *stop) {
    uint32_t A = accum_of(m), per_batch = m->n_step_cmds + 1;
    for (uint32_t first = 0; first < A; first += LWS_STEP_GROUP) {
        if (stop && *stop && first == 0)
            return lws_fail(LWS_ERR_INTERRUPTED, "stopped by signal %d before the step",
                            (int)*stop);
        if (stop && *stop)
            return lws_fail(LWS_ERR_INTERRUPTED,
                            "stopped by signal %d between micro-batches (%u of %u run)", (int)*stop,
                            first, A);
        uint32_t begin = first * per_batch;
        uint32_t end = A - first <= LWS_STEP_GROUP ? m->n_whole_step_cmds
                                                   : (first + LWS_STEP_GROUP) * per_batch;
        LWS_TRY(lws_submit(m->ctx, m->whole_step_cmds + begin, end - begin));
    }
    return LWS_OK;
}

lws_status lws_model_step(lws_model *m, double lr, uint64_t step, const volatile sig_atomic_t *stop,
                          double *loss, double *grad_norm, double *nonfinite) {
    uint32_t A = accum_of(m), *inputs = NULL, *targets = NULL;
    char name[64];
    for (uint32_t a = 0; a < A; a++) {
        LWS_TRY(lws_model_step_batch(m, a, &inputs, &targets));
        snprintf(name, sizeof name, "micro-batch %u of %u", a + 1, A);
        LWS_TRY(lws_model_check_tokens(m, inputs, targets, name));
    }
    uint8_t *host = m->step_host.map;
    lws_optim_hyper h = lws_model_hyper(m, lr, step);
    memcpy(host + m->step_hyper_in, &h, sizeof h);
    LWS_TRY(submit_groups(m, stop));
    m->loss_scale_stale = 0; /* the hyperparameters in carried the scale */
    /* as lws_train_accumulate adds up lws_model_forward_backward's means */
    const float *losses = (const float *)(host + m->step_losses);
    double sum = 0;
    for (uint32_t a = 0; a < A; a++) {
        double mb = lws_model_loss_total(losses + (size_t)a * m->tokens, m->tokens) / m->tokens;
        sum += mb / A;
    }
    *loss = sum;
    memcpy(&h, host + m->step_hyper_out, sizeof h);
    *grad_norm = h.grad_norm;
    *nonfinite = h.nonfinite;
    /* a non-finite loss ends the run: its scale stays as it was, and the
     * step says whether AdamW skipped the update (a non-finite norm) */
    if (isfinite(sum)) return lws_model_update_loss_scale(m, h.grad_norm, 0);
    m->scaler.skipped = !isfinite(h.grad_norm);
    return LWS_OK;
}
