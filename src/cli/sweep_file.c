/* The sweep file: variants, grid, seeds, token and parameter budgets, read
 * into a plan whose every run's config is resolved before anything trains.
 * Every error names the sweep file and the field (`variants[2].lws`,
 * `grid."train.lr"[1]`, `match`, `tokens`). */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/sweep.h"
#include "model/config_internal.h"
#include "util/files.h"

/* The profile keys a variant replaces: removed from the base before the
 * variant's own are set, so nothing of the base's profile mixes in. */
static const char *const profile_keys[] = {"variant",   "ffn_points",   "qkv_points",   "frame",
                                           "frame_ffn", "frame_qkv",    "ffn_dims",     "q_heads",
                                           "kv_heads",  "match_params", "match_config", NULL};

static lws_status fail_at(const sweep_plan *p, const char *field, const char *fmt, ...)
    LWS_PRINTF(3, 4);
static lws_status fail_at(const sweep_plan *p, const char *field, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lws_fail(LWS_ERR_CONFIG, "%s: %s: %s", p->path, field, msg);
}

static lws_status add_set(sweep_sets *s, const char *fmt, ...) LWS_PRINTF(2, 3);
static lws_status add_set(sweep_sets *s, const char *fmt, ...) {
    if (s->n == SWEEP_MAX_SETS)
        return lws_fail(LWS_ERR_CONFIG, "more than %d overrides for one run", SWEEP_MAX_SETS);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *item = malloc((size_t)len + 1);
    if (!item) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    va_start(ap, fmt);
    vsnprintf(item, (size_t)len + 1, fmt, ap);
    va_end(ap);
    s->items[s->n++] = item;
    return LWS_OK;
}

static void free_sets(sweep_sets *s) {
    for (uint32_t i = 0; i < s->n; i++) free(s->items[i]);
    s->n = 0;
}

static lws_status add_sets(sweep_sets *to, const sweep_sets *from) {
    for (uint32_t i = 0; i < from->n; i++) LWS_TRY(add_set(to, "%s", from->items[i]));
    return LWS_OK;
}

/* PATH=VALUE with the value as compact JSON (a string quoted: --set takes
 * a quoted JSON string for a string key). */
static lws_status add_json_set(sweep_sets *s, const char *path, const cJSON *value) {
    char *text = cJSON_PrintUnformatted(value);
    if (!text) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    lws_status st = add_set(s, "%s=%s", path, text);
    free(text);
    return st;
}

static const char *type_name(const cJSON *v) {
    return cJSON_IsObject(v)   ? "an object"
           : cJSON_IsArray(v)  ? "an array"
           : cJSON_IsString(v) ? "a string"
           : cJSON_IsNumber(v) ? "a number"
           : cJSON_IsBool(v)   ? "a boolean"
                               : "null";
}

/* Keys of an object must be among `allowed` (NULL-terminated). */
static lws_status check_keys(const sweep_plan *p, const cJSON *o, const char *where,
                             const char *const *allowed) {
    for (const cJSON *c = o->child; c; c = c->next) {
        int known = 0;
        for (const char *const *k = allowed; *k && !known; k++) known = strcmp(*k, c->string) == 0;
        if (known) continue;
        char list[512] = "";
        for (const char *const *k = allowed; *k; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     k == allowed ? "" : ", ", *k);
        char field[256];
        snprintf(field, sizeof field, "%s%s%s", where, where[0] ? "." : "", c->string);
        return fail_at(p, field, "unknown key; the keys allowed here are %s", list);
    }
    return LWS_OK;
}

/* A name usable as a directory and in a config's name. */
static lws_status check_name(const sweep_plan *p, const char *field, const char *name) {
    size_t n = strlen(name);
    int ok = n > 0 && n < SWEEP_NAME_MAX && name[0] != '.' && name[0] != '-';
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)name[i]) || strchr("._-+", name[i]);
    if (!ok)
        return fail_at(p, field,
                       "\"%s\" is not a usable name; use 1 to %d letters, digits, '.', '_', '-' "
                       "or '+', not starting with '.' or '-'",
                       name, SWEEP_NAME_MAX - 1);
    return LWS_OK;
}

/* A whole number in [lo, hi]. */
static lws_status get_uint(const sweep_plan *p, const cJSON *v, const char *field, uint64_t lo,
                           uint64_t hi, uint64_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > (double)hi) {
        char text[64] = "";
        if (cJSON_IsNumber(v)) snprintf(text, sizeof text, " %.17g", v->valuedouble);
        return fail_at(p, field, "%s%s is not allowed; use a whole number from %llu to %llu",
                       type_name(v), text, (unsigned long long)lo, (unsigned long long)hi);
    }
    *out = (uint64_t)v->valuedouble;
    return LWS_OK;
}

/* Every "PATH": VALUE of an object as overrides. */
static lws_status read_set_object(const sweep_plan *p, const cJSON *o, const char *field,
                                  sweep_sets *out) {
    if (!cJSON_IsObject(o))
        return fail_at(p, field,
                       "%s; expected an object of config overrides, e.g. {\"train.lr\": 1e-3}",
                       type_name(o));
    for (const cJSON *c = o->child; c; c = c->next) LWS_TRY(add_json_set(out, c->string, c));
    return LWS_OK;
}

/* ---- variants ------------------------------------------------------------------ */

static int preset_index(const char *name) {
    static const char *const presets[] = {"isotropic", "vanilla", "framed", "reverse", "crown"};
    for (int i = 0; i < 5; i++)
        if (strcmp(presets[i], name) == 0) return i;
    return -1;
}

static lws_status profile_sets(const char *variant, const cJSON *lws, sweep_sets *s) {
    for (const char *const *k = profile_keys; *k; k++) LWS_TRY(add_set(s, "lws.%s=null", *k));
    if (variant) LWS_TRY(add_set(s, "lws.variant=%s", variant));
    for (const cJSON *c = lws ? lws->child : NULL; c; c = c->next) {
        char path[160];
        snprintf(path, sizeof path, "lws.%s", c->string);
        LWS_TRY(add_json_set(s, path, c));
    }
    return LWS_OK;
}

static lws_status read_variant(sweep_plan *p, const cJSON *v, uint32_t i) {
    sweep_variant *var = &p->variants[i];
    char field[64];
    snprintf(field, sizeof field, "variants[%u]", i);
    var->match = 1;
    const char *preset = NULL;
    const cJSON *lws = NULL, *set = NULL, *name = NULL, *match = NULL;
    if (cJSON_IsString(v)) {
        preset = v->valuestring;
    } else if (cJSON_IsObject(v)) {
        static const char *const keys[] = {"name", "variant", "lws", "set", "match", NULL};
        LWS_TRY(check_keys(p, v, field, keys));
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(v, "variant");
        name = cJSON_GetObjectItemCaseSensitive(v, "name");
        lws = cJSON_GetObjectItemCaseSensitive(v, "lws");
        set = cJSON_GetObjectItemCaseSensitive(v, "set");
        match = cJSON_GetObjectItemCaseSensitive(v, "match");
        if (pv && !cJSON_IsString(pv))
            return fail_at(p, field, "variant is %s; expected a profile name", type_name(pv));
        preset = pv ? pv->valuestring : NULL;
        if (name && !cJSON_IsString(name))
            return fail_at(p, field, "name is %s; expected a string", type_name(name));
        if (lws && !cJSON_IsObject(lws))
            return fail_at(p, field,
                           "lws is %s; expected an object of lws keys, e.g. "
                           "{\"ffn_points\": [1, 3], \"qkv_points\": [0.5, 1]}",
                           type_name(lws));
        if (match && !cJSON_IsBool(match))
            return fail_at(p, field, "match is %s; expected true or false", type_name(match));
        if (!name && !preset)
            return fail_at(p, field, "no name: give \"name\" (or \"variant\", which names it)");
        if (!preset && !lws)
            return fail_at(p, field,
                           "no profile: give \"variant\" (isotropic, vanilla, framed, "
                           "reverse, crown) or \"lws\" (control points or per-layer "
                           "lists)");
    } else {
        return fail_at(p, field, "%s; expected a profile name or an object", type_name(v));
    }
    if (preset && preset_index(preset) < 0)
        return fail_at(p, field,
                       "\"%s\" is not a variant; use isotropic, vanilla, framed, reverse or "
                       "crown, or an object with \"lws\" for another profile",
                       preset);
    snprintf(var->name, sizeof var->name, "%s", name ? name->valuestring : preset);
    char name_field[80];
    snprintf(name_field, sizeof name_field, "%s.name", field);
    LWS_TRY(check_name(p, name_field, var->name));
    for (uint32_t k = 0; k < i; k++)
        if (strcmp(p->variants[k].name, var->name) == 0)
            return fail_at(p, name_field,
                           "\"%s\" is also the name of variants[%u]; give each "
                           "variant its own name",
                           var->name, k);
    if (match) var->match = cJSON_IsTrue(match);
    LWS_TRY(profile_sets(preset, lws, &var->sets));
    if (set) {
        char set_field[80];
        snprintf(set_field, sizeof set_field, "%s.set", field);
        LWS_TRY(read_set_object(p, set, set_field, &var->sets));
    }
    return LWS_OK;
}

static lws_status read_variants(sweep_plan *p, const cJSON *v) {
    if (!v)
        return fail_at(p, "variants",
                       "missing; list the profiles to compare, e.g. "
                       "[\"isotropic\", \"crown\"]");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) == 0)
        return fail_at(p, "variants", "%s; expected a non-empty array of variants",
                       cJSON_IsArray(v) ? "an empty array" : type_name(v));
    if (cJSON_GetArraySize(v) > SWEEP_MAX_VARIANTS)
        return fail_at(p, "variants", "%d variants; at most %d", cJSON_GetArraySize(v),
                       SWEEP_MAX_VARIANTS);
    for (const cJSON *c = v->child; c; c = c->next) LWS_TRY(read_variant(p, c, p->n_variants++));
    return LWS_OK;
}

static int variant_index(const sweep_plan *p, const char *name) {
    for (uint32_t i = 0; i < p->n_variants; i++)
        if (strcmp(p->variants[i].name, name) == 0) return (int)i;
    return -1;
}

/* ---- grid, seeds, budgets ------------------------------------------------------ */

static lws_status read_axis(sweep_plan *p, const cJSON *c) {
    sweep_axis *a = &p->axes[p->n_axes];
    char field[200];
    snprintf(field, sizeof field, "grid.\"%s\"", c->string);
    if (strlen(c->string) >= sizeof a->path || !strchr(c->string, '.'))
        return fail_at(p, field, "not a config path; use a dotted path such as train.lr");
    if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) == 0)
        return fail_at(p, field, "%s; expected a non-empty array of values",
                       cJSON_IsArray(c) ? "an empty array" : type_name(c));
    snprintf(a->path, sizeof a->path, "%s", c->string);
    a->n = (uint32_t)cJSON_GetArraySize(c);
    a->values = calloc(a->n, sizeof *a->values);
    a->labels = calloc(a->n, sizeof *a->labels);
    a->json = cJSON_Duplicate(c, 1);
    if (!a->values || !a->labels || !a->json)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    p->n_axes++;
    const char *key = strrchr(a->path, '.') + 1;
    uint32_t k = 0;
    for (const cJSON *v = c->child; v; v = v->next, k++) {
        char value[96];
        if (cJSON_IsNumber(v))
            snprintf(value, sizeof value, "%g", v->valuedouble);
        else if (cJSON_IsString(v))
            snprintf(value, sizeof value, "%s", v->valuestring);
        else
            snprintf(value, sizeof value, "%u", k);
        char label[SWEEP_NAME_MAX];
        snprintf(label, sizeof label, "%.24s%.36s", key, value);
        for (char *q = label; *q; q++)
            if (!isalnum((unsigned char)*q) && !strchr(".+-", *q)) *q = '_';
        a->labels[k] = strdup(label);
        a->values[k] = cJSON_PrintUnformatted(v);
        if (!a->labels[k] || !a->values[k])
            return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    return LWS_OK;
}

static lws_status read_grid(sweep_plan *p, const cJSON *g) {
    p->n_points = 1;
    if (!g) return LWS_OK;
    if (!cJSON_IsObject(g))
        return fail_at(p, "grid",
                       "%s; expected an object of config paths and their values, e.g. "
                       "{\"train.lr\": [1e-3, 3e-3]}",
                       type_name(g));
    for (const cJSON *c = g->child; c; c = c->next) {
        if (p->n_axes == SWEEP_MAX_AXES)
            return fail_at(p, "grid", "more than %d axes", SWEEP_MAX_AXES);
        LWS_TRY(read_axis(p, c));
        p->n_points *= p->axes[p->n_axes - 1].n;
        if (p->n_points > 4096) return fail_at(p, "grid", "more than 4096 grid points");
    }
    return LWS_OK;
}

static lws_status read_seeds(sweep_plan *p, const cJSON *s) {
    if (!s)
        return fail_at(p, "seeds",
                       "missing; list the seeds each variant trains with, e.g. "
                       "[1, 2, 3]");
    if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) == 0)
        return fail_at(p, "seeds",
                       "%s; expected a non-empty array of seeds (at least 2 measure the spread "
                       "between seeds)",
                       cJSON_IsArray(s) ? "an empty array" : type_name(s));
    if (cJSON_GetArraySize(s) > SWEEP_MAX_SEEDS)
        return fail_at(p, "seeds", "more than %d seeds", SWEEP_MAX_SEEDS);
    for (const cJSON *c = s->child; c; c = c->next) {
        char field[32];
        snprintf(field, sizeof field, "seeds[%u]", p->n_seeds);
        uint64_t seed = 0;
        LWS_TRY(get_uint(p, c, field, 0, 1ull << 53, &seed));
        for (uint32_t k = 0; k < p->n_seeds; k++)
            if (p->seeds[k] == seed)
                return fail_at(p, field, "%llu is also seeds[%u]; give each seed once",
                               (unsigned long long)seed, k);
        p->seeds[p->n_seeds++] = seed;
    }
    return LWS_OK;
}

/* The grid point's overrides, axis by axis (the first axis varies slowest). */
static lws_status point_sets(const sweep_plan *p, uint32_t point, sweep_sets *s, char *label,
                             size_t label_size) {
    uint32_t rest = point, stride = p->n_points;
    if (label_size) label[0] = 0;
    for (uint32_t a = 0; a < p->n_axes; a++) {
        const sweep_axis *ax = &p->axes[a];
        stride /= ax->n;
        uint32_t k = rest / stride;
        rest %= stride;
        if (s) LWS_TRY(add_set(s, "%s=%s", ax->path, ax->values[k]));
        if (!label_size) continue;
        size_t len = strlen(label);
        snprintf(label + len, label_size - len, "-%s", ax->labels[k]);
    }
    return LWS_OK;
}

cJSON *sweep_point_json(const sweep_plan *p, uint32_t point) {
    cJSON *o = cJSON_CreateObject();
    uint32_t rest = point, stride = p->n_points;
    for (uint32_t a = 0; o && a < p->n_axes; a++) {
        stride /= p->axes[a].n;
        const cJSON *v = cJSON_GetArrayItem(p->axes[a].json, (int)(rest / stride));
        rest %= stride;
        cJSON_AddItemToObject(o, p->axes[a].path, cJSON_Duplicate(v, 1));
    }
    return o;
}

/* A config from the base with overrides; errors get `context` in front. */
static lws_status load(const sweep_plan *p, const sweep_sets *s, lws_config *cfg,
                       const char *context) {
    lws_status st = lws_config_load_with(p->base, (const char *const *)s->items, s->n, cfg);
    if (st != LWS_OK) lws_error_context("%s: %s", p->path, context);
    return st;
}

/* The sets of variant v at a grid point, before the run's own. */
static lws_status variant_sets(const sweep_plan *p, uint32_t v, uint32_t point, int with_budget,
                               sweep_sets *s) {
    LWS_TRY(add_sets(s, &p->common));
    LWS_TRY(add_sets(s, &p->variants[v].sets));
    if (with_budget && p->budgets && p->budgets[point] && p->variants[v].match)
        LWS_TRY(add_set(s, "lws.match_params=%llu", (unsigned long long)p->budgets[point]));
    return point_sets(p, point, s, NULL, 0);
}

static lws_status read_match(sweep_plan *p, const cJSON *m) {
    if (!m) return LWS_OK;
    if (cJSON_IsNumber(m)) {
        p->match_kind = 1;
        LWS_TRY(get_uint(p, m, "match", 1, 1ull << 50, &p->budget_params));
        snprintf(p->budget_from, sizeof p->budget_from, "%llu parameters",
                 (unsigned long long)p->budget_params);
    } else if (cJSON_IsString(m)) {
        int v = variant_index(p, m->valuestring);
        if (v < 0)
            return fail_at(p, "match",
                           "\"%s\" is not one of the variants; name the variant "
                           "whose parameter count the others match",
                           m->valuestring);
        p->match_kind = 2;
        p->variants[v].match = 0; /* it sets the budget */
        snprintf(p->budget_from, sizeof p->budget_from, "%s", m->valuestring);
    } else if (cJSON_IsObject(m) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "config"))) {
        static const char *const keys[] = {"config", NULL};
        LWS_TRY(check_keys(p, m, "match", keys));
        p->match_kind = 3;
        cfg_relative_path(p->path, cJSON_GetObjectItemCaseSensitive(m, "config")->valuestring,
                          p->budget_from, sizeof p->budget_from);
    } else {
        return fail_at(p, "match",
                       "%s; expected a parameter count, the name of a variant, or "
                       "{\"config\": FILE}",
                       type_name(m));
    }
    return LWS_OK;
}

/* The parameter budget at every grid point. */
static lws_status resolve_budgets(sweep_plan *p, lws_config *cfg) {
    if (!p->match_kind) return LWS_OK;
    p->budgets = calloc(p->n_points, sizeof *p->budgets);
    if (!p->budgets) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (p->match_kind == 3) {
        lws_status s = lws_config_load(p->budget_from, cfg);
        if (s != LWS_OK) {
            lws_error_context("%s: match", p->path);
            return s;
        }
        p->budget_params = lws_config_params(cfg);
    }
    for (uint32_t point = 0; point < p->n_points; point++) {
        if (p->match_kind != 2) {
            p->budgets[point] = p->budget_params;
            continue;
        }
        sweep_sets s = {0};
        char context[1300];
        uint32_t v = (uint32_t)variant_index(p, p->budget_from);
        snprintf(context, sizeof context, "match: variant \"%s\"", p->budget_from);
        lws_status st = variant_sets(p, v, point, 0, &s);
        if (st == LWS_OK) st = load(p, &s, cfg, context);
        free_sets(&s);
        LWS_TRY(st);
        p->budgets[point] = lws_config_params(cfg);
        if (point == 0) p->budget_params = p->budgets[0];
    }
    return LWS_OK;
}

/* ---- the file ------------------------------------------------------------------- */

static lws_status read_eval(sweep_plan *p, const cJSON *e) {
    if (!e) return LWS_OK;
    if (!cJSON_IsObject(e))
        return fail_at(p, "eval", "%s; expected {\"tokens\": N, \"every\": N}", type_name(e));
    static const char *const keys[] = {"tokens", "every", NULL};
    LWS_TRY(check_keys(p, e, "eval", keys));
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "tokens");
    const cJSON *every = cJSON_GetObjectItemCaseSensitive(e, "every");
    if (t) LWS_TRY(get_uint(p, t, "eval.tokens", 0, 1ull << 50, &p->eval_tokens));
    if (every) {
        uint64_t n = 0;
        LWS_TRY(get_uint(p, every, "eval.every", 0, 0x7FFFFFFF, &n));
        p->eval_every = (uint32_t)n;
        p->has_eval_every = 1;
    }
    return LWS_OK;
}

static lws_status read_top(sweep_plan *p, const cJSON *root) {
    static const char *const keys[] = {"name",     "description", "base",  "set",
                                       "variants", "baseline",    "match", "seeds",
                                       "tokens",   "eval",        "grid",  NULL};
    LWS_TRY(check_keys(p, root, "", keys));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "base");
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(root, "set");
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    const cJSON *baseline = cJSON_GetObjectItemCaseSensitive(root, "baseline");
    if (name && !cJSON_IsString(name))
        return fail_at(p, "name", "%s; expected a string", type_name(name));
    if (name) snprintf(p->name, sizeof p->name, "%s", name->valuestring);
    LWS_TRY(check_name(p, "name", p->name));
    if (desc && !cJSON_IsString(desc))
        return fail_at(p, "description", "%s; expected a string", type_name(desc));
    if (desc) snprintf(p->description, sizeof p->description, "%s", desc->valuestring);
    if (!cJSON_IsString(base))
        return fail_at(p, "base",
                       "%s; give the config every run starts from (a path relative "
                       "to the sweep file)",
                       base ? type_name(base) : "missing");
    cfg_relative_path(p->path, base->valuestring, p->base, sizeof p->base);
    if (set) LWS_TRY(read_set_object(p, set, "set", &p->common));
    LWS_TRY(read_variants(p, cJSON_GetObjectItemCaseSensitive(root, "variants")));
    LWS_TRY(read_grid(p, cJSON_GetObjectItemCaseSensitive(root, "grid")));
    LWS_TRY(read_seeds(p, cJSON_GetObjectItemCaseSensitive(root, "seeds")));
    if (!tokens)
        return fail_at(p, "tokens",
                       "missing; give the tokens every run trains on (a whole "
                       "number of steps)");
    LWS_TRY(get_uint(p, tokens, "tokens", 1, 1ull << 50, &p->tokens));
    LWS_TRY(read_eval(p, cJSON_GetObjectItemCaseSensitive(root, "eval")));
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(root, "match");
    LWS_TRY(read_match(p, match));
    if (baseline && !cJSON_IsString(baseline))
        return fail_at(p, "baseline", "%s; expected the name of a variant", type_name(baseline));
    const char *b = baseline             ? baseline->valuestring
                    : p->match_kind == 2 ? match->valuestring
                                         : p->variants[0].name;
    if (variant_index(p, b) < 0)
        return fail_at(p, "baseline", "\"%s\" is not one of the variants", b);
    p->baseline = (uint32_t)variant_index(p, b);
    return LWS_OK;
}

/* Each part of the file on its own over the base, so that an error names
 * the field that causes it: the base with "set", each grid value, each variant.
 * The base may lack a profile (the variants give one): the parts other than
 * the variants are checked with the isotropic one. */
static lws_status check_parts(const sweep_plan *p, lws_config *cfg) {
    sweep_sets s = {0};
    lws_status st = profile_sets("isotropic", NULL, &s);
    if (st == LWS_OK) st = add_sets(&s, &p->common);
    if (st == LWS_OK) st = load(p, &s, cfg, "base with \"set\"");
    for (uint32_t a = 0; st == LWS_OK && a < p->n_axes; a++) {
        for (uint32_t k = 0; st == LWS_OK && k < p->axes[a].n; k++) {
            sweep_sets one = {0};
            char context[200];
            snprintf(context, sizeof context, "grid.\"%s\"[%u]", p->axes[a].path, k);
            st = add_sets(&one, &s);
            if (st == LWS_OK) st = add_set(&one, "%s=%s", p->axes[a].path, p->axes[a].values[k]);
            if (st == LWS_OK) st = load(p, &one, cfg, context);
            free_sets(&one);
        }
    }
    for (uint32_t v = 0; st == LWS_OK && v < p->n_variants; v++) {
        sweep_sets one = {0};
        char context[128];
        snprintf(context, sizeof context, "variants[%u] \"%s\"", v, p->variants[v].name);
        st = add_sets(&one, &p->common);
        if (st == LWS_OK) st = add_sets(&one, &p->variants[v].sets);
        if (st == LWS_OK) st = load(p, &one, cfg, context);
        free_sets(&one);
    }
    free_sets(&s);
    return st;
}

/* The run's overrides after its variant's: seed, evaluation, name, directory. */
static lws_status run_sets(const sweep_plan *p, const sweep_run *r, sweep_sets *s) {
    LWS_TRY(variant_sets(p, r->variant, r->point, 1, s));
    LWS_TRY(add_set(s, "train.seed=%llu", (unsigned long long)r->seed));
    LWS_TRY(add_set(s, "eval.tokens=%llu", (unsigned long long)p->eval_tokens));
    if (p->has_eval_every) LWS_TRY(add_set(s, "eval.every=%u", p->eval_every));
    LWS_TRY(add_set(s, "name=%s", r->group));
    return add_set(s, "train.out_dir=%s", r->dir);
}

/* The run's config: its overrides, then steps for the token budget. */
static lws_status resolve_run(const sweep_plan *p, sweep_run *r) {
    sweep_sets s = {0};
    char context[1800];
    const sweep_variant *v = &p->variants[r->variant];
    if (p->budgets && p->budgets[r->point] && v->match)
        snprintf(context, sizeof context,
                 "match: a budget of %llu parameters%s%s%s for "
                 "variants[%u] \"%s\"",
                 (unsigned long long)p->budgets[r->point], p->match_kind > 1 ? " (from " : "",
                 p->match_kind > 1 ? p->budget_from : "", p->match_kind > 1 ? ")" : "", r->variant,
                 v->name);
    else
        snprintf(context, sizeof context, "variants[%u] \"%s\" (run %s)", r->variant, v->name,
                 r->name);
    lws_status st = run_sets(p, r, &s);
    if (st == LWS_OK) st = load(p, &s, r->cfg, context);
    if (st == LWS_OK) {
        const lws_train_config *t = &r->cfg->train;
        uint64_t per_step = (uint64_t)t->micro_batch * t->seq_len * lws_train_accum(t);
        if (p->tokens % per_step || p->tokens / per_step > 0x7FFFFFFF)
            st = fail_at(p, "tokens",
                         "%llu is not a whole number of steps of %llu tokens (micro_batch %u x "
                         "seq_len %u x grad_accum %u, run %s); use %llu or %llu",
                         (unsigned long long)p->tokens, (unsigned long long)per_step,
                         t->micro_batch, t->seq_len, lws_train_accum(t), r->name,
                         (unsigned long long)(p->tokens / per_step * per_step),
                         (unsigned long long)((p->tokens / per_step + 1) * per_step));
        else if (p->tokens < per_step)
            st = fail_at(p, "tokens", "%llu is less than one step of %llu tokens (run %s)",
                         (unsigned long long)p->tokens, (unsigned long long)per_step, r->name);
        if (st == LWS_OK)
            st = add_set(&s, "train.steps=%llu", (unsigned long long)(p->tokens / per_step));
        snprintf(context, sizeof context, "tokens: %llu tokens are %llu steps for run %s",
                 (unsigned long long)p->tokens, (unsigned long long)(p->tokens / per_step),
                 r->name);
    }
    if (st == LWS_OK) st = load(p, &s, r->cfg, context);
    free_sets(&s);
    LWS_TRY(st);
    if (!r->cfg->data.val[0] && !r->cfg->data.val_tokens)
        return fail_at(p, "base",
                       "run %s has no validation split (data.val or data.val_tokens): "
                       "a sweep compares validation losses",
                       r->name);
    r->config_json = lws_config_to_json(r->cfg);
    return r->config_json ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
}

/* Grid point by grid point, variant by variant, seed by seed. */
static lws_status build_runs(sweep_plan *p) {
    p->n_runs = p->n_points * p->n_variants * p->n_seeds;
    p->runs = calloc(p->n_runs, sizeof *p->runs);
    if (!p->runs) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint32_t k = 0;
    for (uint32_t point = 0; point < p->n_points; point++) {
        char label[256];
        LWS_TRY(point_sets(p, point, NULL, label, sizeof label));
        for (uint32_t v = 0; v < p->n_variants; v++) {
            for (uint32_t s = 0; s < p->n_seeds; s++, k++) {
                sweep_run *r = &p->runs[k];
                r->variant = v, r->point = point, r->seed_index = s, r->seed = p->seeds[s];
                snprintf(r->group, sizeof r->group, "%s%s", p->variants[v].name, label);
                snprintf(r->name, sizeof r->name, "%s-s%llu", r->group,
                         (unsigned long long)r->seed);
                snprintf(r->dir, sizeof r->dir, "%s/runs/%s", p->dir, r->name);
                r->cfg = malloc(sizeof *r->cfg);
                if (!r->cfg) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
                LWS_TRY(resolve_run(p, r));
            }
        }
    }
    return LWS_OK;
}

lws_status sweep_plan_load(const char *path, const char *out_dir, sweep_plan *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    /* The default name: the file's, without directory and extension. */
    const char *slash = strrchr(path, '/');
    snprintf(p->name, sizeof p->name, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(p->name, '.');
    if (dot && dot != p->name) *dot = 0;
    size_t len = 0;
    LWS_TRY(lws_read_file(path, 1 << 20, &p->text, &len));
    cJSON *root = cJSON_Parse(p->text);
    if (root && !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail_at(p, "the top level",
                       "%s; a sweep file is a JSON object {\"base\": ..., "
                       "\"variants\": [...], \"seeds\": [...], ...}",
                       type_name(root));
    }
    cJSON_Delete(root);
    LWS_TRY(cfg_parse_json(path, p->text, &root));
    lws_status s = read_top(p, root);
    cJSON_Delete(root);
    LWS_TRY(s);
    snprintf(p->dir, sizeof p->dir, "%s", out_dir ? out_dir : "");
    if (!out_dir) snprintf(p->dir, sizeof p->dir, "runs/%s", p->name);
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    s = check_parts(p, cfg);
    if (s == LWS_OK) s = resolve_budgets(p, cfg);
    free(cfg);
    if (s == LWS_OK) s = build_runs(p);
    return s;
}

void sweep_plan_free(sweep_plan *p) {
    free_sets(&p->common);
    for (uint32_t v = 0; v < p->n_variants; v++) free_sets(&p->variants[v].sets);
    for (uint32_t a = 0; a < p->n_axes; a++) {
        for (uint32_t k = 0; k < p->axes[a].n; k++) {
            if (p->axes[a].values) free(p->axes[a].values[k]);
            if (p->axes[a].labels) free(p->axes[a].labels[k]);
        }
        free(p->axes[a].values), free(p->axes[a].labels);
        cJSON_Delete(p->axes[a].json);
    }
    for (uint32_t r = 0; p->runs && r < p->n_runs; r++) {
        free(p->runs[r].cfg);
        free(p->runs[r].config_json);
    }
    free(p->runs), free(p->budgets), free(p->text);
    memset(p, 0, sizeof *p);
}
