/* Reading a benchmark report (docs/bench-report.md) for `lws compare`. */
#include "train/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/files.h"

/* The item at a dotted path ("throughput.step_ms.median"), or NULL. */
static const cJSON *at(const cJSON *root, const char *path) {
    char part[128];
    const cJSON *o = root;
    while (o && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof part) return NULL;
        memcpy(part, path, n);
        part[n] = 0;
        o = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, part) : NULL;
        path += n + (path[n] == '.');
    }
    return o;
}

static lws_status missing(const char *file, const char *field, const char *what) {
    return lws_fail(LWS_ERR_DATA,
                    "%s: field %s %s (a report of lws_bench_version %d has it; see "
                    "docs/bench-report.md)",
                    file, field, what, LWS_BENCH_VERSION);
}

static lws_status get_string(const cJSON *root, const char *file, const char *field, char *out,
                             size_t cap) {
    const cJSON *o = at(root, field);
    if (!o) return missing(file, field, "is missing");
    if (!cJSON_IsString(o)) return missing(file, field, "is not a string");
    snprintf(out, cap, "%s", o->valuestring);
    return LWS_OK;
}

/* A number, or NAN where the schema allows null (nullable). */
static lws_status get_number(const cJSON *root, const char *file, const char *field, int nullable,
                             double *out) {
    const cJSON *o = at(root, field);
    if (!o) return missing(file, field, "is missing");
    if (nullable && cJSON_IsNull(o)) {
        *out = NAN;
        return LWS_OK;
    }
    if (!cJSON_IsNumber(o))
        return missing(file, field, nullable ? "is neither a number nor null" : "is not a number");
    *out = o->valuedouble;
    return LWS_OK;
}

static lws_status get_u32(const cJSON *root, const char *file, const char *field, uint32_t *out) {
    double v = 0;
    LWS_TRY(get_number(root, file, field, 0, &v));
    if (v < 0 || v > 4294967295.0 || v != floor(v))
        return lws_fail(LWS_ERR_DATA, "%s: field %s = %g is not a non-negative integer", file,
                        field, v);
    *out = (uint32_t)v;
    return LWS_OK;
}

static lws_status read_layers(const cJSON *root, const char *file, lws_report *r) {
    const cJSON *layers = at(root, "layers");
    if (!layers) return missing(file, "layers", "is missing");
    if (cJSON_IsNull(layers)) return LWS_OK;
    if (!cJSON_IsArray(layers)) return missing(file, "layers", "is neither an array nor null");
    int n = cJSON_GetArraySize(layers);
    if (n == 0) return LWS_OK;
    r->layer_fwd_ms = calloc((size_t)n, sizeof *r->layer_fwd_ms);
    r->layer_bwd_ms = calloc((size_t)n, sizeof *r->layer_bwd_ms);
    r->layer_flops = calloc((size_t)n, sizeof *r->layer_flops);
    if (!r->layer_fwd_ms || !r->layer_bwd_ms || !r->layer_flops)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(layers, i);
        const cJSON *fwd = at(e, "forward_ms"), *bwd = at(e, "backward_ms");
        if (!cJSON_IsNumber(fwd) || !cJSON_IsNumber(bwd))
            return lws_fail(LWS_ERR_DATA,
                            "%s: field layers[%d] needs numbers forward_ms and backward_ms (see "
                            "docs/bench-report.md)",
                            file, i);
        r->layer_fwd_ms[i] = fwd->valuedouble;
        r->layer_bwd_ms[i] = bwd->valuedouble;
        const cJSON *flops = at(e, "forward_flops");
        r->layer_flops[i] = cJSON_IsNumber(flops) ? flops->valuedouble : NAN;
    }
    r->n_layer_times = (uint32_t)n;
    return LWS_OK;
}

static lws_status parse(const cJSON *root, const char *file, lws_report *r) {
    if (!cJSON_IsObject(root))
        return lws_fail(LWS_ERR_DATA, "%s: a benchmark report is a JSON object", file);
    const cJSON *version = at(root, "lws_bench_version");
    if (!version)
        return lws_fail(LWS_ERR_DATA,
                        "%s: no lws_bench_version field: not a benchmark report (write one with "
                        "`lws bench CONFIG --json FILE`)",
                        file);
    if (!cJSON_IsNumber(version))
        return lws_fail(LWS_ERR_DATA, "%s: lws_bench_version is not a number", file);
    if (version->valuedouble != LWS_BENCH_VERSION)
        return lws_fail(LWS_ERR_DATA,
                        "%s: lws_bench_version %g is not supported; this lws reads version %d",
                        file, version->valuedouble, LWS_BENCH_VERSION);
    char kind[32];
    LWS_TRY(get_string(root, file, "kind", kind, sizeof kind));
    if (strcmp(kind, "train") != 0)
        return lws_fail(LWS_ERR_DATA,
                        "%s: kind \"%s\": compare takes training reports (kind \"train\", from "
                        "`lws bench CONFIG` or bench/torch_reference.py)",
                        file, kind);
    LWS_TRY(get_string(root, file, "label", r->label, sizeof r->label));
    LWS_TRY(get_string(root, file, "created", r->created, sizeof r->created));
    LWS_TRY(get_string(root, file, "engine.name", r->engine, sizeof r->engine));
    LWS_TRY(get_string(root, file, "engine.version", r->engine_version, sizeof r->engine_version));
    LWS_TRY(get_string(root, file, "engine.precision", r->precision, sizeof r->precision));
    LWS_TRY(get_string(root, file, "device.name", r->device, sizeof r->device));
    LWS_TRY(get_string(root, file, "device.vendor", r->vendor, sizeof r->vendor));
    LWS_TRY(get_string(root, file, "device.type", r->device_type, sizeof r->device_type));
    LWS_TRY(get_string(root, file, "device.driver", r->driver, sizeof r->driver));
    LWS_TRY(get_string(root, file, "device.api_version", r->api_version, sizeof r->api_version));
    LWS_TRY(get_number(root, file, "device.memory_bytes", 1, &r->device_memory_bytes));
    LWS_TRY(get_string(root, file, "config.name", r->config, sizeof r->config));
    LWS_TRY(get_u32(root, file, "config.n_layers", &r->n_layers));
    LWS_TRY(get_u32(root, file, "shape.micro_batch", &r->micro_batch));
    LWS_TRY(get_u32(root, file, "shape.seq_len", &r->seq_len));
    LWS_TRY(get_u32(root, file, "shape.grad_accum", &r->grad_accum));
    LWS_TRY(get_number(root, file, "throughput.tokens_per_s", 0, &r->tokens_per_s));
    LWS_TRY(get_number(root, file, "throughput.step_ms.median", 0, &r->step_ms));
    LWS_TRY(get_number(root, file, "throughput.step_ms.min", 0, &r->step_ms_min));
    LWS_TRY(get_number(root, file, "throughput.step_ms.max", 0, &r->step_ms_max));
    LWS_TRY(get_number(root, file, "throughput.step_ms.stdev", 0, &r->step_ms_stdev));
    LWS_TRY(get_number(root, file, "peak.measured_tflops", 1, &r->peak_tflops));
    LWS_TRY(get_number(root, file, "peak.datasheet_tflops", 1, &r->datasheet_tflops));
    LWS_TRY(get_number(root, file, "mfu.measured", 1, &r->mfu));
    LWS_TRY(get_number(root, file, "mfu.datasheet", 1, &r->mfu_datasheet));
    LWS_TRY(get_number(root, file, "memory.peak_bytes", 0, &r->memory_bytes));
    LWS_TRY(get_string(root, file, "memory.kind", r->memory_kind, sizeof r->memory_kind));
    const cJSON *load = at(root, "host.load_average");
    if (!load || !cJSON_IsArray(load)) return missing(file, "host.load_average", "is not an array");
    const cJSON *load1 = cJSON_GetArrayItem(load, 0);
    r->load_average = cJSON_IsNumber(load1) ? load1->valuedouble : NAN;
    if (!(r->tokens_per_s > 0))
        return lws_fail(LWS_ERR_DATA, "%s: throughput.tokens_per_s = %g must be positive", file,
                        r->tokens_per_s);
    return read_layers(root, file, r);
}

/* A report is tens of KiB of JSON; a file far beyond this is not one. */
#define REPORT_MAX_BYTES ((size_t)64 << 20)

lws_status lws_report_load(const char *path, lws_report *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    char *text;
    size_t len;
    LWS_TRY(lws_read_file(path, REPORT_MAX_BYTES, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        long offset = where && where >= text && where <= text + len ? (long)(where - text) : -1;
        free(text);
        return lws_fail(LWS_ERR_DATA, "%s: not JSON (parsing stopped at byte %ld)", path, offset);
    }
    free(text);
    lws_status s = parse(root, path, out);
    cJSON_Delete(root);
    if (s != LWS_OK) lws_report_free(out);
    return s;
}

void lws_report_free(lws_report *r) {
    free(r->layer_fwd_ms);
    free(r->layer_bwd_ms);
    free(r->layer_flops);
    r->layer_fwd_ms = r->layer_bwd_ms = r->layer_flops = NULL;
    r->n_layer_times = 0;
}
