/* Run directories (see run_dir.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "train/checkpoint.h"
#include "train/run_dir.h"
#include "util/files.h"

/* A log line is at most a few kilobytes; a log of a long run is large. */
#define LOG_MAX_BYTES ((size_t)1 << 30)
#define CONFIG_MAX_BYTES ((size_t)16 << 20)

static int exists(const char *dir, const char *name) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

int lws_run_dir_in_use(const char *dir) {
    return exists(dir, "log.jsonl") || exists(dir, "config.json") || exists(dir, "checkpoints");
}

void lws_run_dir_of(const char *path, char *out, size_t n) {
    char dir[4096];
    struct stat st;
    snprintf(out, n, "%s", "");
    if (stat(path, &st) != 0) return;
    snprintf(dir, sizeof dir, "%s", path);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') dir[--len] = 0;
    if (!S_ISDIR(st.st_mode)) { /* a model.safetensors: its checkpoint directory */
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, sizeof dir, ".");
    }
    if (exists(dir, "checkpoints")) { /* a run directory itself */
        snprintf(out, n, "%s", dir);
        return;
    }
    /* RUN/checkpoints/step-N */
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    char *base = strrchr(dir, '/');
    if (strcmp(base ? base + 1 : dir, "checkpoints") != 0) return;
    if (!base) {
        snprintf(out, n, ".");
        return;
    }
    *base = 0;
    snprintf(out, n, "%s", dir[0] ? dir : "/");
}

lws_status lws_run_dir_clear(const char *dir) {
    static const char *const parts[] = {"checkpoints", "log.jsonl", "config.json"};
    char path[4096];
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, parts[i]);
        LWS_TRY(lws_remove_tree(path));
    }
    /* the configs the run continued with after resumes */
    DIR *d = opendir(dir);
    struct dirent *e;
    lws_status s = LWS_OK;
    while (d && s == LWS_OK && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "config.step-", 12) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        s = lws_remove_tree(path);
    }
    if (d) closedir(d);
    return s;
}

/* The step a log line is about, or -1 for a line without one. */
static double line_step(const char *line, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, line, len);
    copy[len] = 0;
    cJSON *o = cJSON_Parse(copy);
    free(copy);
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
    double v = cJSON_IsNumber(step) ? step->valuedouble : -1;
    cJSON_Delete(o);
    return v;
}

lws_status lws_run_dir_trim_log(const char *dir, uint64_t step) {
    char path[4096];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    if (access(path, F_OK) != 0) return LWS_OK;
    char *text = NULL;
    size_t len = 0;
    LWS_TRY(lws_read_file(path, LOG_MAX_BYTES, &text, &len));
    /* Keep lines in place, dropping those of later steps. */
    size_t kept = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        double s = line_step(text + at, end - at);
        if (s <= (double)step) {
            memmove(text + kept, text + at, end - at);
            kept += end - at;
        }
        at = end;
    }
    lws_status s = kept == len ? LWS_OK : lws_write_file_atomic(path, text, kept);
    free(text);
    return s;
}

lws_status lws_run_dir_write_config(const char *dir, const lws_config *cfg, uint64_t step,
                                    char *written, size_t n) {
    char path[4096];
    if (n) written[0] = 0;
    char *json = lws_config_to_json(cfg);
    if (!json) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t len = strlen(json);
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *old = NULL;
    size_t old_len = 0;
    lws_status s = LWS_OK;
    if (access(path, F_OK) == 0 && lws_read_file(path, CONFIG_MAX_BYTES, &old, &old_len) == LWS_OK &&
        strcmp(old, json) != 0) {
        snprintf(path, sizeof path, "%s/config.step-%08llu.json", dir, (unsigned long long)step);
        s = lws_write_file_atomic(path, json, len);
        if (s == LWS_OK) snprintf(written, n, "%s", path);
    } else if (!old) {
        lws_error_clear();
        s = lws_write_file_atomic(path, json, len);
        if (s == LWS_OK) snprintf(written, n, "%s", path);
    }
    free(old);
    free(json);
    return s;
}
