/* Checkpoint save, find, and load (see checkpoint.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lws/safetensors.h"
#include "train/checkpoint.h"
#include "util/files.h"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Removes a checkpoint directory (or what is left of one). */
static void remove_dir(const char *path) {
    if (lws_remove_tree(path) != LWS_OK) lws_error_clear();
}

static lws_status shape_of(const lws_param *p, uint64_t shape[2], uint32_t *ndim) {
    shape[0] = p->rows;
    shape[1] = p->cols;
    *ndim = p->cols ? 2 : 1;
    return LWS_OK;
}

lws_status lws_save_params(lws_model *m, const float *host, const char *path) {
    float *own = NULL;
    if (!host) {
        own = malloc(m->n_floats * sizeof *own);
        if (!own) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
        lws_status s = lws_model_download(m, LWS_BLOCK_PARAMS, own);
        if (s != LWS_OK) {
            free(own);
            return s;
        }
        host = own;
    }
    lws_st_writer *w;
    lws_status s = lws_st_writer_create(&w);
    for (uint32_t i = 0; s == LWS_OK && i < m->n_params; i++) {
        uint64_t shape[2];
        uint32_t ndim;
        shape_of(&m->params[i], shape, &ndim);
        s = lws_st_add(w, m->params[i].name, LWS_ST_F32, shape, ndim, host + m->params[i].offset);
    }
    char *json = s == LWS_OK ? lws_config_to_json(&m->cfg) : NULL;
    if (s == LWS_OK && !json) s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK) s = lws_st_add_metadata(w, "lws_config", json);
    if (s == LWS_OK) s = lws_st_add_metadata(w, "format", "lws-1");
    if (s == LWS_OK) s = lws_st_write(w, path);
    free(json);
    if (s == LWS_OK || w) lws_st_writer_destroy(w);
    free(own);
    return s;
}

static lws_status save_optimizer(lws_model *m, const char *path) {
    float *mh = malloc(m->n_floats * sizeof *mh), *vh = malloc(m->n_floats * sizeof *vh);
    lws_st_writer *w = NULL;
    lws_status s = mh && vh ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK) s = lws_model_download(m, LWS_BLOCK_ADAM_M, mh);
    if (s == LWS_OK) s = lws_model_download(m, LWS_BLOCK_ADAM_V, vh);
    if (s == LWS_OK) s = lws_st_writer_create(&w);
    char name[128];
    for (uint32_t i = 0; s == LWS_OK && i < m->n_params; i++) {
        uint64_t shape[2];
        uint32_t ndim;
        shape_of(&m->params[i], shape, &ndim);
        snprintf(name, sizeof name, "%s.exp_avg", m->params[i].name);
        s = lws_st_add(w, name, LWS_ST_F32, shape, ndim, mh + m->params[i].offset);
        snprintf(name, sizeof name, "%s.exp_avg_sq", m->params[i].name);
        if (s == LWS_OK) s = lws_st_add(w, name, LWS_ST_F32, shape, ndim, vh + m->params[i].offset);
    }
    if (s == LWS_OK) s = lws_st_write(w, path);
    if (w) lws_st_writer_destroy(w);
    free(mh);
    free(vh);
    return s;
}

static lws_status save_state(const lws_train_state *st, const lws_loss_scale *ls,
                             const char *path) {
    cJSON *o = cJSON_CreateObject();
    char num[32];
    /* 64-bit counters as strings: JSON numbers are doubles in many readers. */
    cJSON_AddNumberToObject(o, "step", (double)st->step);
    cJSON_AddNumberToObject(o, "tokens_seen", (double)st->tokens_seen);
    snprintf(num, sizeof num, "%llu", (unsigned long long)st->sampler_seed);
    cJSON_AddStringToObject(o, "sampler_seed", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)st->sampler_counter);
    cJSON_AddStringToObject(o, "sampler_counter", num);
    cJSON_AddNumberToObject(o, "elapsed_s", st->elapsed_s);
    /* fp16: the loss scale and its count of good updates, so a resumed run
     * scales (and grows the scale) as the uninterrupted one would. */
    if (ls->dynamic) {
        cJSON_AddNumberToObject(o, "loss_scale", ls->scale);
        cJSON_AddNumberToObject(o, "loss_scale_good_steps", ls->good_steps);
    }
    lws_status s = lws_write_json_atomic(path, o);
    cJSON_Delete(o);
    return s;
}

static int parse_step_dir(const char *name, uint64_t *step) {
    unsigned long long v;
    char rest;
    if (sscanf(name, "step-%llu%c", &v, &rest) != 1) return 0;
    *step = v;
    return 1;
}

/* Checkpoint directories of a run, newest first; *count of them (malloc'd names). */
static char **list_checkpoints(const char *ckpt_root, uint32_t *count) {
    *count = 0;
    DIR *d = opendir(ckpt_root);
    if (!d) return NULL;
    char **names = NULL;
    uint64_t *steps = NULL;
    uint32_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t step;
        if (!parse_step_dir(e->d_name, &step)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = realloc(names, cap * sizeof *names);
            steps = realloc(steps, cap * sizeof *steps);
            if (!names || !steps) break;
        }
        names[n] = strdup(e->d_name);
        steps[n++] = step;
    }
    closedir(d);
    for (uint32_t i = 1; i < n; i++) /* insertion sort, newest first */
        for (uint32_t j = i; j > 0 && steps[j] > steps[j - 1]; j--) {
            uint64_t ts = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = ts;
            char *tn = names[j];
            names[j] = names[j - 1];
            names[j - 1] = tn;
        }
    free(steps);
    *count = n;
    return names;
}

lws_status lws_checkpoint_save(lws_model *m, const char *run_dir, const lws_train_state *st,
                               uint32_t keep, char *saved, size_t saved_size) {
    char root[2048], final[2200], tmp[2300], file[2400];
    snprintf(root, sizeof root, "%s/checkpoints", run_dir);
    LWS_TRY(lws_mkdir_p(root));
    snprintf(final, sizeof final, "%s/step-%08llu", root, (unsigned long long)st->step);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    remove_dir(tmp);
    LWS_TRY(lws_mkdir_p(tmp));
    snprintf(file, sizeof file, "%s/model.safetensors", tmp);
    lws_status s = lws_save_params(m, NULL, file);
    if (s == LWS_OK && m->training) {
        snprintf(file, sizeof file, "%s/optimizer.safetensors", tmp);
        s = save_optimizer(m, file);
    }
    if (s == LWS_OK) {
        snprintf(file, sizeof file, "%s/state.json", tmp);
        lws_loss_scale ls = lws_model_loss_scale(m);
        s = save_state(st, &ls, file);
    }
    if (s != LWS_OK) {
        remove_dir(tmp);
        lws_error_context("saving checkpoint %s", final);
        return s;
    }
    if (is_dir(final)) { /* the same step saved again (after a resume): replace it */
        char old[2300];
        snprintf(old, sizeof old, "%s.old", final);
        remove_dir(old);
        if (rename(final, old) != 0)
            return lws_fail(LWS_ERR_IO, "cannot replace %s: %s", final, strerror(errno));
        if (rename(tmp, final) != 0)
            return lws_fail(LWS_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
        remove_dir(old);
    } else if (rename(tmp, final) != 0) {
        return lws_fail(LWS_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    }
    if (saved) snprintf(saved, saved_size, "%s", final);
    /* Keep the newest `keep`. */
    uint32_t n = 0;
    char **names = list_checkpoints(root, &n);
    for (uint32_t i = 0; i < n; i++) {
        if (keep > 0 && i >= keep) {
            snprintf(file, sizeof file, "%s/%s", root, names[i]);
            remove_dir(file);
        }
        free(names[i]);
    }
    free(names);
    return LWS_OK;
}

lws_status lws_checkpoint_find(const char *path, char *dir, size_t dir_size) {
    char probe[2400];
    if (is_file(path)) { /* a model.safetensors file: its directory */
        snprintf(dir, dir_size, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(dir, dir_size, ".");
        return LWS_OK;
    }
    if (!is_dir(path)) return lws_fail(LWS_ERR_IO, "%s: no such checkpoint or run directory", path);
    snprintf(probe, sizeof probe, "%s/model.safetensors", path);
    if (is_file(probe)) {
        snprintf(dir, dir_size, "%s", path);
        return LWS_OK;
    }
    snprintf(probe, sizeof probe, "%s/checkpoints", path);
    uint32_t n = 0;
    char **names = list_checkpoints(probe, &n);
    lws_status s = LWS_OK;
    if (n == 0)
        s = lws_fail(LWS_ERR_IO,
                     "%s holds no checkpoint (expected model.safetensors or checkpoints/step-*/)",
                     path);
    else
        snprintf(dir, dir_size, "%s/%s", probe, names[0]);
    for (uint32_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return s;
}

lws_status lws_checkpoint_config(const char *dir, lws_config *cfg) {
    char file[2400];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    lws_st_file *f;
    LWS_TRY(lws_st_open(file, &f));
    const char *json = lws_st_metadata(f, "lws_config");
    lws_status s =
        json ? lws_config_parse(json, file, cfg)
             : lws_fail(LWS_ERR_DATA, "%s has no lws_config in its metadata: not an lws checkpoint",
                        file);
    lws_st_close(f);
    return s;
}

/* "[64, 256]" */
static void shape_text(const uint64_t *shape, uint32_t ndim, char *out, size_t size) {
    size_t used = (size_t)snprintf(out, size, "[");
    for (uint32_t d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, d ? ", %llu" : "%llu",
                                 (unsigned long long)shape[d]);
    if (used < size) snprintf(out + used, size - used, "]");
}

/* Copies every tensor of the model from file f (with suffix) into host. The
 * model was built from the configuration stored in the checkpoint, so a
 * tensor that is missing, of another shape or dtype, or left over means the
 * file does not match its own configuration: each error names the tensor,
 * what the configuration needs and what the file holds. */
static lws_status read_tensors(lws_model *m, lws_st_file *f, const char *suffix, float *host) {
    char name[160], want[96], have[96];
    for (uint32_t i = 0; i < m->n_params; i++) {
        uint64_t shape[2];
        uint32_t ndim;
        shape_of(&m->params[i], shape, &ndim);
        shape_text(shape, ndim, want, sizeof want);
        snprintf(name, sizeof name, "%s%s", m->params[i].name, suffix);
        const lws_st_tensor *t = lws_st_find(f, name);
        if (!t)
            return lws_fail(LWS_ERR_DATA,
                            "file %s: tensor '%s' is missing; the model configuration stored "
                            "with the checkpoint needs it as F32 %s (the file holds %u tensors, "
                            "the configuration %u)",
                            lws_st_path(f), name, want, lws_st_count(f),
                            m->n_params * (suffix[0] ? 2 : 1));
        int same = t->dtype == LWS_ST_F32 && t->ndim == ndim;
        for (uint32_t d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
        if (!same) {
            shape_text(t->shape, t->ndim, have, sizeof have);
            return lws_fail(LWS_ERR_DATA,
                            "file %s: tensor '%s' is %s %s but the model configuration stored "
                            "with the checkpoint needs F32 %s (the tensors were written for "
                            "another configuration, or the file was altered)",
                            lws_st_path(f), name, lws_st_dtype_name(t->dtype), have, want);
        }
        memcpy(host + m->params[i].offset, t->data, m->params[i].count * sizeof(float));
    }
    uint32_t expected = m->n_params * (suffix[0] ? 2 : 1);
    if (lws_st_count(f) != expected) {
        for (uint32_t i = 0; i < lws_st_count(f); i++) {
            const char *n = lws_st_at(f, i)->name;
            int known = 0;
            for (uint32_t j = 0; j < m->n_params && !known; j++) {
                size_t len = strlen(m->params[j].name);
                known = strncmp(n, m->params[j].name, len) == 0 &&
                        (n[len] == 0 || strcmp(n + len, ".exp_avg") == 0 ||
                         strcmp(n + len, ".exp_avg_sq") == 0);
            }
            if (!known)
                return lws_fail(LWS_ERR_DATA,
                                "file %s: tensor '%s' is not part of the model configuration "
                                "stored with the checkpoint (the file holds %u tensors, the "
                                "configuration %u)",
                                lws_st_path(f), n, lws_st_count(f), expected);
        }
    }
    return LWS_OK;
}

static lws_status load_block(lws_model *m, const char *file, lws_block_kind kind,
                             const char *suffix, lws_block_kind kind2, const char *suffix2) {
    lws_st_file *f;
    LWS_TRY(lws_st_open(file, &f));
    float *host = calloc(m->n_floats, sizeof *host);
    lws_status s = host ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK) s = read_tensors(m, f, suffix, host);
    if (s == LWS_OK) s = lws_model_upload(m, kind, host);
    if (s == LWS_OK && suffix2) {
        s = read_tensors(m, f, suffix2, host);
        if (s == LWS_OK) s = lws_model_upload(m, kind2, host);
    }
    free(host);
    lws_st_close(f);
    return s;
}

/* state.json holds a handful of numbers; anything much bigger is not one. */
#define STATE_MAX_BYTES (64 * 1024)

/* The loss scale of an fp16 run, when the state has one (a checkpoint of
 * another precision has none, and the scale starts afresh). */
static lws_status load_loss_scale(lws_model *m, const cJSON *o, const char *path) {
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(o, "loss_scale");
    const cJSON *good = cJSON_GetObjectItemCaseSensitive(o, "loss_scale_good_steps");
    if (!scale || !lws_model_loss_scale(m).dynamic) return LWS_OK;
    if (!cJSON_IsNumber(scale) || !cJSON_IsNumber(good) || good->valuedouble < 0 ||
        good->valuedouble > UINT32_MAX)
        return lws_fail(LWS_ERR_DATA,
                        "%s: loss_scale and loss_scale_good_steps must be numbers (a count "
                        "below 2^32)",
                        path);
    lws_status s = lws_model_set_loss_scale(m, scale->valuedouble, (uint32_t)good->valuedouble);
    if (s != LWS_OK) lws_error_context("%s", path);
    return s;
}

static lws_status load_state(lws_model *m, const char *path, lws_train_state *st) {
    char *text;
    size_t len;
    LWS_TRY(lws_read_file(path, STATE_MAX_BYTES, &text, &len));
    cJSON *o = cJSON_ParseWithLength(text, len);
    free(text);
    if (!o) return lws_fail(LWS_ERR_DATA, "%s: not valid JSON", path);
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(o, "step");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(o, "tokens_seen");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "sampler_seed");
    const cJSON *counter = cJSON_GetObjectItemCaseSensitive(o, "sampler_counter");
    const cJSON *elapsed = cJSON_GetObjectItemCaseSensitive(o, "elapsed_s");
    lws_status s = LWS_OK;
    if (!cJSON_IsNumber(step) || !cJSON_IsNumber(tokens) || !cJSON_IsString(seed) ||
        !cJSON_IsString(counter))
        s = lws_fail(LWS_ERR_DATA,
                     "%s: expected step, tokens_seen (numbers), sampler_seed and "
                     "sampler_counter (strings)",
                     path);
    else {
        st->step = (uint64_t)step->valuedouble;
        st->tokens_seen = (uint64_t)tokens->valuedouble;
        st->sampler_seed = strtoull(seed->valuestring, NULL, 10);
        st->sampler_counter = strtoull(counter->valuestring, NULL, 10);
        st->elapsed_s = cJSON_IsNumber(elapsed) ? elapsed->valuedouble : 0;
        s = load_loss_scale(m, o, path);
    }
    cJSON_Delete(o);
    return s;
}

lws_status lws_checkpoint_load(lws_model *m, const char *dir, lws_train_state *st) {
    char file[2400];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    LWS_TRY(load_block(m, file, LWS_BLOCK_PARAMS, "", LWS_BLOCK_PARAMS, NULL));
    if (!st) return LWS_OK;
    snprintf(file, sizeof file, "%s/optimizer.safetensors", dir);
    LWS_TRY(load_block(m, file, LWS_BLOCK_ADAM_M, ".exp_avg", LWS_BLOCK_ADAM_V, ".exp_avg_sq"));
    snprintf(file, sizeof file, "%s/state.json", dir);
    return load_state(m, file, st);
}

lws_status lws_checkpoint_load_params(lws_model *m, const char *dir) {
    return lws_checkpoint_load(m, dir, NULL);
}

lws_status lws_checkpoint_remove(const char *dir) {
    return lws_remove_tree(dir);
}
