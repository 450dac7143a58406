/* The Layer-Wise Scaling schedule (docs/design.md §1.1): control points ->
 * alpha(i), beta(i) -> rounded head counts and FFN widths per layer; the
 * budget match; parameter and FLOP counts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_internal.h"

uint32_t lws_make_divisible(double v, uint32_t divisor) {
    double d = divisor;
    /* floor(v + d/2) // d * d of OpenELM, for v >= 0 the same as this. */
    double n = floor((v + d / 2) / d) * d;
    if (n < d) n = d;
    if (n < 0.9 * v) n += d;
    return (uint32_t)n;
}

/* Python's round(x, 2): glibc's printf rounds the exact binary value to
 * nearest-even, as CPython does, and strtod returns the nearest double. */
static double round2(double x) {
    char text[64];
    snprintf(text, sizeof text, "%.2f", x);
    return strtod(text, NULL);
}

lws_status lws_interpolate_points(const double *points, uint32_t n_points, uint32_t n_layers,
                                  double *out) {
    if (n_layers < 1 || n_layers > LWS_MAX_LAYERS)
        return lws_fail(LWS_ERR_INVALID, "interpolation: %u layers; use 1 to %d", n_layers,
                        LWS_MAX_LAYERS);
    if (n_points == 2) {
        /* numpy.linspace(start, end, N) as OpenELM calls it: i * step + start,
         * the last value exactly end; then round(v, 2). */
        if (n_layers == 1) {
            out[0] = round2(points[0]);
            return LWS_OK;
        }
        double step = (points[1] - points[0]) / (n_layers - 1);
        for (uint32_t i = 0; i < n_layers; i++) out[i] = round2(i * step + points[0]);
        out[n_layers - 1] = round2(points[1]);
        return LWS_OK;
    }
    if (n_points == 3) {
        if (n_layers < 3)
            return lws_fail(LWS_ERR_INVALID, "3 control points need at least 3 layers, not %u",
                            n_layers);
        /* Control layers 0, ceil(N/2)-1, N-1 for odd N; for even N the peak is
         * held on the two middle layers: 0, ceil(N/2)-1, ceil(N/2), N-1. */
        uint32_t half = (n_layers + 1) / 2;
        uint32_t at[4] = {0, half - 1, half, n_layers - 1};
        double value[4] = {points[0], points[1], points[1], points[2]};
        uint32_t n_ctl = 4;
        if (n_layers % 2) {
            at[2] = n_layers - 1;
            value[2] = points[2];
            n_ctl = 3;
        }
        for (uint32_t i = 0; i < n_layers; i++) {
            uint32_t k = 0;
            while (k + 2 < n_ctl && i > at[k + 1]) k++;
            double t = (double)(i - at[k]) / (at[k + 1] - at[k]);
            out[i] = value[k] + (value[k + 1] - value[k]) * t;
        }
        return LWS_OK;
    }
    return lws_fail(LWS_ERR_INVALID,
                    "%u control points; use 2 (start, end) or 3 (start, peak, end)", n_points);
}

/* alpha or beta per layer of one side of the profile. The budget match scales
 * the whole FFN side, frame included, so the profile keeps its shape. */
static lws_status side_values(const lws_config *cfg, const double *points, uint32_t n_points,
                              double scale, double frame_value, double *out) {
    double scaled[LWS_MAX_POINTS];
    for (uint32_t k = 0; k < n_points && k < LWS_MAX_POINTS; k++) scaled[k] = points[k] * scale;
    uint32_t n = cfg->model.n_layers;
    LWS_TRY(lws_interpolate_points(scaled, n_points, n, out));
    if (cfg->lws.frame) out[0] = out[n - 1] = frame_value * scale;
    return LWS_OK;
}

static const char *frame_or(const lws_config *cfg, uint32_t layer, const char *key,
                            const char *frame_key) {
    return cfg->lws.frame && (layer == 0 || layer + 1 == cfg->model.n_layers) ? frame_key : key;
}

/* Shapes every layer of cfg into layers (cfg->layers holds explicit lists). */
static lws_status build(const lws_config *cfg, double ffn_scale, lws_layer_shape *layers,
                        const char **blame) {
    const lws_profile *p = &cfg->lws;
    const lws_model_config *m = &cfg->model;
    uint32_t n = m->n_layers;
    double values[LWS_MAX_LAYERS];

    if (p->n_ffn_points) {
        *blame = "ffn_points";
        lws_status s =
            side_values(cfg, p->ffn_points, p->n_ffn_points, ffn_scale, p->frame_ffn, values);
        if (s != LWS_OK) {
            lws_error_context("lws.ffn_points");
            return s;
        }
        for (uint32_t i = 0; i < n; i++) {
            double width = values[i] * m->d_model;
            if (width < p->ffn_divisor / 2.0) {
                *blame = frame_or(cfg, i, "ffn_points", "frame_ffn");
                return lws_fail(LWS_ERR_CONFIG,
                                "lws.%s: layer %u has beta %.4g, which gives %.4g FFN units and "
                                "rounds to width 0 (multiples of lws.ffn_divisor %u); every "
                                "layer's beta must be at least %.4g with d_model %u",
                                *blame, i, values[i], width, p->ffn_divisor,
                                p->ffn_divisor / 2.0 / m->d_model, m->d_model);
            }
            layers[i].beta = values[i];
            layers[i].ffn_dim = lws_make_divisible(width, p->ffn_divisor);
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            layers[i].ffn_dim = cfg->layers[i].ffn_dim;
            layers[i].beta = (double)layers[i].ffn_dim / m->d_model;
        }
    }

    /* Query heads come in units of `unit` heads: the group (fixed group size)
     * or the number of KV heads (fixed KV heads). */
    uint32_t unit = p->gqa_value;
    const char *policy = p->gqa == LWS_GQA_GROUP_SIZE ? "group_size" : "kv_heads";
    if (p->n_qkv_points) {
        *blame = "qkv_points";
        lws_status s = side_values(cfg, p->qkv_points, p->n_qkv_points, 1.0, p->frame_qkv, values);
        if (s != LWS_OK) {
            lws_error_context("lws.qkv_points");
            return s;
        }
        uint32_t unit_width = unit * m->head_dim;
        for (uint32_t i = 0; i < n; i++) {
            double width = values[i] * m->d_model;
            if (width < unit_width / 2.0) {
                *blame = frame_or(cfg, i, "qkv_points", "frame_qkv");
                return lws_fail(LWS_ERR_CONFIG,
                                "lws.%s: layer %u has alpha %.4g, which gives %.4g query dims and "
                                "rounds to 0 heads (multiples of %u = lws.gqa.%s %u x head_dim "
                                "%u); every layer's alpha must be at least %.4g with d_model %u",
                                *blame, i, values[i], width, unit_width, policy, unit, m->head_dim,
                                unit_width / 2.0 / m->d_model, m->d_model);
            }
            layers[i].alpha = values[i];
            layers[i].q_heads = lws_make_divisible(width, unit_width) / m->head_dim;
            layers[i].kv_heads =
                p->gqa == LWS_GQA_GROUP_SIZE ? layers[i].q_heads / unit : p->gqa_value;
        }
        return LWS_OK;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t q = cfg->layers[i].q_heads;
        if (q % unit) {
            *blame = "q_heads";
            return lws_fail(LWS_ERR_CONFIG,
                            "lws.q_heads[%u]: value %u is not a multiple of lws.gqa.%s %u; "
                            "with this GQA policy every layer's query heads must be",
                            i, q, policy, unit);
        }
        uint32_t kv = p->gqa == LWS_GQA_GROUP_SIZE ? q / unit : unit;
        if (p->has_kv_heads && cfg->layers[i].kv_heads != kv) {
            *blame = "kv_heads";
            return lws_fail(LWS_ERR_CONFIG,
                            "lws.kv_heads[%u]: value %u does not follow the GQA policy "
                            "lws.gqa.%s %u, which gives %u KV heads for %u query heads; give %u "
                            "or leave lws.kv_heads out",
                            i, cfg->layers[i].kv_heads, policy, unit, kv, q, kv);
        }
        layers[i].q_heads = q;
        layers[i].kv_heads = kv;
        layers[i].alpha = (double)q * m->head_dim / m->d_model;
    }
    return LWS_OK;
}

static uint64_t params_of(const lws_config *cfg, const lws_layer_shape *layers) {
    uint64_t d = cfg->model.d_model, hd = cfg->model.head_dim;
    uint64_t total = lws_config_embedding_params(cfg) + d;
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        uint64_t q = layers[i].q_heads * hd, kv = layers[i].kv_heads * hd;
        total += d * q * 2 + d * kv * 2 + (cfg->model.qk_norm ? q + kv : 0) + 2 * d +
                 3 * d * layers[i].ffn_dim;
    }
    return total;
}

/* Finds the FFN scale whose total lands nearest the target. The total never
 * decreases as the scale grows (make_divisible is monotone), so bisection
 * finds the step where it crosses the target; the nearer side wins. */
static lws_status match(lws_config *cfg, const char **blame) {
    const lws_profile *p = &cfg->lws;
    *blame = p->match_config[0] ? "match_config" : "match_params";
    if (!p->n_ffn_points)
        return lws_fail(LWS_ERR_CONFIG,
                        "lws.%s: matching scales the FFN control points, but "
                        "lws.ffn_dims gives the widths directly; use ffn_points or a variant",
                        *blame);
    lws_layer_shape *scratch = malloc(sizeof(lws_layer_shape) * LWS_MAX_LAYERS);
    if (!scratch) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "matching: out of memory");
    const uint64_t target = p->match_target;
    const char *ignored;
    double top = 0;
    for (uint32_t k = 0; k < p->n_ffn_points; k++) top = fmax(top, p->ffn_points[k]);
    if (p->frame) top = fmax(top, p->frame_ffn);
    /* Widest scale: keep every FFN width well inside uint32. */
    const double max_scale = fmin(1024.0, 2147483648.0 / (top * cfg->model.d_model));
    const double min_scale = 1.0 / 1024;

    /* total(s), or 0 when a layer rounds to zero width at this scale. */
#define TOTAL(s) (build(cfg, (s), scratch, &ignored) == LWS_OK ? params_of(cfg, scratch) : 0)
    double lo = 1.0, hi = 1.0;
    uint64_t at_lo = TOTAL(lo), at_hi = at_lo;
    if (at_hi >= target) {
        /* Walk down until below the target (or a layer rounds to zero). */
        while (lo > min_scale && at_lo >= target) {
            hi = lo, at_hi = at_lo;
            lo /= 2, at_lo = TOTAL(lo);
        }
        if (at_lo >= target) hi = lo, at_hi = at_lo, lo = 0; /* the narrowest overshoots */
    } else {
        while (hi < max_scale && at_hi < target) {
            lo = hi, at_lo = at_hi;
            hi = fmin(hi * 2, max_scale), at_hi = TOTAL(hi);
        }
        if (at_hi < target) {
            free(scratch);
            return lws_fail(LWS_ERR_CONFIG,
                            "lws.%s: target %llu parameters is unreachable: scaling the FFN "
                            "points by up to %.4gx gives at most %llu; use more layers or a "
                            "wider d_model",
                            *blame, (unsigned long long)target, max_scale,
                            (unsigned long long)at_hi);
        }
    }
    if (lo > 0) {
        for (int it = 0; it < 80; it++) {
            double mid = 0.5 * (lo + hi);
            uint64_t at = TOTAL(mid);
            if (at >= target)
                hi = mid, at_hi = at;
            else
                lo = mid, at_lo = at;
        }
    }
#undef TOTAL
    free(scratch);
    /* Candidates: the smallest total >= target, and the largest below it when
     * that scale is feasible (at_lo 0: a layer rounds to zero width there). */
    double best = hi;
    uint64_t best_total = at_hi;
    if (lo > 0 && at_lo > 0 && target - at_lo < at_hi - target) best = lo, best_total = at_lo;
    double off = ((double)best_total - (double)target) / (double)target;
    if (fabs(off) > LWS_MATCH_TOLERANCE) {
        if (lo == 0 || at_lo == 0)
            return lws_fail(LWS_ERR_CONFIG,
                            "lws.%s: target %llu parameters is unreachable: the narrowest FFN "
                            "widths the profile allows already give %llu (%+.2f%%); use fewer "
                            "layers or a smaller d_model",
                            *blame, (unsigned long long)target, (unsigned long long)best_total,
                            100 * off);
        return lws_fail(LWS_ERR_CONFIG,
                        "lws.%s: target %llu parameters is unreachable within %.1f%%: the "
                        "nearest total the rounding allows is %llu (%+.2f%%); use a finer "
                        "lws.ffn_divisor",
                        *blame, (unsigned long long)target, 100 * LWS_MATCH_TOLERANCE,
                        (unsigned long long)best_total, 100 * off);
    }
    cfg->lws.match_scale = best;
    return build(cfg, best, cfg->layers, blame);
}

/* The shaders index a matrix with 32-bit integers: every weight matrix
 * (and so every width) stays below 2^32 elements. */
static lws_status check_shapes(const lws_config *cfg, const char **blame) {
    const uint64_t limit = 1ull << 32, d = cfg->model.d_model, hd = cfg->model.head_dim;
    if ((uint64_t)cfg->model.vocab_size * d >= limit)
        return lws_fail(LWS_ERR_CONFIG,
                        "model.vocab_size: %u tokens x d_model %llu = %llu embedding elements; "
                        "a matrix must hold fewer than 2^32",
                        cfg->model.vocab_size, (unsigned long long)d,
                        (unsigned long long)(cfg->model.vocab_size * d));
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) {
        const lws_layer_shape *l = &cfg->layers[i];
        const struct {
            const char *key, *what;
            uint64_t width;
        } w[] = {{"q_heads", "query heads x head_dim", l->q_heads * hd},
                 {"kv_heads", "KV heads x head_dim", l->kv_heads * hd},
                 {"ffn_dims", "the FFN width", l->ffn_dim}};
        for (size_t k = 0; k < sizeof w / sizeof *w; k++) {
            if (w[k].width * d < limit) continue;
            *blame = w[k].key;
            return lws_fail(LWS_ERR_CONFIG,
                            "lws.%s[%u]: a width of %llu (%s) times d_model %llu is %llu "
                            "elements; a matrix must hold fewer than 2^32",
                            w[k].key, i, (unsigned long long)w[k].width, w[k].what,
                            (unsigned long long)d, (unsigned long long)(w[k].width * d));
        }
    }
    return LWS_OK;
}

lws_status cfg_resolve_layers(lws_config *cfg, const char **blame) {
    const char *unused;
    if (!blame) blame = &unused;
    *blame = NULL;
    uint32_t n = cfg->model.n_layers;
    if (n < 1 || n > LWS_MAX_LAYERS)
        return lws_fail(LWS_ERR_CONFIG, "model.n_layers: value %u is not allowed; use 1 to %d", n,
                        LWS_MAX_LAYERS);
    if (cfg->lws.gqa_value < 1)
        return lws_fail(LWS_ERR_CONFIG, "lws.gqa: no GQA policy; give {\"group_size\": g} or "
                                        "{\"kv_heads\": k}");
    lws_status s;
    if (cfg->lws.match_target) {
        s = match(cfg, blame);
    } else {
        cfg->lws.match_scale = 1.0;
        s = build(cfg, 1.0, cfg->layers, blame);
    }
    return s == LWS_OK ? check_shapes(cfg, blame) : s;
}

lws_status lws_config_resolve_layers(lws_config *cfg) {
    const char *blame = NULL;
    lws_status s = cfg_resolve_layers(cfg, &blame);
    if (s != LWS_OK) lws_error_context("%s", cfg->path[0] ? cfg->path : "config");
    return s;
}

/* ---- counts ------------------------------------------------------------ */

uint64_t lws_layer_q_width(const lws_config *cfg, uint32_t layer) {
    return (uint64_t)cfg->layers[layer].q_heads * cfg->model.head_dim;
}

uint64_t lws_layer_kv_width(const lws_config *cfg, uint32_t layer) {
    return (uint64_t)cfg->layers[layer].kv_heads * cfg->model.head_dim;
}

uint64_t lws_layer_params(const lws_config *cfg, uint32_t layer) {
    uint64_t d = cfg->model.d_model, q = lws_layer_q_width(cfg, layer);
    uint64_t kv = lws_layer_kv_width(cfg, layer);
    return d * q * 2 + d * kv * 2 + (cfg->model.qk_norm ? q + kv : 0) + 2 * d +
           3 * d * cfg->layers[layer].ffn_dim;
}

uint64_t lws_config_embedding_params(const lws_config *cfg) {
    uint64_t table = (uint64_t)cfg->model.vocab_size * cfg->model.d_model;
    return cfg->model.tied_embeddings ? table : 2 * table;
}

uint64_t lws_config_params(const lws_config *cfg) {
    return params_of(cfg, cfg->layers);
}

/* Weights of the four attention projections and the three SwiGLU matrices. */
static uint64_t layer_matmul_params(const lws_config *cfg, uint32_t layer) {
    uint64_t d = cfg->model.d_model;
    return d * (lws_layer_q_width(cfg, layer) + lws_layer_kv_width(cfg, layer)) * 2 +
           3 * d * cfg->layers[layer].ffn_dim;
}

double lws_layer_flops_per_token(const lws_config *cfg, uint32_t layer, uint32_t seq_len) {
    return 2.0 * layer_matmul_params(cfg, layer) +
           4.0 * seq_len * (double)lws_layer_q_width(cfg, layer);
}

uint64_t lws_config_matmul_params(const lws_config *cfg) {
    uint64_t total = (uint64_t)cfg->model.vocab_size * cfg->model.d_model; /* output head */
    for (uint32_t i = 0; i < cfg->model.n_layers; i++) total += layer_matmul_params(cfg, i);
    return total;
}

double lws_config_train_flops_per_token_at(const lws_config *cfg, uint32_t seq_len) {
    double attention = 0;
    for (uint32_t i = 0; i < cfg->model.n_layers; i++)
        attention += 12.0 * seq_len * (double)lws_layer_q_width(cfg, i);
    return 6.0 * lws_config_matmul_params(cfg) + attention;
}

double lws_config_train_flops_per_token(const lws_config *cfg) {
    return lws_config_train_flops_per_token_at(cfg, cfg->train.seq_len);
}
