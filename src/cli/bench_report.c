/* The parts every benchmark report shares (docs/bench-report.md): version,
 * engine, host, device and config records, statistics, writing the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "train/report.h"
#include "util/files.h"
#include "util/when.h"

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

lws_stats lws_stats_of(const double *v, uint32_t n) {
    lws_stats s = {0, 0, 0, 0, 0};
    if (n == 0) return s;
    double *sorted = malloc(n * sizeof *sorted);
    if (!sorted) return s;
    memcpy(sorted, v, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_doubles);
    s.median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    s.min = sorted[0];
    s.max = sorted[n - 1];
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += v[i];
    s.mean = sum / n;
    double sq = 0;
    for (uint32_t i = 0; i < n; i++) sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.stdev = n > 1 ? sqrt(sq / (n - 1)) : 0;
    free(sorted);
    return s;
}

/* "model name : AMD EPYC ..." of /proc/cpuinfo, or the machine name. */
static void cpu_model(char *out, size_t cap) {
    struct utsname u;
    snprintf(out, cap, "%s", uname(&u) == 0 ? u.machine : "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, cap, "%s", colon);
        break;
    }
    fclose(f);
}

static cJSON *host_json(void) {
    cJSON *o = cJSON_CreateObject();
    char text[512];
    if (gethostname(text, sizeof text) != 0) snprintf(text, sizeof text, "unknown");
    text[sizeof text - 1] = 0;
    cJSON_AddStringToObject(o, "hostname", text);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(text, sizeof text, "%s %s", u.sysname, u.release);
    else
        snprintf(text, sizeof text, "unknown");
    cJSON_AddStringToObject(o, "os", text);
    cpu_model(text, sizeof text);
    cJSON_AddStringToObject(o, "cpu", text);
    cJSON_AddNumberToObject(o, "logical_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) != 3) load[0] = load[1] = load[2] = 0;
    cJSON *l = cJSON_AddArrayToObject(o, "load_average");
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(l, cJSON_CreateNumber(round(load[i] * 100) / 100));
    return o;
}

static cJSON *device_json(const lws_device_caps *c) {
    cJSON *o = cJSON_CreateObject();
    char text[600];
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddStringToObject(o, "vendor", c->vendor);
    cJSON_AddStringToObject(o, "type", c->device_type);
    snprintf(text, sizeof text, "%s %s", c->driver_name, c->driver_info);
    cJSON_AddStringToObject(o, "driver", text);
    snprintf(text, sizeof text, "%u.%u.%u", VK_API_VERSION_MAJOR(c->api_version),
             VK_API_VERSION_MINOR(c->api_version), VK_API_VERSION_PATCH(c->api_version));
    cJSON_AddStringToObject(o, "api_version", text);
    cJSON_AddNumberToObject(o, "subgroup_size", c->subgroup_size);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)c->device_local_bytes);
    cJSON_AddNumberToObject(o, "index", c->index);
    cJSON_AddNumberToObject(o, "vendor_id", c->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", c->device_id);
    cJSON_AddNumberToObject(o, "driver_version", c->driver_version);
    cJSON_AddNumberToObject(o, "max_shared_memory", c->max_shared_memory);
    cJSON_AddNumberToObject(o, "timestamp_period_ns", c->timestamp_period_ns);
    return o;
}

cJSON *lws_report_begin(const char *kind, const char *label, const char *precision,
                        const lws_device_caps *caps) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "lws_bench_version", LWS_BENCH_VERSION);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "label", label);
    char created[64];
    lws_utc_now(created, sizeof created);
    cJSON_AddStringToObject(o, "created", created);
    cJSON *engine = cJSON_AddObjectToObject(o, "engine");
    cJSON_AddStringToObject(engine, "name", "lws");
    cJSON_AddStringToObject(engine, "version", LWS_VERSION);
    cJSON_AddStringToObject(engine, "precision", precision);
    cJSON_AddItemToObject(o, "host", host_json());
    cJSON_AddItemToObject(o, "device", device_json(caps));
    return o;
}

static cJSON *u32_array(const uint32_t *v, uint32_t n) {
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *lws_report_config(const lws_config *cfg, uint32_t seq_len) {
    cJSON *o = cJSON_CreateObject();
    const lws_model_config *m = &cfg->model;
    cJSON_AddStringToObject(o, "name", cfg->name);
    cJSON_AddStringToObject(o, "path", cfg->path);
    cJSON_AddNumberToObject(o, "n_layers", m->n_layers);
    cJSON_AddNumberToObject(o, "d_model", m->d_model);
    cJSON_AddNumberToObject(o, "head_dim", m->head_dim);
    cJSON_AddNumberToObject(o, "vocab_size", m->vocab_size);
    cJSON_AddStringToObject(o, "block", m->block == LWS_BLOCK_POST_NORM ? "post_norm" : "pre_norm");
    cJSON_AddBoolToObject(o, "tied_embeddings", m->tied_embeddings);
    cJSON_AddBoolToObject(o, "qk_norm", m->qk_norm);
    if (cfg->lws.variant[0]) cJSON_AddStringToObject(o, "variant", cfg->lws.variant);
    cJSON_AddNumberToObject(o, "params", (double)lws_config_params(cfg));
    uint32_t q[LWS_MAX_LAYERS], kv[LWS_MAX_LAYERS], ffn[LWS_MAX_LAYERS];
    for (uint32_t i = 0; i < m->n_layers; i++) {
        q[i] = cfg->layers[i].q_heads;
        kv[i] = cfg->layers[i].kv_heads;
        ffn[i] = cfg->layers[i].ffn_dim;
    }
    cJSON_AddItemToObject(o, "q_heads", u32_array(q, m->n_layers));
    cJSON_AddItemToObject(o, "kv_heads", u32_array(kv, m->n_layers));
    cJSON_AddItemToObject(o, "ffn_dims", u32_array(ffn, m->n_layers));
    cJSON_AddNumberToObject(o, "train_flops_per_token",
                            lws_config_train_flops_per_token_at(cfg, seq_len));
    return o;
}

/* A report file is written atomically (lws_write_json_atomic), so an
 * interrupted benchmark never leaves a torn report for `lws compare`. */
lws_status lws_report_write(cJSON *report, const char *path) {
    if (strcmp(path, "-") != 0) return lws_write_json_atomic(path, report);
    char *text = cJSON_Print(report);
    if (!text) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory printing the report");
    int bad = fputs(text, stdout) < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0;
    free(text);
    if (bad) return lws_fail(LWS_ERR_IO, "standard output: writing the report failed");
    return LWS_OK;
}

int lws_report_finish(cJSON *report, const char *path) {
    int rc = 0;
    if (lws_report_write(report, path) != LWS_OK)
        rc = lws_cli_error();
    else if (strcmp(path, "-") != 0)
        printf("report: %s\n", path);
    cJSON_Delete(report);
    return rc;
}

void lws_json_number_or_null(cJSON *o, const char *name, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

void lws_print_device(const lws_device_caps *c) {
    printf("device: %s\n", c->name);
    printf("  %s %s, driver %s %s, Vulkan %u.%u.%u, subgroup %u, %.2f GiB device memory\n",
           c->vendor, c->device_type, c->driver_name, c->driver_info,
           VK_API_VERSION_MAJOR(c->api_version), VK_API_VERSION_MINOR(c->api_version),
           VK_API_VERSION_PATCH(c->api_version), c->subgroup_size,
           c->device_local_bytes / 1073741824.0);
}

void lws_print_config(const lws_config *cfg) {
    const lws_model_config *m = &cfg->model;
    printf("config: %s (%s): %u layers, d_model %u, head_dim %u, vocab %u, %llu parameters%s%s\n",
           cfg->name, cfg->path, m->n_layers, m->d_model, m->head_dim, m->vocab_size,
           (unsigned long long)lws_config_params(cfg), cfg->lws.variant[0] ? ", variant " : "",
           cfg->lws.variant);
    const char *rows[3] = {"q_heads ", "kv_heads", "ffn_dim "};
    for (int r = 0; r < 3; r++) {
        printf("  %s", rows[r]);
        for (uint32_t i = 0; i < m->n_layers; i++) {
            const lws_layer_shape *s = &cfg->layers[i];
            printf(" %u", r == 0 ? s->q_heads : r == 1 ? s->kv_heads : s->ffn_dim);
        }
        printf("\n");
    }
}
