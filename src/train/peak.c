/* The device's achievable matmul throughput, measured with lws's own kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lws/train.h"
#include "ops/ops.h"
#include "util/files.h"
#include "util/when.h"

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

/* ---- the cache ---------------------------------------------------------- */

#define PEAK_CACHE_VERSION 1

static void peak_cache_path(const lws_device_caps *caps, char *out, size_t n) {
    char dir[900];
    if (!lws_cache_dir(dir, sizeof dir)) {
        out[0] = 0;
        return;
    }
    char uuid[33];
    for (int i = 0; i < 16; i++) snprintf(uuid + 2 * i, 3, "%02x", caps->uuid[i]);
    snprintf(out, n, "%s/peak-%04x-%04x-%08x-%s.json", dir, caps->vendor_id, caps->device_id,
             caps->driver_version, uuid);
}

static double json_number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A cache file of this device and driver with a positive peak: 1, else 0. */
static int read_cache(const lws_device_caps *caps, lws_peak *out) {
    char *text = NULL;
    size_t len = 0;
    if (!out->path[0] || access(out->path, F_OK) != 0) return 0;
    if (lws_read_file(out->path, 1 << 16, &text, &len) != LWS_OK) {
        lws_error_clear();
        return 0;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(o, "device");
    const cJSON *measured = cJSON_GetObjectItemCaseSensitive(o, "measured");
    double tflops = json_number(o, "tflops");
    int ok = json_number(o, "lws_peak_version") == PEAK_CACHE_VERSION && cJSON_IsString(device) &&
             strcmp(device->valuestring, caps->name) == 0 &&
             json_number(o, "vendor_id") == caps->vendor_id &&
             json_number(o, "device_id") == caps->device_id &&
             json_number(o, "driver_version") == caps->driver_version && isfinite(tflops) &&
             tflops > 0 && cJSON_IsString(measured);
    if (ok) {
        out->tflops = tflops;
        out->cached = 1;
        snprintf(out->measured, sizeof out->measured, "%s", measured->valuestring);
    }
    cJSON_Delete(o);
    return ok;
}

/* Saving only spares the next start a measurement: a failure is dropped. */
static void write_cache(const lws_device_caps *caps, uint32_t repeat, const lws_peak *p) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", p->path);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) != 3) load[0] = load[1] = load[2] = 0;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "lws_peak_version", PEAK_CACHE_VERSION);
    cJSON_AddNumberToObject(o, "tflops", p->tflops);
    cJSON_AddStringToObject(o, "measured", p->measured);
    cJSON_AddNumberToObject(o, "repeat", repeat);
    cJSON_AddStringToObject(o, "method",
                            "lws fp32 matmul (NT), square problems from 512^3, the "
                            "fastest run");
    cJSON_AddStringToObject(o, "device", caps->name);
    cJSON_AddStringToObject(o, "vendor", caps->vendor);
    cJSON_AddNumberToObject(o, "vendor_id", caps->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", caps->device_id);
    cJSON_AddStringToObject(o, "driver", caps->driver_name);
    cJSON_AddStringToObject(o, "driver_info", caps->driver_info);
    cJSON_AddNumberToObject(o, "driver_version", caps->driver_version);
    cJSON *l = cJSON_AddArrayToObject(o, "load_average");
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(l, cJSON_CreateNumber(load[i]));
    cJSON_AddStringToObject(o, "lws_version", LWS_VERSION);
    if (lws_mkdir_p(dir) != LWS_OK || lws_write_json_atomic(p->path, o) != LWS_OK)
        lws_error_clear();
    cJSON_Delete(o);
}

lws_status lws_peak_get(lws_context *ctx, int remeasure, uint32_t repeat, lws_peak *out) {
    memset(out, 0, sizeof *out);
    const lws_device_caps *caps = lws_context_caps(ctx);
    peak_cache_path(caps, out->path, sizeof out->path);
    if (!remeasure && read_cache(caps, out)) return LWS_OK;
    for (uint32_t r = 0; r < (repeat ? repeat : 1); r++) {
        double t = 0;
        LWS_TRY(lws_measure_peak_tflops(ctx, &t));
        if (t > out->tflops) out->tflops = t;
    }
    lws_utc_now(out->measured, sizeof out->measured);
    if (out->path[0] && out->tflops > 0) write_cache(caps, repeat ? repeat : 1, out);
    return LWS_OK;
}
