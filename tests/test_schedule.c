// lws-test: plain
/* The LWS schedule: the paper's six configurations layer by layer against
 * docs/design.md §1.2, make_divisible, interpolation for odd and even depths,
 * framing, both GQA policies, budget matching, and the parameter and FLOP
 * formulas. Counts are integers, so every comparison is exact except the
 * interpolated multipliers (1e-12: a few ulps of double arithmetic). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lws/config.h"

static lws_config cfg, other; /* big: keep them off the stack */

static const char *js(const char *text) {
    static char buf[4][8192];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, sizeof buf[0], "%s", text);
    for (char *p = out; *p; p++)
        if (*p == '\'') *p = '"';
    return out;
}

/* ---- docs/design.md §1.2 ---------------------------------------------------- */

typedef struct paper_config {
    const char *file;
    uint64_t params;
    uint32_t ffn[18], q_heads[18];
} paper_config;

/* Totals and crown's lists are docs/design.md's; the other per-layer lists were
 * computed by an independent Python transcription of §1.1 (OpenELM's
 * make_divisible, numpy.linspace + round(v, 2)), which reproduces every total. */
static const paper_config paper[] = {
    {"configs/paper/isotropic-12l.json",
     181107456,
     {3072, 3072, 3072, 3072, 3072, 3072, 3072, 3072, 3072, 3072, 3072, 3072},
     {12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12}},
    {"configs/paper/isotropic-18l.json",
     183477504,
     {2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048,
      2048, 2048, 2048},
     {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}},
    {"configs/paper/vanilla-18l.json",
     179742976,
     {768, 1024, 1024, 1280, 1280, 1536, 1536, 1792, 1792, 2048, 2048, 2304, 2304, 2560, 2560, 2816,
      2816, 3072},
     {6, 6, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 12, 12, 12, 12, 12, 12}},
    {"configs/paper/framed-18l.json",
     179350272,
     {3072, 512, 768, 1024, 1024, 1280, 1280, 1536, 1536, 1792, 2048, 2048, 2304, 2560, 2560, 2816,
      2816, 3072},
     {12, 6, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 12, 12, 12, 12, 12, 12}},
    {"configs/paper/reverse-18l.json",
     179350272,
     {3072, 2816, 2816, 2560, 2560, 2304, 2048, 2048, 1792, 1536, 1536, 1280, 1280, 1024, 1024, 768,
      512, 3072},
     {12, 12, 12, 12, 12, 12, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 6, 12}},
    {"configs/paper/crown-18l.json",
     181906688,
     {3072, 768, 1024, 1280, 1536, 2048, 2304, 2560, 2816, 2816, 2560, 2304, 2048, 1536, 1280, 1024,
      768, 3072},
     {12, 9, 9, 9, 9, 9, 12, 12, 12, 12, 12, 12, 9, 9, 9, 9, 9, 12}},
};

static void paper_configs(void) {
    for (size_t k = 0; k < sizeof paper / sizeof *paper; k++) {
        const paper_config *p = &paper[k];
        if (lws_config_load(p->file, &cfg) != LWS_OK) {
            CHECK(0, "%s: %s", p->file, lws_error_message());
            continue;
        }
        const lws_model_config *m = &cfg.model;
        CHECK(m->d_model == 768 && m->head_dim == 64 && m->vocab_size == 50304 &&
                  !m->tied_embeddings && m->block == LWS_BLOCK_POST_NORM && m->qk_norm,
              "%s: model", p->file);
        CHECK(cfg.lws.gqa == LWS_GQA_GROUP_SIZE && cfg.lws.gqa_value == 3, "%s: group 3", p->file);
        uint32_t n = strstr(p->file, "12l") ? 12 : 18;
        CHECK(m->n_layers == n, "%s: %u layers", p->file, m->n_layers);
        for (uint32_t i = 0; i < n && i < m->n_layers; i++) {
            const lws_layer_shape *l = &cfg.layers[i];
            CHECK(l->ffn_dim == p->ffn[i] && l->q_heads == p->q_heads[i] &&
                      l->kv_heads == p->q_heads[i] / 3,
                  "%s layer %u: ffn %u q %u kv %u, want %u %u %u", p->file, i, l->ffn_dim,
                  l->q_heads, l->kv_heads, p->ffn[i], p->q_heads[i], p->q_heads[i] / 3);
        }
        uint64_t total = lws_config_params(&cfg);
        CHECK(total == p->params, "%s: %llu parameters, docs/design.md says %llu", p->file,
              (unsigned long long)total, (unsigned long long)p->params);
        /* The recipe of §1.2. */
        const lws_train_config *t = &cfg.train;
        CHECK(cfg.has_train && t->seq_len == 1024 && t->micro_batch * t->grad_accum == 384 &&
                  t->steps == 13000 && t->lr == 6e-4 && t->beta1 == 0.9 && t->beta2 == 0.95 &&
                  t->eps == 1e-8 && t->weight_decay == 0.01 && !t->decay_embeddings &&
                  t->grad_clip == 1.0 && t->seed == 42 && t->schedule == LWS_LR_COSINE &&
                  t->warmup_steps > 0,
              "%s: training recipe", p->file);
        CHECK(cfg.has_data && cfg.data.val_tokens == 50000000, "%s: 50M tokens held out", p->file);
    }
}

/* ---- make_divisible and interpolation --------------------------------- */

static void make_divisible(void) {
    struct {
        double v;
        uint32_t d, want;
    } cases[] = {
        {700.8, 256, 768},   /* crown layer 1: floor(828.8 / 256) = 3 */
        {432, 192, 576},     /* 384 < 0.9 * 432: one more unit */
        {384, 256, 512},     /* exactly half a unit rounds up */
        {383.9, 256, 512},   /* below half: down to 256, but 256 < 0.9 * 383.9: up */
        {280, 256, 256},     /* down to 256, and 256 >= 0.9 * 280 */
        {100, 256, 256},     /* at least one unit */
        {3072, 256, 3072},   /* exact multiples stay */
        {2918.4, 256, 2816}, /* crown peak 3.8 * 768 */
        {576, 256, 768},     /* 512 < 0.9 * 576 = 518.4 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        uint32_t got = lws_make_divisible(cases[k].v, cases[k].d);
        CHECK(got == cases[k].want, "make_divisible(%g, %u) = %u, want %u", cases[k].v, cases[k].d,
              got, cases[k].want);
    }
}

static void check_values(const char *what, const double *got, const double *want, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        CHECK(fabs(got[i] - want[i]) <= 1e-12, "%s[%u] = %.17g, want %.17g", what, i, got[i],
              want[i]);
}

static void interpolation(void) {
    double out[LWS_MAX_LAYERS];
    /* Two points: numpy.linspace rounded to 2 decimals (vanilla's beta). */
    const double p14[] = {1.0, 4.0};
    const double want14[] = {1.0,  1.18, 1.35, 1.53, 1.71, 1.88, 2.06, 2.24, 2.41,
                             2.59, 2.76, 2.94, 3.12, 3.29, 3.47, 3.65, 3.82, 4.0};
    CHECK_OK(lws_interpolate_points(p14, 2, 18, out));
    check_values("linear 1..4 x18", out, want14, 18);
    /* Odd depth; rounding 0.5 + 0.5 * 1/6 = 0.58333 to 0.58. */
    const double p051[] = {0.5, 1.0};
    const double want7[] = {0.5, 0.58, 0.67, 0.75, 0.83, 0.92, 1.0};
    CHECK_OK(lws_interpolate_points(p051, 2, 7, out));
    check_values("linear 0.5..1 x7", out, want7, 7);
    CHECK_OK(lws_interpolate_points(p051, 2, 1, out));
    CHECK(out[0] == 0.5, "one layer takes the start: %g", out[0]);

    /* Three points, no rounding. Odd N = 5: control layers 0, 2, 4. */
    const double crown[] = {0.5, 3.8, 0.5};
    const double want5[] = {0.5, 2.15, 3.8, 2.15, 0.5};
    CHECK_OK(lws_interpolate_points(crown, 3, 5, out));
    check_values("crown x5", out, want5, 5);
    /* Even N = 6: the peak held on layers 2 and 3. */
    const double want6[] = {0.5, 2.15, 3.8, 3.8, 2.15, 0.5};
    CHECK_OK(lws_interpolate_points(crown, 3, 6, out));
    check_values("crown x6", out, want6, 6);
    /* N = 17 and 18: a single peak at 8, a held peak at 8 and 9, and the
     * slope 3.3/8 per layer on both sides; 3-point values are not rounded. */
    for (uint32_t n = 17; n <= 18; n++) {
        CHECK_OK(lws_interpolate_points(crown, 3, n, out));
        for (uint32_t i = 0; i < n; i++) {
            uint32_t from_end = n - 1 - i, d = i < from_end ? i : from_end;
            double want = d >= 8 ? 3.8 : 0.5 + 3.3 * d / 8;
            CHECK(fabs(out[i] - want) <= 1e-12, "crown x%u layer %u: %.17g want %.17g", n, i,
                  out[i], want);
        }
    }
    /* Asymmetric 3 points, N = 3: exactly the points. */
    const double asym[] = {1.0, 2.0, 0.25};
    CHECK_OK(lws_interpolate_points(asym, 3, 3, out));
    check_values("3 points x3", out, asym, 3);

    CHECK(lws_interpolate_points(crown, 1, 6, out) != LWS_OK, "1 point refused");
    CHECK(lws_interpolate_points(crown, 4, 6, out) != LWS_OK, "4 points refused");
    CHECK(lws_interpolate_points(crown, 3, 2, out) != LWS_OK, "3 points on 2 layers refused");
}

/* ---- framing and GQA ---------------------------------------------------- */

#define PAPER_MODEL "'model': {'d_model': 768, 'n_layers': 18, 'head_dim': 64, 'vocab_size': 50304}"

static void framing(void) {
    /* Framed sets layers 0 and N-1 to the frame (4.0, 1.0); vanilla does not. */
    CHECK_OK(lws_config_load("configs/paper/framed-18l.json", &cfg));
    CHECK(cfg.lws.frame && cfg.layers[0].beta == 4.0 && cfg.layers[17].beta == 4.0 &&
              cfg.layers[0].alpha == 1.0 && cfg.layers[17].alpha == 1.0,
          "framed: ends at the frame");
    CHECK(cfg.layers[1].beta == 0.71 && cfg.layers[16].beta == 3.79, "framed: inside is linear");
    CHECK_OK(lws_config_load("configs/paper/vanilla-18l.json", &cfg));
    CHECK(!cfg.lws.frame && cfg.layers[0].beta == 1.0 && cfg.layers[0].ffn_dim == 768,
          "vanilla: not framed");
    /* Custom frame values: beta 2.0 -> 1536, alpha 0.5 -> 384 query dims = 6 heads. */
    CHECK_OK(lws_config_parse(js("{" PAPER_MODEL ", 'lws': {'variant': 'crown', 'frame_ffn': 2.0, "
                                 "'frame_qkv': 0.5, 'gqa': {'group_size': 3}}}"),
                              "frame.json", &cfg));
    CHECK(cfg.layers[0].ffn_dim == 1536 && cfg.layers[17].ffn_dim == 1536 &&
              cfg.layers[0].q_heads == 6 && cfg.layers[17].q_heads == 6,
          "custom frame: %u %u", cfg.layers[0].ffn_dim, cfg.layers[0].q_heads);
    CHECK(cfg.layers[1].ffn_dim == 768 && cfg.layers[8].ffn_dim == 2816, "custom frame: inside");
    /* Frame off on a framed variant, and frame on for explicit points. */
    CHECK_OK(lws_config_parse(js("{" PAPER_MODEL ", 'lws': {'variant': 'crown', 'frame': false, "
                                 "'gqa': {'group_size': 3}}}"),
                              "noframe.json", &cfg));
    CHECK(cfg.layers[0].ffn_dim == 512 && cfg.layers[0].q_heads == 6,
          "crown unframed: layer 0 is beta 0.5 (%u), alpha 0.5 (%u heads)", cfg.layers[0].ffn_dim,
          cfg.layers[0].q_heads);
}

static void gqa_policies(void) {
    /* Fixed KV heads: query heads rounded to multiples of 4, KV heads 4. */
    CHECK_OK(lws_config_parse(js("{" PAPER_MODEL ", 'lws': {'variant': 'crown', "
                                 "'gqa': {'kv_heads': 4}}}"),
                              "kv.json", &cfg));
    const uint32_t want[] = {12, 8, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 8, 8, 8, 12};
    for (uint32_t i = 0; i < 18; i++)
        CHECK(cfg.layers[i].q_heads == want[i] && cfg.layers[i].kv_heads == 4,
              "kv_heads 4, layer %u: q %u kv %u, want %u 4", i, cfg.layers[i].q_heads,
              cfg.layers[i].kv_heads, want[i]);
    /* Fixed group: KV heads follow the query heads. Group 1 is plain MHA. */
    CHECK_OK(lws_config_parse(js("{" PAPER_MODEL ", 'lws': {'variant': 'crown', "
                                 "'gqa': {'group_size': 1}}}"),
                              "mha.json", &cfg));
    for (uint32_t i = 0; i < 18; i++)
        CHECK(cfg.layers[i].q_heads == cfg.layers[i].kv_heads, "group 1 layer %u", i);
    CHECK(cfg.layers[1].q_heads == 7, "group 1: alpha 0.5625 -> 432 dims -> 7 heads (%u)",
          cfg.layers[1].q_heads);
    /* Explicit lists under each policy. */
    CHECK_OK(lws_config_parse(js("{'model': {'d_model': 64, 'n_layers': 3, 'head_dim': 16, "
                                 "'vocab_size': 256}, 'lws': {'ffn_dims': [64, 200, 64], "
                                 "'q_heads': [2, 6, 4], 'gqa': {'group_size': 2}}}"),
                              "lists.json", &cfg));
    CHECK(cfg.layers[1].ffn_dim == 200 && cfg.layers[1].q_heads == 6 &&
              cfg.layers[1].kv_heads == 3 && cfg.layers[2].kv_heads == 2,
          "lists with group 2");
    CHECK(cfg.layers[1].alpha == 6.0 * 16 / 64 && cfg.layers[1].beta == 200.0 / 64,
          "lists: effective alpha and beta");
}

/* ---- matching ------------------------------------------------------------ */

/* The matched total is the achievable total nearest the target: a fine scan
 * of FFN scales around the chosen one finds nothing nearer. */
static void check_nearest(const char *what, const lws_config *matched, uint64_t target) {
    other = *matched;
    other.lws.match_target = 0;
    double best = fabs((double)lws_config_params(matched) - (double)target);
    double base[LWS_MAX_POINTS], frame = other.lws.frame_ffn;
    memcpy(base, other.lws.ffn_points, sizeof base);
    for (int k = -400; k <= 400; k++) {
        double s = matched->lws.match_scale * (1 + k * 0.0005);
        for (uint32_t j = 0; j < other.lws.n_ffn_points; j++) other.lws.ffn_points[j] = base[j] * s;
        other.lws.frame_ffn = frame * s;
        if (lws_config_resolve_layers(&other) != LWS_OK) continue;
        double d = fabs((double)lws_config_params(&other) - (double)target);
        CHECK(d >= best, "%s: scale %.6f gives %llu, nearer to %llu than the match", what, s,
              (unsigned long long)lws_config_params(&other), (unsigned long long)target);
        if (d < best) break;
    }
}

static void matching(void) {
    /* Crown matched to the 12-layer isotropic baseline (a relative path from
     * tests/configs/ into configs/paper/). */
    CHECK_OK(lws_config_load("tests/configs/match_paper.json", &cfg));
    uint64_t target = 181107456, total = lws_config_params(&cfg);
    CHECK(cfg.lws.match_target == target, "target %llu", (unsigned long long)cfg.lws.match_target);
    CHECK(fabs((double)total - target) <= LWS_MATCH_TOLERANCE * target,
          "crown matched: %llu vs %llu", (unsigned long long)total, (unsigned long long)target);
    CHECK(cfg.lws.match_scale != 1.0, "scale moved: %g", cfg.lws.match_scale);
    CHECK(cfg.layers[0].ffn_dim > cfg.layers[1].ffn_dim &&
              cfg.layers[8].ffn_dim > cfg.layers[1].ffn_dim,
          "the crown shape survives scaling");
    check_nearest("crown -> isotropic-12l", &cfg, target);

    /* A number target, on each LWS variant, odd and even depth. (Isotropic
     * moves every layer at once, 18 x 3 x 768 x 256 = 7% per step, so 150M
     * is out of its reach; test_config checks that error.) */
    const char *variants[] = {"vanilla", "framed", "reverse", "crown"};
    for (uint32_t n = 17; n <= 18; n++)
        for (size_t k = 0; k < 4; k++) {
            char text[1024];
            snprintf(text, sizeof text,
                     "{'model': {'d_model': 768, 'n_layers': %u, 'head_dim': 64, "
                     "'vocab_size': 50304}, 'lws': {'variant': '%s', 'gqa': {'group_size': 3}, "
                     "'match_params': 150000000}}",
                     n, variants[k]);
            char what[64];
            snprintf(what, sizeof what, "%s x%u -> 150M", variants[k], n);
            lws_status s = lws_config_parse(js(text), "match.json", &cfg);
            CHECK(s == LWS_OK, "%s: %s", what, lws_error_message());
            if (s != LWS_OK) continue;
            total = lws_config_params(&cfg);
            CHECK(fabs((double)total - 150e6) <= LWS_MATCH_TOLERANCE * 150e6, "%s: %llu", what,
                  (unsigned long long)total);
            check_nearest(what, &cfg, 150000000);
        }

    /* The tiny variants all match the tiny isotropic baseline. */
    CHECK_OK(lws_config_load("configs/tiny/isotropic.json", &other));
    target = lws_config_params(&other);
    const char *tiny[] = {"configs/tiny/vanilla.json", "configs/tiny/framed.json",
                          "configs/tiny/reverse.json", "configs/tiny/crown.json"};
    for (size_t k = 0; k < 4; k++) {
        CHECK_OK(lws_config_load(tiny[k], &cfg));
        total = lws_config_params(&cfg);
        CHECK(cfg.lws.match_target == target &&
                  fabs((double)total - target) <= LWS_MATCH_TOLERANCE * target,
              "%s: %llu vs %llu", tiny[k], (unsigned long long)total, (unsigned long long)target);
    }
}

/* ---- counts -------------------------------------------------------------- */

static void counts(void) {
    CHECK_OK(lws_config_load("configs/paper/isotropic-12l.json", &cfg));
    /* One layer: 768*768*2 + 768*256*2 + (768 + 256) + 2*768 + 3*768*3072. */
    CHECK(lws_layer_params(&cfg, 0) == 8653312, "layer params %llu",
          (unsigned long long)lws_layer_params(&cfg, 0));
    CHECK(lws_config_embedding_params(&cfg) == 2ull * 50304 * 768, "untied embeddings");
    /* Forward FLOPs: 2 x (768*(768+256)*2 + 3*768*3072) + 4 * 1024 * 768. */
    double layer = 2.0 * 8650752 + 4.0 * 1024 * 768;
    CHECK(lws_layer_flops_per_token(&cfg, 0, 1024) == layer, "layer flops %.0f",
          lws_layer_flops_per_token(&cfg, 0, 1024));
    CHECK(lws_config_matmul_params(&cfg) == 12ull * 8650752 + 50304ull * 768, "matmul weights");
    double train = 6.0 * (12.0 * 8650752 + 50304.0 * 768) + 12.0 * 1024 * 768 * 12;
    CHECK(lws_config_train_flops_per_token(&cfg) == train, "train flops %.0f vs %.0f",
          lws_config_train_flops_per_token(&cfg), train);
    CHECK(lws_config_train_flops_per_token_at(&cfg, 1) < train, "shorter sequence, fewer FLOPs");

    /* Tied: one V*d table. No QK-norm: the q + kv weights go. */
    uint64_t untied = lws_config_params(&cfg);
    cfg.model.tied_embeddings = 1;
    CHECK(untied - lws_config_params(&cfg) == 50304ull * 768, "tied drops one table");
    CHECK(lws_config_matmul_params(&cfg) == 12ull * 8650752 + 50304ull * 768,
          "tied: the head still multiplies");
    cfg.model.tied_embeddings = 0;
    cfg.model.qk_norm = 0;
    CHECK(untied - lws_config_params(&cfg) == 12ull * (768 + 256), "QK-norm weights");
    cfg.model.qk_norm = 1;

    /* Editing a profile in code and resolving again. */
    cfg.lws.ffn_points[0] = cfg.lws.ffn_points[1] = 2.0;
    CHECK_OK(lws_config_resolve_layers(&cfg));
    CHECK(cfg.layers[5].ffn_dim == 1536, "re-resolved ffn %u", cfg.layers[5].ffn_dim);
    cfg.lws.qkv_points[0] = 0.01;
    CHECK(lws_config_resolve_layers(&cfg) == LWS_ERR_CONFIG &&
              strstr(lws_error_message(), "configs/paper/isotropic-12l.json: lws.qkv_points"),
          "re-resolve error names the config: %s", lws_error_message());
}

int main(void) {
    paper_configs();
    make_divisible();
    interpolation();
    framing();
    gqa_policies();
    matching();
    counts();
    return test_finish(NULL);
}
