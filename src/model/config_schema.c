/* The config schema: every key a config may hold, with its JSON type and, for
 * a string with a fixed set of values, the names allowed. Unknown-key checks,
 * the typed reads and --set overrides all consult this one table, so a new
 * key is declared here once and read by its section's reader. */
#include <stdio.h>
#include <string.h>

#include "model/config_internal.h"

/* In the order of the enums in lws/config.h: a value's index is the enum. */
static const char *const block_names[] = {"post_norm", "pre_norm", NULL};
static const char *const schedule_names[] = {"constant", "cosine", "wsd", NULL};
static const char *const precision_names[] = {"fp32", "bf16", "fp16", NULL};

/* Entries of one object are listed in the order error messages list them. */
static const cfg_key schema[] = {
    {"name", CFG_STRING, NULL},
    {"description", CFG_STRING, NULL},
    {"model", CFG_OBJECT, NULL},
    {"lws", CFG_OBJECT, NULL},
    {"train", CFG_OBJECT, NULL},
    {"data", CFG_OBJECT, NULL},
    {"eval", CFG_OBJECT, NULL},

    {"model.d_model", CFG_INTEGER, NULL},
    {"model.n_layers", CFG_INTEGER, NULL},
    {"model.head_dim", CFG_INTEGER, NULL},
    {"model.vocab_size", CFG_INTEGER, NULL},
    {"model.block", CFG_STRING, block_names},
    {"model.tied_embeddings", CFG_BOOL, NULL},
    {"model.rope_theta", CFG_NUMBER, NULL},
    {"model.norm_eps", CFG_NUMBER, NULL},
    {"model.qk_norm", CFG_BOOL, NULL},
    {"model.init_std", CFG_NUMBER, NULL},

    {"lws.variant", CFG_STRING, cfg_variant_names},
    {"lws.ffn_points", CFG_ARRAY, NULL},
    {"lws.qkv_points", CFG_ARRAY, NULL},
    {"lws.frame", CFG_BOOL, NULL},
    {"lws.frame_ffn", CFG_NUMBER, NULL},
    {"lws.frame_qkv", CFG_NUMBER, NULL},
    {"lws.ffn_dims", CFG_ARRAY, NULL},
    {"lws.q_heads", CFG_ARRAY, NULL},
    {"lws.kv_heads", CFG_ARRAY, NULL},
    {"lws.ffn_divisor", CFG_INTEGER, NULL},
    {"lws.gqa", CFG_OBJECT, NULL},
    {"lws.match_params", CFG_INTEGER, NULL},
    {"lws.match_config", CFG_STRING, NULL},
    {"lws.gqa.group_size", CFG_INTEGER, NULL},
    {"lws.gqa.kv_heads", CFG_INTEGER, NULL},

    {"train.seq_len", CFG_INTEGER, NULL},
    {"train.micro_batch", CFG_INTEGER, NULL},
    {"train.grad_accum", CFG_INTEGER, NULL},
    {"train.steps", CFG_INTEGER, NULL},
    {"train.lr", CFG_NUMBER, NULL},
    {"train.min_lr_ratio", CFG_NUMBER, NULL},
    {"train.schedule", CFG_STRING, schedule_names},
    {"train.warmup_steps", CFG_INTEGER, NULL},
    {"train.decay_fraction", CFG_NUMBER, NULL},
    {"train.beta1", CFG_NUMBER, NULL},
    {"train.beta2", CFG_NUMBER, NULL},
    {"train.eps", CFG_NUMBER, NULL},
    {"train.weight_decay", CFG_NUMBER, NULL},
    {"train.decay_embeddings", CFG_BOOL, NULL},
    {"train.decay_norms", CFG_BOOL, NULL},
    {"train.grad_clip", CFG_NUMBER, NULL},
    {"train.z_loss", CFG_NUMBER, NULL},
    {"train.seed", CFG_INTEGER, NULL},
    {"train.log_every", CFG_INTEGER, NULL},
    {"train.checkpoint_every", CFG_INTEGER, NULL},
    {"train.keep_checkpoints", CFG_INTEGER, NULL},
    {"train.out_dir", CFG_STRING, NULL},
    {"train.precision", CFG_STRING, precision_names},
    {"train.shard_optimizer", CFG_BOOL, NULL},
    {"train.bucket_mb", CFG_NUMBER, NULL},
    {"train.loss_scale", CFG_NUMBER, NULL},

    {"data.train", CFG_STRING, NULL},
    {"data.val", CFG_STRING, NULL},
    {"data.val_tokens", CFG_INTEGER, NULL},
    {"data.tokenizer", CFG_STRING, NULL},

    {"eval.every", CFG_INTEGER, NULL},
    {"eval.tokens", CFG_INTEGER, NULL},
};

const cfg_key *cfg_schema_find(const char *path) {
    for (size_t k = 0; k < CFG_COUNT(schema); k++)
        if (strcmp(schema[k].path, path) == 0) return &schema[k];
    return NULL;
}

const char *cfg_enum_name(const char *path, int index) {
    const cfg_key *k = cfg_schema_find(path);
    return k && k->names ? k->names[index] : "?";
}

/* Each type as messages name it, and the test a JSON value of it passes. */
static const struct {
    const char *expected;
    cJSON_bool (*is)(const cJSON *const item);
} types[] = {
    [CFG_OBJECT] = {"a JSON object {...}", cJSON_IsObject},
    [CFG_INTEGER] = {"an integer", cJSON_IsNumber},
    [CFG_NUMBER] = {"a number", cJSON_IsNumber},
    [CFG_BOOL] = {"true or false", cJSON_IsBool},
    [CFG_STRING] = {"a string", cJSON_IsString},
    [CFG_ARRAY] = {"a JSON array [...]", cJSON_IsArray},
};

const char *cfg_type_expected(cfg_type type) {
    return types[type].expected;
}

/* The key of an entry when it is a direct child of the object at `parent`
 * ("" is the top level), else NULL. */
static const char *child_key(const cfg_key *k, const char *parent) {
    size_t n = strlen(parent);
    const char *key = k->path;
    if (n) {
        if (strncmp(key, parent, n) != 0 || key[n] != '.') return NULL;
        key += n + 1;
    }
    return strchr(key, '.') ? NULL : key;
}

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64) return 99;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* "; allowed keys in train: seq_len, micro_batch, ..." */
static void allowed_list(const char *parent, char *out, size_t n) {
    snprintf(out, n, "; allowed keys in %s: ", parent[0] ? parent : "the top level");
    int first = 1;
    for (size_t k = 0; k < CFG_COUNT(schema); k++) {
        const char *key = child_key(&schema[k], parent);
        if (!key) continue;
        strncat(out, first ? "" : ", ", n - strlen(out) - 1);
        strncat(out, key, n - strlen(out) - 1);
        first = 0;
    }
}

lws_status cfg_check_keys(const cfg_doc *doc, const cJSON *obj, const char *section) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *best = NULL;
        size_t best_d = 99;
        for (size_t k = 0; k < CFG_COUNT(schema) && best_d; k++) {
            const char *key = child_key(&schema[k], section);
            size_t d = key ? edit_distance(c->string, key) : 99;
            if (d < best_d) best_d = d, best = key;
        }
        if (best_d == 0) continue;
        char list[1024], path[256], hint[128] = "";
        allowed_list(section, list, sizeof list);
        if (best_d <= 2) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", best);
        cfg_join(path, sizeof path, section, c->string);
        return cfg_error(doc, c, path, "unknown key%s%s", hint, list);
    }
    return LWS_OK;
}

/* ---- --set PATH=VALUE ------------------------------------------------------ */

#define SET_EXAMPLE "expected PATH=VALUE, e.g. --set train.lr=1e-3"

/* A path the schema lacks: the nearest known path (the same key in another
 * section, or the closest by edit distance) and the keys of the deepest
 * known object on the path. */
static lws_status unknown_path(const char *path) {
    const char *best = NULL, *last = strrchr(path, '.');
    last = last ? last + 1 : path;
    for (size_t k = 0; k < CFG_COUNT(schema) && !best; k++) {
        const char *key = strrchr(schema[k].path, '.');
        if (key && strcmp(key + 1, last) == 0) best = schema[k].path;
    }
    const char *nearest = NULL;
    size_t best_d = 3; /* suggest paths at most 2 edits away */
    for (size_t k = 0; k < CFG_COUNT(schema); k++) {
        size_t d = edit_distance(path, schema[k].path);
        if (d < best_d) best_d = d, nearest = schema[k].path;
    }
    if (!best) best = nearest;
    char parent[256], hint[160] = "", list[1024];
    snprintf(parent, sizeof parent, "%s", path);
    for (;;) {
        char *dot = strrchr(parent, '.');
        if (!dot) {
            parent[0] = 0;
            break;
        }
        *dot = 0;
        const cfg_key *k = cfg_schema_find(parent);
        if (k && k->type == CFG_OBJECT) break;
    }
    allowed_list(parent, list, sizeof list);
    if (best) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", best);
    return lws_fail(LWS_ERR_CONFIG, "--set %s: unknown key%s%s", path, hint, list);
}

/* The value text as a JSON node of the schema's type; *out stays NULL for
 * "null" (remove the key). Strings are taken literally unless quoted. */
static lws_status typed_value(const char *set, const cfg_key *key, const char *text, cJSON **out) {
    *out = NULL;
    if (strcmp(text, "null") == 0) return LWS_OK;
    if (!text[0])
        return lws_fail(LWS_ERR_CONFIG,
                        "--set %s: the value is empty; give %s (or null to remove the key)", set,
                        cfg_type_expected(key->type));
    if (key->type == CFG_STRING && text[0] != '"') {
        *out = cJSON_CreateString(text);
        return *out ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "--set: out of memory");
    }
    cJSON *node = cJSON_ParseWithOpts(text, NULL, 1);
    int ok = node && types[key->type].is(node);
    if (ok) {
        *out = node;
        return LWS_OK;
    }
    cJSON_Delete(node);
    const char *how = key->type == CFG_STRING   ? " (a value in double quotes is one JSON string)"
                      : key->type == CFG_NUMBER ? " (a JSON number such as 0.5 or 1e-3)"
                                                : "";
    return lws_fail(LWS_ERR_CONFIG, "--set %s: expected %s%s", set, cfg_type_expected(key->type),
                    how);
}

lws_status cfg_doc_apply_set(cfg_doc *doc, const char *set) {
    const char *eq = strchr(set, '=');
    if (!eq) return lws_fail(LWS_ERR_CONFIG, "--set %s: no '='; " SET_EXAMPLE, set);
    if (eq == set)
        return lws_fail(LWS_ERR_CONFIG, "--set %s: the path is empty; " SET_EXAMPLE, set);
    char path[256];
    if ((size_t)(eq - set) >= sizeof path)
        return lws_fail(LWS_ERR_CONFIG, "--set %.40s...: the path is longer than %zu characters",
                        set, sizeof path - 1);
    snprintf(path, sizeof path, "%.*s", (int)(eq - set), set);
    const cfg_key *key = cfg_schema_find(path);
    if (!key) return unknown_path(path);
    cJSON *value = NULL;
    LWS_TRY(typed_value(set, key, eq + 1, &value));
    return cfg_doc_set(doc, path, value);
}
