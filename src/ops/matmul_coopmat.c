/* The matrix-unit matmul (shaders/matmul_coopmat.comp), the choice between
 * it and the portable one (ops/matmul.c), and the check at first use that
 * the two agree on this device.
 *
 * Tolerance of the check. The matrix units multiply fp16 roundings of the
 * operands (relative error at most u = 2^-11 each; the power-of-two tile
 * scaling keeps every element in fp16's normal range) and sum in fp32. For a
 * K-term dot product of N(0,1) operands each product errs by a*b*(da + db)
 * with da, db uniform in [-u, u], so the sum errs by a normal variable of
 * standard deviation u * sqrt(2K/3) ~ 0.82 u sqrt(K), against outputs of
 * standard deviation sqrt(K); fp32 summation adds ~2^-24 K, negligible. The
 * check allows max |fast - portable| <= 8 u sqrt(K) (about 10 standard
 * deviations; the largest of a million outputs is ~5) and a relative L2
 * error <= 2u (~2.4x the expected 0.82u). bf16 roundings (u = 2^-8) fail
 * both, as does any lost or repeated tile. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lws/data.h"
#include "ops/common.h"

static const char *const cm_layouts[] = {"NT", "NN", "TN"};
static const char *const nv_shaders[] = {"matmul_cm_nv_nt", "matmul_cm_nv_nn", "matmul_cm_nv_tn"};
static const char *const khr_shaders[] = {"matmul_cm_khr_nt", "matmul_cm_khr_nn",
                                          "matmul_cm_khr_tn"};

/* ---- the choice ------------------------------------------------------------ */

int lws_matmul_mode_parse(const char *text, lws_matmul_mode *out) {
    *out = LWS_MATMUL_AUTO;
    if (!text || !*text || strcmp(text, "auto") == 0) return 1;
    if (strcmp(text, "portable") == 0)
        *out = LWS_MATMUL_PORTABLE;
    else if (strcmp(text, "coopmat") == 0)
        *out = LWS_MATMUL_COOPMAT;
    else
        return 0;
    return 1;
}

static lws_matmul_fn fast_hook;
/* The verdict while a check runs (portable, like a failed one). */
#define CHECKING -2

void lws_matmul_fast_hook(lws_matmul_fn fast) {
    fast_hook = fast;
}

/* Shared memory of a tile plan: two fp16 buffers of each operand tile with
 * rows padded by 8 elements, and fp32 staging (per-subgroup maxima during
 * the k loop, one accumulator per subgroup after it). */
static uint32_t cm_shared_bytes(const lws_coopmat_tiles *t, lws_coopmat_shape s) {
    uint32_t a = t->tile_m * (t->tile_k + 8) > t->tile_k * (t->tile_m + 8)
                     ? t->tile_m * (t->tile_k + 8)
                     : t->tile_k * (t->tile_m + 8);
    uint32_t b = t->tile_n * (t->tile_k + 8) > t->tile_k * (t->tile_n + 8)
                     ? t->tile_n * (t->tile_k + 8)
                     : t->tile_k * (t->tile_n + 8);
    uint32_t out = t->warps_m * t->warps_n * s.m * s.n;
    return 2 * 2 * (a + b) + 4 * (out > 128 ? out : 128);
}

lws_status lws_coopmat_tiles_for(const lws_device_caps *caps, lws_coopmat_shape s, uint32_t m,
                                 uint32_t n, lws_coopmat_tiles *out) {
    /* 128x128 tiles, 32 deep, 2x4 subgroups each holding a 64x32 block (8
     * accumulators of 16x16): the shape of the usual tensor-core kernels,
     * 256 invocations at subgroup size 32, ~40 KiB of shared memory. The
     * workgroup is sized for the largest subgroup the device may pick, so
     * there are at least 8 subgroups (more, when the driver picks smaller
     * ones, only help with the loads). Small outputs get narrower tiles. */
    lws_coopmat_tiles t = {128, 128, 32, 2, 4, caps->max_subgroup_size, 0, 0};
    if (!t.subgroup) t.subgroup = caps->subgroup_size;
    while (t.tile_m > 32 && m <= t.tile_m / 2) t.tile_m /= 2;
    while (t.tile_n > 32 && n <= t.tile_n / 2) t.tile_n /= 2;
    if (t.tile_k % s.k) t.tile_k = s.k * ((t.tile_k + s.k - 1) / s.k);
    while (t.tile_m % (t.warps_m * s.m)) t.warps_m /= 2;
    while (t.tile_n % (t.warps_n * s.n)) t.warps_n /= 2;
    while (cm_shared_bytes(&t, s) > caps->max_shared_memory && (t.tile_m > 32 || t.tile_n > 32)) {
        if (t.tile_m >= t.tile_n)
            t.tile_m /= 2;
        else
            t.tile_n /= 2;
        while (t.warps_m > 1 && t.tile_m % (t.warps_m * s.m)) t.warps_m /= 2;
        while (t.warps_n > 1 && t.tile_n % (t.warps_n * s.n)) t.warps_n /= 2;
    }
    /* Fewer subgroups (larger blocks each) where the device's workgroups are
     * small for its subgroup size. */
    while (t.warps_m * t.warps_n * t.subgroup > caps->max_workgroup_invocations &&
           t.warps_m * t.warps_n > 1) {
        if (t.warps_n >= t.warps_m)
            t.warps_n /= 2;
        else
            t.warps_m /= 2;
    }
    t.invocations = t.warps_m * t.warps_n * t.subgroup;
    t.shared_bytes = cm_shared_bytes(&t, s);
    *out = t;
    if (t.warps_m < 1 || t.warps_n < 1 || t.tile_m % (t.warps_m * s.m) ||
        t.tile_n % (t.warps_n * s.n) || t.shared_bytes > caps->max_shared_memory ||
        t.invocations > caps->max_workgroup_invocations ||
        /* the shader keeps the maxima of up to 64 subgroups */
        t.invocations / (caps->min_subgroup_size ? caps->min_subgroup_size : 1) > 64)
        return lws_fail(LWS_ERR_INVALID,
                        "matmul: no matrix-unit tile fits device %s (shape %ux%ux%u, %u bytes "
                        "of shared memory, %u invocations)",
                        caps->name, s.m, s.n, s.k, caps->max_shared_memory,
                        caps->max_workgroup_invocations);
    return LWS_OK;
}

/* The operand types the shader reads: fp32, fp16, bf16 (0, 1, 2). */
static int type_code(lws_dtype t) {
    return t == LWS_F32 ? 0 : t == LWS_F16 ? 1 : t == LWS_BF16 ? 2 : -1;
}

static int fits(lws_buffer x, uint64_t elems, uint64_t stride, uint32_t batch) {
    return x.size >= lws_dtype_bytes(x.dtype) * ((uint64_t)(batch - 1) * stride + elems);
}

static int overlap(lws_buffer x, lws_buffer y) {
    return x.buffer == y.buffer && x.offset < y.offset + y.size && y.offset < x.offset + x.size;
}

/* Whether the matrix-unit kernel takes this problem as it is; anything else
 * (bad arguments included, which the portable launcher reports) goes to
 * the portable matmul. */
static int cm_takes(const lws_matmul_args *p) {
    const uint64_t limit = (1ull << 31) - 1;
    if ((unsigned)p->layout > LWS_MM_TN || !p->m || !p->n || !p->k || !p->batch) return 0;
    if (type_code(p->a.dtype) < 0 || type_code(p->b.dtype) < 0 || type_code(p->c.dtype) < 0)
        return 0;
    uint64_t c = (uint64_t)p->m * p->n, a = (uint64_t)p->m * p->k, b = (uint64_t)p->n * p->k;
    if (c > limit || a > limit || b > limit) return 0;
    if (p->batch > 1 && p->stride_c < c) return 0;
    if (!fits(p->c, c, p->stride_c, p->batch) || !fits(p->a, a, p->stride_a, p->batch) ||
        !fits(p->b, b, p->stride_b, p->batch))
        return 0;
    return !overlap(p->c, p->a) && !overlap(p->c, p->b);
}

/* Records the problem on the context's matrix units. */
static lws_status cm_record(lws_cmd *cmd, const lws_matmul_args *p) {
    lws_context *ctx = lws_cmd_context(cmd);
    lws_coopmat_shape s;
    lws_coopmat_api api = lws_context_coopmat(ctx, &s);
    lws_coopmat_tiles t;
    lws_status st = lws_coopmat_tiles_for(lws_context_caps(ctx), s, p->m, p->n, &t);
    if (st != LWS_OK) return lws_cmd_fail(cmd, st);
    uint32_t ab = lws_dtype_bytes(p->a.dtype), bb = lws_dtype_bytes(p->b.dtype),
             cb = lws_dtype_bytes(p->c.dtype);
    /* Four-wide loads: whole groups of 4 elements, aligned to 4 elements. */
    uint32_t vec4 = p->m % 4 == 0 && p->n % 4 == 0 && p->k % 4 == 0 && p->a.addr % (4 * ab) == 0 &&
                    p->b.addr % (4 * bb) == 0 &&
                    (p->batch == 1 || (p->stride_a % 4 == 0 && p->stride_b % 4 == 0));
    uint32_t types = (uint32_t)type_code(p->a.dtype) | (uint32_t)type_code(p->b.dtype) << 4 |
                     (uint32_t)type_code(p->c.dtype) << 8;
    uint32_t spec[11] = {t.invocations, s.m,       s.n,       s.k,   t.tile_m, t.tile_n,
                         t.tile_k,      t.warps_m, t.warps_n, types, vec4};
    lws_pipeline *pipe;
    const char *name = (api == LWS_COOPMAT_KHR ? khr_shaders : nv_shaders)[p->layout];
    LWS_OP_PIPELINE(cmd, name, spec, 11, &pipe);
    lws_matmul_push push = {
        p->c.addr, p->a.addr, p->b.addr, cb * p->stride_c,       ab * p->stride_a, bb * p->stride_b,
        p->m,      p->n,      p->k,      p->accumulate ? 1u : 0u};
    uint64_t c = (uint64_t)p->m * p->n, a = (uint64_t)p->m * p->k, b = (uint64_t)p->n * p->k;
    lws_cmd_reads_strided(cmd, lws_buffer_slice(p->a, 0, ab * a), ab * p->stride_a, p->batch);
    lws_cmd_reads_strided(cmd, lws_buffer_slice(p->b, 0, bb * b), bb * p->stride_b, p->batch);
    if (p->accumulate)
        lws_cmd_reads_strided(cmd, lws_buffer_slice(p->c, 0, cb * c), cb * p->stride_c, p->batch);
    lws_cmd_writes_strided(cmd, lws_buffer_slice(p->c, 0, cb * c), cb * p->stride_c, p->batch);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(p->n, t.tile_n),
                     lws_div_up(p->m, t.tile_m), p->batch);
    return LWS_OK;
}

static lws_status cm_record_fn(lws_cmd *cmd, const lws_matmul_args *p) {
    return cm_record(cmd, p);
}

/* The fast path of this context: the test hook, else the matrix units. */
static lws_matmul_fn context_fast(lws_context *ctx) {
    if (fast_hook) return fast_hook;
    return lws_context_coopmat(ctx, NULL) != LWS_COOPMAT_NONE ? cm_record_fn : NULL;
}

/* The check at first use: the shape of the first problem, cut to at most
 * ~2 tiles beyond the first (keeping its remainders modulo the tiles and 4,
 * so the same edge and four-wide paths run), in all three layouts. */
static lws_status check_at_first_use(lws_context *ctx, lws_matmul_fn fast,
                                     const lws_matmul_args *p) {
    uint32_t m = p->m < 256 + p->m % 128 ? p->m : 256 + p->m % 128;
    uint32_t n = p->n < 256 + p->n % 128 ? p->n : 256 + p->n % 128;
    uint32_t k = p->k < 512 + p->k % 32 ? p->k : 512 + p->k % 32;
    lws_mm_shape shapes[3] = {{LWS_MM_NT, m, n, k}, {LWS_MM_NN, m, n, k}, {LWS_MM_TN, m, n, k}};
    lws_matmul_check checks[3];
    int ok = 0;
    LWS_TRY(lws_matmul_verify_with(ctx, fast, shapes, 3, checks, &ok));
    lws_context_set_matmul_verdict(ctx, ok ? 1 : -1);
    if (!ok) {
        char what[256];
        lws_matmul_path(ctx, what, sizeof what);
        for (int i = 0; i < 3; i++)
            if (!checks[i].ok)
                fprintf(stderr,
                        "lws: WARNING: the matrix-unit matmul disagrees with the portable one on "
                        "device %s: %s M=%u N=%u K=%u max |diff| %.3g (allowed %.3g), relative L2 "
                        "%.3g (allowed %.3g); using the portable fp32 matmul\n",
                        lws_context_caps(ctx)->name, cm_layouts[checks[i].shape.layout],
                        checks[i].shape.m, checks[i].shape.n, checks[i].shape.k, checks[i].max_abs,
                        checks[i].tol_abs, checks[i].rel_l2, checks[i].tol_rel);
        for (int i = 0; i < 3; i++)
            if (checks[i].error[0])
                fprintf(stderr, "lws: the matrix-unit matmul failed: %s\n", checks[i].error);
    }
    return LWS_OK;
}

lws_status lws_fast_mode(lws_cmd *cmd, const char *var, const char *kind, const char *what,
                         int verdict, int has_fast, lws_matmul_mode *mode, int *go) {
    lws_context *ctx = lws_cmd_context(cmd);
    *go = 0;
    LWS_OP_REQUIRE(cmd, lws_matmul_mode_parse(getenv(var), mode),
                   "%s = '%s' is not %s: give portable, coopmat or auto", var, getenv(var), kind);
    if (*mode == LWS_MATMUL_PORTABLE || verdict < 0) return LWS_OK;
    if (!has_fast) {
        char why[256];
        lws_coopmat_choose(lws_context_caps(ctx), lws_coopmat_built(LWS_COOPMAT_NV),
                           lws_coopmat_built(LWS_COOPMAT_KHR), NULL, why, sizeof why);
        LWS_OP_REQUIRE(cmd, *mode != LWS_MATMUL_COOPMAT, "%s=coopmat, but device %s has no %s: %s",
                       var, lws_context_caps(ctx)->name, what, why);
        return LWS_OK;
    }
    *go = 1;
    return LWS_OK;
}

lws_status lws_matmul_fast(lws_cmd *cmd, const lws_matmul_args *p, int *handled) {
    *handled = 0;
    lws_context *ctx = lws_cmd_context(cmd);
    lws_matmul_mode mode;
    int go = 0;
    lws_matmul_fn fast = context_fast(ctx);
    LWS_TRY(lws_fast_mode(cmd, "LWS_MATMUL", "a matmul path", "matrix-unit path",
                          lws_context_matmul_verdict(ctx), fast != NULL, &mode, &go));
    if (!go) return LWS_OK;
    if (!cm_takes(p)) return LWS_OK;
    if (mode == LWS_MATMUL_AUTO && lws_context_matmul_verdict(ctx) == 0) {
        lws_status s = check_at_first_use(ctx, fast, p);
        if (s != LWS_OK) return lws_cmd_fail(cmd, s);
        if (lws_context_matmul_verdict(ctx) < 0) return LWS_OK;
    }
    *handled = 1;
    return fast(cmd, p);
}

int lws_matmul_fast_possible(lws_context *ctx) {
    lws_matmul_mode mode;
    if (!lws_matmul_mode_parse(getenv("LWS_MATMUL"), &mode) || mode == LWS_MATMUL_PORTABLE)
        return 0;
    return lws_context_matmul_verdict(ctx) >= 0 && context_fast(ctx) != NULL;
}

int lws_matmul_fast_takes(lws_context *ctx, const lws_matmul_args *p) {
    lws_matmul_mode mode;
    if (!lws_matmul_mode_parse(getenv("LWS_MATMUL"), &mode)) return 1; /* it reports the error */
    if (mode == LWS_MATMUL_PORTABLE || lws_context_matmul_verdict(ctx) < 0) return 0;
    if (!context_fast(ctx)) return mode == LWS_MATMUL_COOPMAT; /* that mode's error */
    return cm_takes(p);
}

void lws_matmul_path(lws_context *ctx, char *out, size_t size) {
    lws_matmul_mode mode;
    lws_matmul_mode_parse(getenv("LWS_MATMUL"), &mode);
    char why[200];
    lws_coopmat_choose(lws_context_caps(ctx), lws_coopmat_built(LWS_COOPMAT_NV),
                       lws_coopmat_built(LWS_COOPMAT_KHR), NULL, why, sizeof why);
    int verdict = lws_context_matmul_verdict(ctx);
    if (mode == LWS_MATMUL_PORTABLE)
        snprintf(out, size, "portable fp32 (LWS_MATMUL=portable)");
    else if (!context_fast(ctx))
        snprintf(out, size, "%s", why);
    else if (verdict < 0)
        snprintf(out, size, "portable fp32 (the matrix-unit matmul failed its check at first use)");
    else
        snprintf(out, size, "%s, %s", fast_hook ? "a test's fast matmul" : why,
                 verdict > 0 ? "checked against the portable one at first use"
                 : mode == LWS_MATMUL_COOPMAT
                     ? "forced by LWS_MATMUL=coopmat, unchecked"
                     : "to be checked against the portable one at first use");
}

/* ---- the check ------------------------------------------------------------- */

float *lws_random_normals(uint64_t seed, size_t n) {
    float *x = malloc(n * sizeof *x);
    if (!x) return NULL;
    uint64_t state = seed;
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((lws_splitmix64(&state) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (lws_splitmix64(&state) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
    return x;
}

void lws_matmul_compare(const float *fast, const float *portable, uint64_t count, uint32_t k,
                        lws_matmul_check *out) {
    const double u = 1.0 / 2048.0; /* fp16's unit roundoff */
    double max_abs = 0, diff2 = 0, ref2 = 0;
    int finite = 1;
    out->error[0] = 0;
    for (uint64_t i = 0; i < count; i++) {
        double d = (double)fast[i] - portable[i];
        if (!isfinite(fast[i])) finite = 0;
        if (fabs(d) > max_abs) max_abs = fabs(d);
        diff2 += d * d;
        ref2 += (double)portable[i] * portable[i];
    }
    out->max_abs = finite ? max_abs : INFINITY;
    out->rel_l2 = finite ? sqrt(diff2 / (ref2 > 0 ? ref2 : 1)) : INFINITY;
    out->tol_abs = 8 * u * sqrt((double)k);
    out->tol_rel = 2 * u;
    out->ok = out->max_abs <= out->tol_abs && out->rel_l2 <= out->tol_rel;
}

static lws_status run_one(lws_context *ctx, lws_matmul_fn fast, const lws_matmul_args *p) {
    lws_cmd *cmd;
    LWS_TRY(lws_cmd_begin(ctx, 0, &cmd));
    lws_cmd_label(cmd, fast ? "matmul check: fast" : "matmul check: portable");
    if (fast)
        fast(cmd, p);
    else
        lws_matmul_portable(cmd, p);
    lws_status s = lws_cmd_end(cmd);
    if (s == LWS_OK) s = lws_submit(ctx, &cmd, 1);
    lws_cmd_destroy(cmd);
    return s;
}

/* One shape: random operands, both paths, the comparison. */
static lws_status verify_shape(lws_context *ctx, lws_matmul_fn fast, lws_mm_shape s, uint64_t seed,
                               lws_matmul_check *out) {
    uint64_t c_n = (uint64_t)s.m * s.n, a_n = (uint64_t)s.m * s.k, b_n = (uint64_t)s.n * s.k;
    float *a = lws_random_normals(seed, a_n), *b = lws_random_normals(seed + 1, b_n);
    float *got = malloc(c_n * sizeof *got), *want = malloc(c_n * sizeof *want);
    lws_status st = a && b && got && want ? LWS_OK
                                          : lws_fail(LWS_ERR_OUT_OF_MEMORY,
                                                     "out of host memory for the matmul check");
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    memset(out, 0, sizeof *out);
    lws_matmul_args p = {s.layout, {0}, {0}, {0}, s.m, s.n, s.k, 0, 1, 0, 0, 0};
    lws_buffer c_portable = {0};
    if (st == LWS_OK) st = lws_alloc(ctx, 4 * a_n, &p.a);
    if (st == LWS_OK) st = lws_alloc(ctx, 4 * b_n, &p.b);
    if (st == LWS_OK) st = lws_alloc(ctx, 4 * c_n, &p.c);
    if (st == LWS_OK) st = lws_alloc(ctx, 4 * c_n, &c_portable);
    if (st == LWS_OK) st = lws_upload(ctx, p.a, a, 4 * a_n);
    if (st == LWS_OK) st = lws_upload(ctx, p.b, b, 4 * b_n);
    /* A fast path that fails to record or run (a driver that refuses its
     * pipeline) fails the check; it is not an error of the caller's. */
    lws_status fast_status = st == LWS_OK ? run_one(ctx, fast, &p) : LWS_OK;
    if (fast_status != LWS_OK) {
        snprintf(out->error, sizeof out->error, "%s", lws_error_message());
        lws_error_clear();
    }
    if (st == LWS_OK && fast_status == LWS_OK) st = lws_download(ctx, p.c, got, 4 * c_n);
    lws_matmul_args q = p;
    q.c = c_portable;
    if (st == LWS_OK) st = run_one(ctx, NULL, &q);
    if (st == LWS_OK) st = lws_download(ctx, c_portable, want, 4 * c_n);
    if (st == LWS_OK && fast_status == LWS_OK) lws_matmul_compare(got, want, c_n, s.k, out);
    if (fast_status != LWS_OK) out->ok = 0, out->max_abs = out->rel_l2 = INFINITY;
    out->shape = s;
    lws_arena_reset(ctx, mark);
    free(a), free(b), free(got), free(want);
    return st;
}

lws_status lws_matmul_verify_with(lws_context *ctx, lws_matmul_fn fast, const lws_mm_shape *shapes,
                                  uint32_t count, lws_matmul_check *out, int *all_ok) {
    *all_ok = 1;
    /* Matmuls recorded meanwhile (by a fast path built on lws_op_matmul)
     * stay portable. */
    int verdict = lws_context_matmul_verdict(ctx);
    lws_context_set_matmul_verdict(ctx, CHECKING);
    lws_status s = LWS_OK;
    for (uint32_t i = 0; i < count && s == LWS_OK; i++) {
        s = verify_shape(ctx, fast, shapes[i], 0x6c7773636d6d0000ull + 2 * i, &out[i]);
        *all_ok &= s == LWS_OK && out[i].ok;
    }
    lws_context_set_matmul_verdict(ctx, verdict);
    return s;
}

lws_status lws_matmul_verify(lws_context *ctx, const lws_mm_shape *shapes, uint32_t count,
                             lws_matmul_check *out, int *all_ok) {
    lws_matmul_fn fast = context_fast(ctx);
    if (!fast) {
        char why[256];
        lws_coopmat_choose(lws_context_caps(ctx), lws_coopmat_built(LWS_COOPMAT_NV),
                           lws_coopmat_built(LWS_COOPMAT_KHR), NULL, why, sizeof why);
        return lws_fail(LWS_ERR_INVALID, "device %s has no matrix-unit matmul to check: %s",
                        lws_context_caps(ctx)->name, why);
    }
    LWS_TRY(lws_matmul_verify_with(ctx, fast, shapes, count, out, all_ok));
    lws_context_set_matmul_verdict(ctx, *all_ok ? 1 : -1);
    return LWS_OK;
}
