/* The matrix-unit attention forward (shaders/attention_fwd_coopmat.comp), the
 * choice between it and the tuning's form (ops/attention.c: the row or GPU
 * form), and the check at first use that the two agree on this device.
 *
 * Tolerance of the check, for N(0,1) q, k, v and a score scale sigma =
 * scale * sqrt(head_dim) (1 for the usual 1/sqrt(head_dim); scores then
 * have standard deviation sigma). The kernel rounds q, k, v and P to fp16:
 * after the power-of-two block scaling every element is in fp16's normal
 * range, so each carries a relative error of at most u = 2^-11. Summed in
 * fp32 (error ~2^-24 per term, negligible), that gives
 *   - scores: ds = scale sum_d q_d k_d (eq_d + ek_d), a normal variable of
 *     standard deviation u sqrt(2/3) sigma ~ 0.82 u sigma; over the check's
 *     ~10^6 scores the largest is ~5 of those, ~4 u sigma. ds moves lse by
 *     at most max |ds|, and o = sum_j p_j v_j by sum_j p_j (ds_j - sum_i
 *     p_i ds_i) v_j, at most 2 max |ds| max |v| ~ 8 u sigma max |v|;
 *   - v: o moves by sum_j p_j v_j ev_j, at most u max |v|;
 *   - P: o is normalised by the sum of the rounded probabilities, so o
 *     moves by sum_j p_j ep_j (v_j - o), at most 2 u max |v|, and lse by u.
 * Allowed: max |o - o_other| <= (4 + 8 sigma) u max |v| (~5 u max |v|
 * expected at worst) and max |lse - lse_other| <= (1 + 8 sigma) u, each
 * plus 3e-5 for the fp32 error of the other form (tests/test_attention.c
 * measures < 4e-6), plus for a 16-bit o two units of its rounding times
 * max |o|; and o's relative L2 difference <= 3u (plus a 16-bit o's unit):
 * the errors above average out (the emulated kernel measures 0.4 u max |v|
 * at most and 0.7u relative L2 against fp64, tests/test_attention_select.c).
 * A lost or repeated block, a wrong mask or scale fail the first bounds;
 * bf16-like rounding (2^-8, ~5u relative L2) the last where o is fp32 or
 * fp16 — with bf16 storage the bound (3u + 2^-8) is looser than that, so
 * there only the max bounds guard against it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/common.h"

/* ---- the choice ------------------------------------------------------------ */

/* The same words as LWS_MATMUL's, in the same order. */
int lws_attention_mode_parse(const char *text, lws_attention_mode *out) {
    lws_matmul_mode m;
    int ok = lws_matmul_mode_parse(text, &m);
    *out = m == LWS_MATMUL_PORTABLE  ? LWS_ATTENTION_PORTABLE
           : m == LWS_MATMUL_COOPMAT ? LWS_ATTENTION_COOPMAT
                                     : LWS_ATTENTION_AUTO;
    return ok;
}

static lws_attention_fwd_fn fast_hook;
/* The verdict while a check runs (the tuning's form, like a failed one), so
 * a stand-in built on lws_op_attention_fwd records the tuning's form. */
#define CHECKING -2

void lws_attention_fast_hook(lws_attention_fwd_fn fast) {
    fast_hook = fast;
}

/* Shared memory of the kernel (its declarations): k and v blocks in fp16
 * and rows padded by 8 elements, scores and the output block in fp32 padded
 * by 4, probabilities in fp16 padded by 8, three floats per row and two per
 * invocation (the subgroups' maxima). */
static uint32_t cm_shared_bytes(uint32_t block, uint32_t head_dim, uint32_t invocations) {
    return 2 * 2 * block * (head_dim + 8) + 4 * block * (block + 4) + 2 * block * (block + 8) +
           4 * block * (head_dim + 4) + 3 * 4 * block + 2 * 4 * invocations;
}

/* The plan, with `emulated` the emulation's shared memory added: q's block
 * in fp16 and one 16 x 16 fp32 accumulator per subgroup. */
static int plan_for(const lws_device_caps *caps, lws_coopmat_shape s, uint32_t head_dim,
                    int emulated, lws_attention_cm_plan *out) {
    /* Blocks of 64 rows where they fit (64 KiB of shared memory at head_dim
     * 64), else 32 (41 KiB at head_dim 128: NVIDIA's 48 KiB), else 16; a
     * multiple of every side of the shape. The workgroup is sized for the
     * device's largest subgroup, as the matrix-unit matmul's. */
    uint32_t subgroup = caps->max_subgroup_size ? caps->max_subgroup_size : caps->subgroup_size;
    if (!s.m || !s.n || !s.k || !subgroup || !head_dim || head_dim % s.k || head_dim % s.n)
        return 0;
    for (uint32_t block = 64; block >= 16; block /= 2) {
        if (block % s.m || block % s.n || block % s.k) continue;
        uint32_t invocations = block / s.m * subgroup;
        uint32_t bytes = cm_shared_bytes(block, head_dim, invocations);
        if (emulated) bytes += 2 * block * (head_dim + 8) + 4 * (block / s.m) * 256;
        if (bytes > caps->max_shared_memory || invocations > caps->max_workgroup_invocations)
            continue;
        *out = (lws_attention_cm_plan){block, invocations, bytes};
        return 1;
    }
    return 0;
}

int lws_attention_cm_plan_for(const lws_device_caps *caps, lws_coopmat_shape s, uint32_t head_dim,
                              lws_attention_cm_plan *out) {
    return plan_for(caps, s, head_dim, 0, out);
}

/* Records the forward with the kernel variant `base` (its element type's
 * suffix added; attention_fwd_cm_emu, the emulation, takes more shared
 * memory) at matrix shape s. */
static lws_status cm_record_with(lws_cmd *cmd, const lws_attention_fwd_args *p, const char *base,
                                 lws_coopmat_shape s) {
    const lws_device_caps *caps = lws_context_caps(lws_cmd_context(cmd));
    lws_attention_cm_plan plan;
    int emulated = strcmp(base, "attention_fwd_cm_emu") == 0;
    LWS_OP_REQUIRE(cmd, plan_for(caps, s, p->head_dim, emulated, &plan),
                   "attention forward: the matrix-unit form does not take head_dim %u on device "
                   "%s (matrix shape %ux%ux%u, %u bytes of shared memory)",
                   p->head_dim, caps->name, s.m, s.n, s.k, caps->max_shared_memory);
    uint32_t spec[7] = {plan.invocations, plan.block, plan.block, p->head_dim, s.m, s.n, s.k};
    char shader[48];
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, base, p->o.dtype), spec, 7, &pipe);
    lws_attention_push push = lws_attention_fwd_push(p);
    lws_attention_fwd_declare(cmd, p);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(p->seq, plan.block), p->q_heads,
                     p->batch);
    return LWS_OK;
}

/* Records the forward on the context's matrix units. */
static lws_status cm_record(lws_cmd *cmd, const lws_attention_fwd_args *p) {
    lws_coopmat_shape s;
    lws_coopmat_api api = lws_context_coopmat(lws_cmd_context(cmd), &s);
    LWS_OP_REQUIRE(cmd, api != LWS_COOPMAT_NONE, "attention forward: device %s has no matrix units",
                   lws_context_caps(lws_cmd_context(cmd))->name);
    return cm_record_with(
        cmd, p, api == LWS_COOPMAT_KHR ? "attention_fwd_cm_khr" : "attention_fwd_cm_nv", s);
}

lws_status lws_attention_fwd_emulated(lws_cmd *cmd, const lws_attention_fwd_args *p) {
    return cm_record_with(cmd, p, "attention_fwd_cm_emu", (lws_coopmat_shape){16, 16, 16});
}

/* The matrix-unit form of this context: the test hook, else the kernel. */
static lws_attention_fwd_fn context_fast(lws_context *ctx) {
    if (fast_hook) return fast_hook;
    return lws_context_coopmat(ctx, NULL) != LWS_COOPMAT_NONE ? cm_record : NULL;
}

/* Whether the matrix-unit form takes head_dim (a stand-in takes all). */
static int cm_takes(lws_context *ctx, uint32_t head_dim) {
    if (fast_hook) return 1;
    lws_coopmat_shape s;
    lws_attention_cm_plan plan;
    return lws_context_coopmat(ctx, &s) != LWS_COOPMAT_NONE &&
           lws_attention_cm_plan_for(lws_context_caps(ctx), s, head_dim, &plan);
}

static const char *tuned_form(lws_context *ctx) {
    return lws_tuning_get(ctx).attn_lanes_per_row > 1 ? "GPU form" : "row form";
}

static lws_status check_at_first_use(lws_context *ctx, lws_attention_fwd_fn fast,
                                     const lws_attention_fwd_args *p) {
    lws_attention_check c;
    LWS_TRY(lws_attention_verify_with(ctx, fast, p, &c));
    lws_context_set_attention_verdict(ctx, c.ok ? 1 : -1);
    if (!c.ok) {
        fprintf(stderr,
                "lws: WARNING: the matrix-unit attention forward disagrees with the %s on device "
                "%s: head_dim %u, %u query and %u KV heads, %u tokens: o max |diff| %.3g "
                "(allowed %.3g), relative L2 %.3g (allowed %.3g), lse max |diff| %.3g "
                "(allowed %.3g); using the %s\n",
                tuned_form(ctx), lws_context_caps(ctx)->name, c.head_dim, c.q_heads, c.kv_heads,
                c.seq, c.o_max_abs, c.o_tol, c.o_rel_l2, c.o_tol_rel, c.lse_max_abs, c.lse_tol,
                tuned_form(ctx));
        if (c.error[0])
            fprintf(stderr, "lws: the matrix-unit attention forward failed: %s\n", c.error);
    }
    return LWS_OK;
}

lws_status lws_attention_fast(lws_cmd *cmd, const lws_attention_fwd_args *p, int *handled) {
    *handled = 0;
    lws_context *ctx = lws_cmd_context(cmd);
    lws_matmul_mode mode;
    int go = 0;
    lws_attention_fwd_fn fast = context_fast(ctx);
    LWS_TRY(lws_fast_mode(cmd, "LWS_ATTENTION", "an attention form", "matrix-unit attention",
                          lws_context_attention_verdict(ctx), fast != NULL, &mode, &go));
    if (!go) return LWS_OK;
    if (!cm_takes(ctx, p->head_dim)) return LWS_OK;
    if (mode == LWS_MATMUL_AUTO && lws_context_attention_verdict(ctx) == 0) {
        lws_status s = check_at_first_use(ctx, fast, p);
        if (s != LWS_OK) return lws_cmd_fail(cmd, s);
        if (lws_context_attention_verdict(ctx) < 0) return LWS_OK;
    }
    *handled = 1;
    return fast(cmd, p);
}

void lws_attention_path(lws_context *ctx, uint32_t head_dim, char *out, size_t size) {
    lws_attention_mode mode;
    lws_attention_mode_parse(getenv("LWS_ATTENTION"), &mode);
    char why[200];
    lws_coopmat_shape s;
    lws_coopmat_choose(lws_context_caps(ctx), lws_coopmat_built(LWS_COOPMAT_NV),
                       lws_coopmat_built(LWS_COOPMAT_KHR), &s, why, sizeof why);
    int verdict = lws_context_attention_verdict(ctx);
    const char *form = tuned_form(ctx);
    if (mode == LWS_ATTENTION_PORTABLE)
        snprintf(out, size, "%s (LWS_ATTENTION=portable)", form);
    else if (!context_fast(ctx))
        snprintf(out, size, "%s (%s)", form, why);
    else if (!cm_takes(ctx, head_dim))
        snprintf(out, size, "%s (the matrix-unit form does not take head_dim %u here)", form,
                 head_dim);
    else if (verdict < 0)
        snprintf(out, size, "%s (the matrix-unit form failed its check at first use)", form);
    else
        snprintf(out, size, "%s, %s", fast_hook ? "a test's matrix-unit form" : "matrix-unit form",
                 verdict > 0                     ? "checked against the tuning's form at first use"
                 : mode == LWS_ATTENTION_COOPMAT ? "forced by LWS_ATTENTION=coopmat, unchecked"
                                                 : "to be checked against the tuning's form at "
                                                   "first use");
}

/* ---- the check ------------------------------------------------------------- */

/* The check's device buffers: fp32 inputs, their copies in the element type
 * (the fp32 ones themselves for fp32), and per form o, lse and o in fp32. */
typedef struct check_buffers {
    lws_buffer q32, k32, v32;
    lws_attention_fwd_args run[2]; /* the matrix-unit form's, the tuning's */
    lws_buffer o32[2];
} check_buffers;

static lws_status alloc_as(lws_context *ctx, uint64_t n, lws_dtype t, lws_buffer *out) {
    LWS_TRY(lws_alloc(ctx, n * lws_dtype_bytes(t), out));
    out->dtype = t;
    return LWS_OK;
}

static lws_status check_alloc(lws_context *ctx, const lws_attention_fwd_args *a, check_buffers *b) {
    uint64_t nq = (uint64_t)a->batch * a->seq * a->q_heads * a->head_dim;
    uint64_t nkv = (uint64_t)a->batch * a->seq * a->kv_heads * a->head_dim;
    uint64_t rows = (uint64_t)a->batch * a->seq * a->q_heads;
    lws_dtype t = a->o.dtype;
    LWS_TRY(alloc_as(ctx, nq, LWS_F32, &b->q32));
    LWS_TRY(alloc_as(ctx, nkv, LWS_F32, &b->k32));
    LWS_TRY(alloc_as(ctx, nkv, LWS_F32, &b->v32));
    b->run[0] = *a;
    b->run[0].q = b->q32, b->run[0].k = b->k32, b->run[0].v = b->v32;
    if (t != LWS_F32) {
        LWS_TRY(alloc_as(ctx, nq, t, &b->run[0].q));
        LWS_TRY(alloc_as(ctx, nkv, t, &b->run[0].k));
        LWS_TRY(alloc_as(ctx, nkv, t, &b->run[0].v));
    }
    b->run[1] = b->run[0];
    for (int i = 0; i < 2; i++) {
        LWS_TRY(alloc_as(ctx, nq, t, &b->run[i].o));
        LWS_TRY(alloc_as(ctx, rows, LWS_F32, &b->run[i].lse));
        b->o32[i] = b->run[i].o;
        if (t != LWS_F32) LWS_TRY(alloc_as(ctx, nq, LWS_F32, &b->o32[i]));
    }
    return LWS_OK;
}

/* One form (fast, or the tuning's for NULL): the inputs cast to the element
 * type first (cast_inputs), o cast to fp32 after it. */
static lws_status check_run(lws_context *ctx, lws_attention_fwd_fn fast, const check_buffers *b,
                            int which, int cast_inputs) {
    const lws_attention_fwd_args *a = &b->run[which];
    uint64_t nq = (uint64_t)a->batch * a->seq * a->q_heads * a->head_dim;
    uint64_t nkv = (uint64_t)a->batch * a->seq * a->kv_heads * a->head_dim;
    lws_cmd *cmd;
    LWS_TRY(lws_cmd_begin(ctx, 0, &cmd));
    lws_cmd_label(cmd, fast ? "attention check: matrix units" : "attention check: tuning's form");
    if (cast_inputs && a->o.dtype != LWS_F32) {
        lws_op_cast(cmd, a->q, b->q32, nq);
        lws_op_cast(cmd, a->k, b->k32, nkv);
        lws_op_cast(cmd, a->v, b->v32, nkv);
        lws_cmd_barrier(cmd);
    }
    if (fast)
        fast(cmd, a);
    else
        lws_attention_fwd_tuned(cmd, a);
    if (a->o.dtype != LWS_F32) {
        lws_cmd_barrier(cmd);
        lws_op_cast(cmd, b->o32[which], a->o, nq);
    }
    lws_status s = lws_cmd_end(cmd);
    if (s == LWS_OK) s = lws_submit(ctx, &cmd, 1);
    lws_cmd_destroy(cmd);
    return s;
}

static double max_abs(const float *x, uint64_t n) {
    double m = 0;
    for (uint64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* The comparison of the two forms' results (host arrays: o, lse of each). */
static void check_compare(const lws_attention_fwd_args *a, float *const host[6],
                          lws_attention_check *out) {
    uint64_t nq = (uint64_t)a->batch * a->seq * a->q_heads * a->head_dim;
    uint64_t nkv = (uint64_t)a->batch * a->seq * a->kv_heads * a->head_dim;
    uint64_t rows = (uint64_t)a->batch * a->seq * a->q_heads;
    const double u = 1.0 / 2048.0;
    double sigma = fabs((double)a->scale) * sqrt((double)a->head_dim);
    double out_u = a->o.dtype == LWS_BF16 ? 1.0 / 256 : a->o.dtype == LWS_F16 ? u : 0;
    out->o_tol =
        (4 + 8 * sigma) * u * max_abs(host[2], nkv) + 3e-5 + 2 * out_u * max_abs(host[4], nq);
    out->o_tol_rel = 3 * u + out_u;
    out->lse_tol = (1 + 8 * sigma) * u + 3e-5;
    /* The matmul check's comparison gives max |diff| and the relative L2
     * (infinite where a value is not finite); its tolerances are not used. */
    lws_matmul_check o, lse;
    lws_matmul_compare(host[3], host[4], nq, a->head_dim, &o);
    lws_matmul_compare(host[5], host[5] + rows, rows, a->head_dim, &lse);
    out->o_max_abs = o.max_abs, out->o_rel_l2 = o.rel_l2, out->lse_max_abs = lse.max_abs;
    out->ok = out->o_max_abs <= out->o_tol && out->o_rel_l2 <= out->o_tol_rel &&
              out->lse_max_abs <= out->lse_tol;
}

/* The check on b's buffers: uploads, both forms, downloads, comparison. */
static lws_status check_buffers_run(lws_context *ctx, lws_attention_fwd_fn fast,
                                    const check_buffers *b, float *const host[6],
                                    lws_attention_check *out) {
    const lws_attention_fwd_args *a = &b->run[0];
    uint64_t nq = (uint64_t)a->batch * a->seq * a->q_heads * a->head_dim;
    uint64_t nkv = (uint64_t)a->batch * a->seq * a->kv_heads * a->head_dim;
    uint64_t rows = (uint64_t)a->batch * a->seq * a->q_heads;
    LWS_TRY(lws_upload(ctx, b->q32, host[0], 4 * nq));
    LWS_TRY(lws_upload(ctx, b->k32, host[1], 4 * nkv));
    LWS_TRY(lws_upload(ctx, b->v32, host[2], 4 * nkv));
    /* A form that fails to record or run (a driver that refuses its
     * pipeline) fails the check; it is not an error of the caller's. */
    lws_status fast_status = check_run(ctx, fast, b, 0, 1);
    if (fast_status != LWS_OK) {
        snprintf(out->error, sizeof out->error, "%s", lws_error_message());
        lws_error_clear();
    }
    LWS_TRY(check_run(ctx, NULL, b, 1, fast_status != LWS_OK));
    if (fast_status != LWS_OK) {
        out->ok = 0, out->o_max_abs = out->o_rel_l2 = out->lse_max_abs = INFINITY;
        return LWS_OK;
    }
    LWS_TRY(lws_download(ctx, b->o32[0], host[3], 4 * nq));
    LWS_TRY(lws_download(ctx, b->o32[1], host[4], 4 * nq));
    LWS_TRY(lws_download(ctx, b->run[0].lse, host[5], 4 * rows));
    LWS_TRY(lws_download(ctx, b->run[1].lse, host[5] + rows, 4 * rows));
    check_compare(a, host, out);
    return LWS_OK;
}

lws_status lws_attention_verify_with(lws_context *ctx, lws_attention_fwd_fn fast,
                                     const lws_attention_fwd_args *p, lws_attention_check *out) {
    memset(out, 0, sizeof *out);
    lws_attention_fwd_args a = *p;
    a.batch = 2;
    a.seq = p->seq < 192 ? p->seq : 128 + p->seq % 64;
    out->seq = a.seq, out->q_heads = a.q_heads, out->kv_heads = a.kv_heads;
    out->head_dim = a.head_dim;
    uint64_t nq = (uint64_t)a.batch * a.seq * a.q_heads * a.head_dim;
    uint64_t nkv = (uint64_t)a.batch * a.seq * a.kv_heads * a.head_dim;
    uint64_t rows = (uint64_t)a.batch * a.seq * a.q_heads;
    /* q, k, v; o of each form; lse of both. */
    float *host[6] = {lws_random_normals(0x6c7773617474ull, nq),
                      lws_random_normals(0x6c7773617475ull, nkv),
                      lws_random_normals(0x6c7773617476ull, nkv),
                      malloc(4 * nq),
                      malloc(4 * nq),
                      malloc(8 * rows)};
    lws_status st = LWS_OK;
    for (int i = 0; i < 6; i++)
        if (!host[i])
            st = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory for the attention check");
    int verdict = lws_context_attention_verdict(ctx);
    lws_context_set_attention_verdict(ctx, CHECKING);
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    check_buffers b;
    if (st == LWS_OK) st = check_alloc(ctx, &a, &b);
    if (st == LWS_OK) st = check_buffers_run(ctx, fast, &b, host, out);
    lws_arena_reset(ctx, mark);
    lws_context_set_attention_verdict(ctx, verdict);
    for (int i = 0; i < 6; i++) free(host[i]);
    return st;
}
