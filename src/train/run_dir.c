/* Run directories (see run_dir.h). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
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
    return exists(dir, "log.jsonl") || exists(dir, "config.json") || exists(dir, "checkpoints") ||
           exists(dir, "superseded");
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
    static const char *const parts[] = {"checkpoints", "log.jsonl", "config.json", "superseded"};
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

/* The step a log line is about; -1 for a line without one, NAN for a line
 * that is not JSON (the torn last line of a run that was killed). */
static double line_step(const char *line, size_t len) {
    if (len == 0 || line[len - 1] != '\n') return NAN;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, line, len);
    copy[len] = 0;
    cJSON *o = cJSON_Parse(copy);
    free(copy);
    if (!o) return NAN;
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
    double v = cJSON_IsNumber(step) ? step->valuedouble : -1;
    cJSON_Delete(o);
    return v;
}

lws_status lws_run_dir_trim_log(const char *dir, uint64_t step, const char *moved_to) {
    char path[4096];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    if (access(path, F_OK) != 0) return LWS_OK;
    char *text = NULL;
    size_t len = 0;
    LWS_TRY(lws_read_file(path, LOG_MAX_BYTES, &text, &len));
    /* Keep lines in place, dropping those of later steps (into `moved`, when
     * they are kept elsewhere) and a torn line. */
    char *moved = moved_to ? malloc(len + 1) : NULL;
    if (moved_to && !moved) {
        free(text);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    size_t kept = 0, n_moved = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        double s = line_step(text + at, end - at);
        if (s <= (double)step) {
            memmove(text + kept, text + at, end - at);
            kept += end - at;
        } else if (moved && !isnan(s)) {
            memcpy(moved + n_moved, text + at, end - at);
            n_moved += end - at;
        }
        at = end;
    }
    lws_status s = LWS_OK;
    if (moved && n_moved) {
        char aside[4200];
        snprintf(aside, sizeof aside, "%s/log.jsonl", moved_to);
        s = lws_write_file_atomic(aside, moved, n_moved);
    }
    if (s == LWS_OK && kept != len) s = lws_write_file_atomic(path, text, kept);
    free(moved);
    free(text);
    return s;
}

/* A directory name under dir/superseded/ not yet taken: after-step-N, then
 * after-step-N.2, ... */
static lws_status superseded_dir(const char *dir, uint64_t step, char *out, size_t n) {
    for (unsigned k = 1; k < 1000; k++) {
        char suffix[16] = "";
        if (k > 1) snprintf(suffix, sizeof suffix, ".%u", k);
        snprintf(out, n, "%s/superseded/after-step-%08llu%s", dir, (unsigned long long)step,
                 suffix);
        if (access(out, F_OK) != 0) return lws_mkdir_p(out);
    }
    return lws_fail(LWS_ERR_IO, "%s/superseded: too many branches from step %llu", dir,
                    (unsigned long long)step);
}

lws_status lws_run_dir_branch(const char *dir, uint64_t step, int branch, char *moved_to,
                              size_t n) {
    if (n) moved_to[0] = 0;
    char root[4096], later[1024] = "";
    snprintf(root, sizeof root, "%s/checkpoints", dir);
    uint64_t *steps = NULL;
    uint32_t count = 0, n_later = 0;
    char **names = lws_checkpoint_list(root, &steps, &count);
    for (uint32_t i = 0; i < count && steps[i] > step; i++, n_later++)
        if (strlen(later) + strlen(names[i]) + 3 < sizeof later)
            snprintf(later + strlen(later), sizeof later - strlen(later), "%s%s",
                     later[0] ? ", " : "", names[i]);
    lws_status s = LWS_OK;
    if (n_later && !branch)
        s = lws_fail(LWS_ERR_INVALID,
                     "run %s has checkpoints after step %llu (%s): continuing from step %llu "
                     "would fork the run. Give --branch to continue from it (the later "
                     "checkpoints and their log lines are moved to %s/superseded/), or resume "
                     "the newest with --resume %s",
                     dir, (unsigned long long)step, later, (unsigned long long)step, dir, dir);
    else if (n_later)
        s = superseded_dir(dir, step, moved_to, n);
    if (s == LWS_OK && n_later) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/checkpoints", moved_to);
        s = lws_mkdir_p(sub);
    }
    for (uint32_t i = 0; s == LWS_OK && i < n_later; i++) {
        char from[4200], to[4400];
        snprintf(from, sizeof from, "%s/%s", root, names[i]);
        snprintf(to, sizeof to, "%s/checkpoints/%s", moved_to, names[i]);
        if (rename(from, to) != 0)
            s = lws_fail(LWS_ERR_IO, "cannot move %s to %s: %s", from, to, strerror(errno));
    }
    lws_checkpoint_list_free(names, steps, count);
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
