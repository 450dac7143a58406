/* A training micro-batch in segments, in the order its gradients become
 * final, so a data-parallel step can send a layer's gradients while the
 * backward of the layers below it still runs (train/dist_step.c). The
 * segments replay the same recorded command buffers as
 * lws_model_forward_backward, in the same order. */
#include "model/model_internal.h"

uint32_t lws_model_segments(const lws_model *m) {
    return m->cfg.model.n_layers + 2;
}

/* The parameter block holds embed, layers 0 .. L-1, final_norm, lm_head
 * (model/layout.c): the segments finish them from the end down. */
void lws_model_segment_grads(const lws_model *m, uint32_t k, uint64_t *lo, uint64_t *hi) {
    uint32_t L = m->cfg.model.n_layers;
    if (k == 0) { /* the head: final norm and an untied head */
        *lo = m->final_norm->offset;
        *hi = m->n_floats;
    } else if (k <= L) { /* layer L - k */
        uint32_t i = L - k;
        *lo = m->layers[i].wq->offset;
        *hi = i + 1 < L ? m->layers[i + 1].wq->offset : m->final_norm->offset;
    } else { /* the embedding, to which a tied head adds in segment 0 */
        *lo = 0;
        *hi = m->layers[0].wq->offset;
    }
}

lws_status lws_model_segments_begin(lws_model *m, const uint32_t *inputs, const uint32_t *targets) {
    if (!m->training) return lws_fail(LWS_ERR_INVALID, "this model was built for inference only");
    return lws_model_upload_batch(m, inputs, targets);
}

lws_status lws_model_run_segments(lws_model *m, uint32_t first, uint32_t count, lws_poll_fn poll,
                                  void *user) {
    uint32_t L = m->cfg.model.n_layers, n = lws_model_segments(m);
    if (first >= n || count > n - first || count == 0)
        return lws_fail(LWS_ERR_INVALID, "segments %u .. %u of a model with %u", first,
                        first + count - 1, n);
    /* step_cmds: embed, L forwards, head, L backwards, embed backward; segment 0
     * is its first L + 2 buffers, every later segment one. */
    uint32_t begin = first == 0 ? 0 : L + 1 + first;
    uint32_t end = L + 1 + first + count;
    return lws_submit_polling(m->ctx, m->step_cmds + begin, end - begin, poll, user);
}

lws_status lws_model_segments_loss(lws_model *m, double *loss) {
    double sum = 0;
    LWS_TRY(lws_model_sum_losses(m, m->tokens, &sum));
    *loss = sum / m->tokens;
    return LWS_OK;
}
