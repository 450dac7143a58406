/* Checkpoint save, find, and load (see checkpoint.h). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
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

/* The first element of a tensor of m in host (a copy of a whole block)
 * that is NaN or infinite: *tensor and *at, or 0 when every value is finite. */
static int find_nonfinite(const lws_model *m, const float *host, uint32_t *tensor, uint64_t *at) {
    for (uint32_t i = 0; i < m->n_params; i++) {
        const float *x = host + m->params[i].offset;
        for (uint64_t j = 0; j < m->params[i].count; j++)
            if (!isfinite(x[j])) {
                *tensor = i, *at = j;
                return 1;
            }
    }
    return 0;
}

/* Nothing that is not finite goes into a checkpoint: a run that diverged
 * keeps its last good checkpoint as the newest. */
static lws_status check_finite(const lws_model *m, const float *host, const char *what,
                               const char *path) {
    uint32_t tensor;
    uint64_t at;
    if (!find_nonfinite(m, host, &tensor, &at)) return LWS_OK;
    return lws_fail(LWS_ERR_NUMERIC,
                    "%s not written: %s of '%s' element %llu is %g; the weights are no longer "
                    "finite",
                    path, what, m->params[tensor].name, (unsigned long long)at,
                    (double)host[m->params[tensor].offset + at]);
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
    lws_status s = check_finite(m, host, "the parameter", path);
    if (s != LWS_OK) {
        free(own);
        return s;
    }
    lws_st_writer *w;
    s = lws_st_writer_create(&w);
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

/* The moments from the model, or from host copies given. */
static lws_status save_optimizer(lws_model *m, const char *path, const float *given_m,
                                 const float *given_v) {
    float *own_m = given_m ? NULL : malloc(m->n_floats * sizeof *own_m);
    float *own_v = given_v ? NULL : malloc(m->n_floats * sizeof *own_v);
    const float *mh = given_m ? given_m : own_m, *vh = given_v ? given_v : own_v;
    lws_st_writer *w = NULL;
    lws_status s = mh && vh ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK && own_m) s = lws_model_download(m, LWS_BLOCK_ADAM_M, own_m);
    if (s == LWS_OK && own_v) s = lws_model_download(m, LWS_BLOCK_ADAM_V, own_v);
    if (s == LWS_OK) s = check_finite(m, mh, "the first moment", path);
    if (s == LWS_OK) s = check_finite(m, vh, "the second moment", path);
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
    free(own_m);
    free(own_v);
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
    cJSON_AddNumberToObject(o, "world_size", st->world_size ? st->world_size : 1);
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

/* "step-" and 1 to 19 digits, nothing else (step-N.tmp and step-N.old are
 * not checkpoints). */
static int parse_step_dir(const char *name, uint64_t *step) {
    if (strncmp(name, "step-", 5) != 0) return 0;
    size_t digits = strspn(name + 5, "0123456789");
    if (digits == 0 || digits > 19 || name[5 + digits] != 0) return 0;
    *step = strtoull(name + 5, NULL, 10);
    return 1;
}

char **lws_checkpoint_list(const char *ckpt_root, uint64_t **steps_out, uint32_t *count) {
    *count = 0;
    if (steps_out) *steps_out = NULL;
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
            char **more_names = realloc(names, cap * sizeof *names);
            if (more_names) names = more_names;
            uint64_t *more_steps = more_names ? realloc(steps, cap * sizeof *steps) : NULL;
            if (more_steps) steps = more_steps;
            if (!more_names || !more_steps) break;
        }
        if (!(names[n] = strdup(e->d_name))) break;
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
    if (steps_out)
        *steps_out = steps;
    else
        free(steps);
    *count = n;
    return names;
}

void lws_checkpoint_list_free(char **names, uint64_t *steps, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) free(names[i]);
    free(names);
    free(steps);
}

lws_status lws_checkpoint_save(lws_model *m, const char *run_dir, const lws_train_state *st,
                               uint32_t keep, char *saved, size_t saved_size) {
    return lws_checkpoint_save_moments(m, run_dir, st, keep, NULL, NULL, saved, saved_size);
}

lws_status lws_checkpoint_save_moments(lws_model *m, const char *run_dir, const lws_train_state *st,
                                       uint32_t keep, const float *exp_avg, const float *exp_avg_sq,
                                       char *saved, size_t saved_size) {
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
        s = save_optimizer(m, file, exp_avg, exp_avg_sq);
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
    char **names = lws_checkpoint_list(root, NULL, &n);
    for (uint32_t i = 0; keep > 0 && i < n; i++) {
        if (i < keep) continue;
        snprintf(file, sizeof file, "%s/%s", root, names[i]);
        remove_dir(file);
    }
    lws_checkpoint_list_free(names, NULL, n);
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
    char **names = lws_checkpoint_list(probe, NULL, &n);
    lws_status s = LWS_OK;
    if (n == 0)
        s = lws_fail(LWS_ERR_IO,
                     "%s holds no checkpoint (expected model.safetensors or checkpoints/step-*/)",
                     path);
    else
        snprintf(dir, dir_size, "%s/%s", probe, names[0]);
    lws_checkpoint_list_free(names, NULL, n);
    return s;
}

lws_status lws_checkpoint_config(const char *dir, lws_config *cfg) {
    char file[2400];
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    lws_st_file *f;
    LWS_TRY(lws_st_open(file, &f));
    const char *json = lws_st_metadata(f, "lws_config");
    lws_status s =
        json ? lws_config_parse_resolved(json, file, cfg)
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
    uint32_t tensor;
    uint64_t at;
    if (find_nonfinite(m, host, &tensor, &at))
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tensor '%s%s' element %llu is %g; lws writes only finite "
                        "checkpoints, so the file was altered or damaged",
                        lws_st_path(f), m->params[tensor].name, suffix, (unsigned long long)at,
                        (double)host[m->params[tensor].offset + at]);
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

/* The tensors of file with suffix into host, and with suffix2 into host2
 * (when suffix2 is not NULL). */
static lws_status read_block(lws_model *m, const char *file, const char *suffix, float *host,
                             const char *suffix2, float *host2) {
    lws_st_file *f;
    LWS_TRY(lws_st_open(file, &f));
    lws_status s = read_tensors(m, f, suffix, host);
    if (s == LWS_OK && suffix2) s = read_tensors(m, f, suffix2, host2);
    lws_st_close(f);
    return s;
}

static lws_status load_block(lws_model *m, const char *file, lws_block_kind kind,
                             const char *suffix, lws_block_kind kind2, const char *suffix2) {
    float *host = calloc(m->n_floats, sizeof *host);
    float *host2 = suffix2 ? calloc(m->n_floats, sizeof *host2) : NULL;
    lws_status s = host && (host2 || !suffix2)
                       ? read_block(m, file, suffix, host, suffix2, host2)
                       : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK) s = lws_model_upload(m, kind, host);
    if (s == LWS_OK && suffix2) s = lws_model_upload(m, kind2, host2);
    free(host);
    free(host2);
    return s;
}

/* state.json holds a handful of numbers; anything much bigger is not one. */
#define STATE_MAX_BYTES (64 * 1024)
/* The largest integer a JSON number (a double) holds exactly. */
#define JSON_EXACT_MAX 9007199254740992.0

/* A whole number in [lo, hi] (hi at most JSON_EXACT_MAX). */
static lws_status state_count(const char *path, const cJSON *o, const char *key, double lo,
                              double hi, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return lws_fail(LWS_ERR_DATA, "%s: %s: %s; expected a whole number from %.0f to %.0f", path,
                        key, v ? "not a number" : "missing", lo, hi);
    double x = v->valuedouble;
    if (!(x >= lo && x <= hi) || x != floor(x))
        return lws_fail(LWS_ERR_DATA,
                        "%s: %s: value %.17g is not allowed; expected a whole "
                        "number from %.0f to %.0f",
                        path, key, x, lo, hi);
    *out = (uint64_t)x;
    return LWS_OK;
}

/* A 64-bit counter written as a decimal string (JSON numbers are doubles in
 * many readers): digits only, no sign, within 64 bits. */
static lws_status state_u64(const char *path, const cJSON *o, const char *key, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *text = cJSON_IsString(v) ? v->valuestring : NULL;
    size_t n = text ? strlen(text) : 0;
    int ok = n > 0 && n <= 20 && strspn(text, "0123456789") == n;
    errno = 0;
    unsigned long long x = ok ? strtoull(text, NULL, 10) : 0;
    if (!ok || errno == ERANGE)
        return lws_fail(LWS_ERR_DATA,
                        "%s: %s: %s; expected a decimal string of an integer from 0 to "
                        "18446744073709551615, e.g. \"42\"",
                        path, key,
                        !v     ? "missing"
                        : text ? "not such a string"
                               : "not a string");
    *out = x;
    return LWS_OK;
}

/* fp16's loss scale: a power of two in [1, 2^24] with its count of good
 * updates, both or neither. */
static lws_status read_loss_scale(const char *path, const cJSON *o, lws_train_state *st) {
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(o, "loss_scale");
    const cJSON *good = cJSON_GetObjectItemCaseSensitive(o, "loss_scale_good_steps");
    st->has_loss_scale = 0;
    if (!scale && !good) return LWS_OK;
    int exponent = 0;
    double x = cJSON_IsNumber(scale) ? scale->valuedouble : 0;
    if (!cJSON_IsNumber(scale) || !(x >= 1 && x <= 16777216.0) || frexp(x, &exponent) != 0.5)
        return lws_fail(LWS_ERR_DATA,
                        "%s: loss_scale: %s; expected a power of two from 1 to 2^24", path,
                        scale ? "not such a number" : "missing beside loss_scale_good_steps");
    uint64_t steps = 0;
    LWS_TRY(state_count(path, o, "loss_scale_good_steps", 0, 4294967295.0, &steps));
    st->has_loss_scale = 1;
    st->loss_scale = x;
    st->loss_scale_good_steps = (uint32_t)steps;
    return LWS_OK;
}

/* Every field, its type and range; dir_step: the step the checkpoint's
 * directory is named for (step-NNNNNNNN), which the state must agree with,
 * or -1 when its name gives none. */
static lws_status read_state(const char *path, const cJSON *o, int64_t dir_step,
                             lws_train_state *st) {
    static const char *const keys[] = {
        "step",      "tokens_seen", "sampler_seed", "sampler_counter",
        "elapsed_s", "world_size",  "loss_scale",   "loss_scale_good_steps"};
    if (!cJSON_IsObject(o))
        return lws_fail(LWS_ERR_DATA, "%s: not a JSON object; a checkpoint's state.json is one",
                        path);
    for (const cJSON *c = o->child; c; c = c->next) {
        int known = 0;
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            known |= !strcmp(c->string, keys[k]);
        if (!known)
            return lws_fail(LWS_ERR_DATA,
                            "%s: %s: unknown key; state.json holds step, tokens_seen, "
                            "sampler_seed, sampler_counter, elapsed_s, world_size and (fp16) "
                            "loss_scale and loss_scale_good_steps",
                            path, c->string);
    }
    /* Steps count a run's updates: train.steps is a 32-bit count. */
    LWS_TRY(state_count(path, o, "step", 1, 4294967295.0, &st->step));
    if (dir_step >= 0 && st->step != (uint64_t)dir_step)
        return lws_fail(LWS_ERR_DATA,
                        "%s: step: value %llu disagrees with its directory, the checkpoint of "
                        "step %lld; the file was altered or moved",
                        path, (unsigned long long)st->step, (long long)dir_step);
    LWS_TRY(state_count(path, o, "tokens_seen", 0, JSON_EXACT_MAX, &st->tokens_seen));
    LWS_TRY(state_u64(path, o, "sampler_seed", &st->sampler_seed));
    LWS_TRY(state_u64(path, o, "sampler_counter", &st->sampler_counter));
    st->elapsed_s = 0;
    const cJSON *elapsed = cJSON_GetObjectItemCaseSensitive(o, "elapsed_s");
    if (elapsed && (!cJSON_IsNumber(elapsed) || !(elapsed->valuedouble >= 0) ||
                    !isfinite(elapsed->valuedouble)))
        return lws_fail(LWS_ERR_DATA,
                        "%s: elapsed_s: not a number of seconds >= 0; expected e.g. 12.5", path);
    if (elapsed) st->elapsed_s = elapsed->valuedouble;
    /* written since runs have more than one rank; older checkpoints had one */
    uint64_t ranks = 1;
    if (cJSON_GetObjectItemCaseSensitive(o, "world_size"))
        LWS_TRY(state_count(path, o, "world_size", 1, 2147483647.0, &ranks));
    st->world_size = (uint32_t)ranks;
    return read_loss_scale(path, o, st);
}

static lws_status load_state(const char *path, int64_t dir_step, lws_train_state *st) {
    char *text;
    size_t len;
    LWS_TRY(lws_read_file(path, STATE_MAX_BYTES, &text, &len));
    /* The whole text is one JSON value: no NUL, nothing after it. */
    cJSON *o = memchr(text, 0, len) ? NULL : cJSON_ParseWithLengthOpts(text, len + 1, NULL, 1);
    free(text);
    if (!o) return lws_fail(LWS_ERR_DATA, "%s: not valid JSON", path);
    lws_status s = read_state(path, o, dir_step, st);
    cJSON_Delete(o);
    return s;
}

/* The step a checkpoint directory is named for, or -1. */
static int64_t dir_step_of(const char *dir) {
    char name[4096];
    snprintf(name, sizeof name, "%s", dir);
    size_t n = strlen(name);
    while (n > 1 && name[n - 1] == '/') name[--n] = 0;
    const char *base = strrchr(name, '/');
    uint64_t step;
    return parse_step_dir(base ? base + 1 : name, &step) && step <= INT64_MAX ? (int64_t)step : -1;
}

lws_status lws_checkpoint_read_state(const char *dir, lws_train_state *st) {
    char file[2400];
    snprintf(file, sizeof file, "%s/state.json", dir);
    return load_state(file, dir_step_of(dir), st);
}

lws_status lws_checkpoint_load(lws_model *m, const char *dir, lws_train_state *st) {
    char file[2400];
    lws_train_state state;
    /* the small file first: a bad state refuses the checkpoint at once */
    if (st) LWS_TRY(lws_checkpoint_read_state(dir, &state));
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    LWS_TRY(load_block(m, file, LWS_BLOCK_PARAMS, "", LWS_BLOCK_PARAMS, NULL));
    if (!st) return LWS_OK;
    snprintf(file, sizeof file, "%s/optimizer.safetensors", dir);
    LWS_TRY(load_block(m, file, LWS_BLOCK_ADAM_M, ".exp_avg", LWS_BLOCK_ADAM_V, ".exp_avg_sq"));
    LWS_TRY(lws_checkpoint_take_loss_scale(m, dir, &state));
    *st = state;
    return LWS_OK;
}

lws_status lws_checkpoint_take_loss_scale(lws_model *m, const char *dir,
                                          const lws_train_state *st) {
    if (!st->has_loss_scale || !lws_model_loss_scale(m).dynamic) return LWS_OK;
    lws_status s = lws_model_set_loss_scale(m, st->loss_scale, st->loss_scale_good_steps);
    if (s != LWS_OK) lws_error_context("%s/state.json", dir);
    return s;
}

lws_status lws_checkpoint_read_host(lws_model *m, const char *dir, float *params, float *exp_avg,
                                    float *exp_avg_sq, lws_train_state *st) {
    char file[2400];
    LWS_TRY(lws_checkpoint_read_state(dir, st));
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    LWS_TRY(read_block(m, file, "", params, NULL, NULL));
    snprintf(file, sizeof file, "%s/optimizer.safetensors", dir);
    return read_block(m, file, ".exp_avg", exp_avg, ".exp_avg_sq", exp_avg_sq);
}

lws_status lws_checkpoint_load_params(lws_model *m, const char *dir) {
    return lws_checkpoint_load(m, dir, NULL);
}

lws_status lws_checkpoint_remove(const char *dir) {
    return lws_remove_tree(dir);
}
