/* The lws section: variant presets, control points, framing, per-layer
 * lists, the GQA policy and the budget target. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/config_internal.h"

typedef struct variant_preset {
    uint32_t n_points;
    double ffn[LWS_MAX_POINTS], qkv[LWS_MAX_POINTS];
    int frame;
} variant_preset;

/* The paper's variants (docs/design.md §1.2); isotropic is the standard
 * transformer shape (FFN 4 d_model, every head). The schema's lws.variant
 * takes its names from here; presets[i] belongs to cfg_variant_names[i]. */
const char *const cfg_variant_names[] = {"isotropic", "vanilla", "framed",
                                         "reverse",   "crown",   NULL};
static const variant_preset presets[] = {
    {2, {4.0, 4.0}, {1.0, 1.0}, 0},           {2, {1.0, 4.0}, {0.5, 1.0}, 0},
    {2, {0.5, 4.0}, {0.5, 1.0}, 1},           {2, {4.0, 0.5}, {1.0, 0.5}, 1},
    {3, {0.5, 3.8, 0.5}, {0.5, 1.0, 0.5}, 1},
};
_Static_assert(CFG_COUNT(presets) + 1 == CFG_COUNT(cfg_variant_names),
               "one preset per variant name");

/* Control points: 2 or 3 numbers, each a multiple of d_model in (0, 64]. */
static lws_status read_points(const cfg_doc *doc, const cJSON *lws, const char *key, double *points,
                              uint32_t *n, int *given) {
    const cJSON *c = NULL;
    char path[64], v[128];
    LWS_TRY(cfg_field(lws, "lws", key, CFG_ARRAY, path, sizeof path, &c, given));
    if (!c) return LWS_OK;
    cfg_value_text(c, v, sizeof v);
    if (!cJSON_IsArray(c))
        return cfg_error(doc, c, path, "value %s is %s; expected 2 or 3 numbers, e.g. [0.5, 4.0]",
                         v, cfg_type_name(c));
    int count = cJSON_GetArraySize(c);
    if (count != 2 && count != 3)
        return cfg_error(doc, c, path,
                         "%d control point%s given (%s); use 2 (start, end: linear) "
                         "or 3 (start, peak, end)",
                         count, count == 1 ? "" : "s", v);
    uint32_t k = 0;
    for (const cJSON *e = c->child; e; e = e->next, k++) {
        char at[80];
        snprintf(at, sizeof at, "%s[%u]", path, k);
        LWS_TRY(cfg_node_number(doc, e, at, (cfg_interval){0, 64, 1, 0}, &points[k]));
    }
    *n = (uint32_t)count;
    return LWS_OK;
}

/* A per-layer list of positive integers, one per layer. */
static lws_status read_list(const cfg_doc *doc, const cJSON *lws, const char *key,
                            uint32_t n_layers, uint32_t max, uint32_t *out, int *given) {
    const cJSON *c = NULL;
    char path[64], v[128];
    LWS_TRY(cfg_field(lws, "lws", key, CFG_ARRAY, path, sizeof path, &c, given));
    if (!c) return LWS_OK;
    cfg_value_text(c, v, sizeof v);
    if (!cJSON_IsArray(c))
        return cfg_error(doc, c, path, "value %s is %s; expected one positive integer per layer", v,
                         cfg_type_name(c));
    int count = cJSON_GetArraySize(c);
    if (count != (int)n_layers)
        return cfg_error(doc, c, path,
                         "%d values given; model.n_layers is %u, so give one value "
                         "per layer",
                         count, n_layers);
    uint32_t k = 0;
    for (const cJSON *e = c->child; e; e = e->next, k++) {
        char at[80];
        uint64_t x = 0;
        snprintf(at, sizeof at, "%s[%u]", path, k);
        LWS_TRY(cfg_node_uint(doc, e, at, 1, max, &x));
        out[k] = (uint32_t)x;
    }
    return LWS_OK;
}

static lws_status conflict(const cfg_doc *doc, const cJSON *lws, const char *a, const char *b,
                           const char *why) {
    char path[64];
    cfg_join(path, sizeof path, "lws", a);
    return cfg_error(doc, cfg_item(lws, a), path, "given together with lws.%s; %s", b, why);
}

static lws_status read_gqa(const cfg_doc *doc, const cJSON *lws, lws_profile *p) {
    const cJSON *g = NULL;
    char path[64];
    LWS_TRY(cfg_field(lws, "lws", "gqa", CFG_OBJECT, path, sizeof path, &g, NULL));
    if (!g)
        return cfg_missing(doc, "lws.gqa",
                           "the GQA policy: {\"group_size\": g} keeps g query heads "
                           "per KV head, {\"kv_heads\": k} keeps k KV heads in every layer");
    LWS_TRY(cfg_check_object(doc, g, "lws.gqa"));
    LWS_TRY(cfg_check_keys(doc, g, "lws.gqa"));
    int group = 0, kv = 0;
    LWS_TRY(cfg_get_u32(doc, g, "lws.gqa", "group_size", 1, 4096, &p->gqa_value, &group));
    if (group) p->gqa = LWS_GQA_GROUP_SIZE;
    LWS_TRY(cfg_get_u32(doc, g, "lws.gqa", "kv_heads", 1, 4096, &p->gqa_value, &kv));
    if (kv) p->gqa = LWS_GQA_KV_HEADS;
    if (group == kv)
        return cfg_error(doc, g, "lws.gqa",
                         "give exactly one of group_size (query heads per KV "
                         "head) and kv_heads (KV heads per layer), not %s",
                         group ? "both" : "neither");
    return LWS_OK;
}

lws_status cfg_read_lws(const cfg_doc *doc, const cJSON *root, lws_config *cfg) {
    const cJSON *s = cfg_item(root, "lws");
    if (!s) return cfg_missing(doc, "lws", "the layer-wise scaling profile");
    LWS_TRY(cfg_check_object(doc, s, "lws"));
    LWS_TRY(cfg_check_keys(doc, s, "lws"));
    lws_profile *p = &cfg->lws;
    const uint32_t n = cfg->model.n_layers;
    *p = (lws_profile){.frame_ffn = 4.0, .frame_qkv = 1.0, .ffn_divisor = 256, .match_scale = 1};

    int variant = -1, given = 0;
    LWS_TRY(cfg_get_enum(doc, s, "lws", "variant", &variant, &given));
    if (given) {
        const variant_preset *v = &presets[variant];
        snprintf(p->variant, sizeof p->variant, "%s", cfg_variant_names[variant]);
        p->n_ffn_points = p->n_qkv_points = v->n_points;
        memcpy(p->ffn_points, v->ffn, sizeof p->ffn_points);
        memcpy(p->qkv_points, v->qkv, sizeof p->qkv_points);
        p->frame = v->frame;
    }
    /* Keys given beside a variant replace that part of its preset. */
    int ffn_points = 0, qkv_points = 0, frame = 0, frame_ffn = 0, frame_qkv = 0;
    LWS_TRY(read_points(doc, s, "ffn_points", p->ffn_points, &p->n_ffn_points, &ffn_points));
    LWS_TRY(read_points(doc, s, "qkv_points", p->qkv_points, &p->n_qkv_points, &qkv_points));
    LWS_TRY(cfg_get_bool(doc, s, "lws", "frame", &p->frame, &frame));
    const cfg_interval multiple = {0, 64, 1, 0};
    LWS_TRY(cfg_get_number(doc, s, "lws", "frame_ffn", multiple, &p->frame_ffn, &frame_ffn));
    LWS_TRY(cfg_get_number(doc, s, "lws", "frame_qkv", multiple, &p->frame_qkv, &frame_qkv));

    uint32_t list[LWS_MAX_LAYERS];
    LWS_TRY(read_list(doc, s, "ffn_dims", n, 1u << 24, list, &p->has_ffn_dims));
    for (uint32_t i = 0; p->has_ffn_dims && i < n; i++) cfg->layers[i].ffn_dim = list[i];
    LWS_TRY(read_list(doc, s, "q_heads", n, 1u << 16, list, &p->has_q_heads));
    for (uint32_t i = 0; p->has_q_heads && i < n; i++) cfg->layers[i].q_heads = list[i];
    LWS_TRY(read_list(doc, s, "kv_heads", n, 1u << 16, list, &p->has_kv_heads));
    for (uint32_t i = 0; p->has_kv_heads && i < n; i++) cfg->layers[i].kv_heads = list[i];

    if (p->has_ffn_dims && ffn_points)
        return conflict(doc, s, "ffn_dims", "ffn_points", "give the FFN widths one way");
    if (p->has_q_heads && qkv_points)
        return conflict(doc, s, "q_heads", "qkv_points", "give the query heads one way");
    if (p->has_kv_heads && !p->has_q_heads)
        return cfg_error(doc, cfg_item(s, "kv_heads"), "lws.kv_heads",
                         "given without lws.q_heads; with control points the KV heads follow "
                         "from the GQA policy (lws.gqa)");
    if (p->has_ffn_dims) p->n_ffn_points = 0;
    if (p->has_q_heads) p->n_qkv_points = 0;
    if (!p->n_ffn_points && !p->has_ffn_dims)
        return cfg_missing(doc, "lws.ffn_points",
                           "the FFN profile: give lws.variant, "
                           "lws.ffn_points or lws.ffn_dims");
    if (!p->n_qkv_points && !p->has_q_heads)
        return cfg_missing(doc, "lws.qkv_points",
                           "the attention profile: give lws.variant, "
                           "lws.qkv_points or lws.q_heads");
    if ((p->n_ffn_points == 3 || p->n_qkv_points == 3) && n < 3) {
        /* Name the key the 3 points came from: explicit points or the variant. */
        const char *key = p->n_ffn_points == 3 ? "ffn_points" : "qkv_points";
        if (!(p->n_ffn_points == 3 ? ffn_points : qkv_points)) key = "variant";
        char path[64];
        cfg_join(path, sizeof path, "lws", key);
        return cfg_error(doc, cfg_item(s, key), path,
                         "3 control points (start, peak, end) need model.n_layers >= 3, not %u; "
                         "use a 2-point profile",
                         n);
    }
    if (p->frame && !p->n_ffn_points && !p->n_qkv_points)
        return cfg_error(doc, cfg_item(s, "frame") ? cfg_item(s, "frame") : cfg_item(s, "variant"),
                         "lws.frame",
                         "framing sets the first and last layer of a control-point "
                         "profile, but lws.ffn_dims and lws.q_heads give every layer; set "
                         "\"frame\": false");
    if (!p->frame && (frame_ffn || frame_qkv)) {
        const char *key = frame_ffn ? "frame_ffn" : "frame_qkv";
        char path[64];
        cfg_join(path, sizeof path, "lws", key);
        return cfg_error(doc, cfg_item(s, key), path,
                         "given, but the profile is not framed; set "
                         "\"frame\": true or leave it out");
    }

    LWS_TRY(cfg_get_u32(doc, s, "lws", "ffn_divisor", 1, 1u << 16, &p->ffn_divisor, NULL));
    LWS_TRY(read_gqa(doc, s, p));

    int match_params = 0, match_config = 0;
    LWS_TRY(cfg_get_u64(doc, s, "lws", "match_params", 1, CFG_EXACT_MAX, &p->match_target,
                        &match_params));
    char target_file[1024] = "";
    LWS_TRY(cfg_get_string(doc, s, "lws", "match_config", target_file, sizeof target_file,
                           &match_config));
    if (match_params && match_config)
        return conflict(doc, s, "match_config", "match_params", "give one budget target");
    if (match_config) {
        const cJSON *c = cfg_item(s, "match_config");
        cfg_relative_path(cfg_doc_file_of(doc, c), target_file, p->match_config,
                          sizeof p->match_config);
    }
    return LWS_OK;
}
