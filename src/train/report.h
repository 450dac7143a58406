/* Benchmark reports (docs/bench-report.md): reading a training report back
 * for `lws compare`. lws bench writes them; bench/torch_reference.py writes
 * the same format for PyTorch. */
#ifndef LWS_TRAIN_REPORT_H
#define LWS_TRAIN_REPORT_H

#include <stdint.h>

#include "lws/status.h"

/* The format version this build writes and reads. */
#define LWS_BENCH_VERSION 1

/* What compare needs of a "train" report. Numbers the report gives as null
 * are NAN. */
typedef struct lws_report {
    char path[1024];
    char label[256], created[64];
    char engine[64], engine_version[64], precision[64];
    char device[256], vendor[128], device_type[64], driver[256], api_version[64];
    double device_memory_bytes;
    char config[128];
    uint32_t n_layers, micro_batch, seq_len, grad_accum;
    double tokens_per_s, step_ms, step_ms_min, step_ms_max, step_ms_stdev;
    double peak_tflops, datasheet_tflops, mfu, mfu_datasheet;
    double memory_bytes;
    char memory_kind[64];
    double load_average;    /* 1-minute load of the host when the run finished */
    uint32_t n_layer_times; /* 0 when the report has no per-layer times */
    double *layer_fwd_ms, *layer_bwd_ms;
    double *layer_flops; /* forward FLOPs of each layer, NAN where not given */
} lws_report;

/* Reads and checks a training report: every field compare uses must be
 * present with its type; errors name the file and the field. */
lws_status lws_report_load(const char *path, lws_report *out);
void lws_report_free(lws_report *r);

#endif
