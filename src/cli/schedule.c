/* lws schedule CONFIG...: every layer's heads, FFN width, parameters and
 * FLOPs; totals; a comparison of several configs; --json; --svg chart. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/svg.h"
#include "lws/config.h"

static const char *usage =
    "lws schedule [--json] [--svg FILE] [--seq-len N] [--set PATH=VALUE]...\n"
    "                    [--print-config] CONFIG...";

/* 181107456 -> "181,107,456" */
static const char *grouped(uint64_t v, char *out, size_t n) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), k = 0;
    for (int i = 0; i < len && k + 2 < (int)n; i++) {
        if (i && (len - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = 0;
    return out;
}

static const char *signed_grouped(int64_t v, char *out, size_t n) {
    char body[32];
    grouped((uint64_t)(v < 0 ? -v : v), body, sizeof body);
    snprintf(out, n, "%s%s", v < 0 ? "-" : "+", body);
    return out;
}

/* 1.234e9 -> "1.23 G" */
static const char *si(double v, char *out, size_t n) {
    const char *unit[] = {"", " k", " M", " G", " T", " P"};
    int k = 0;
    while (v >= 1000 && k < 5) v /= 1000, k++;
    snprintf(out, n, "%.3g%s", v, unit[k]);
    return out;
}

static void points_text(const double *p, uint32_t n, char *out, size_t cap) {
    out[0] = 0;
    for (uint32_t k = 0; k < n; k++) {
        char one[32];
        snprintf(one, sizeof one, "%s%g", k ? " -> " : "", p[k]);
        strncat(out, one, cap - strlen(out) - 1);
    }
}

static void profile_text(const lws_config *c, char *out, size_t cap) {
    const lws_profile *p = &c->lws;
    char beta[96] = "per-layer list", alpha[96] = "per-layer list", frame[64] = "";
    if (p->n_ffn_points) points_text(p->ffn_points, p->n_ffn_points, beta, sizeof beta);
    if (p->n_qkv_points) points_text(p->qkv_points, p->n_qkv_points, alpha, sizeof alpha);
    if (p->frame)
        snprintf(frame, sizeof frame, ", framed (beta %g, alpha %g)", p->frame_ffn, p->frame_qkv);
    snprintf(out, cap, "%s%sbeta %s, alpha %s%s; ffn_divisor %u; GQA %s %u", p->variant,
             p->variant[0] ? ": " : "", beta, alpha, frame, p->ffn_divisor,
             p->gqa == LWS_GQA_GROUP_SIZE ? "group_size" : "kv_heads", p->gqa_value);
}

static void print_config(const lws_config *c, uint32_t seq_len) {
    const lws_model_config *m = &c->model;
    char a[40], b[40], d[40], e[40];
    char profile[512];
    profile_text(c, profile, sizeof profile);
    printf("%s (%s)\n", c->name, c->path);
    printf("  model    d_model %u, %u layers, head_dim %u, vocab %u, %s block, %s embeddings%s\n",
           m->d_model, m->n_layers, m->head_dim, m->vocab_size,
           m->block == LWS_BLOCK_POST_NORM ? "post-norm" : "pre-norm",
           m->tied_embeddings ? "tied" : "untied", m->qk_norm ? ", QK-norm" : "");
    printf("  profile  %s\n", profile);
    char flops_head[32];
    snprintf(flops_head, sizeof flops_head, "fwd FLOPs/token (T=%u)", seq_len);
    printf("  %5s %7s %7s %8s %9s %8s %12s  %s\n", "layer", "alpha", "beta", "q_heads", "kv_heads",
           "ffn_dim", "params", flops_head);
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const lws_layer_shape *l = &c->layers[i];
        printf("  %5u %7.4f %7.4f %8u %9u %8u %12s %11s\n", i, l->alpha, l->beta, l->q_heads,
               l->kv_heads, l->ffn_dim, grouped(lws_layer_params(c, i), a, sizeof a),
               si(lws_layer_flops_per_token(c, i, seq_len), b, sizeof b));
    }
    uint64_t total = lws_config_params(c), embedding = lws_config_embedding_params(c);
    printf("  parameters               %s\n", grouped(total, a, sizeof a));
    printf("    without embeddings     %s\n", grouped(total - embedding, a, sizeof a));
    printf("    embeddings             %s (%s)\n", grouped(embedding, a, sizeof a),
           m->tied_embeddings ? "one table, tied to the output head" : "input table + output head");
    double train = lws_config_train_flops_per_token_at(c, seq_len);
    double dense = 6.0 * lws_config_matmul_params(c);
    printf("  training FLOPs/token     %s = 6 x %s matmul weights + attention %s ",
           si(train, a, sizeof a), grouped(lws_config_matmul_params(c), b, sizeof b),
           si(train - dense, d, sizeof d));
    if (seq_len)
        printf("(seq_len %u)\n", seq_len);
    else
        printf("(no train.seq_len: attention left out; give --seq-len)\n");
    if (c->lws.match_target) {
        int64_t diff = (int64_t)total - (int64_t)c->lws.match_target;
        printf("  budget match             target %s%s%s%s, result %s, difference %s (%+.3f%%), "
               "FFN scale %.4f\n",
               grouped(c->lws.match_target, a, sizeof a), c->lws.match_config[0] ? " (" : "",
               c->lws.match_config, c->lws.match_config[0] ? ")" : "", grouped(total, b, sizeof b),
               signed_grouped(diff, e, sizeof e), 100.0 * diff / c->lws.match_target,
               c->lws.match_scale);
    }
}

static void print_comparison(const lws_config *c, const uint32_t *seq, int n) {
    char a[40], b[40];
    uint64_t first = lws_config_params(&c[0]);
    printf("comparison (difference to %s)\n", c[0].name);
    printf("  %-20s %6s %14s %9s  %s\n", "config", "layers", "parameters", "diff",
           "train FLOPs/token");
    for (int k = 0; k < n; k++) {
        uint64_t p = lws_config_params(&c[k]);
        char diff[16] = "";
        if (k) snprintf(diff, sizeof diff, "%+.2f%%", 100.0 * ((double)p - first) / first);
        printf("  %-20s %6u %14s %9s  %s\n", c[k].name, c[k].model.n_layers,
               grouped(p, a, sizeof a), diff,
               si(lws_config_train_flops_per_token_at(&c[k], seq[k]), b, sizeof b));
    }
}

static cJSON *numbers(const double *v, uint32_t n) {
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *config_json(const lws_config *c, uint32_t seq_len) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddStringToObject(o, "path", c->path);
    const lws_model_config *m = &c->model;
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddNumberToObject(model, "d_model", m->d_model);
    cJSON_AddNumberToObject(model, "n_layers", m->n_layers);
    cJSON_AddNumberToObject(model, "head_dim", m->head_dim);
    cJSON_AddNumberToObject(model, "vocab_size", m->vocab_size);
    cJSON_AddStringToObject(model, "block",
                            m->block == LWS_BLOCK_POST_NORM ? "post_norm" : "pre_norm");
    cJSON_AddBoolToObject(model, "tied_embeddings", m->tied_embeddings);
    cJSON_AddBoolToObject(model, "qk_norm", m->qk_norm);
    const lws_profile *p = &c->lws;
    cJSON *profile = cJSON_AddObjectToObject(o, "profile");
    if (p->variant[0]) cJSON_AddStringToObject(profile, "variant", p->variant);
    if (p->n_ffn_points)
        cJSON_AddItemToObject(profile, "ffn_points", numbers(p->ffn_points, p->n_ffn_points));
    if (p->n_qkv_points)
        cJSON_AddItemToObject(profile, "qkv_points", numbers(p->qkv_points, p->n_qkv_points));
    cJSON_AddBoolToObject(profile, "frame", p->frame);
    if (p->frame) {
        cJSON_AddNumberToObject(profile, "frame_ffn", p->frame_ffn);
        cJSON_AddNumberToObject(profile, "frame_qkv", p->frame_qkv);
    }
    cJSON_AddNumberToObject(profile, "ffn_divisor", p->ffn_divisor);
    cJSON *gqa = cJSON_AddObjectToObject(profile, "gqa");
    cJSON_AddNumberToObject(gqa, p->gqa == LWS_GQA_GROUP_SIZE ? "group_size" : "kv_heads",
                            p->gqa_value);
    cJSON_AddNumberToObject(o, "seq_len", seq_len);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (uint32_t i = 0; i < m->n_layers; i++) {
        const lws_layer_shape *l = &c->layers[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", i);
        cJSON_AddNumberToObject(e, "alpha", l->alpha);
        cJSON_AddNumberToObject(e, "beta", l->beta);
        cJSON_AddNumberToObject(e, "q_heads", l->q_heads);
        cJSON_AddNumberToObject(e, "kv_heads", l->kv_heads);
        cJSON_AddNumberToObject(e, "ffn_dim", l->ffn_dim);
        cJSON_AddNumberToObject(e, "params", (double)lws_layer_params(c, i));
        cJSON_AddNumberToObject(e, "forward_flops_per_token",
                                lws_layer_flops_per_token(c, i, seq_len));
        cJSON_AddItemToArray(layers, e);
    }
    uint64_t total = lws_config_params(c), embedding = lws_config_embedding_params(c);
    cJSON *totals = cJSON_AddObjectToObject(o, "totals");
    cJSON_AddNumberToObject(totals, "params", (double)total);
    cJSON_AddNumberToObject(totals, "params_without_embeddings", (double)(total - embedding));
    cJSON_AddNumberToObject(totals, "embedding_params", (double)embedding);
    cJSON_AddNumberToObject(totals, "matmul_params", (double)lws_config_matmul_params(c));
    cJSON_AddNumberToObject(totals, "train_flops_per_token",
                            lws_config_train_flops_per_token_at(c, seq_len));
    if (p->match_target) {
        cJSON *match = cJSON_AddObjectToObject(o, "match");
        cJSON_AddNumberToObject(match, "target", (double)p->match_target);
        if (p->match_config[0]) cJSON_AddStringToObject(match, "config", p->match_config);
        cJSON_AddNumberToObject(match, "result", (double)total);
        cJSON_AddNumberToObject(match, "difference", (double)total - (double)p->match_target);
        cJSON_AddNumberToObject(match, "relative_difference",
                                ((double)total - (double)p->match_target) / p->match_target);
        cJSON_AddNumberToObject(match, "ffn_scale", p->match_scale);
    }
    return o;
}

/* FFN width and query heads per layer, one colour per config. */
static lws_status draw_chart(const char *path, const lws_config *c, int n) {
    lws_profile_series *s = calloc((size_t)n, sizeof *s);
    if (!s) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "%s: out of memory drawing the chart", path);
    for (int k = 0; k < n; k++) s[k] = (lws_profile_series){c[k].name, &c[k], NULL, k};
    lws_status st =
        lws_profile_chart(path, "Layer-wise scaling: FFN width and query heads per layer", s, n);
    free(s);
    return st;
}

int lws_cli_schedule(int argc, char **argv) {
    int json = 0;
    const char *svg_path = NULL;
    uint32_t seq_override = 0; /* 0: each config's train.seq_len */
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n = 0;
    lws_cli_sets sets = {.n = 0};
    if (!files) return lws_cli_usage(usage, "out of memory");
    for (int i = 0; i < argc; i++) {
        int took = lws_cli_take_set(&i, argc, argv, usage, &sets);
        if (took == 2) {
            free(files);
            return 2;
        }
        if (took) continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n\nPrints each config's per-layer schedule (alpha, beta, heads, FFN "
                   "width, parameters, forward FLOPs per token) and totals.\n"
                   "  --json       machine-readable output\n"
                   "  --svg FILE   chart of FFN width and query heads per layer\n"
                   "  --seq-len N  sequence length for the attention FLOPs (default "
                   "train.seq_len)\n"
                   "Every CONFIG gets the same overrides:\n%s",
                   usage, lws_cli_sets_help);
            free(files);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc)
            svg_path = argv[++i];
        else if (strcmp(argv[i], "--seq-len") == 0 && i + 1 < argc) {
            if (lws_parse_u32(usage, "--seq-len", argv[++i], 1, 1u << 20, &seq_override)) {
                free(files);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(files);
            return lws_cli_usage(usage, "unknown option '%s'", argv[i]);
        } else
            files[n++] = argv[i];
    }
    if (n == 0) {
        free(files);
        return lws_cli_usage(usage, "give at least one config file");
    }
    lws_config *cfg = malloc((size_t)n * sizeof *cfg);
    uint32_t *seq = malloc((size_t)n * sizeof *seq);
    if (!cfg || !seq) {
        free(files), free(cfg), free(seq);
        return lws_cli_usage(usage, "out of memory");
    }
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++) {
        if (lws_cli_load_config(files[k], &sets, &cfg[k]) != LWS_OK)
            rc = lws_cli_error();
        else
            seq[k] = seq_override ? seq_override : cfg[k].train.seq_len;
    }
    if (rc == 0 && sets.print_config) {
        for (int k = 0; k < n && rc == 0; k++) rc = lws_cli_print_config(&cfg[k]);
        free(files), free(cfg), free(seq);
        return rc;
    }
    if (rc == 0 && json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(root, "configs");
        for (int k = 0; k < n; k++) cJSON_AddItemToArray(list, config_json(&cfg[k], seq[k]));
        char *text = cJSON_Print(root);
        printf("%s\n", text ? text : "null");
        free(text);
        cJSON_Delete(root);
    } else if (rc == 0) {
        for (int k = 0; k < n; k++) {
            if (k) printf("\n");
            print_config(&cfg[k], seq[k]);
        }
        if (n > 1) {
            printf("\n");
            print_comparison(cfg, seq, n);
        }
    }
    if (rc == 0 && svg_path) {
        if (draw_chart(svg_path, cfg, n) != LWS_OK)
            rc = lws_cli_error();
        else
            fprintf(json ? stderr : stdout, "%schart written to %s\n", json ? "" : "\n", svg_path);
    }
    free(files), free(cfg), free(seq);
    return rc;
}
