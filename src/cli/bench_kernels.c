/* lws bench kernels CONFIG: every op at the shapes the config trains with
 * (its widest and its narrowest layer, the head, the embedding and the
 * optimizer), timed with timestamp queries; GFLOP/s for matmul and
 * attention, GB/s for the memory-bound ops. --torch times the same matmuls
 * with PyTorch (bench/torch_matmul.py) in the same run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "ops/ops.h"
#include "util/files.h"

static const char *usage =
    "lws bench kernels CONFIG [--device D] [--micro-batch N] [--seq-len N] [--reps N]\n"
    "                         [--json FILE] [--label TEXT] [--torch] [--set PATH=VALUE]...\n"
    "                         [--print-config]";

typedef enum kernel_kind {
    K_MATMUL,
    K_ATTENTION,
    K_ATTENTION_BWD,
    K_RMSNORM,
    K_RMSNORM_BWD,
    K_RMSNORM_ADD,
    K_ADD_RMSNORM,
    K_RMSNORM_ROPE,
    K_RMSNORM_ROPE_BWD,
    K_ROPE,
    K_SWIGLU,
    K_SWIGLU_BWD,
    K_AXPBY,
    K_EMBEDDING,
    K_EMBEDDING_BWD,
    K_CROSS_ENTROPY,
    K_GRAD_NORM,
    K_ADAMW,
    K_MATMUL_CAT,
    K_MATMUL_SWIGLU,
} kernel_kind;

static const char *const op_names[] = {
    "matmul",        "attention",   "attention_bwd", "rmsnorm",          "rmsnorm_bwd",
    "rmsnorm_add",   "add_rmsnorm", "rmsnorm_rope",  "rmsnorm_rope_bwd", "rope",
    "swiglu",        "swiglu_bwd",  "axpby",         "embedding",        "embedding_bwd",
    "cross_entropy", "grad_norm",   "adamw",         "matmul_cat",       "matmul_swiglu",
};

typedef struct kernel {
    kernel_kind kind;
    char label[128];
    int layer; /* -1: not a layer's */
    lws_mm_layout layout;
    uint32_t m, n, k;        /* matmul: C[m, n], reduced over k; matmul_swiglu: n = F */
    uint32_t parts, part[3]; /* matmul_cat: the concatenated dimension's parts */
    uint32_t rows, cols;     /* norms: rows x cols; elementwise ops: rows elements */
    uint32_t batch, seq, q_heads, kv_heads, head_dim; /* attention and RoPE */
    uint32_t vocab;      /* embedding and cross-entropy (rows tokens, cols = d) */
    uint64_t elems;      /* optimizer: parameters */
    double flops, bytes; /* of one launch */
    double ms, ms_min, torch_ms;
} kernel;

typedef struct kernel_list {
    kernel *k;
    uint32_t n, cap;
} kernel_list;

static kernel *add(kernel_list *l, kernel_kind kind, int layer) {
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? 2 * l->cap : 64;
        kernel *grown = realloc(l->k, cap * sizeof *grown);
        if (!grown) return NULL;
        l->k = grown;
        l->cap = cap;
    }
    kernel *k = &l->k[l->n++];
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->layer = layer;
    k->torch_ms = NAN;
    return k;
}

static const char *layout_name(lws_mm_layout l) {
    return l == LWS_MM_NT ? "NT" : l == LWS_MM_NN ? "NN" : "TN";
}

static int add_matmul(kernel_list *l, int layer, const char *what, lws_mm_layout layout, uint32_t m,
                      uint32_t n, uint32_t k) {
    kernel *e = add(l, K_MATMUL, layer);
    if (!e) return 0;
    e->layout = layout;
    e->m = m, e->n = n, e->k = k;
    e->flops = 2.0 * m * n * k;
    snprintf(e->label, sizeof e->label, "%-13s %s %ux%ux%u", what, layout_name(layout), m, n, k);
    return 1;
}

/* The forward, input-gradient and weight-gradient products of a weight
 * W [out, in] applied to N tokens: y = x W^T, dx = dy W, dW = dy^T x. */
static int add_projection(kernel_list *l, int layer, const char *w, uint32_t N, uint32_t out,
                          uint32_t in) {
    char what[3][48];
    snprintf(what[0], sizeof what[0], "%s fwd", w);
    snprintf(what[1], sizeof what[1], "%s dx", w);
    snprintf(what[2], sizeof what[2], "%s dW", w);
    return add_matmul(l, layer, what[0], LWS_MM_NT, N, out, in) &&
           add_matmul(l, layer, what[1], LWS_MM_NN, N, in, out) &&
           add_matmul(l, layer, what[2], LWS_MM_TN, out, in, N);
}

/* The fused products of `parts` projections of one input (model/record.c):
 * the forward [y_0|y_1|..] = x [W_0;W_1;..]^T (with SwiGLU in the epilogue
 * for W1|W3), the input gradient and the weight gradients, each one product
 * over the concatenation (lws_op_matmul_cat, lws_op_matmul_swiglu). */
static int add_fused(kernel_list *l, int layer, const char *w, uint32_t N, uint32_t parts,
                     const uint32_t *out, uint32_t in, int swiglu) {
    uint32_t total = 0;
    for (uint32_t p = 0; p < parts; p++) total += out[p];
    const uint32_t shapes[3][3] = {{N, total, in}, {N, in, total}, {total, in, N}};
    for (int i = 0; i < 3; i++) {
        int sw = swiglu && i == 0; /* the forward with SwiGLU in its epilogue */
        kernel *e = add(l, sw ? K_MATMUL_SWIGLU : K_MATMUL_CAT, layer);
        if (!e) return 0;
        e->layout = i == 0 ? LWS_MM_NT : i == 1 ? LWS_MM_NN : LWS_MM_TN;
        const uint32_t *sh = shapes[i];
        e->m = sh[0], e->n = sw ? out[0] : sh[1], e->k = sh[2];
        e->parts = parts;
        for (uint32_t p = 0; p < parts; p++) e->part[p] = out[p];
        e->flops = 2.0 * sh[0] * sh[1] * sh[2];
        static const char *const what[] = {"fwd", "dx", "dW"};
        char name[48];
        snprintf(name, sizeof name, "%s %s", w, what[i]);
        snprintf(e->label, sizeof e->label, "%-13s %s %ux%ux%u", name, layout_name(e->layout),
                 sh[0], sh[1], sh[2]);
    }
    return 1;
}

static int add_norm(kernel_list *l, int layer, kernel_kind kind, const char *what, uint32_t rows,
                    uint32_t cols) {
    kernel *e = add(l, kind, layer);
    if (!e) return 0;
    e->rows = rows, e->cols = cols;
    /* forward: read x, w; write y, rstd (with the residual: read res too, and
     * pre-norm writes h and hn). backward: read dy, x, w, rstd; write dx, dw. */
    double rc = (double)rows * cols, elems = 3 * rc;
    if (kind == K_RMSNORM || kind == K_RMSNORM_ROPE) elems = 2 * rc;
    if (kind == K_ADD_RMSNORM) elems = 4 * rc;
    int bwd = kind == K_RMSNORM_BWD || kind == K_RMSNORM_ROPE_BWD;
    e->bytes = 4.0 * (elems + rows + (bwd ? 2.0 : 1.0) * cols);
    snprintf(e->label, sizeof e->label, "%-13s %ux%u", what, rows, cols);
    return 1;
}

static int add_elementwise(kernel_list *l, int layer, kernel_kind kind, const char *what,
                           uint32_t n, double floats_moved) {
    kernel *e = add(l, kind, layer);
    if (!e) return 0;
    e->rows = n;
    e->bytes = 4.0 * floats_moved;
    snprintf(e->label, sizeof e->label, "%-13s %u", what, n);
    return 1;
}

/* The kernels of layer i for `batch` sequences of `seq` tokens. */
static int add_layer(kernel_list *l, const lws_config *cfg, uint32_t i, uint32_t batch,
                     uint32_t seq) {
    const lws_layer_shape *s = &cfg->layers[i];
    uint32_t N = batch * seq, d = cfg->model.d_model, hd = cfg->model.head_dim;
    uint32_t q = s->q_heads * hd, kv = s->kv_heads * hd, f = s->ffn_dim;
    int ok =
        add_projection(l, (int)i, "Wq", N, q, d) && add_projection(l, (int)i, "Wk,Wv", N, kv, d) &&
        add_projection(l, (int)i, "Wo", N, d, q) && add_projection(l, (int)i, "W1,W3", N, f, d) &&
        add_projection(l, (int)i, "W2", N, d, f);
    const uint32_t qkv[3] = {q, kv, kv}, w13[2] = {f, f};
    ok = ok && add_fused(l, (int)i, "Wq|Wk|Wv", N, 3, qkv, d, 0) &&
         add_fused(l, (int)i, "W1|W3", N, 2, w13, d, 1);
    /* the block's norms run with their residual adds (model/block.c) */
    int post = cfg->model.block == LWS_BLOCK_POST_NORM;
    ok = ok && add_norm(l, (int)i, post ? K_RMSNORM_ADD : K_ADD_RMSNORM, "block norm", N, d) &&
         add_norm(l, (int)i, K_RMSNORM_BWD, "block norm", N, d);
    for (int b = 0; ok && cfg->model.qk_norm && b < 2; b++) { /* QK-norm with RoPE */
        ok = add_norm(l, (int)i, b ? K_RMSNORM_ROPE_BWD : K_RMSNORM_ROPE, "QK-norm q", N, q);
        if (ok) {
            kernel *e = &l->k[l->n - 1];
            e->seq = seq, e->q_heads = s->q_heads, e->head_dim = hd;
        }
    }
    for (int bwd = 0; ok && bwd < 2; bwd++) {
        kernel *e = add(l, bwd ? K_ATTENTION_BWD : K_ATTENTION, (int)i);
        if (!e) return 0;
        e->batch = batch, e->seq = seq, e->q_heads = s->q_heads, e->kv_heads = s->kv_heads;
        e->head_dim = hd;
        /* QK^T and PV over the seq (seq + 1) / 2 visible pairs, 2 FLOPs per
         * multiply-add; the backward recomputes QK^T and forms dV, dP, dQ, dK. */
        double fwd = 4.0 * batch * s->q_heads * hd * (seq * (seq + 1.0) / 2);
        e->flops = bwd ? 2.5 * fwd : fwd;
        snprintf(e->label, sizeof e->label, "%-13s %ux%u, %u/%u heads", "causal GQA", batch, seq,
                 s->q_heads, s->kv_heads);
    }
    if (!ok) return 0;
    if (!cfg->model.qk_norm) { /* RoPE alone: with QK-norm it runs in the norm's kernel */
        kernel *e = add(l, K_ROPE, (int)i);
        if (!e) return 0;
        e->rows = N, e->batch = batch, e->seq = seq, e->q_heads = s->q_heads, e->head_dim = hd;
        e->bytes = 4.0 * 2 * N * q;
        snprintf(e->label, sizeof e->label, "%-13s %ux%u heads x %u", "q", N, s->q_heads, hd);
    }
    return add_elementwise(l, (int)i, K_SWIGLU, "silu(a) b", N * f, 3.0 * N * f) &&
           add_elementwise(l, (int)i, K_SWIGLU_BWD, "silu(a) b", N * f, 5.0 * N * f);
}

static int build_list(kernel_list *l, const lws_config *cfg, uint32_t batch, uint32_t seq,
                      uint64_t heap) {
    uint32_t L = cfg->model.n_layers, wide = 0, narrow = 0;
    for (uint32_t i = 1; i < L; i++) {
        if (lws_layer_params(cfg, i) > lws_layer_params(cfg, wide)) wide = i;
        if (lws_layer_params(cfg, i) < lws_layer_params(cfg, narrow)) narrow = i;
    }
    const lws_layer_shape *a = &cfg->layers[wide], *b = &cfg->layers[narrow];
    int same = a->q_heads == b->q_heads && a->kv_heads == b->kv_heads && a->ffn_dim == b->ffn_dim;
    if (!add_layer(l, cfg, wide, batch, seq)) return 0;
    if (!same && !add_layer(l, cfg, narrow, batch, seq)) return 0;
    uint32_t N = batch * seq, d = cfg->model.d_model, V = cfg->model.vocab_size;
    if (!add_norm(l, -1, K_RMSNORM, "final norm", N, d) || !add_projection(l, -1, "head", N, V, d))
        return 0;
    kernel *e = add(l, K_CROSS_ENTROPY, -1);
    if (!e) return 0;
    e->rows = N, e->vocab = V;
    e->bytes = 4.0 * 2 * N * (double)V; /* read the logits, write their gradient */
    snprintf(e->label, sizeof e->label, "%-13s %ux%u", "loss", N, V);
    for (int bwd = 0; bwd < 2; bwd++) {
        e = add(l, bwd ? K_EMBEDDING_BWD : K_EMBEDDING, -1);
        if (!e) return 0;
        e->rows = N, e->cols = d, e->vocab = V;
        /* tokens, the gathered rows and the output; backward: the output
         * gradient and each hit row of the table read and written */
        uint32_t hit = N < V ? N : V;
        e->bytes = 4.0 * (bwd ? (double)N * d + N + 2.0 * hit * d : 2.0 * N * d + N);
        snprintf(e->label, sizeof e->label, "%-13s %u tokens x %u", bwd ? "scatter-add" : "lookup",
                 N, d);
    }
    if (!add_elementwise(l, -1, K_AXPBY, "residual add", N * d, 3.0 * N * d)) return 0;
    /* All parameters when their four copies fit a quarter of the device,
     * else as many as do. */
    uint64_t P = lws_config_params(cfg), cap = heap / 4 / 16;
    if (P > cap) P = cap;
    if (P > UINT32_MAX) P = UINT32_MAX;
    for (int k = 0; k < 2; k++) {
        e = add(l, k ? K_ADAMW : K_GRAD_NORM, -1);
        if (!e) return 0;
        e->elems = P;
        /* grad_norm reads the gradients; AdamW reads p, g, m, v and writes p, m, v, g = 0 */
        e->bytes = 4.0 * (k ? 8.0 : 1.0) * P;
        snprintf(e->label, sizeof e->label, "%-13s %llu params", "all tensors",
                 (unsigned long long)P);
    }
    return 1;
}

/* ---- running one kernel ---------------------------------------------------- */

typedef struct buffers {
    lws_buffer b[12];
} buffers;

static lws_status alloc_filled(lws_context *ctx, uint64_t floats, lws_buffer *out) {
    LWS_TRY(lws_alloc(ctx, (floats ? floats : 1) * 4, out));
    return lws_fill(ctx, *out, 0x3c23d70a); /* 0.01f: finite through every op */
}

static lws_status random_tokens(lws_context *ctx, uint32_t n, uint32_t vocab, lws_buffer *out) {
    uint32_t *t = malloc((size_t)n * sizeof *t);
    if (!t) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    uint64_t x = 42;
    for (uint32_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (uint32_t)((x >> 33) % vocab);
    }
    lws_status s = lws_alloc(ctx, (uint64_t)n * 4, out);
    if (s == LWS_OK) s = lws_upload(ctx, *out, t, (size_t)n * 4);
    free(t);
    return s;
}

static lws_status prepare(lws_context *ctx, const kernel *k, buffers *bf) {
    lws_buffer *b = bf->b;
    uint64_t N = k->rows;
    switch (k->kind) {
    case K_MATMUL:
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->m * k->n, &b[0])); /* C */
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->m * k->k, &b[1])); /* A */
        return alloc_filled(ctx, (uint64_t)k->n * k->k, &b[2]);   /* B */
    case K_MATMUL_CAT: /* each operand whole; the parts are slices of it */
    case K_MATMUL_SWIGLU:
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->m * k->n, &b[0])); /* C, gate */
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->m * k->k, &b[1])); /* A */
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->n * k->k * (k->kind == K_MATMUL_CAT ? 1 : 2),
                             &b[2])); /* B: W1 and W3 for SwiGLU */
        if (k->kind == K_MATMUL_CAT) return LWS_OK;
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->m * k->n, &b[3])); /* up */
        return alloc_filled(ctx, (uint64_t)k->m * k->n, &b[4]);   /* act */
    case K_ATTENTION:
    case K_ATTENTION_BWD: {
        uint64_t T = (uint64_t)k->batch * k->seq;
        uint64_t q = T * k->q_heads * k->head_dim, kv = T * k->kv_heads * k->head_dim;
        uint64_t rows = T * k->q_heads;
        LWS_TRY(alloc_filled(ctx, q, &b[0]));    /* o */
        LWS_TRY(alloc_filled(ctx, rows, &b[1])); /* lse */
        LWS_TRY(alloc_filled(ctx, q, &b[2]));    /* q */
        LWS_TRY(alloc_filled(ctx, kv, &b[3]));   /* k */
        LWS_TRY(alloc_filled(ctx, kv, &b[4]));   /* v */
        if (k->kind == K_ATTENTION) return LWS_OK;
        LWS_TRY(alloc_filled(ctx, q, &b[5]));  /* dq */
        LWS_TRY(alloc_filled(ctx, kv, &b[6])); /* dk */
        LWS_TRY(alloc_filled(ctx, kv, &b[7])); /* dv */
        LWS_TRY(alloc_filled(ctx, q, &b[8]));  /* dout */
        return alloc_filled(ctx, rows, &b[9]); /* delta */
    }
    case K_RMSNORM:
    case K_RMSNORM_BWD:
    case K_RMSNORM_ADD:
    case K_ADD_RMSNORM:
    case K_RMSNORM_ROPE:
    case K_RMSNORM_ROPE_BWD:
        LWS_TRY(alloc_filled(ctx, N * k->cols, &b[0])); /* y, out, h or dx */
        LWS_TRY(alloc_filled(ctx, N, &b[1]));           /* rstd */
        LWS_TRY(alloc_filled(ctx, N * k->cols, &b[2])); /* x or res */
        LWS_TRY(alloc_filled(ctx, k->cols, &b[3]));     /* w */
        if (k->kind == K_RMSNORM || k->kind == K_RMSNORM_ROPE) return LWS_OK;
        LWS_TRY(alloc_filled(ctx, N * k->cols, &b[4])); /* dy, or the added y */
        if (k->kind == K_RMSNORM_ADD) return LWS_OK;
        /* add_rmsnorm's hn */
        if (k->kind == K_ADD_RMSNORM) return alloc_filled(ctx, N * k->cols, &b[5]);
        LWS_TRY(alloc_filled(ctx, k->cols, &b[5])); /* dw */
        return alloc_filled(ctx, lws_rmsnorm_scratch_floats(ctx, k->rows, k->cols), &b[6]);
    case K_ROPE:
        return alloc_filled(ctx, N * k->q_heads * k->head_dim, &b[0]);
    case K_SWIGLU:
    case K_SWIGLU_BWD:
    case K_AXPBY:
        for (int i = 0; i < (k->kind == K_SWIGLU_BWD ? 5 : 3); i++)
            LWS_TRY(alloc_filled(ctx, N, &b[i]));
        return LWS_OK;
    case K_EMBEDDING:
    case K_EMBEDDING_BWD:
        LWS_TRY(alloc_filled(ctx, N * k->cols, &b[0]));                  /* out or dout */
        LWS_TRY(alloc_filled(ctx, (uint64_t)k->vocab * k->cols, &b[1])); /* table or dtable */
        return random_tokens(ctx, k->rows, k->vocab, &b[2]);
    case K_CROSS_ENTROPY:
        LWS_TRY(alloc_filled(ctx, N, &b[0]));                  /* losses */
        LWS_TRY(alloc_filled(ctx, N * k->vocab, &b[1]));       /* logits, dlogits */
        LWS_TRY(random_tokens(ctx, k->rows, k->vocab, &b[2])); /* targets */
        return alloc_filled(ctx, lws_cross_entropy_scratch_floats(ctx, k->rows, k->vocab), &b[3]);
    case K_GRAD_NORM:
    case K_ADAMW: {
        for (int i = 0; i < 4; i++) LWS_TRY(alloc_filled(ctx, k->elems, &b[i])); /* p, g, m, v */
        uint32_t chunks = (uint32_t)((k->elems + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK);
        lws_optim_entry entry = {b[0].addr,          b[1].addr, b[2].addr, b[3].addr,
                                 (uint32_t)k->elems, 1,         0,         0};
        LWS_TRY(lws_alloc(ctx, sizeof entry, &b[4]));
        LWS_TRY(lws_upload(ctx, b[4], &entry, sizeof entry));
        lws_optim_hyper h = {0};
        h.lr = 1e-4f, h.beta1 = 0.9f, h.beta2 = 0.95f, h.eps = 1e-8f, h.weight_decay = 0.01f;
        h.bias_correction1 = 0.1f, h.bias_correction2 = 0.05f, h.max_grad_norm = 1.0f;
        h.clip_scale = 1.0f;
        LWS_TRY(lws_alloc(ctx, sizeof h, &b[5]));
        LWS_TRY(lws_upload(ctx, b[5], &h, sizeof h));
        return alloc_filled(ctx, chunks, &b[6]);
    }
    }
    return LWS_OK;
}

/* The fused products on prepare's buffers: part p of an operand that spans
 * the concatenated dimension is the slice after parts 0 .. p-1. */
static void launch_fused(lws_cmd *c, const kernel *k, const lws_buffer *b) {
    if (k->kind == K_MATMUL_SWIGLU) {
        uint64_t w = 4ull * k->n * k->k;
        lws_op_matmul_swiglu(c, b[0], b[3], b[4], b[1], lws_buffer_slice(b[2], 0, w),
                             lws_buffer_slice(b[2], w, w), k->m, k->n, k->k);
        return;
    }
    lws_mm_cat p = {k->layout, k->parts, {0}, {b[0]}, {b[1]}, {b[2]}, k->m, k->n, k->k, 0};
    /* elements per unit of the concatenated dimension: C, A, B */
    int nt = k->layout == LWS_MM_NT, nn = k->layout == LWS_MM_NN;
    uint64_t per_c = nt   ? k->m
                     : nn ? 0
                          : k->n,
             per_a = nt   ? 0
                     : nn ? k->m
                          : k->k,
             per_b = nt   ? k->k
                     : nn ? k->n
                          : 0;
    uint64_t at = 0;
    for (uint32_t i = 0; i < k->parts; i++) {
        p.size[i] = k->part[i];
        uint64_t w = k->part[i];
        if (per_c) p.c[i] = lws_buffer_slice(b[0], 4 * at * per_c, 4 * w * per_c);
        if (per_a) p.a[i] = lws_buffer_slice(b[1], 4 * at * per_a, 4 * w * per_a);
        if (per_b) p.b[i] = lws_buffer_slice(b[2], 4 * at * per_b, 4 * w * per_b);
        at += w;
    }
    lws_op_matmul_cat(c, &p);
}

static void launch(lws_cmd *c, const kernel *k, const buffers *bf) {
    const lws_buffer *b = bf->b;
    float scale = k->head_dim ? 1.0f / sqrtf((float)k->head_dim) : 1.0f;
    lws_rope_shape rope = {k->seq, k->q_heads, k->head_dim, 500000.0f};
    uint32_t chunks = (uint32_t)((k->elems + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK);
    switch (k->kind) {
    case K_MATMUL:
        lws_op_matmul(c, k->layout, b[0], b[1], b[2], k->m, k->n, k->k, 0);
        break;
    case K_MATMUL_CAT:
    case K_MATMUL_SWIGLU:
        launch_fused(c, k, b);
        break;
    case K_ATTENTION:
        lws_op_attention_fwd(c, b[0], b[1], b[2], b[3], b[4], k->batch, k->seq, k->q_heads,
                             k->kv_heads, k->head_dim, scale);
        break;
    case K_ATTENTION_BWD:
        lws_op_attention_bwd(c, b[5], b[6], b[7], b[8], b[2], b[3], b[4], b[0], b[1], b[9],
                             k->batch, k->seq, k->q_heads, k->kv_heads, k->head_dim, scale);
        break;
    case K_RMSNORM:
        lws_op_rmsnorm_fwd(c, b[0], b[1], b[2], b[3], k->rows, k->cols, 1e-6f);
        break;
    case K_RMSNORM_BWD:
        lws_op_rmsnorm_bwd(c, b[0], b[5], b[4], b[2], b[3], b[1], b[6], k->rows, k->cols, 0);
        break;
    case K_RMSNORM_ADD:
        lws_op_rmsnorm_add(c, b[0], b[1], b[2], b[4], b[3], k->rows, k->cols, 1e-6f);
        break;
    case K_ADD_RMSNORM:
        lws_op_add_rmsnorm(c, b[0], b[5], b[1], b[2], b[4], b[3], k->rows, k->cols, 1e-6f);
        break;
    case K_RMSNORM_ROPE:
        lws_op_rmsnorm_rope_fwd(c, b[0], b[1], b[2], b[3], k->rows, rope, 1e-6f);
        break;
    case K_RMSNORM_ROPE_BWD:
        lws_op_rmsnorm_rope_bwd(c, b[0], b[5], b[4], b[2], b[3], b[1], b[6], k->rows, rope, 0);
        break;
    case K_ROPE:
        lws_op_rope(c, b[0], b[0], k->rows, k->seq, k->q_heads, k->head_dim, 500000.0f, 0);
        break;
    case K_SWIGLU:
        lws_op_swiglu_fwd(c, b[0], b[1], b[2], k->rows);
        break;
    case K_SWIGLU_BWD:
        lws_op_swiglu_bwd(c, b[0], b[1], b[2], b[3], b[4], k->rows);
        break;
    case K_AXPBY:
        lws_op_axpby(c, b[0], b[1], b[2], 1.0f, 1.0f, k->rows);
        break;
    case K_EMBEDDING:
        lws_op_embedding_fwd(c, b[0], b[1], b[2], k->rows, k->cols, k->vocab);
        break;
    case K_EMBEDDING_BWD:
        lws_op_embedding_bwd(c, b[1], b[0], b[2], k->rows, k->cols, k->vocab);
        break;
    case K_CROSS_ENTROPY:
        lws_op_cross_entropy(c, b[0], b[1], b[1], b[2], b[3], k->rows, k->vocab, UINT32_MAX, 0.0f,
                             1.0f);
        break;
    case K_GRAD_NORM:
        lws_op_grad_norm(c, b[5], b[4], 1, chunks, b[6]);
        break;
    case K_ADAMW:
        lws_op_adamw(c, b[5], b[4], 1, chunks);
        break;
    }
}

/* One warm-up launch, then `reps` launches each in its own timestamp region. */
static lws_status time_kernel(lws_context *ctx, kernel *k, uint32_t reps, double *scratch) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    buffers bf;
    memset(&bf, 0, sizeof bf);
    lws_timer *timer = NULL;
    lws_cmd *c = NULL;
    lws_status s = prepare(ctx, k, &bf);
    if (s == LWS_OK) s = lws_timer_create(ctx, reps, &timer);
    if (s == LWS_OK) s = lws_cmd_begin(ctx, 0, &c);
    if (s == LWS_OK) {
        if (k->kind == K_ATTENTION_BWD) { /* the output and lse the backward reads */
            kernel fwd = *k;
            fwd.kind = K_ATTENTION;
            launch(c, &fwd, &bf);
            lws_cmd_barrier(c);
        }
        launch(c, k, &bf);
        lws_cmd_barrier(c);
        for (uint32_t r = 0; r < reps; r++) {
            int region = lws_cmd_region_begin(c, timer, op_names[k->kind]);
            launch(c, k, &bf);
            lws_cmd_region_end(c, timer, region);
            lws_cmd_barrier(c);
        }
        s = lws_cmd_end(c);
    }
    if (s == LWS_OK) s = lws_submit(ctx, &c, 1);
    if (s == LWS_OK) s = lws_timer_read(ctx, timer, scratch, reps);
    if (s == LWS_OK) {
        lws_stats st = lws_stats_of(scratch, reps);
        k->ms = st.median;
        k->ms_min = st.min;
    }
    lws_cmd_destroy(c);
    lws_timer_destroy(timer);
    lws_arena_reset(ctx, mark);
    if (s != LWS_OK) lws_error_context("kernel %s %s", op_names[k->kind], k->label);
    return s;
}

/* ---- PyTorch's matmuls ------------------------------------------------------- */

static int file_exists(const char *path) {
    return access(path, R_OK) == 0;
}

/* bench/torch_matmul.py: $LWS_TORCH_MATMUL, ./bench/, or beside the binary's source tree. */
static int find_torch_script(char *out, size_t cap) {
    const char *env = getenv("LWS_TORCH_MATMUL");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return file_exists(out);
    }
    snprintf(out, cap, "bench/torch_matmul.py");
    if (file_exists(out)) return 1;
    char exe[2048];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0;
    snprintf(out, cap, "%s/../bench/torch_matmul.py", exe);
    return file_exists(out);
}

/* The script writes one small record per matmul shape. */
#define TORCH_RESULTS_MAX_BYTES ((size_t)16 << 20)

static lws_status run_torch(kernel_list *l, uint32_t reps, cJSON **info) {
    char script[2200];
    if (!find_torch_script(script, sizeof script))
        return lws_fail(LWS_ERR_IO,
                        "--torch: bench/torch_matmul.py not found (run from the source tree or set "
                        "LWS_TORCH_MATMUL to its path)");
    char in_path[] = "/tmp/lws-torch-shapes-XXXXXX";
    int fd = mkstemp(in_path);
    if (fd < 0)
        return lws_fail(LWS_ERR_IO, "--torch: cannot create a temporary file: %s", strerror(errno));
    close(fd);
    char out_path[sizeof in_path + 8];
    snprintf(out_path, sizeof out_path, "%s.out", in_path);
    cJSON *shapes = cJSON_CreateArray();
    for (uint32_t i = 0; i < l->n; i++) {
        const kernel *k = &l->k[i];
        if (k->kind != K_MATMUL) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", i);
        cJSON_AddStringToObject(e, "label", k->label);
        cJSON_AddStringToObject(e, "layout", layout_name(k->layout));
        cJSON_AddNumberToObject(e, "m", k->m);
        cJSON_AddNumberToObject(e, "n", k->n);
        cJSON_AddNumberToObject(e, "k", k->k);
        cJSON_AddItemToArray(shapes, e);
    }
    lws_status s = lws_report_write(shapes, in_path);
    cJSON_Delete(shapes);
    if (s != LWS_OK) return s;
    /* Debian's python3-torch lives in the system Python; LWS_PYTHON names another. */
    const char *python = getenv("LWS_PYTHON");
    if (!python || !*python)
        python = file_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    char reps_text[16];
    snprintf(reps_text, sizeof reps_text, "%u", reps);
    printf("\nPyTorch: %s %s --shapes %s --reps %s\n", python, script, in_path, reps_text);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)python, script,   "--shapes", in_path, "--reps",
                        reps_text,      "--json", out_path,   NULL};
        execvp(python, args);
        fprintf(stderr, "lws: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        unlink(in_path);
        unlink(out_path);
        return lws_fail(LWS_ERR_IO,
                        "--torch: %s %s failed (exit status %d); set LWS_PYTHON to a Python with "
                        "torch",
                        python, script, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    unlink(in_path);
    char *text;
    size_t len;
    s = lws_read_file(out_path, TORCH_RESULTS_MAX_BYTES, &text, &len);
    unlink(out_path);
    if (s != LWS_OK) {
        lws_error_context("--torch: %s wrote no results", script);
        return s;
    }
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!cJSON_IsArray(results)) {
        cJSON_Delete(root);
        return lws_fail(LWS_ERR_DATA, "--torch: %s wrote no \"results\" array", script);
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, results) {
        const cJSON *index = cJSON_GetObjectItemCaseSensitive(r, "index");
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(r, "ms");
        if (cJSON_IsNumber(index) && cJSON_IsNumber(ms) && index->valuedouble >= 0 &&
            index->valuedouble < l->n)
            l->k[(uint32_t)index->valuedouble].torch_ms = ms->valuedouble;
    }
    *info = cJSON_DetachItemFromObjectCaseSensitive(root, "torch");
    cJSON_Delete(root);
    return LWS_OK;
}

/* ---- the command ---------------------------------------------------------------- */

static void help(void) {
    printf("usage: %s\n\n"
           "Times every op of a training step at the shapes of CONFIG: the matmuls of each\n"
           "projection (forward NT, input gradient NN, weight gradient TN), attention and its\n"
           "backward, the norms, RoPE, SwiGLU, the residual add for the widest and the narrowest\n"
           "layer, then the output head, the loss, the embedding and the optimizer.\n"
           "  --device D         device index or name substring\n"
           "  --micro-batch N    sequences (default train.micro_batch)\n"
           "  --seq-len N        tokens per sequence (default train.seq_len)\n"
           "  --reps N           timed repetitions per kernel, the median is reported\n"
           "                     (default 10 on a GPU, 3 on a CPU device)\n"
           "  --json FILE        write a \"kernels\" report (docs/bench-report.md)\n"
           "  --label TEXT       the report's label (default \"lws fp32 kernels\")\n"
           "  --torch            also time the matmuls with PyTorch (bench/torch_matmul.py, run\n"
           "                     by $LWS_PYTHON or /usr/bin/python3), same shapes, same run\n"
           "%s",
           usage, lws_cli_sets_help);
}

typedef struct kernels_args {
    const char *config, *device, *json, *label;
    uint32_t batch, seq, reps;
    int torch;
    lws_cli_sets sets; /* --set, and --micro-batch, --seq-len as overrides */
} kernels_args;

static int parse(int argc, char **argv, kernels_args *o) {
    const lws_cli_option options[] = {
        {"--device", LWS_OPT_TEXT, &o->device},
        {"--json", LWS_OPT_TEXT, &o->json},
        {"--label", LWS_OPT_TEXT, &o->label},
        {"--reps", LWS_OPT_U32, &o->reps, 1, 10000},
        {"--micro-batch", LWS_OPT_SET, NULL, 1, 1u << 20, .set = "train.micro_batch"},
        {"--seq-len", LWS_OPT_SET, NULL, 1, 1u << 20, .set = "train.seq_len"},
        {"--torch", LWS_OPT_FLAG, &o->torch},
    };
    lws_cli_command c = {usage,    help,       options, sizeof options / sizeof *options,
                         "CONFIG", &o->config, &o->sets};
    return lws_cli_parse(&c, argc, argv);
}

/* One kernel's line of the table and its entry of the report. */
static cJSON *kernel_row(const kernel *k, int torch) {
    double gflops = k->flops > 0 ? k->flops / (k->ms * 1e-3) / 1e9 : NAN;
    double gbps = k->bytes > 0 ? k->bytes / (k->ms * 1e-3) / 1e9 : NAN;
    char layer[16] = "-";
    if (k->layer >= 0) snprintf(layer, sizeof layer, "%d", k->layer);
    printf("  %-16s %5s  %-38s %10.3f", op_names[k->kind], layer, k->label, k->ms);
    if (isfinite(gflops))
        printf(gflops < 10 ? " %9.2f %8s" : " %9.1f %8s", gflops, "");
    else
        printf(gbps < 10 ? " %9s %8.2f" : " %9s %8.1f", "", gbps);
    if (torch && isfinite(k->torch_ms))
        printf(" %10.3f %9.1f %8.2fx", k->torch_ms, k->flops / (k->torch_ms * 1e-3) / 1e9,
               k->torch_ms / k->ms);
    printf("\n");
    cJSON *e = cJSON_CreateObject();
    int mm = k->kind == K_MATMUL || k->kind == K_MATMUL_CAT || k->kind == K_MATMUL_SWIGLU;
    cJSON_AddStringToObject(e, "op", op_names[k->kind]);
    cJSON_AddStringToObject(e, "label", k->label);
    lws_json_number_or_null(e, "layer", k->layer >= 0 ? k->layer : NAN);
    if (mm)
        cJSON_AddStringToObject(e, "layout", layout_name(k->layout));
    else
        cJSON_AddNullToObject(e, "layout");
    lws_json_number_or_null(e, "m", mm ? k->m : NAN);
    lws_json_number_or_null(e, "n", mm ? k->n : NAN);
    lws_json_number_or_null(e, "k", mm ? k->k : NAN);
    lws_json_number_or_null(e, "flops", k->flops > 0 ? k->flops : NAN);
    lws_json_number_or_null(e, "bytes", k->bytes > 0 ? k->bytes : NAN);
    cJSON_AddNumberToObject(e, "ms", k->ms);
    cJSON_AddNumberToObject(e, "ms_min", k->ms_min);
    lws_json_number_or_null(e, "gflops", gflops);
    lws_json_number_or_null(e, "gbps", gbps);
    if (torch) lws_json_number_or_null(e, "torch_ms", k->torch_ms);
    return e;
}

static int write_report(const kernels_args *o, const lws_config *cfg, const lws_device_caps *caps,
                        cJSON *kernels, cJSON *torch_info) {
    cJSON *r = lws_report_begin("kernels", o->label, "fp32", caps);
    cJSON_AddItemToObject(r, "config", lws_report_config(cfg, cfg->train.seq_len));
    cJSON *shape = cJSON_AddObjectToObject(r, "shape");
    cJSON_AddNumberToObject(shape, "micro_batch", cfg->train.micro_batch);
    cJSON_AddNumberToObject(shape, "seq_len", cfg->train.seq_len);
    cJSON_AddNumberToObject(r, "repetitions", o->reps);
    cJSON_AddItemToObject(r, "kernels", kernels);
    if (torch_info) cJSON_AddItemToObject(r, "torch", torch_info);
    return lws_report_finish(r, o->json);
}

/* Times every kernel of the list, then the table (and the report). */
static int run_kernels(const kernels_args *o, const lws_config *cfg, lws_context *ctx) {
    const lws_device_caps *caps = lws_context_caps(ctx);
    uint32_t batch = cfg->train.micro_batch, seq = cfg->train.seq_len;
    if (caps->timestamp_period_ns <= 0) {
        lws_fail(LWS_ERR_VULKAN, "%s has no timestamp queries: kernels cannot be timed",
                 caps->name);
        return lws_cli_error();
    }
    kernel_list list = {0};
    double *scratch = calloc(o->reps, sizeof *scratch);
    cJSON *torch_info = NULL, *kernels = NULL;
    lws_status s = scratch && build_list(&list, cfg, batch, seq, caps->device_local_bytes)
                       ? LWS_OK
                       : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    if (s == LWS_OK)
        printf("kernels at micro-batch %u x %u = %u tokens, median of %u repetitions after one "
               "warm-up\n",
               batch, seq, batch * seq, o->reps);
    for (uint32_t i = 0; s == LWS_OK && i < list.n; i++)
        s = time_kernel(ctx, &list.k[i], o->reps, scratch);
    if (s == LWS_OK && o->torch) s = run_torch(&list, o->reps, &torch_info);
    int rc = s == LWS_OK ? 0 : lws_cli_error();
    if (rc == 0) {
        printf("\n  %-16s %5s  %-38s %10s %9s %8s", "op", "layer", "what", "ms", "GFLOP/s", "GB/s");
        if (o->torch) printf(" %10s %9s %9s", "torch ms", "GFLOP/s", "lws speed");
        printf("\n");
        kernels = cJSON_CreateArray();
        for (uint32_t i = 0; i < list.n; i++)
            cJSON_AddItemToArray(kernels, kernel_row(&list.k[i], o->torch));
        if (o->torch) printf("  (lws speed: PyTorch's time over lws's; above 1, lws is faster)\n");
        if (o->json) {
            rc = write_report(o, cfg, caps, kernels, torch_info);
            kernels = torch_info = NULL;
        }
    }
    cJSON_Delete(kernels);
    cJSON_Delete(torch_info);
    free(list.k);
    free(scratch);
    return rc;
}

int lws_cli_bench_kernels(int argc, char **argv) {
    kernels_args o = {.label = "lws fp32 kernels"};
    int rc = parse(argc, argv, &o);
    if (rc) return LWS_CLI_PARSE_EXIT(rc);
    lws_config *cfg = lws_cli_config(o.config, &o.sets);
    if (!cfg) return 1;
    lws_context *ctx = NULL;
    lws_context_options opt = {.device = o.device, .validation = -1, .pipeline_cache = -1};
    if (o.sets.print_config) {
        rc = lws_cli_print_config(cfg);
    } else if (!cfg->train.micro_batch || !cfg->train.seq_len) {
        rc = lws_cli_usage(usage, "%s: give --micro-batch and --seq-len", o.config);
    } else if (lws_context_create(&opt, &ctx) != LWS_OK) {
        rc = lws_cli_error();
    } else {
        const lws_device_caps *caps = lws_context_caps(ctx);
        if (!o.reps) o.reps = strcmp(caps->device_type, "CPU") == 0 ? 3 : 10;
        lws_print_device(caps);
        lws_print_config(cfg);
        rc = run_kernels(&o, cfg, ctx);
    }
    lws_context_destroy(ctx);
    free(cfg);
    return rc;
}
