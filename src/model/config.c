/* Config sections: strict reading of model, train, data and eval from the
 * merged document, defaults, checks that need more than one field, and
 * loading. The lws section is read in config_lws.c, typed field access lives
 * in config_fields.c, documents and extends in config_json.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_internal.h"

/* ---- model -------------------------------------------------------------- */

static lws_status read_model(const cfg_doc *doc, const cJSON *root, lws_model_config *m) {
    const cJSON *s = cfg_item(root, "model");
    if (!s) return cfg_missing(doc, "model", "the transformer's sizes");
    LWS_TRY(cfg_check_object(doc, s, "model"));
    LWS_TRY(cfg_check_keys(doc, s, "model"));
    *m = (lws_model_config){.block = LWS_BLOCK_POST_NORM,
                            .rope_theta = 500000,
                            .norm_eps = 1e-6,
                            .qk_norm = 1,
                            .init_std = 0.02};
    const char *required[] = {"d_model", "n_layers", "head_dim", "vocab_size"};
    uint32_t *fields[] = {&m->d_model, &m->n_layers, &m->head_dim, &m->vocab_size};
    const uint32_t max[] = {1u << 20, LWS_MAX_LAYERS, 1u << 16, 1u << 30};
    for (size_t k = 0; k < CFG_COUNT(required); k++) {
        int given = 0;
        LWS_TRY(cfg_get_u32(doc, s, "model", required[k], 1, max[k], fields[k], &given));
        if (!given) {
            char path[64];
            cfg_join(path, sizeof path, "model", required[k]);
            return cfg_missing(doc, path, "a positive integer");
        }
    }
    int block = 0;
    LWS_TRY(cfg_get_enum(doc, s, "model", "block", &block, NULL));
    m->block = (lws_block_style)block;
    LWS_TRY(cfg_get_bool(doc, s, "model", "tied_embeddings", &m->tied_embeddings, NULL));
    const cfg_interval positive = {0, INFINITY, 1, 0};
    /* RoPE's frequencies theta^(-2j/head_dim) fall with j only for theta > 1;
     * an epsilon beside a mean square of unit-scale activations above 1
     * would swamp it (the norm would scale every row towards 0). */
    LWS_TRY(cfg_get_number(doc, s, "model", "rope_theta", (cfg_interval){1, INFINITY, 1, 0},
                           &m->rope_theta, NULL));
    LWS_TRY(cfg_get_number(doc, s, "model", "norm_eps", (cfg_interval){0, 1, 1, 0}, &m->norm_eps,
                           NULL));
    LWS_TRY(cfg_get_bool(doc, s, "model", "qk_norm", &m->qk_norm, NULL));
    LWS_TRY(cfg_get_number(doc, s, "model", "init_std", positive, &m->init_std, NULL));

    if (m->head_dim % 2)
        return cfg_error(doc, cfg_item(s, "head_dim"), "model.head_dim",
                         "value %u is odd; RoPE rotates element j with j + head_dim/2, so "
                         "head_dim must be even",
                         m->head_dim);
    if (m->d_model % m->head_dim)
        return cfg_error(doc, cfg_item(s, "d_model"), "model.d_model",
                         "value %u is not a multiple of model.head_dim %u; use a multiple such "
                         "as %u",
                         m->d_model, m->head_dim, (m->d_model / m->head_dim + 1) * m->head_dim);
    return LWS_OK;
}

/* ---- train, data, eval --------------------------------------------------- */

static lws_status read_train(const cfg_doc *doc, const cJSON *root, lws_config *cfg) {
    lws_train_config *t = &cfg->train;
    *t = (lws_train_config){.grad_accum = 1,
                            .min_lr_ratio = 0.1,
                            .schedule = LWS_LR_COSINE,
                            .decay_fraction = 0.2,
                            .beta1 = 0.9,
                            .beta2 = 0.95,
                            .eps = 1e-8,
                            .weight_decay = 0.01,
                            .grad_clip = 1.0,
                            .seed = 42,
                            .log_every = 1,
                            .keep_checkpoints = 3,
                            .bucket_mb = 4};
    snprintf(t->out_dir, sizeof t->out_dir, "runs/%s", cfg->name);
    snprintf(t->precision, sizeof t->precision, "fp32");
    t->loss_scale = 65536.0;
    const cJSON *s = cfg_item(root, "train");
    cfg->has_train = s != NULL;
    if (!s) return LWS_OK;
    LWS_TRY(cfg_check_object(doc, s, "train"));
    LWS_TRY(cfg_check_keys(doc, s, "train"));
    const char *required[] = {"seq_len", "micro_batch", "steps"};
    uint32_t *fields[] = {&t->seq_len, &t->micro_batch, &t->steps};
    const uint32_t max[] = {1u << 20, 1u << 16, 0xffffffffu};
    for (size_t k = 0; k < CFG_COUNT(required); k++) {
        int given = 0;
        LWS_TRY(cfg_get_u32(doc, s, "train", required[k], 1, max[k], fields[k], &given));
        char path[64];
        cfg_join(path, sizeof path, "train", required[k]);
        if (!given) return cfg_missing(doc, path, "a positive integer");
    }
    int given = 0;
    LWS_TRY(
        cfg_get_number(doc, s, "train", "lr", (cfg_interval){0, INFINITY, 1, 0}, &t->lr, &given));
    if (!given) return cfg_missing(doc, "train.lr", "the peak learning rate, a number > 0");
    LWS_TRY(cfg_get_u32(doc, s, "train", "grad_accum", 1, 1u << 16, &t->grad_accum, NULL));
    LWS_TRY(cfg_get_number(doc, s, "train", "min_lr_ratio", (cfg_interval){0, 1, 0, 0},
                           &t->min_lr_ratio, NULL));
    int schedule = t->schedule;
    LWS_TRY(cfg_get_enum(doc, s, "train", "schedule", &schedule, NULL));
    t->schedule = (lws_lr_schedule)schedule;
    LWS_TRY(cfg_get_u32(doc, s, "train", "warmup_steps", 0, 0xffffffffu, &t->warmup_steps, NULL));
    int decay_given = 0;
    LWS_TRY(cfg_get_number(doc, s, "train", "decay_fraction", (cfg_interval){0, 1, 1, 0},
                           &t->decay_fraction, &decay_given));
    const cfg_interval unit = {0, 1, 0, 1}, non_negative = {0, INFINITY, 0, 0};
    LWS_TRY(cfg_get_number(doc, s, "train", "beta1", unit, &t->beta1, NULL));
    LWS_TRY(cfg_get_number(doc, s, "train", "beta2", unit, &t->beta2, NULL));
    LWS_TRY(
        cfg_get_number(doc, s, "train", "eps", (cfg_interval){0, INFINITY, 1, 0}, &t->eps, NULL));
    LWS_TRY(cfg_get_number(doc, s, "train", "weight_decay", non_negative, &t->weight_decay, NULL));
    LWS_TRY(cfg_get_bool(doc, s, "train", "decay_embeddings", &t->decay_embeddings, NULL));
    LWS_TRY(cfg_get_bool(doc, s, "train", "decay_norms", &t->decay_norms, NULL));
    LWS_TRY(cfg_get_number(doc, s, "train", "grad_clip", non_negative, &t->grad_clip, NULL));
    LWS_TRY(cfg_get_number(doc, s, "train", "z_loss", non_negative, &t->z_loss, NULL));
    LWS_TRY(cfg_get_u64(doc, s, "train", "seed", 0, CFG_EXACT_MAX, &t->seed, NULL));
    LWS_TRY(cfg_get_u32(doc, s, "train", "log_every", 1, 0xffffffffu, &t->log_every, NULL));
    LWS_TRY(cfg_get_u32(doc, s, "train", "checkpoint_every", 0, 0xffffffffu, &t->checkpoint_every,
                        NULL));
    LWS_TRY(cfg_get_u32(doc, s, "train", "keep_checkpoints", 0, 0xffffffffu, &t->keep_checkpoints,
                        NULL));
    LWS_TRY(cfg_get_string(doc, s, "train", "out_dir", t->out_dir, sizeof t->out_dir, NULL));
    int precision = 0;
    LWS_TRY(cfg_get_enum(doc, s, "train", "precision", &precision, NULL));
    snprintf(t->precision, sizeof t->precision, "%s", cfg_enum_name("train.precision", precision));
    int scale_given = 0, exponent = 0;
    LWS_TRY(cfg_get_number(doc, s, "train", "loss_scale", (cfg_interval){1, 16777216, 0, 0},
                           &t->loss_scale, &scale_given));
    if (scale_given && frexp(t->loss_scale, &exponent) != 0.5)
        return cfg_error(doc, cfg_item(s, "loss_scale"), "train.loss_scale",
                         "value %g is not a power of two; the loss scale is one (1, 2, 4, ... "
                         "16777216), so scaling and unscaling the gradients are exact",
                         t->loss_scale);
    if (scale_given && strcmp(t->precision, "fp16") != 0)
        return cfg_error(doc, cfg_item(s, "loss_scale"), "train.loss_scale",
                         "applies only to \"precision\": \"fp16\" (fp32 and bf16 need no loss "
                         "scaling); the precision here is \"%s\"",
                         t->precision);
    LWS_TRY(cfg_get_bool(doc, s, "train", "shard_optimizer", &t->shard_optimizer, NULL));
    LWS_TRY(cfg_get_number(doc, s, "train", "bucket_mb", (cfg_interval){0, 1048576, 0, 0},
                           &t->bucket_mb, NULL));

    if (t->warmup_steps >= t->steps)
        return cfg_error(doc, cfg_item(s, "warmup_steps"), "train.warmup_steps",
                         "value %u is not less than train.steps %u; warm up for fewer steps "
                         "(for a shorter run: --set train.warmup_steps=N with N < train.steps)",
                         t->warmup_steps, t->steps);
    if (decay_given && t->schedule != LWS_LR_WSD)
        return cfg_error(doc, cfg_item(s, "decay_fraction"), "train.decay_fraction",
                         "applies only to \"schedule\": \"wsd\" (warmup-stable-decay); the "
                         "schedule here is \"%s\"",
                         cfg_enum_name("train.schedule", t->schedule));
    if (t->schedule == LWS_LR_WSD &&
        t->warmup_steps + t->decay_fraction * t->steps > (double)t->steps)
        return cfg_error(doc, cfg_item(s, "decay_fraction"), "train.decay_fraction",
                         "value %g decays over %.0f steps, which with %u warmup steps is more "
                         "than train.steps %u",
                         t->decay_fraction, t->decay_fraction * t->steps, t->warmup_steps,
                         t->steps);
    return LWS_OK;
}

static lws_status read_data(const cfg_doc *doc, const cJSON *root, lws_config *cfg) {
    lws_data_config *d = &cfg->data;
    memset(d, 0, sizeof *d);
    snprintf(d->tokenizer, sizeof d->tokenizer, "bytes");
    const cJSON *s = cfg_item(root, "data");
    cfg->has_data = s != NULL;
    if (!s) return LWS_OK;
    LWS_TRY(cfg_check_object(doc, s, "data"));
    LWS_TRY(cfg_check_keys(doc, s, "data"));
    int given = 0, val = 0;
    LWS_TRY(cfg_get_string(doc, s, "data", "train", d->train, sizeof d->train, &given));
    if (!given) return cfg_missing(doc, "data.train", "the path of the training token file");
    LWS_TRY(cfg_get_string(doc, s, "data", "val", d->val, sizeof d->val, &val));
    LWS_TRY(cfg_get_u64(doc, s, "data", "val_tokens", 0, CFG_EXACT_MAX, &d->val_tokens, NULL));
    LWS_TRY(cfg_get_string(doc, s, "data", "tokenizer", d->tokenizer, sizeof d->tokenizer, NULL));
    if (val && d->val_tokens)
        return cfg_error(doc, cfg_item(s, "val_tokens"), "data.val_tokens",
                         "value %llu holds tokens out of data.train, but data.val already names "
                         "a validation file; give one of them",
                         (unsigned long long)d->val_tokens);
    if (strcmp(d->tokenizer, "bytes") == 0 && cfg->model.vocab_size < 256)
        return cfg_error(doc, cfg_item(cfg_item(root, "model"), "vocab_size"), "model.vocab_size",
                         "value %u is smaller than 256, the vocabulary of the byte-level "
                         "tokenizer (data.tokenizer \"bytes\")",
                         cfg->model.vocab_size);
    return LWS_OK;
}

static lws_status read_eval(const cfg_doc *doc, const cJSON *root, lws_config *cfg) {
    cfg->eval = (lws_eval_config){0, 0};
    const cJSON *s = cfg_item(root, "eval");
    if (!s) return LWS_OK;
    LWS_TRY(cfg_check_object(doc, s, "eval"));
    LWS_TRY(cfg_check_keys(doc, s, "eval"));
    LWS_TRY(cfg_get_u32(doc, s, "eval", "every", 0, 0xffffffffu, &cfg->eval.every, NULL));
    LWS_TRY(cfg_get_u64(doc, s, "eval", "tokens", 0, CFG_EXACT_MAX, &cfg->eval.tokens, NULL));
    return LWS_OK;
}

/* ---- loading -------------------------------------------------------------- */

#define MATCH_DEPTH 8

/* Configs being loaded for a match_config, to refuse a matching cycle. */
typedef struct match_chain {
    char files[MATCH_DEPTH][1024];
    uint32_t n;
} match_chain;

/* A config from a file (text NULL) or text, with overrides applied to the
 * merged document in order before any section is read. resolved: the text
 * is a resolved config (lws_config_to_json), which names no other file. */
typedef struct load_source {
    const char *path, *text;
    const char *const *sets;
    uint32_t n_sets;
    int resolved;
} load_source;

static lws_status load(load_source src, lws_config *out, match_chain *mc);

static void default_name(const char *path, char *out, size_t n) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0) len -= 5;
    snprintf(out, n, "%.*s", (int)len, base);
}

/* The total a match_config points at. */
static lws_status match_target(const cfg_doc *doc, lws_config *cfg, match_chain *mc) {
    const cJSON *node = cfg_item(cfg_item(doc->root, "lws"), "match_config");
    char *real = realpath(cfg->lws.match_config, NULL);
    const char *id = real ? real : cfg->lws.match_config;
    lws_status s = LWS_OK;
    for (uint32_t i = 0; i < mc->n && s == LWS_OK; i++)
        if (strcmp(mc->files[i], id) == 0)
            s = cfg_error(doc, node, "lws.match_config",
                          "value \"%s\" makes a cycle: that config "
                          "matches its budget to this one, directly or through others",
                          node->valuestring);
    if (s == LWS_OK && mc->n == MATCH_DEPTH)
        s = cfg_error(doc, node, "lws.match_config",
                      "match_config chains more than %d configs "
                      "deep",
                      MATCH_DEPTH);
    if (s != LWS_OK) {
        free(real);
        return s;
    }
    snprintf(mc->files[mc->n++], sizeof mc->files[0], "%s", id);
    free(real);
    lws_config *other = malloc(sizeof *other);
    if (!other) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
    s = load((load_source){.path = cfg->lws.match_config}, other, mc);
    mc->n--;
    if (s == LWS_OK)
        cfg->lws.match_target = lws_config_params(other);
    else
        lws_error_context("%s: lws.match_config", cfg_doc_file_of(doc, node));
    free(other);
    return s;
}

/* The name becomes a directory under runs/: one path component, printable. */
static lws_status check_name(const cfg_doc *doc, const cJSON *root, const char *name) {
    const char *why = NULL;
    if (!name[0])
        why = "is empty";
    else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        why = "names a directory itself, not one under runs/";
    else if (strchr(name, '/'))
        why = "contains '/'";
    for (const char *c = name; !why && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) why = "contains a control character";
    if (!why) return LWS_OK;
    return cfg_error(doc, cfg_item(root, "name"), "name",
                     "value \"%s\" %s; the name becomes a directory under runs/, use letters, "
                     "digits, '-', '_', '.'",
                     name, why);
}

static lws_status read_config(const cfg_doc *doc, const char *path, int resolved, lws_config *out,
                              match_chain *mc) {
    const cJSON *root = doc->root;
    LWS_TRY(cfg_check_keys(doc, root, ""));
    snprintf(out->path, sizeof out->path, "%s", path);
    default_name(path, out->name, sizeof out->name);
    LWS_TRY(cfg_get_string(doc, root, "", "name", out->name, sizeof out->name, NULL));
    LWS_TRY(check_name(doc, root, out->name));
    LWS_TRY(cfg_get_string(doc, root, "", "description", out->description, sizeof out->description,
                           NULL));
    LWS_TRY(read_model(doc, root, &out->model));
    LWS_TRY(cfg_read_lws(doc, root, out));
    LWS_TRY(read_train(doc, root, out));
    LWS_TRY(read_data(doc, root, out));
    LWS_TRY(read_eval(doc, root, out));
    if (out->lws.match_config[0] && resolved)
        return cfg_error(doc, cfg_item(cfg_item(root, "lws"), "match_config"), "lws.match_config",
                         "a resolved config (as a checkpoint stores it) gives its layers "
                         "explicitly and names no other config; the stored config was altered");
    if (out->lws.match_config[0]) LWS_TRY(match_target(doc, out, mc));

    const char *blame = NULL;
    lws_status s = cfg_resolve_layers(out, &blame);
    if (s != LWS_OK) {
        /* Name the file that wrote the responsible key (or the variant). */
        const cJSON *lws = cfg_item(root, "lws");
        const cJSON *node = blame ? cfg_item(lws, blame) : NULL;
        if (!node) node = cfg_item(lws, "variant");
        if (!node) node = lws;
        lws_error_context("%s", cfg_doc_file_of(doc, node));
    }
    return s;
}

static lws_status load(load_source src, lws_config *out, match_chain *mc) {
    memset(out, 0, sizeof *out);
    if (src.n_sets && !src.sets)
        return lws_fail(LWS_ERR_INVALID, "%s: %u overrides given without their texts", src.path,
                        src.n_sets);
    cfg_doc doc;
    LWS_TRY(cfg_doc_load(&doc, src.path, src.text, src.resolved));
    lws_status s = LWS_OK;
    for (uint32_t k = 0; k < src.n_sets && s == LWS_OK; k++)
        s = cfg_doc_apply_set(&doc, src.sets[k] ? src.sets[k] : "");
    if (s == LWS_OK) s = read_config(&doc, src.path, src.resolved, out, mc);
    cfg_doc_free(&doc);
    return s;
}

lws_status lws_config_load_with(const char *path, const char *const *sets, uint32_t n_sets,
                                lws_config *out) {
    match_chain mc = {.n = 0};
    char *real = realpath(path, NULL);
    snprintf(mc.files[mc.n++], sizeof mc.files[0], "%s", real ? real : path);
    free(real);
    return load((load_source){path, NULL, sets, n_sets}, out, &mc);
}

lws_status lws_config_load(const char *path, lws_config *out) {
    return lws_config_load_with(path, NULL, 0, out);
}

static lws_status parse_text(const char *json, const char *origin, int resolved, lws_config *out) {
    match_chain mc = {.n = 0};
    snprintf(mc.files[mc.n++], sizeof mc.files[0], "%s", origin ? origin : "config");
    return load((load_source){.path = origin ? origin : "config",
                              .text = json ? json : "",
                              .resolved = resolved},
                out, &mc);
}

lws_status lws_config_parse(const char *json, const char *origin, lws_config *out) {
    return parse_text(json, origin, 0, out);
}

lws_status lws_config_parse_resolved(const char *json, const char *origin, lws_config *out) {
    return parse_text(json, origin, 1, out);
}
