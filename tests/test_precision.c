// lws-test: vulkan kernel
/* The bf16 and fp16 storage variants of every training kernel against the
 * fp64 references, on inputs rounded to the 16-bit type (so the reference
 * sees exactly what the device reads): the cast (bit-exact against the
 * host's conversion, specials and ties included), matmul in every layout with
 * 16-bit and fp32 outputs, RMSNorm forward and backward, RoPE, SwiGLU,
 * axpby, the embedding, attention forward and backward, and the loss with a
 * 16-bit dlogits and a device-side loss scale. Every output starts as NaN.
 *
 * Tolerances: inside a kernel everything is fp32, so an output differs from
 * the reference by its own rounding to the 16-bit type (at most u = 2^-8 of
 * its magnitude for bf16, 2^-11 for fp16; the rel-L2 of such errors is below
 * u) plus the fp32 kernel's budget from its own test, which is orders of
 * magnitude smaller. A 16-bit value that accumulates in place (matmul's
 * accumulate, rmsnorm_bwd's accumulate_dx) is rounded once, at the store. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/attention.h"
#include "ref/axpby.h"
#include "ref/cross_entropy.h"
#include "ref/embedding.h"
#include "ref/matmul.h"
#include "ref/rmsnorm.h"
#include "ref/rope.h"
#include "ref/swiglu.h"

static const lws_dtype types[] = {LWS_BF16, LWS_F16};

/* n normal floats of the given std, rounded to type t. */
static float *inputs(test_rng *rng, size_t n, double std, lws_dtype t) {
    float *x = test_random_floats(rng, n, std);
    for (size_t i = 0; i < n; i++) x[i] = test_round(x[i], t);
    return x;
}

static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Compares a 16-bit (or fp32) output: its rounding plus `fp32` absolute. */
static void check_out(const char *what, lws_dtype t, const float *got, const double *want, size_t n,
                      double fp32) {
    double u = test_unit_roundoff(t);
    char label[160];
    snprintf(label, sizeof label, "%s [%s]", what, lws_dtype_name(t));
    CHECK_CLOSE(label, got, want, n, u * max_abs(want, n) + fp32, u + 1e-5);
}

/* ---- cast ------------------------------------------------------------------ */

typedef struct cast_job {
    lws_buffer out, in;
    uint64_t n;
} cast_job;

static void record_cast(lws_cmd *cmd, void *arg) {
    cast_job *j = arg;
    lws_op_cast(cmd, j->out, j->in, j->n);
}

static int same_value(float a, float b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* fp32 -> t -> fp32 on the device, bit-exact against the host's conversion:
 * zeros, ties to even, the largest finite halves and the overflow threshold,
 * subnormals, underflow, infinities, NaN, and random values at many scales. */
static void check_cast(lws_context *ctx, test_rng *rng, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    const float special[] = {0.0f,          -0.0f,    1.0f,      1.00390625f, 1.01171875f,
                             1.0009765625f, 65504.0f, 65519.99f, 65520.0f,    -70000.0f,
                             6.0e-8f,       3.0e-8f,  2.9e-8f,   1.0e-10f,    1.0e-40f,
                             3.0e38f,       3.4e38f,  INFINITY,  -INFINITY,   NAN};
    enum { SPECIAL = sizeof special / sizeof *special, N = SPECIAL + 500 };
    float x[N], narrow[N], wide[N];
    memcpy(x, special, sizeof special);
    for (size_t i = SPECIAL; i < N; i++)
        x[i] = (float)(test_rng_normal(rng) * pow(10.0, 12 * test_rng_uniform(rng) - 6));
    lws_buffer in = test_upload_floats(ctx, x, N);
    cast_job down = {test_output_as(ctx, N, t), in, N};
    test_run(ctx, record_cast, &down);
    test_download_as(ctx, down.out, narrow, N);
    cast_job up = {test_output(ctx, N), down.out, N};
    test_run(ctx, record_cast, &up);
    test_download(ctx, up.out, wide, N);
    size_t bad = 0, first = N;
    for (size_t i = 0; i < N; i++) {
        float want = test_round(x[i], t);
        if (!same_value(narrow[i], want) || !same_value(wide[i], want)) {
            bad++;
            if (first == N) first = i;
        }
    }
    CHECK(bad == 0,
          "cast f32 <-> %s: %zu of %d differ from the host's rounding (first: %.9g -> %.9g, "
          "want %.9g)",
          lws_dtype_name(t), bad, N, first < N ? x[first] : 0.0, first < N ? narrow[first] : 0.0,
          first < N ? test_round(x[first], t) : 0.0);
    printf("%s cast f32 -> %s -> f32 bit-exact over %d values\n", bad ? "FAIL" : "ok  ",
           lws_dtype_name(t), N);
    lws_arena_reset(ctx, mark);
}

/* ---- matmul ---------------------------------------------------------------- */

typedef struct mm_job {
    lws_mm_layout layout;
    lws_buffer c, a, b;
    uint32_t m, n, k;
    int accumulate;
} mm_job;

static void record_mm(lws_cmd *cmd, void *arg) {
    mm_job *j = arg;
    lws_op_matmul(cmd, j->layout, j->c, j->a, j->b, j->m, j->n, j->k, j->accumulate);
}

static void check_matmul(lws_context *ctx, test_rng *rng, lws_dtype t) {
    static const char *const names[] = {"NT", "NN", "TN"};
    /* a vec4 shape and one the element-wise path takes */
    const uint32_t shapes[][3] = {{8, 12, 16}, {5, 7, 9}};
    for (int layout = 0; layout < 3; layout++)
        for (int s = 0; s < 2; s++)
            for (int c32 = 0; c32 < 2; c32++) {
                lws_arena_mark mark = lws_arena_get_mark(ctx);
                uint32_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                lws_dtype ct = c32 ? LWS_F32 : t;
                int accumulate = c32 ^ s;
                float *a = inputs(rng, (size_t)m * k, 1.0, t),
                      *b = inputs(rng, (size_t)n * k, 1.0, t);
                float *c0 = inputs(rng, (size_t)m * n, 1.0, ct), *got = test_malloc(m * n * 4);
                double *want = test_to_double(c0, (size_t)m * n);
                double *ad = test_to_double(a, (size_t)m * k),
                       *bd = test_to_double(b, (size_t)n * k);
                ref_matmul((lws_mm_layout)layout, want, ad, bd, m, n, k, accumulate);
                mm_job j = {(lws_mm_layout)layout,
                            accumulate ? test_upload_as(ctx, c0, (size_t)m * n, ct)
                                       : test_output_as(ctx, (size_t)m * n, ct),
                            test_upload_as(ctx, a, (size_t)m * k, t),
                            test_upload_as(ctx, b, (size_t)n * k, t),
                            m,
                            n,
                            k,
                            accumulate};
                test_run(ctx, record_mm, &j);
                test_download_as(ctx, j.c, got, (size_t)m * n);
                char what[96];
                snprintf(what, sizeof what, "matmul %s %ux%ux%u %s C%s", names[layout], m, n, k,
                         c32 ? "f32" : "16-bit", accumulate ? " accumulate" : "");
                /* fp32 accumulation of k products of |x| <~ 4: test_matmul's 1e-5 scale */
                check_out(what, ct, got, want, (size_t)m * n, 1e-5 * sqrt((double)k));
                free(a), free(b), free(c0), free(got), free(want), free(ad), free(bd);
                lws_arena_reset(ctx, mark);
            }
}

/* Operands of mixed types are refused with a message naming them. */
static void check_mixed_refused(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer a = test_output_as(ctx, 64, LWS_BF16), b = test_output_as(ctx, 64, LWS_F16);
    lws_buffer c = test_output(ctx, 64);
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    lws_status s = lws_op_matmul(cmd, LWS_MM_NT, c, a, b, 8, 8, 8, 0);
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "A is bf16, B f16"),
          "matmul bf16 x f16: want a refusal naming the types, got '%s'", lws_error_message());
    lws_cmd_end(cmd);
    lws_cmd_destroy(cmd);
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    s = lws_op_rmsnorm_fwd(cmd, c, test_output(ctx, 8), a, test_output(ctx, 8), 8, 8, 1e-6f);
    CHECK(s != LWS_OK && test_contains(lws_error_message(), "y, x must share"),
          "rmsnorm f32 y, bf16 x: want a refusal, got '%s'", lws_error_message());
    lws_cmd_end(cmd);
    lws_cmd_destroy(cmd);
    lws_error_clear();
    printf("ok   operands of mixed types are refused\n");
    lws_arena_reset(ctx, mark);
}

/* ---- RMSNorm --------------------------------------------------------------- */

typedef struct norm_job {
    lws_buffer y, rstd, x, w, dx, dw, dy, scratch;
    uint32_t rows, cols;
    int accumulate;
} norm_job;

static void record_norm_fwd(lws_cmd *cmd, void *arg) {
    norm_job *j = arg;
    lws_op_rmsnorm_fwd(cmd, j->y, j->rstd, j->x, j->w, j->rows, j->cols, 1e-5f);
}

static void record_norm_bwd(lws_cmd *cmd, void *arg) {
    norm_job *j = arg;
    lws_op_rmsnorm_bwd(cmd, j->dx, j->dw, j->dy, j->x, j->w, j->rstd, j->scratch, j->rows, j->cols,
                       j->accumulate);
}

static void check_rmsnorm(lws_context *ctx, test_rng *rng, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    const uint32_t rows = 5, cols = 24;
    size_t n = (size_t)rows * cols;
    float *x = inputs(rng, n, 1.0, t), *dy = inputs(rng, n, 1.0, t), *dx0 = inputs(rng, n, 1.0, t);
    float *w = test_random_floats(rng, cols, 1.0), *dw0 = test_random_floats(rng, cols, 1.0);
    double *xd = test_to_double(x, n), *wd = test_to_double(w, cols), *dyd = test_to_double(dy, n);
    double *y = test_malloc(n * 8), *rstd = test_malloc(rows * 8), *dx = test_malloc(n * 8);
    double *dw = test_to_double(dw0, cols); /* the reference adds into dw */
    ref_rmsnorm_fwd(y, rstd, xd, wd, rows, cols, 1e-5);
    ref_rmsnorm_bwd(dx, dw, dyd, xd, wd, rows, cols, 1e-5);
    for (size_t i = 0; i < n; i++) dx[i] += dx0[i];
    norm_job j = {.y = test_output_as(ctx, n, t),
                  .rstd = test_output(ctx, rows),
                  .x = test_upload_as(ctx, x, n, t),
                  .w = test_upload_floats(ctx, w, cols),
                  .dx = test_upload_as(ctx, dx0, n, t),
                  .dw = test_upload_floats(ctx, dw0, cols),
                  .dy = test_upload_as(ctx, dy, n, t),
                  .scratch = test_output(ctx, lws_rmsnorm_scratch_floats(ctx, rows, cols)),
                  .rows = rows,
                  .cols = cols,
                  .accumulate = 1};
    test_run(ctx, record_norm_fwd, &j);
    test_run(ctx, record_norm_bwd, &j);
    float *got = test_malloc(n * 4);
    test_download_as(ctx, j.y, got, n);
    check_out("rmsnorm_fwd y", t, got, y, n, 4e-6);
    test_download(ctx, j.rstd, got, rows);
    check_out("rmsnorm_fwd rstd (f32)", LWS_F32, got, rstd, rows, 1e-6);
    test_download_as(ctx, j.dx, got, n);
    check_out("rmsnorm_bwd dx (accumulated)", t, got, dx, n, 1e-5);
    test_download(ctx, j.dw, got, cols);
    check_out("rmsnorm_bwd dw (f32)", LWS_F32, got, dw, cols, 1e-6 * (rows + 1));
    free(x), free(dy), free(dx0), free(w), free(dw0), free(xd), free(wd), free(dyd);
    free(y), free(rstd), free(dx), free(dw), free(got);
    lws_arena_reset(ctx, mark);
}

/* ---- elementwise: RoPE, SwiGLU, axpby ----------------------------------------- */

typedef struct elem_job {
    lws_buffer out1, out2, in1, in2, in3;
    uint32_t n;
    int kind; /* 0 rope, 1 rope inverse, 2 swiglu, 3 swiglu_bwd, 4 axpby */
} elem_job;

enum { ROPE_TOKENS = 6, ROPE_SEQ = 4, ROPE_HEADS = 2, ROPE_DIM = 8 };

static void record_elem(lws_cmd *cmd, void *arg) {
    elem_job *j = arg;
    if (j->kind <= 1)
        lws_op_rope(cmd, j->out1, j->in1, ROPE_TOKENS, ROPE_SEQ, ROPE_HEADS, ROPE_DIM, 10000.0f,
                    j->kind);
    else if (j->kind == 2)
        lws_op_swiglu_fwd(cmd, j->out1, j->in1, j->in2, j->n);
    else if (j->kind == 3)
        lws_op_swiglu_bwd(cmd, j->out1, j->out2, j->in3, j->in1, j->in2, j->n);
    else
        lws_op_axpby(cmd, j->out1, j->in1, j->in2, 0.5f, -1.25f, j->n);
}

static void check_elementwise(lws_context *ctx, test_rng *rng, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    const uint32_t n = ROPE_TOKENS * ROPE_HEADS * ROPE_DIM; /* 96 */
    float *a = inputs(rng, n, 2.0, t), *b = inputs(rng, n, 1.0, t), *c = inputs(rng, n, 1.0, t);
    double *ad = test_to_double(a, n), *bd = test_to_double(b, n), *cd = test_to_double(c, n);
    double *w1 = test_malloc(n * 8), *w2 = test_malloc(n * 8);
    float *g1 = test_malloc(n * 4), *g2 = test_malloc(n * 4);
    static const char *const names[] = {"rope", "rope inverse", "swiglu", "swiglu_bwd", "axpby"};
    for (int kind = 0; kind < 5; kind++) {
        if (kind <= 1)
            ref_rope(w1, ad, ROPE_TOKENS, ROPE_SEQ, ROPE_HEADS, ROPE_DIM, 10000.0, kind);
        else if (kind == 2)
            ref_swiglu_fwd(w1, ad, bd, n);
        else if (kind == 3)
            ref_swiglu_bwd(w1, w2, cd, ad, bd, n);
        else
            ref_axpby(w1, ad, bd, 0.5, -1.25, n);
        elem_job j = {test_output_as(ctx, n, t),
                      test_output_as(ctx, n, t),
                      test_upload_as(ctx, a, n, t),
                      test_upload_as(ctx, b, n, t),
                      test_upload_as(ctx, c, n, t),
                      n,
                      kind};
        test_run(ctx, record_elem, &j);
        test_download_as(ctx, j.out1, g1, n);
        check_out(names[kind], t, g1, w1, n, 2e-6);
        if (kind == 3) {
            test_download_as(ctx, j.out2, g2, n);
            check_out("swiglu_bwd db", t, g2, w2, n, 2e-6);
        }
    }
    free(a), free(b), free(c), free(ad), free(bd), free(cd), free(w1), free(w2), free(g1), free(g2);
    lws_arena_reset(ctx, mark);
}

/* ---- embedding ------------------------------------------------------------- */

typedef struct embed_job {
    lws_buffer out, table, tokens, dtable, dout;
    uint32_t n_tokens, dim, vocab;
} embed_job;

static void record_embed(lws_cmd *cmd, void *arg) {
    embed_job *j = arg;
    lws_op_embedding_fwd(cmd, j->out, j->table, j->tokens, j->n_tokens, j->dim, j->vocab);
    lws_op_embedding_bwd(cmd, j->dtable, j->dout, j->tokens, j->n_tokens, j->dim, j->vocab);
}

static void check_embedding(lws_context *ctx, test_rng *rng, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    const uint32_t n_tokens = 19, dim = 8, vocab = 11;
    uint32_t tokens[19];
    for (uint32_t i = 0; i < n_tokens; i++) tokens[i] = (uint32_t)(test_rng_uniform(rng) * vocab);
    float *table = test_random_floats(rng, vocab * dim, 1.0);
    float *dtable0 = test_random_floats(rng, vocab * dim, 1.0);
    float *dout = inputs(rng, n_tokens * dim, 1.0, t),
          *got = test_malloc(vocab * dim * 4 + 4 * n_tokens * dim);
    double *td = test_to_double(table, vocab * dim), *want = test_malloc(n_tokens * dim * 8);
    double *dtable = test_to_double(dtable0, vocab * dim),
           *doutd = test_to_double(dout, n_tokens * dim);
    ref_embedding_fwd(want, td, tokens, n_tokens, dim, vocab);
    ref_embedding_bwd(dtable, doutd, tokens, n_tokens, dim, vocab);
    embed_job j = {test_output_as(ctx, n_tokens * dim, t),
                   test_upload_floats(ctx, table, vocab * dim),
                   test_upload(ctx, tokens, sizeof tokens),
                   test_upload_floats(ctx, dtable0, vocab * dim),
                   test_upload_as(ctx, dout, n_tokens * dim, t),
                   n_tokens,
                   dim,
                   vocab};
    test_run(ctx, record_embed, &j);
    test_download_as(ctx, j.out, got, n_tokens * dim);
    check_out("embedding_fwd out (f32 table)", t, got, want, n_tokens * dim, 0);
    test_download(ctx, j.dtable, got, vocab * dim);
    check_out("embedding_bwd dtable (f32)", LWS_F32, got, dtable, vocab * dim, 1e-6);
    free(table), free(dtable0), free(dout), free(got), free(td), free(want), free(dtable),
        free(doutd);
    lws_arena_reset(ctx, mark);
}

/* ---- attention ------------------------------------------------------------- */

enum { AT_B = 2, AT_SEQ = 7, AT_QH = 4, AT_KVH = 2, AT_HD = 8 };
#define AT_Q    (AT_B * AT_SEQ * AT_QH * AT_HD)
#define AT_KV   (AT_B * AT_SEQ * AT_KVH * AT_HD)
#define AT_ROWS (AT_B * AT_QH * AT_SEQ)

typedef struct attn_job {
    lws_buffer o, lse, q, k, v, dout, delta, dq, dk, dv;
} attn_job;

static void record_attn(lws_cmd *cmd, void *arg) {
    attn_job *j = arg;
    float scale = 1.0f / sqrtf(AT_HD);
    lws_op_attention_fwd(cmd, j->o, j->lse, j->q, j->k, j->v, AT_B, AT_SEQ, AT_QH, AT_KVH, AT_HD,
                         scale);
    lws_cmd_barrier(cmd);
    lws_op_attention_bwd(cmd, j->dq, j->dk, j->dv, j->dout, j->q, j->k, j->v, j->o, j->lse,
                         j->delta, AT_B, AT_SEQ, AT_QH, AT_KVH, AT_HD, scale);
}

static void check_attention(lws_context *ctx, test_rng *rng, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *q = inputs(rng, AT_Q, 1.0, t), *k = inputs(rng, AT_KV, 1.0, t);
    float *v = inputs(rng, AT_KV, 1.0, t), *dout = inputs(rng, AT_Q, 1.0, t);
    double *qd = test_to_double(q, AT_Q), *kd = test_to_double(k, AT_KV);
    double *vd = test_to_double(v, AT_KV), *doutd = test_to_double(dout, AT_Q);
    double o[AT_Q], lse[AT_ROWS], dq[AT_Q], dk[AT_KV], dv[AT_KV];
    double scale = 1.0 / sqrt(AT_HD);
    ref_attention_fwd(o, lse, qd, kd, vd, AT_B, AT_SEQ, AT_QH, AT_KVH, AT_HD, scale);
    /* The backward reads o as the device stored it (16-bit): delta = dout . o
     * then differs from the exact one by o's rounding, which the dq and dk
     * tolerance below carries (|delta| <~ 3, times |p| <= 1). */
    ref_attention_bwd(dq, dk, dv, doutd, qd, kd, vd, AT_B, AT_SEQ, AT_QH, AT_KVH, AT_HD, scale);
    attn_job j = {test_output_as(ctx, AT_Q, t),     test_output(ctx, AT_ROWS),
                  test_upload_as(ctx, q, AT_Q, t),  test_upload_as(ctx, k, AT_KV, t),
                  test_upload_as(ctx, v, AT_KV, t), test_upload_as(ctx, dout, AT_Q, t),
                  test_output(ctx, AT_ROWS),        test_output_as(ctx, AT_Q, t),
                  test_output_as(ctx, AT_KV, t),    test_output_as(ctx, AT_KV, t)};
    test_run(ctx, record_attn, &j);
    float got[AT_Q];
    double u = test_unit_roundoff(t);
    test_download_as(ctx, j.o, got, AT_Q);
    check_out("attention_fwd o", t, got, o, AT_Q, 3e-5);
    test_download(ctx, j.lse, got, AT_ROWS);
    check_out("attention_fwd lse (f32)", LWS_F32, got, lse, AT_ROWS, 3e-5);
    test_download_as(ctx, j.dq, got, AT_Q);
    check_out("attention_bwd dq", t, got, dq, AT_Q, 1e-4 + 8 * u);
    test_download_as(ctx, j.dk, got, AT_KV);
    check_out("attention_bwd dk", t, got, dk, AT_KV, 1e-4 + 8 * u);
    test_download_as(ctx, j.dv, got, AT_KV);
    check_out("attention_bwd dv", t, got, dv, AT_KV, 1e-4);
    free(q), free(k), free(v), free(dout), free(qd), free(kd), free(vd), free(doutd);
    lws_arena_reset(ctx, mark);
}

/* ---- the loss with a 16-bit dlogits and a loss scale --------------------------- */

typedef struct ce_job {
    lws_ce_args a;
} ce_job;

static void record_ce(lws_cmd *cmd, void *arg) {
    ce_job *j = arg;
    lws_op_cross_entropy_count(cmd, j->a.targets, j->a.scratch, j->a.rows, j->a.ignore_index);
    lws_op_cross_entropy_rows(cmd, &j->a);
}

static void check_cross_entropy(lws_context *ctx, test_rng *rng, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    const uint32_t rows = 7, vocab = 257;
    size_t n = (size_t)rows * vocab;
    float *x = test_random_floats(rng, n, 2.0), *got = test_malloc(n * 4);
    uint32_t targets[7];
    for (uint32_t r = 0; r < rows; r++) targets[r] = (uint32_t)(test_rng_uniform(rng) * vocab);
    double *xd = test_to_double(x, n), *want = test_malloc(n * 8), losses[7];
    /* grad_scale 0.5 times a loss scale of 1024 on the device */
    float scale = 1024.0f;
    ref_cross_entropy(losses, want, xd, targets, rows, vocab, UINT32_MAX, 1e-4, 0.5 * scale);
    ce_job j = {{.losses = test_output(ctx, rows),
                 .dlogits = test_output_as(ctx, n, t),
                 .logits = test_upload_floats(ctx, x, n),
                 .targets = test_upload(ctx, targets, sizeof targets),
                 .scratch = test_output(ctx, lws_cross_entropy_scratch_floats(ctx, rows, vocab)),
                 .scale = test_upload_floats(ctx, &scale, 1),
                 .rows = rows,
                 .vocab = vocab,
                 .ignore_index = UINT32_MAX,
                 .z_loss = 1e-4f,
                 .grad_scale = 0.5f}};
    test_run(ctx, record_ce, &j);
    test_download(ctx, j.a.losses, got, rows);
    check_out("cross_entropy losses (f32)", LWS_F32, got, losses, rows, 5e-6);
    test_download_as(ctx, j.a.dlogits, got, n);
    check_out("cross_entropy dlogits x loss scale", t, got, want, n, 1e-6 * 0.5 * scale / rows);
    free(x), free(got), free(xd), free(want);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 16);
    if (!lws_context_caps(ctx)->storage_buffer_16bit) {
        printf("skip: %s has no 16-bit storage\n", lws_context_caps(ctx)->name);
        return test_finish(ctx);
    }
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        lws_dtype t = types[i];
        check_cast(ctx, &rng, t);
        check_matmul(ctx, &rng, t);
        check_rmsnorm(ctx, &rng, t);
        check_elementwise(ctx, &rng, t);
        check_embedding(ctx, &rng, t);
        check_attention(ctx, &rng, t);
        check_cross_entropy(ctx, &rng, t);
    }
    check_mixed_refused(ctx);
    return test_finish(ctx);
}
