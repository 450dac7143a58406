/* Learning-rate schedules: constant, linear warmup + cosine decay, and
 * warmup-stable-decay. */
#include <math.h>

#include "lws/train.h"

double lws_lr_at(const lws_train_config *t, uint64_t step) {
    double peak = t->lr, min = t->lr * t->min_lr_ratio;
    double s = (double)step, steps = (double)t->steps, warmup = (double)t->warmup_steps;
    if (t->warmup_steps > 0 && step <= t->warmup_steps) return peak * s / warmup;
    switch (t->schedule) {
    case LWS_LR_CONSTANT:
        return peak;
    case LWS_LR_COSINE: {
        if (steps <= warmup) return peak;
        double progress = (s - warmup) / (steps - warmup);
        if (progress > 1) progress = 1;
        return min + (peak - min) * 0.5 * (1.0 + cos(M_PI * progress));
    }
    case LWS_LR_WSD: {
        double decay = round(t->decay_fraction * steps);
        double start = steps - decay;
        if (decay <= 0 || s <= start) return peak;
        double progress = (s - start) / decay;
        if (progress > 1) progress = 1;
        return peak + (min - peak) * progress;
    }
    }
    return peak;
}
