/* lws — training: the loop, learning-rate schedules, checkpoints. */
#ifndef LWS_TRAIN_H
#define LWS_TRAIN_H

#include <stdint.h>

#include "lws/config.h"
#include "lws/status.h"
#include "lws/vk.h"

typedef struct lws_train_options {
    const char *device;      /* --device: index or name substring; NULL = default */
    const char *resume;      /* --resume: a checkpoint directory or a run directory */
    const char *out_dir;     /* overrides train.out_dir */
    uint32_t steps;          /* overrides train.steps when non-zero */
    int profile;             /* print per-layer forward/backward times */
    double peak_tflops;      /* MFU reference; 0 = measure the device */
    const char *parity_dump; /* write the PyTorch parity files here and stop */
    int quiet;               /* no progress lines (the JSONL log is still written) */
} lws_train_options;

/* Trains cfg on a Vulkan device. Returns LWS_ERR_INTERRUPTED after saving a
 * checkpoint when SIGINT or SIGTERM arrived. */
lws_status lws_train(const lws_config *cfg, const lws_train_options *options);

/* Learning rate of update `step` (1-based) under cfg's schedule. */
double lws_lr_at(const lws_train_config *t, uint64_t step);

/* Achievable fp32 TFLOP/s of this device with lws's matmul (a short timed
 * run), the reference for MFU when no datasheet figure is given; LWS_OK with
 * *tflops = 0 on a device without timestamps (MFU unknown). */
lws_status lws_measure_peak_tflops(lws_context *ctx, double *tflops);

#endif
