/* The device's achievable matmul throughput, measured with lws's own kernel. */
#include <stdlib.h>

#include "lws/train.h"
#include "ops/ops.h"

lws_status lws_measure_peak_tflops(lws_context *ctx, double *tflops) {
    /* 512^3 is large enough to fill a CPU's cores and small GPUs, and short
     * enough (0.27 GFLOP) to run at every start; big GPUs need a larger
     * problem to reach their peak, so scale it up when the first run is fast. */
    uint32_t n = 512;
    *tflops = 0;
    /* A device without timestamps gives nothing to measure with: 0, which
     * callers show as an unknown MFU. */
    if (lws_context_caps(ctx)->timestamp_period_ns <= 0) return LWS_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        lws_arena_mark mark = lws_arena_get_mark(ctx);
        lws_buffer a, b, c;
        lws_status s = lws_alloc(ctx, (uint64_t)n * n * 4, &a);
        if (s == LWS_OK) s = lws_alloc(ctx, (uint64_t)n * n * 4, &b);
        if (s == LWS_OK) s = lws_alloc(ctx, (uint64_t)n * n * 4, &c);
        if (s == LWS_OK) s = lws_fill(ctx, a, 0x3c23d70a); /* 0.01f */
        if (s == LWS_OK) s = lws_fill(ctx, b, 0x3c23d70a);
        lws_timer *timer = NULL;
        lws_cmd *cmd = NULL;
        const int reps = 3;
        if (s == LWS_OK) s = lws_timer_create(ctx, 1, &timer);
        if (s == LWS_OK) s = lws_cmd_begin(ctx, 1, &cmd);
        if (s == LWS_OK) {
            lws_op_matmul(cmd, LWS_MM_NT, c, a, b, n, n, n, 0); /* warm-up */
            lws_cmd_barrier(cmd);
            int r = lws_cmd_region_begin(cmd, timer, "peak");
            for (int i = 0; i < reps; i++) {
                lws_op_matmul(cmd, LWS_MM_NT, c, a, b, n, n, n, 0);
                lws_cmd_barrier(cmd);
            }
            lws_cmd_region_end(cmd, timer, r);
            s = lws_cmd_end(cmd);
        }
        if (s == LWS_OK) s = lws_submit(ctx, &cmd, 1);
        double ms = 0;
        if (s == LWS_OK) s = lws_timer_read(ctx, timer, &ms, 1);
        lws_cmd_destroy(cmd);
        lws_timer_destroy(timer);
        lws_arena_reset(ctx, mark);
        LWS_TRY(s);
        if (ms <= 0) return lws_fail(LWS_ERR_VULKAN, "the device gave no timestamps");
        double t = 2.0 * n * n * n * reps / (ms * 1e-3) / 1e12;
        if (t > *tflops) *tflops = t;
        if (ms > 50 || n >= 4096) break;
        n *= 2;
    }
    return LWS_OK;
}
