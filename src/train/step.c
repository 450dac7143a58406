/* One optimizer step, the only place the host side of a step is written:
 * grad_accum micro-batches of forward and backward, then clipping and AdamW.
 * lws train, lws bench and the parity dump all run their steps here: a model
 * that can runs the step as one submission (lws_model_step), the others
 * (ZeRO-1 shards) one submission per micro-batch and one for the update. */
#include <math.h>

#include "lws/train.h"
#include "train/dist_internal.h"

lws_status lws_train_accumulate(lws_model *m, const lws_batch_source *src,
                                const lws_stop_flag *stop, double *loss) {
    const lws_config *cfg = lws_model_get_config(m);
    uint32_t A = lws_train_accum(&cfg->train);
    uint32_t *inputs, *targets;
    lws_model_host_batch(m, &inputs, &targets);
    double sum = 0;
    for (uint32_t a = 0; a < A; a++) {
        if (stop && *stop)
            return lws_fail(LWS_ERR_INTERRUPTED, "stopped by signal %d between micro-batches",
                            (int)*stop);
        double mb = 0;
        LWS_TRY(src->next(src->state, a, inputs, targets));
        LWS_TRY(lws_model_forward_backward(m, inputs, targets, &mb));
        sum += mb / A;
    }
    *loss = sum;
    if (!isfinite(sum))
        return lws_fail(LWS_ERR_NUMERIC, "the loss is %g; stopped before the update", sum);
    return LWS_OK;
}

lws_status lws_train_check_update(const lws_model *m, uint64_t step, double lr, double grad_norm,
                                  double nonfinite) {
    /* fp16's loss scale skipped the update and lowered the scale; anywhere
     * else a non-finite norm is an error. */
    if (!isfinite(grad_norm) && !lws_model_loss_scale(m).dynamic)
        return lws_fail(LWS_ERR_NUMERIC, "the gradient norm is %g", grad_norm);
    if (nonfinite > 0)
        return lws_fail(LWS_ERR_NUMERIC,
                        "update %llu left %.0f parameters NaN or infinite (learning rate %g, "
                        "gradient norm %g): the update overflowed fp32; lower train.lr",
                        (unsigned long long)step, nonfinite, lr, grad_norm);
    return LWS_OK;
}

lws_status lws_train_update(lws_model *m, uint64_t step, double lr, double *grad_norm) {
    double nonfinite = 0;
    LWS_TRY(lws_model_optimizer_step(m, lr, step, grad_norm, &nonfinite));
    return lws_train_check_update(m, step, lr, *grad_norm, nonfinite);
}

/* The step in one submission (lws_model_step): the stop flag is checked
 * before it is submitted (and between groups of LWS_STEP_GROUP micro-batches
 * of a longer accumulation); once submitted a group runs to its end. */
static lws_status whole_step(lws_model *m, const lws_batch_source *src, uint64_t step,
                             const lws_stop_flag *stop, lws_step_result *out) {
    uint32_t A = lws_train_accum(&lws_model_get_config(m)->train);
    for (uint32_t a = 0; a < A; a++) {
        uint32_t *inputs, *targets;
        LWS_TRY(lws_model_step_batch(m, a, &inputs, &targets));
        LWS_TRY(src->next(src->state, a, inputs, targets));
    }
    double nonfinite = 0;
    LWS_TRY(lws_model_step(m, out->lr, step, stop, &out->loss, &out->grad_norm, &nonfinite));
    /* A non-finite gradient norm left the weights as they were (AdamW skips
     * such an update); any other update has been applied. */
    out->updated = isfinite(out->grad_norm) != 0;
    if (!isfinite(out->loss))
        return lws_fail(LWS_ERR_NUMERIC, "the loss is %g; %s", out->loss,
                        out->updated ? "the update of this step has run"
                                     : "the update was skipped (non-finite gradient norm)");
    out->updated = 1;
    return lws_train_check_update(m, step, out->lr, out->grad_norm, nonfinite);
}

lws_status lws_train_step(lws_model *m, const lws_batch_source *src, uint64_t step,
                          const lws_stop_flag *stop, lws_step_result *out) {
    out->lr = lws_lr_at(&lws_model_get_config(m)->train, step);
    out->grad_norm = 0;
    out->updated = 0;
    out->all_ranks = out->stop = 0;
    if (lws_model_has_whole_step(m)) {
        LWS_TRY(whole_step(m, src, step, stop, out));
    } else {
        LWS_TRY(lws_train_accumulate(m, src, stop, &out->loss));
        out->updated = 1;
        LWS_TRY(lws_train_update(m, step, out->lr, &out->grad_norm));
    }
    lws_loss_scale s = lws_model_loss_scale(m);
    out->loss_scale = s.scale;
    out->skipped = s.skipped;
    return LWS_OK;
}
