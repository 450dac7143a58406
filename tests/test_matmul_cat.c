// lws-test: vulkan kernel
/* The matmul over a concatenation (lws_op_matmul_cat), the W1|W3 product
 * with SwiGLU in its epilogue (lws_op_matmul_swiglu) and W2's input gradient
 * with SwiGLU's backward in its epilogue (lws_op_matmul_swiglu_bwd) against
 * the fp64 references of the whole concatenated product: the n (NT), k (NN) and m
 * (TN) dimension cut into 2 or 3 parts held in separate buffers, sizes that
 * are multiples of no tile side with part boundaries inside a tile
 * (element-wise path) and multiples of 4 (four-wide path), accumulate on and
 * off, fp32 and bf16 / fp16 operands with outputs of their type or fp32.
 * Every output starts as NaN and is followed by a poisoned guard: each
 * element of each part must be written, nothing past it. Then the cases that
 * record the parts one by one (a matrix over a lowered element limit, a fast
 * path that takes the parts' products), determinism, and argument checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/matmul.h"
#include "ref/swiglu.h"

static const char *const layout_names[] = {"NT", "NN", "TN"};
#define GUARD 8 /* poisoned elements after each output matrix */

/* How each operand, as the row-major matrix it is stored as, is cut. */
enum { NONE, ROWS, COLS };
static int cut_of(lws_mm_layout l, char operand) {
    static const int cuts[3][3] = {{NONE, ROWS, COLS}, {COLS, ROWS, NONE}, {COLS, NONE, ROWS}};
    return cuts[l][operand - 'a'];
}

/* One operand: its stored shape [rows, cols] whole, and its parts. */
typedef struct operand {
    uint32_t rows, cols, count;
    uint32_t prow[3], pcol[3]; /* each part's shape */
    float *host[3];            /* each part's values (rounded to its type) */
    lws_buffer dev[3];
    double *full; /* the concatenation, rows x cols */
} operand;

/* Shapes the operand's parts from the cut and the part sizes. */
static void shape_parts(operand *o, int cut, uint32_t parts, const uint32_t *size) {
    o->count = cut == NONE ? 1 : parts;
    for (uint32_t p = 0; p < o->count; p++) {
        o->prow[p] = cut == ROWS ? size[p] : o->rows;
        o->pcol[p] = cut == COLS ? size[p] : o->cols;
    }
}

/* Part p's place in the concatenation: its first row and column. */
static void part_origin(const operand *o, uint32_t p, uint32_t *r0, uint32_t *c0) {
    *r0 = *c0 = 0;
    for (uint32_t i = 0; i < p; i++) {
        if (o->prow[i] != o->rows) *r0 += o->prow[i];
        if (o->pcol[i] != o->cols) *c0 += o->pcol[i];
    }
}

/* Random parts (NaN when `poison`) of type t, uploaded with a poisoned
 * guard, and their concatenation in fp64. */
static void fill_operand(lws_context *ctx, test_rng *rng, operand *o, lws_dtype t, int poison) {
    o->full = test_malloc((size_t)o->rows * o->cols * sizeof(double));
    for (uint32_t p = 0; p < o->count; p++) {
        size_t n = (size_t)o->prow[p] * o->pcol[p];
        float *x = test_random_floats(rng, n + GUARD, 1.0);
        for (size_t i = 0; i < n + GUARD; i++) x[i] = poison || i >= n ? NAN : test_round(x[i], t);
        o->host[p] = x;
        o->dev[p] = test_upload_as(ctx, x, n + GUARD, t);
        uint32_t r0, c0;
        part_origin(o, p, &r0, &c0);
        for (uint32_t r = 0; r < o->prow[p]; r++)
            for (uint32_t c = 0; c < o->pcol[p]; c++)
                o->full[(size_t)(r0 + r) * o->cols + c0 + c] = x[(size_t)r * o->pcol[p] + c];
    }
}

static void free_operand(operand *o) {
    for (uint32_t p = 0; p < o->count; p++) free(o->host[p]);
    free(o->full);
}

/* Compares each output part with its block of the fp64 concatenation and
 * checks its guard; tol_abs / tol_rel as CHECK_CLOSE. */
static void check_parts(lws_context *ctx, const char *what, const operand *c, const double *want,
                        double tol_abs, double tol_rel) {
    for (uint32_t p = 0; p < c->count; p++) {
        size_t n = (size_t)c->prow[p] * c->pcol[p];
        float *got = test_malloc((n + GUARD) * sizeof *got);
        double *w = test_malloc(n * sizeof *w);
        test_download_as(ctx, c->dev[p], got, n + GUARD);
        uint32_t r0, c0;
        part_origin(c, p, &r0, &c0);
        for (uint32_t r = 0; r < c->prow[p]; r++)
            for (uint32_t j = 0; j < c->pcol[p]; j++)
                w[(size_t)r * c->pcol[p] + j] = want[(size_t)(r0 + r) * c->cols + c0 + j];
        char label[200];
        snprintf(label, sizeof label, "%s part %u", what, p);
        CHECK_CLOSE(label, got, w, n, tol_abs, tol_rel);
        size_t written = 0;
        for (size_t i = n; i < n + GUARD; i++) written += !isnan(got[i]);
        CHECK(written == 0, "%s: %zu of the %d guard elements after it were written", label,
              written, GUARD);
        free(got), free(w);
    }
}

static double max_abs(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* The error allowed in a length-K product of N(0,1) inputs exactly
 * representable in their type: test_matmul's fp32 budget 1e-6 * (K + 2)
 * (~7x the measured worst case of sequential fp32 summation) plus, for a
 * 16-bit output, its own rounding u * |C| (test_precision's reasoning); the
 * relative L2 bound 1e-5 (+ u) catches a systematic error. */
static double tol_abs_for(uint32_t k, lws_dtype ct, double max_c) {
    return 1e-6 * (k + 2) + test_unit_roundoff(ct) * max_c;
}
static double tol_rel_for(lws_dtype ct) {
    return 1e-5 + test_unit_roundoff(ct);
}

typedef struct cat_case {
    lws_mm_layout layout;
    uint32_t parts, size[3];
    uint32_t m, n, k; /* the concatenated one is the sum of size[] */
    int accumulate;
    lws_dtype t, ct; /* A and B, C */
} cat_case;

typedef struct cat_job {
    lws_mm_cat p;
} cat_job;

static void record_cat(lws_cmd *cmd, void *arg) {
    lws_op_matmul_cat(cmd, &((cat_job *)arg)->p);
}

/* The problem of case s on operands a, b, c. */
static lws_mm_cat cat_problem(const cat_case *s, const operand *a, const operand *b,
                              const operand *c) {
    lws_mm_cat p = {s->layout, s->parts, {0}, {{0}}, {{0}}, {{0}}, s->m, s->n, s->k, s->accumulate};
    for (uint32_t i = 0; i < s->parts; i++) {
        p.size[i] = s->size[i];
        p.a[i] = a->dev[i < a->count ? i : 0];
        p.b[i] = b->dev[i < b->count ? i : 0];
        p.c[i] = c->dev[i < c->count ? i : 0];
    }
    return p;
}

/* Runs case s twice (bit-identical) against the fp64 product of the
 * concatenations; returns nothing, counts checks. */
static void run_cat(lws_context *ctx, test_rng *rng, cat_case s) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t total = 0;
    for (uint32_t i = 0; i < s.parts; i++) total += s.size[i];
    uint32_t *cat = s.layout == LWS_MM_NT ? &s.n : s.layout == LWS_MM_NN ? &s.k : &s.m;
    *cat = total;
    lws_mm_layout l = s.layout;
    operand a = {l == LWS_MM_TN ? s.k : s.m, l == LWS_MM_TN ? s.m : s.k},
            b = {l == LWS_MM_NT ? s.n : s.k, l == LWS_MM_NT ? s.k : s.n}, c = {s.m, s.n};
    shape_parts(&a, cut_of(l, 'a'), s.parts, s.size);
    shape_parts(&b, cut_of(l, 'b'), s.parts, s.size);
    shape_parts(&c, cut_of(l, 'c'), s.parts, s.size);
    fill_operand(ctx, rng, &a, s.t, 0);
    fill_operand(ctx, rng, &b, s.t, 0);
    fill_operand(ctx, rng, &c, s.ct, !s.accumulate);
    size_t cn = (size_t)s.m * s.n;
    double *want = test_malloc(cn * sizeof *want);
    memcpy(want, c.full, cn * sizeof *want);
    ref_matmul(l, want, a.full, b.full, s.m, s.n, s.k, s.accumulate);

    cat_job j = {cat_problem(&s, &a, &b, &c)};
    test_run(ctx, record_cat, &j);
    char what[200];
    snprintf(what, sizeof what, "%s cat %u parts %u,%u,%u M=%u N=%u K=%u %s, C %s%s",
             layout_names[l], s.parts, s.size[0], s.size[1], s.parts > 2 ? s.size[2] : 0, s.m, s.n,
             s.k, lws_dtype_name(s.t), lws_dtype_name(s.ct), s.accumulate ? " accumulate" : "");
    check_parts(ctx, what, &c, want, tol_abs_for(s.k, s.ct, max_abs(want, cn)), tol_rel_for(s.ct));

    /* Again from the same C: bit-identical. */
    float *first = test_malloc((cn + 3 * GUARD) * sizeof *first), *again = test_malloc(cn * 4);
    size_t at = 0;
    for (uint32_t p = 0; p < c.count; p++) {
        size_t n = (size_t)c.prow[p] * c.pcol[p];
        test_download_as(ctx, c.dev[p], first + at, n);
        c.dev[p] = test_upload_as(ctx, c.host[p], n + GUARD, s.ct);
        at += n;
    }
    j = (cat_job){cat_problem(&s, &a, &b, &c)};
    test_run(ctx, record_cat, &j);
    at = 0;
    for (uint32_t p = 0; p < c.count; p++) {
        size_t n = (size_t)c.prow[p] * c.pcol[p];
        test_download_as(ctx, c.dev[p], again + at, n);
        at += n;
    }
    test_checks++;
    if (!test_bitwise_equal(what, first, again, cn)) test_failures++;
    free(first), free(again), free(want);
    free_operand(&a), free_operand(&b), free_operand(&c);
    lws_arena_reset(ctx, mark);
}

/* ---- SwiGLU in the W1|W3 product's epilogue ------------------------------- */

/* The FFN's fused products, their six buffers in the launcher's order:
 * lws_op_matmul_swiglu's gate, up, act, a, w1, w3 or
 * lws_op_matmul_swiglu_bwd's dgate, dup, dy, w2, gate, up. */
typedef struct swiglu_job {
    lws_buffer b[6];
    uint32_t m, f, k;
} swiglu_job;

static void record_swiglu(lws_cmd *cmd, void *arg) {
    swiglu_job *j = arg;
    lws_op_matmul_swiglu(cmd, j->b[0], j->b[1], j->b[2], j->b[3], j->b[4], j->b[5], j->m, j->f,
                         j->k);
}

static void record_swiglu_bwd(lws_cmd *cmd, void *arg) {
    swiglu_job *j = arg;
    lws_op_matmul_swiglu_bwd(cmd, j->b[0], j->b[1], j->b[2], j->b[3], j->b[4], j->b[5], j->m, j->f,
                             j->k);
}

/* gate, up and act against fp64: gate = a W1^T, up = a W3^T and
 * silu(gate) * up from them. */
static void run_swiglu(lws_context *ctx, test_rng *rng, uint32_t m, uint32_t f, uint32_t k,
                       lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t sizes[2] = {f, f};
    operand a = {m, k}, w = {2 * f, k}, out = {m, f};
    shape_parts(&a, NONE, 1, sizes);
    shape_parts(&w, ROWS, 2, sizes);
    shape_parts(&out, NONE, 1, sizes);
    fill_operand(ctx, rng, &a, t, 0);
    fill_operand(ctx, rng, &w, t, 0);
    operand gate = out, up = out, act = out;
    fill_operand(ctx, rng, &gate, t, 1);
    fill_operand(ctx, rng, &up, t, 1);
    fill_operand(ctx, rng, &act, t, 1);
    size_t n = (size_t)m * f;
    double *wg = test_malloc(n * sizeof *wg), *wu = test_malloc(n * sizeof *wu),
           *wh = test_malloc(n * sizeof *wh);
    ref_matmul(LWS_MM_NT, wg, a.full, w.full, m, f, k, 0);
    ref_matmul(LWS_MM_NT, wu, a.full, w.full + (size_t)f * k, m, f, k, 0);
    ref_swiglu_fwd(wh, wg, wu, n);
    swiglu_job j = {{gate.dev[0], up.dev[0], act.dev[0], a.dev[0], w.dev[0], w.dev[1]}, m, f, k};
    test_run(ctx, record_swiglu, &j);

    char what[160];
    snprintf(what, sizeof what, "swiglu M=%u F=%u K=%u %s", m, f, k, lws_dtype_name(t));
    char label[200];
    double mg = max_abs(wg, n), mu = max_abs(wu, n), u = test_unit_roundoff(t);
    double eg = tol_abs_for(k, t, mg), eu = tol_abs_for(k, t, mu);
    snprintf(label, sizeof label, "%s gate", what);
    check_parts(ctx, label, &gate, wg, eg, tol_rel_for(t));
    snprintf(label, sizeof label, "%s up", what);
    check_parts(ctx, label, &up, wu, eu, tol_rel_for(t));
    /* act is computed from the stored gate and up, each off by at most eg,
     * eu: |silu'| <= 1.1 and |silu(g)| <= |g| carry them as 1.1 eg |up| +
     * |gate| eu (+ eg eu), and act's own rounding adds u |act|. */
    double max_silu = 0;
    for (size_t i = 0; i < n; i++) max_silu = fmax(max_silu, fabs(wg[i] / (1 + exp(-wg[i]))));
    double eh = 1.1 * eg * mu + max_silu * eu + eg * eu + u * max_abs(wh, n) + 1e-6;
    snprintf(label, sizeof label, "%s act", what);
    check_parts(ctx, label, &act, wh, eh, tol_rel_for(t) + 2 * u);
    free(wg), free(wu), free(wh);
    free_operand(&a), free_operand(&w), free_operand(&gate), free_operand(&up), free_operand(&act);
    lws_arena_reset(ctx, mark);
}

/* ---- SwiGLU's backward in W2's input-gradient epilogue --------------------- */

/* dgate, dup against fp64: dact = dy . w2 (dy [M, K], w2 [K, F]), then
 * SwiGLU's backward at the stored gate and up. Returns dgate then dup as
 * computed (2 M F floats, the caller frees them). */
static float *run_swiglu_bwd(lws_context *ctx, test_rng *rng, uint32_t m, uint32_t f, uint32_t k,
                             lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t sizes[1] = {f};
    operand dy = {m, k}, w2 = {k, f}, gate = {m, f}, up = {m, f};
    shape_parts(&dy, NONE, 1, sizes);
    shape_parts(&w2, NONE, 1, sizes);
    shape_parts(&gate, NONE, 1, sizes);
    shape_parts(&up, NONE, 1, sizes);
    fill_operand(ctx, rng, &dy, t, 0);
    fill_operand(ctx, rng, &w2, t, 0);
    fill_operand(ctx, rng, &gate, t, 0);
    fill_operand(ctx, rng, &up, t, 0);
    operand dgate = gate, dup = gate;
    fill_operand(ctx, rng, &dgate, t, 1);
    fill_operand(ctx, rng, &dup, t, 1);
    size_t n = (size_t)m * f;
    double *dact = test_malloc(n * sizeof *dact), *wg = test_malloc(n * sizeof *wg),
           *wu = test_malloc(n * sizeof *wu);
    ref_matmul(LWS_MM_NN, dact, dy.full, w2.full, m, f, k, 0);
    ref_swiglu_bwd(wg, wu, dact, gate.full, up.full, n);
    swiglu_job j = {
        {dgate.dev[0], dup.dev[0], dy.dev[0], w2.dev[0], gate.dev[0], up.dev[0]}, m, f, k};
    test_run(ctx, record_swiglu_bwd, &j);

    char what[160], label[200];
    snprintf(what, sizeof what, "swiglu_bwd M=%u F=%u K=%u %s", m, f, k, lws_dtype_name(t));
    /* dact is off by at most e (the product's budget, with its rounding to
     * the storage type as the separate kernel read it back); dgate carries
     * it times |up| |silu'| <= 1.1 |up|, dup times |silu(gate)|; each adds
     * its own rounding u |out| and fp32's few ulps in the formula. */
    double u = test_unit_roundoff(t), e = tol_abs_for(k, t, max_abs(dact, n)), max_silu = 0;
    for (size_t i = 0; i < n; i++)
        max_silu = fmax(max_silu, fabs(gate.full[i] / (1 + exp(-gate.full[i]))));
    double eg = 1.1 * e * max_abs(up.full, n) + u * max_abs(wg, n) + 1e-6;
    double eu = max_silu * e + u * max_abs(wu, n) + 1e-6;
    snprintf(label, sizeof label, "%s dgate", what);
    check_parts(ctx, label, &dgate, wg, eg, tol_rel_for(t) + 2 * u);
    snprintf(label, sizeof label, "%s dup", what);
    check_parts(ctx, label, &dup, wu, eu, tol_rel_for(t) + 2 * u);
    float *got = test_malloc(2 * n * sizeof *got);
    test_download_as(ctx, dgate.dev[0], got, n);
    test_download_as(ctx, dup.dev[0], got + n, n);
    free(dact), free(wg), free(wu);
    free_operand(&dy), free_operand(&w2), free_operand(&gate), free_operand(&up);
    free_operand(&dgate), free_operand(&dup);
    lws_arena_reset(ctx, mark);
    return got;
}

/* The fused epilogue and the separate kernels it replaces (the matmul into
 * dgate, swiglu_bwd in place: what a matrix over the element limit records;
 * 300 keeps W2 [K, F] whole, so only rows of dy and dgate are split and the
 * k order is the fused one's) on the same inputs: the same products in the same k order, dact
 * rounded as the separate kernel reads it, the same formula: equal but for fp32's contraction
 * choices in the formula (a few ulps of the 16-bit output at most, measured equal on lavapipe). */
static void check_swiglu_bwd_as_separate(lws_context *ctx, uint32_t m, uint32_t f, uint32_t k,
                                         lws_dtype t) {
    test_rng r1, r2;
    test_rng_seed(&r1, 5), test_rng_seed(&r2, 5);
    float *fused = run_swiglu_bwd(ctx, &r1, m, f, k, t);
    setenv("LWS_MATMUL_MAX_ELEMS", "300", 1);
    float *separate = run_swiglu_bwd(ctx, &r2, m, f, k, t);
    unsetenv("LWS_MATMUL_MAX_ELEMS");
    size_t n = 2 * (size_t)m * f, differ = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)fused[i] - separate[i]);
        worst = fmax(worst, d / fmax(fabs(separate[i]), 1e-30));
        differ += d != 0;
    }
    CHECK(worst <= 4 * test_unit_roundoff(t),
          "swiglu_bwd %s M=%u F=%u K=%u: fused and separate kernels differ in %zu of %zu "
          "elements, worst relative %.3g",
          lws_dtype_name(t), m, f, k, differ, n, worst);
    printf("ok   swiglu_bwd %s fused vs separate kernels: %zu of %zu elements differ\n",
           lws_dtype_name(t), differ, n);
    free(fused), free(separate);
}

/* ---- the parts one by one ------------------------------------------------- */

static int fast_calls;
/* A stand-in for matrix units: the portable kernel, counted. */
static lws_status counted_fast(lws_cmd *cmd, const lws_matmul_args *p) {
    fast_calls++;
    return lws_matmul_portable(cmd, p);
}

/* Records fn(arg) alone; the dispatches and barriers it recorded. */
static void count(lws_context *ctx, void (*fn)(lws_cmd *, void *), void *arg, uint64_t *dispatches,
                  uint32_t *barriers) {
    lws_cmd *cmd;
    uint64_t before = lws_context_dispatches(ctx);
    uint32_t unneeded = 0;
    *barriers = 0;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    if (!cmd) return;
    fn(cmd, arg);
    CHECK_OK(lws_cmd_end(cmd));
    lws_cmd_barrier_stats(cmd, barriers, &unneeded);
    lws_cmd_destroy(cmd);
    *dispatches = lws_context_dispatches(ctx) - before;
}

/* Fused: one dispatch and no barrier. Where a fast path takes the parts'
 * products (a stand-in hooked in with LWS_MATMUL=coopmat) they run one by
 * one on it, NN's with barriers between; so do they with a matrix over the
 * element limit (split further by lws_op_matmul); results as fused. */
static void check_parts_one_by_one(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer c = test_output(ctx, 4096), a = test_output(ctx, 4096), b = test_output(ctx, 4096);
    lws_buffer g = test_output(ctx, 4096), u = test_output(ctx, 4096), h = test_output(ctx, 4096);
    lws_buffer w3 = test_output(ctx, 4096);
    for (int l = LWS_MM_NT; l <= LWS_MM_TN; l++) {
        /* each part its own range of one buffer per operand */
        cat_job j = {{(lws_mm_layout)l, 3, {8, 4, 4}, {c}, {a}, {b}, 16, 16, 16, 0}};
        for (int i = 0; i < 3; i++) {
            lws_buffer *x[3] = {j.p.c, j.p.a, j.p.b};
            for (int o = 0; o < 3; o++) x[o][i] = lws_buffer_slice(x[o][0], 1024ull * i, 1024);
        }
        uint64_t dispatches;
        uint32_t barriers;
        count(ctx, record_cat, &j, &dispatches, &barriers);
        CHECK(dispatches == 1 && barriers == 0, "%s cat fused: %llu dispatches, %u barriers",
              layout_names[l], (unsigned long long)dispatches, barriers);
        setenv("LWS_MATMUL", "coopmat", 1);
        lws_matmul_fast_hook(counted_fast);
        fast_calls = 0;
        count(ctx, record_cat, &j, &dispatches, &barriers);
        CHECK(fast_calls == 3 && dispatches == 3 && barriers == (l == LWS_MM_NN ? 2u : 0u),
              "%s cat under a fast path: %d fast calls, %llu dispatches, %u barriers",
              layout_names[l], fast_calls, (unsigned long long)dispatches, barriers);
        run_cat(ctx, rng,
                (cat_case){(lws_mm_layout)l, 3, {13, 8, 22}, 37, 29, 31, 1, LWS_F32, LWS_F32});
        lws_matmul_fast_hook(NULL);
        unsetenv("LWS_MATMUL");
    }
    swiglu_job s = {{g, u, h, a, b, w3}, 16, 12, 16};
    uint64_t dispatches;
    uint32_t barriers;
    count(ctx, record_swiglu, &s, &dispatches, &barriers);
    CHECK(dispatches == 1 && barriers == 0, "swiglu fused: %llu dispatches, %u barriers",
          (unsigned long long)dispatches, barriers);
    setenv("LWS_MATMUL", "coopmat", 1);
    lws_matmul_fast_hook(counted_fast);
    fast_calls = 0;
    count(ctx, record_swiglu, &s, &dispatches, &barriers);
    CHECK(fast_calls == 2 && dispatches == 3 && barriers == 1,
          "swiglu under a fast path: %d fast calls, %llu dispatches, %u barriers", fast_calls,
          (unsigned long long)dispatches, barriers);
    run_swiglu(ctx, rng, 37, 29, 31, LWS_F32);
    swiglu_job sb = {{g, u, a, b, h, w3}, 16, 12, 16};
    fast_calls = 0;
    count(ctx, record_swiglu_bwd, &sb, &dispatches, &barriers);
    CHECK(fast_calls == 1 && dispatches == 2 && barriers == 1,
          "swiglu_bwd under a fast path: %d fast calls, %llu dispatches, %u barriers", fast_calls,
          (unsigned long long)dispatches, barriers);
    free(run_swiglu_bwd(ctx, rng, 37, 29, 31, LWS_F32));
    lws_matmul_fast_hook(NULL);
    unsetenv("LWS_MATMUL");
    count(ctx, record_swiglu_bwd, &sb, &dispatches, &barriers);
    CHECK(dispatches == 1 && barriers == 0, "swiglu_bwd fused: %llu dispatches, %u barriers",
          (unsigned long long)dispatches, barriers);
    printf("ok   fused: one dispatch; under a fast path the parts one by one\n");

    setenv("LWS_MATMUL_MAX_ELEMS", "300", 1);
    for (int l = LWS_MM_NT; l <= LWS_MM_TN; l++)
        run_cat(ctx, rng,
                (cat_case){(lws_mm_layout)l, 3, {13, 8, 22}, 37, 29, 31, 1, LWS_F32, LWS_F32});
    run_swiglu(ctx, rng, 37, 29, 31, LWS_F32);
    free(run_swiglu_bwd(ctx, rng, 37, 29, 31, LWS_F32));
    unsetenv("LWS_MATMUL_MAX_ELEMS");
    lws_arena_reset(ctx, mark);
}

/* ---- argument checks -------------------------------------------------------- */

static void check_refusals(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer c = test_output(ctx, 256), a = test_output(ctx, 256), b = test_output(ctx, 256);
    lws_buffer b1 = test_output(ctx, 256), c1 = test_output(ctx, 256);
    cat_job base = {{LWS_MM_NT, 2, {4, 4}, {c, c1}, {a}, {b, b1}, 4, 8, 4, 0}}, j = base;
    j.p.n = 9;
    test_expect_refused(ctx, "N not the parts' sum", record_cat, &j, "the parts' sum");
    j = base;
    j.p.parts = 4;
    test_expect_refused(ctx, "4 parts", record_cat, &j, "give 1 to 3");
    j = base;
    j.p.b[1] = test_output_as(ctx, 64, LWS_BF16);
    test_expect_refused(ctx, "parts of mixed types", record_cat, &j, "part 1");
    j = base;
    j.p.c[1] = lws_buffer_slice(b, 16, 128);
    test_expect_refused(ctx, "C of part 1 overlapping B", record_cat, &j, "overlaps");
    j = base;
    j.p.c[1] = lws_buffer_slice(c, 32, 128);
    test_expect_refused(ctx, "C parts overlapping each other", record_cat, &j, "overlaps");
    j = base;
    j.p.size[1] = 80; /* C of part 1 needs 4 x 80 floats, its buffer has 256 */
    j.p.n = 84;
    test_expect_refused(ctx, "a part larger than its buffer", record_cat, &j, "smaller");
    swiglu_job s = {{c, c1, lws_buffer_slice(c, 0, 64), a, b, b1}, 4, 4, 4};
    test_expect_refused(ctx, "act overlapping gate", record_swiglu, &s, "act overlaps");
    lws_buffer c2 = test_output(ctx, 256), c3 = test_output(ctx, 256);
    swiglu_job base_bwd = {{c, c1, a, b, c2, c3}, 4, 4, 4}, sb = base_bwd;
    sb.b[1] = lws_buffer_slice(c2, 16, 128);
    test_expect_refused(ctx, "dup overlapping gate", record_swiglu_bwd, &sb, "dup overlaps gate");
    sb = base_bwd;
    sb.b[0] = lws_buffer_slice(c1, 0, 64);
    test_expect_refused(ctx, "dgate overlapping dup", record_swiglu_bwd, &sb, "dgate overlaps dup");
    sb = base_bwd;
    sb.b[5] = test_output_as(ctx, 64, LWS_BF16);
    test_expect_refused(ctx, "up of another type", record_swiglu_bwd, &sb, "up is bf16");
    sb = base_bwd; /* 16-bit operands, an fp32 dgate */
    for (int i = 1; i < 6; i++) sb.b[i] = test_output_as(ctx, 256, LWS_BF16);
    test_expect_refused(ctx, "dgate fp32 with bf16 operands", record_swiglu_bwd, &sb,
                        "dgate is f32");
    sb = base_bwd;
    sb.f = 80; /* dgate needs 4 x 80 floats, its buffer holds 256 */
    test_expect_refused(ctx, "F past the buffers", record_swiglu_bwd, &sb, "smaller");
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    lws_tuning t = lws_tuning_get(ctx);
    printf("tiles %ux%ux%u, workgroup %ux%u\n", t.mm_tile_m, t.mm_tile_n, t.mm_tile_k, t.mm_wg_x,
           t.mm_wg_y);
    test_rng rng;
    test_rng_seed(&rng, 11);
    /* Parts that end inside a tile: element-wise sizes, four-wide sizes, and
     * four-wide past a tile in every dimension (the concatenated one is the
     * parts' sum; the other two as given). */
    const cat_case shapes[] = {
        {0, 3, {13, 7, 22}, 37, 29, 31, 0, 0, 0},
        {0, 3, {20, 8, 36}, 12, 28, 20, 0, 0, 0},
        {0,
         3,
         {t.mm_tile_n / 2 + 4, t.mm_tile_n, 12},
         t.mm_tile_m + 4,
         t.mm_tile_n + 8,
         2 * t.mm_tile_k + 4,
         0,
         0,
         0},
        {0, 2, {9, 30}, 21, 17, 11, 0, 0, 0},
    };
    const lws_dtype types[][2] = {
        {LWS_BF16, LWS_BF16}, {LWS_BF16, LWS_F32}, {LWS_F16, LWS_F16}, {LWS_F16, LWS_F32}};
    for (int l = LWS_MM_NT; l <= LWS_MM_TN; l++) {
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            for (int acc = 0; acc < 2; acc++) {
                cat_case s = shapes[i];
                s.layout = (lws_mm_layout)l, s.accumulate = acc, s.t = s.ct = LWS_F32;
                run_cat(ctx, &rng, s);
            }
        /* 16-bit operands: the element-wise and the four-wide path. */
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            for (int v = 0; v < 2; v++) {
                cat_case s = shapes[v];
                s.layout = (lws_mm_layout)l, s.t = types[i][0], s.ct = types[i][1];
                s.accumulate = (int)(i + v) % 2;
                run_cat(ctx, &rng, s);
            }
    }
    run_swiglu(ctx, &rng, 37, 29, 31, LWS_F32);
    run_swiglu(ctx, &rng, 12, 44, 20, LWS_F32);
    run_swiglu(ctx, &rng, t.mm_tile_m + 4, t.mm_tile_n + 12, 2 * t.mm_tile_k + 4, LWS_F32);
    run_swiglu(ctx, &rng, 1, 1, 1, LWS_F32);
    for (int i = 0; i < 2; i++) {
        lws_dtype ty = i ? LWS_F16 : LWS_BF16;
        run_swiglu(ctx, &rng, 37, 29, 31, ty);
        run_swiglu(ctx, &rng, 12, 44, 20, ty);
    }
    /* SwiGLU's backward: element-wise and four-wide, past a tile in every
     * dimension, the smallest; 16-bit storage on both paths. */
    const uint32_t bwd_shapes[][3] = {{37, 29, 31},
                                      {12, 44, 20},
                                      {t.mm_tile_m + 4, t.mm_tile_n + 12, 2 * t.mm_tile_k + 4},
                                      {1, 1, 1}};
    for (size_t i = 0; i < sizeof bwd_shapes / sizeof *bwd_shapes; i++)
        free(run_swiglu_bwd(ctx, &rng, bwd_shapes[i][0], bwd_shapes[i][1], bwd_shapes[i][2],
                            LWS_F32));
    for (int i = 0; i < 2; i++)
        for (size_t v = 0; v < 2; v++)
            free(run_swiglu_bwd(ctx, &rng, bwd_shapes[v][0], bwd_shapes[v][1], bwd_shapes[v][2],
                                i ? LWS_F16 : LWS_BF16));
    const lws_dtype all_types[] = {LWS_F32, LWS_BF16, LWS_F16};
    for (int i = 0; i < 3; i++) {
        check_swiglu_bwd_as_separate(ctx, 44, 12, 20, all_types[i]);
        check_swiglu_bwd_as_separate(ctx, 45, 13, 21, all_types[i]);
    }
    check_parts_one_by_one(ctx, &rng);
    check_refusals(ctx);
    return test_finish(ctx);
}
