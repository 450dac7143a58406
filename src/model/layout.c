/* Parameter layout and weight initialisation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lws/data.h"
#include "model/model_internal.h"

/* Tensors start on 64-float (256-byte) boundaries inside each block. */
#define PARAM_ALIGN 64

static lws_param *add(lws_param *list, uint32_t *n, uint64_t *offset, const char *name,
                      uint32_t rows, uint32_t cols) {
    lws_param *p = &list[(*n)++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rows = rows;
    p->cols = cols;
    p->count = (uint64_t)rows * (cols ? cols : 1);
    p->offset = *offset;
    *offset += (p->count + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    return p;
}

uint32_t lws_layout_count(const lws_config *cfg) {
    uint32_t per_layer = cfg->model.qk_norm ? 11 : 9;
    return 1 + per_layer * cfg->model.n_layers + 1 + (cfg->model.tied_embeddings ? 0 : 1);
}

uint64_t lws_layout_params(const lws_config *cfg, lws_param *list, lws_layer_tensors *layers,
                           uint32_t *count) {
    const lws_model_config *mc = &cfg->model;
    const lws_train_config *tc = &cfg->train;
    uint32_t d = mc->d_model, hd = mc->head_dim, n = 0;
    uint64_t offset = 0;
    char name[96];
    lws_param *embed = add(list, &n, &offset, "embed.weight", mc->vocab_size, d);
    embed->is_embedding = 1;
    embed->decay = tc->decay_embeddings;
    for (uint32_t i = 0; i < mc->n_layers; i++) {
        const lws_layer_shape *s = &cfg->layers[i];
        uint32_t q = s->q_heads * hd, kv = s->kv_heads * hd, f = s->ffn_dim;
        lws_layer_tensors *t = &layers[i];
#define ADD(field, suffix, r, c)                                                                   \
    snprintf(name, sizeof name, "layers.%u.%s", i, suffix);                                        \
    t->field = add(list, &n, &offset, name, r, c);                                                 \
    t->field->is_norm = (c) == 0;                                                                  \
    t->field->decay = (c) == 0 ? tc->decay_norms : 1;
        ADD(wq, "attn.wq.weight", q, d);
        ADD(wk, "attn.wk.weight", kv, d);
        ADD(wv, "attn.wv.weight", kv, d);
        ADD(wo, "attn.wo.weight", d, q);
        if (mc->qk_norm) {
            ADD(q_norm, "attn.q_norm.weight", q, 0);
            ADD(k_norm, "attn.k_norm.weight", kv, 0);
        } else {
            t->q_norm = t->k_norm = NULL;
        }
        ADD(attn_norm, "attn_norm.weight", d, 0);
        ADD(ffn_norm, "ffn_norm.weight", d, 0);
        ADD(w1, "ffn.w1.weight", f, d);
        ADD(w3, "ffn.w3.weight", f, d);
        ADD(w2, "ffn.w2.weight", d, f);
#undef ADD
    }
    lws_param *final_norm = add(list, &n, &offset, "final_norm.weight", d, 0);
    final_norm->is_norm = 1;
    final_norm->decay = tc->decay_norms;
    if (!mc->tied_embeddings) {
        lws_param *head = add(list, &n, &offset, "lm_head.weight", mc->vocab_size, d);
        head->decay = 1;
    }
    *count = n;
    return offset;
}

/* splitmix64's mixing of one number: the seed of each tensor's stream. */
static uint64_t mix(uint64_t x) {
    return lws_splitmix64_at(x, 1);
}

typedef struct rng {
    uint64_t state;
} rng;

static double uniform(rng *r) {
    r->state += 0x9E3779B97F4A7C15ull;
    return (double)(mix(r->state) >> 11) * 0x1.0p-53;
}

/* Standard normal cut at +-3 (rejection), by Box-Muller. */
static double truncated_normal(rng *r) {
    for (;;) {
        double u1 = uniform(r), u2 = uniform(r);
        if (u1 <= 0) continue;
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        if (fabs(z) <= 3.0) return z;
    }
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void lws_init_host_weights(const lws_model *m, uint64_t seed, float *host) {
    memset(host, 0, m->n_floats * sizeof *host);
    for (uint32_t i = 0; i < m->n_params; i++) {
        const lws_param *p = &m->params[i];
        float *w = host + p->offset;
        if (p->is_norm) {
            for (uint64_t j = 0; j < p->count; j++) w[j] = 1.0f;
            continue;
        }
        /* Each tensor has its own stream, keyed by its name: adding a layer
         * or changing another tensor's shape leaves this one unchanged. */
        rng r = {mix(seed ^ mix(name_hash(p->name)))};
        for (uint64_t j = 0; j < p->count; j++)
            w[j] = (float)(m->cfg.model.init_std * truncated_normal(&r));
    }
}
