// lws-test: vulkan kernel timeout=120
/* Causal GQA attention, forward and backward (dq, dk, dv and the delta it writes), against the fp64
 * reference: sizes that are not multiples of the blocks, group sizes 1 .. q_heads, head_dim 4 ..
 * 128, a 2048-token sequence, finite-difference checks of both the reference backward and the GPU
 * backward, determinism, and refusal of unsupported shapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/attention.h"

typedef struct shape {
    uint32_t batch, seq, q_heads, kv_heads, head_dim;
    double std; /* of q and k: larger gives peakier softmax rows */
} shape;

static size_t q_count(shape s) {
    return (size_t)s.batch * s.seq * s.q_heads * s.head_dim;
}
static size_t kv_count(shape s) {
    return (size_t)s.batch * s.seq * s.kv_heads * s.head_dim;
}
static size_t row_count(shape s) {
    return (size_t)s.batch * s.q_heads * s.seq;
}

typedef struct job {
    lws_buffer o, lse, q, k, v, dout, delta, dq, dk, dv;
    shape s;
    float scale;
} job;

/* Forward, then the backward from the forward's o and lse, as a layer does. */
static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    shape s = j->s;
    lws_op_attention_fwd(cmd, j->o, j->lse, j->q, j->k, j->v, s.batch, s.seq, s.q_heads, s.kv_heads,
                         s.head_dim, j->scale);
    lws_cmd_barrier(cmd);
    lws_op_attention_bwd(cmd, j->dq, j->dk, j->dv, j->dout, j->q, j->k, j->v, j->o, j->lse,
                         j->delta, s.batch, s.seq, s.q_heads, s.kv_heads, s.head_dim, j->scale);
}

typedef struct results {
    float *o, *lse, *delta, *dq, *dk, *dv;
} results;

static results results_alloc(shape s) {
    results r = {test_malloc(q_count(s) * 4),   test_malloc(row_count(s) * 4),
                 test_malloc(row_count(s) * 4), test_malloc(q_count(s) * 4),
                 test_malloc(kv_count(s) * 4),  test_malloc(kv_count(s) * 4)};
    return r;
}

static void results_free(results r) {
    free(r.o), free(r.lse), free(r.delta), free(r.dq), free(r.dk), free(r.dv);
}

/* Uploads the inputs, poisons the outputs, runs forward + backward `runs`
 * times, and downloads the results of each run. */
static void gpu_attention(lws_context *ctx, shape s, lws_dtype t, float scale, const float *q,
                          const float *k, const float *v, const float *dout, results *out,
                          int runs) {
    job j = {.o = test_output_as(ctx, q_count(s), t),
             .lse = test_output(ctx, row_count(s)),
             .q = test_upload_as(ctx, q, q_count(s), t),
             .k = test_upload_as(ctx, k, kv_count(s), t),
             .v = test_upload_as(ctx, v, kv_count(s), t),
             .dout = test_upload_as(ctx, dout, q_count(s), t),
             .delta = test_output(ctx, row_count(s)),
             .dq = test_output_as(ctx, q_count(s), t),
             .dk = test_output_as(ctx, kv_count(s), t),
             .dv = test_output_as(ctx, kv_count(s), t),
             .s = s,
             .scale = scale};
    for (int run = 0; run < runs; run++) {
        test_run(ctx, record, &j);
        test_download_as(ctx, j.o, out[run].o, q_count(s));
        test_download(ctx, j.lse, out[run].lse, row_count(s));
        test_download(ctx, j.delta, out[run].delta, row_count(s));
        test_download_as(ctx, j.dq, out[run].dq, q_count(s));
        test_download_as(ctx, j.dk, out[run].dk, kv_count(s));
        test_download_as(ctx, j.dv, out[run].dv, kv_count(s));
    }
}

/* Random inputs rounded to t, so the reference sees what the device stores. */
static float *inputs(test_rng *rng, size_t n, double std, lws_dtype t) {
    float *x = test_random_floats(rng, n, std);
    for (size_t i = 0; i < n; i++) x[i] = test_round(x[i], t);
    return x;
}

/* An output of type t against the reference: the fp32 tolerances plus, for
 * a 16-bit output, its own rounding (u * max |want| absolute, u relative)
 * and `extra` absolute. */
static void check_out(const char *what, lws_dtype t, const float *got, const double *want, size_t n,
                      double abs_tol, double rel_tol, double extra) {
    double u = test_unit_roundoff(t), peak = 0;
    for (size_t i = 0; i < n; i++) peak = fmax(peak, fabs(want[i]));
    if (u > 0) abs_tol += u * peak + extra;
    CHECK_CLOSE(what, got, want, n, abs_tol, rel_tol + u);
}

/* delta [batch, q_heads, seq], written by the backward, against the fp64
 * rowsum(dout * o) of the reference o. The device sums dout_d * o_d with its
 * own o, off from o_ref by at most the forward's tolerance (3e-5, plus
 * u * max |o| for a 16-bit o), so each row may differ by
 * sum_d |dout_d| * that, plus fp32 rounding of the head_dim-long sum
 * (head_dim * 2^-24 * sum_d |dout_d o_d|). */
static void check_delta(const char *what, lws_dtype t, const float *got, const double *o_ref,
                        const double *dout, shape s) {
    size_t n = row_count(s);
    double *want = test_malloc(n * 8), o_peak = 0, tol = 0;
    for (size_t i = 0; i < q_count(s); i++) o_peak = fmax(o_peak, fabs(o_ref[i]));
    double o_err = 3e-5 + test_unit_roundoff(t) * o_peak;
    for (uint32_t b = 0; b < s.batch; b++)
        for (uint32_t h = 0; h < s.q_heads; h++)
            for (uint32_t i = 0; i < s.seq; i++) {
                size_t at = ((size_t)b * s.seq + i) * s.q_heads * s.head_dim + h * s.head_dim;
                double sum = 0, abs_dout = 0, abs_sum = 0;
                for (uint32_t d = 0; d < s.head_dim; d++) {
                    sum += dout[at + d] * o_ref[at + d];
                    abs_dout += fabs(dout[at + d]);
                    abs_sum += fabs(dout[at + d] * o_ref[at + d]);
                }
                want[((size_t)b * s.q_heads + h) * s.seq + i] = sum;
                tol = fmax(tol, abs_dout * o_err + s.head_dim * 0x1p-24 * abs_sum);
            }
    CHECK_CLOSE(what, got, want, n, tol, 1e-5 + test_unit_roundoff(t));
    free(want);
}

static void check_shape(lws_context *ctx, test_rng *rng, shape s, lws_dtype t) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float scale = (float)(1.0 / sqrt(s.head_dim));
    float *q = inputs(rng, q_count(s), s.std, t);
    float *k = inputs(rng, kv_count(s), s.std, t);
    float *v = inputs(rng, kv_count(s), 1.0, t);
    float *dout = inputs(rng, q_count(s), 1.0, t);
    double *qd = test_to_double(q, q_count(s)), *kd = test_to_double(k, kv_count(s));
    double *vd = test_to_double(v, kv_count(s)), *doutd = test_to_double(dout, q_count(s));
    double *o_ref = test_malloc(q_count(s) * 8), *lse_ref = test_malloc(row_count(s) * 8);
    double *dq_ref = test_malloc(q_count(s) * 8), *dk_ref = test_malloc(kv_count(s) * 8);
    double *dv_ref = test_malloc(kv_count(s) * 8);
    CHECK(ref_attention_fwd(o_ref, lse_ref, qd, kd, vd, s.batch, s.seq, s.q_heads, s.kv_heads,
                            s.head_dim, scale) == 0,
          "reference forward: out of host memory");
    CHECK(ref_attention_bwd(dq_ref, dk_ref, dv_ref, doutd, qd, kd, vd, s.batch, s.seq, s.q_heads,
                            s.kv_heads, s.head_dim, scale) == 0,
          "reference backward: out of host memory");

    results got[2] = {results_alloc(s), results_alloc(s)};
    gpu_attention(ctx, s, t, scale, q, k, v, dout, got, 2);

    char what[160], name[128];
    snprintf(name, sizeof name, "batch=%u seq=%u q_heads=%u kv_heads=%u head_dim=%u std=%g [%s]",
             s.batch, s.seq, s.q_heads, s.kv_heads, s.head_dim, s.std, lws_dtype_name(t));
    /* fp32 with an online softmax: each score is a head_dim-long fp32 dot
     * (error ~1e-7 relative to |s| <= ~40), exp and the running rescale add a
     * few ulps, and o is a convex combination of v (|v| <~ 5): errors of a few
     * 1e-6 in o and lse (|lse| <~ 10), ~1e-7 in relative L2 (measured: 4e-6
     * max-abs, 4e-7 rel-L2 at most over these shapes). */
    snprintf(what, sizeof what, "forward o %s", name);
    check_out(what, t, got[0].o, o_ref, q_count(s), 3e-5, 1e-5, 0);
    snprintf(what, sizeof what, "forward lse %s", name);
    check_out(what, LWS_F32, got[0].lse, lse_ref, row_count(s), 3e-5, 1e-5, 0);
    /* The gradients are fp32 sums of up to seq (times the group for dk, dv)
     * terms P * (dP - delta) of either sign, with dP ~ head_dim^0.5 and delta
     * from the fp32 o: errors grow with the length of the sums (measured:
     * 1.1e-5 max-abs, 1.3e-6 rel-L2 for seq 2048), so max-abs 1e-4, rel-L2 1e-5.
     * 16-bit: the backward reads o as stored, so delta = dout . o carries o's
     * rounding into dq and dk (|delta| <~ 3, times |p| <= 1): 8u more. */
    double u = test_unit_roundoff(t);
    snprintf(what, sizeof what, "backward delta %s", name);
    check_delta(what, t, got[0].delta, o_ref, doutd, s);
    snprintf(what, sizeof what, "backward dq %s", name);
    check_out(what, t, got[0].dq, dq_ref, q_count(s), 1e-4, 1e-5, 8 * u);
    snprintf(what, sizeof what, "backward dk %s", name);
    check_out(what, t, got[0].dk, dk_ref, kv_count(s), 1e-4, 1e-5, 8 * u);
    snprintf(what, sizeof what, "backward dv %s", name);
    check_out(what, t, got[0].dv, dv_ref, kv_count(s), 1e-4, 1e-5, 0);

    /* Fixed reduction orders everywhere: a second run (into written, not
     * accumulated, outputs) gives the same bits. */
    const char *names[6] = {"o", "lse", "delta", "dq", "dk", "dv"};
    float *first[6] = {got[0].o, got[0].lse, got[0].delta, got[0].dq, got[0].dk, got[0].dv};
    float *second[6] = {got[1].o, got[1].lse, got[1].delta, got[1].dq, got[1].dk, got[1].dv};
    size_t counts[6] = {q_count(s), row_count(s), row_count(s),
                        q_count(s), kv_count(s),  kv_count(s)};
    for (int i = 0; i < 6; i++) {
        snprintf(what, sizeof what, "twice %s %s", names[i], name);
        test_checks++;
        if (!test_bitwise_equal(what, first[i], second[i], counts[i])) test_failures++;
    }

    results_free(got[0]), results_free(got[1]);
    free(q), free(k), free(v), free(dout), free(qd), free(kd), free(vd), free(doutd);
    free(o_ref), free(lse_ref), free(dq_ref), free(dk_ref), free(dv_ref);
    lws_arena_reset(ctx, mark);
}

/* ---- finite differences of the fp64 forward ---- */

typedef struct fd_problem {
    shape s;
    double scale;
    double *q, *k, *v, *dout, *o;
} fd_problem;

/* loss = sum(o * dout): its gradient is what the backward computes. */
static double fd_loss(void *arg) {
    fd_problem *p = arg;
    shape s = p->s;
    ref_attention_fwd(p->o, NULL, p->q, p->k, p->v, s.batch, s.seq, s.q_heads, s.kv_heads,
                      s.head_dim, p->scale);
    double loss = 0;
    for (size_t i = 0; i < q_count(s); i++) loss += p->o[i] * p->dout[i];
    return loss;
}

static void check_finite_differences(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    /* Group 2, rows not a multiple of any block, a head_dim of 8. */
    shape s = {1, 6, 4, 2, 8, 1.5};
    float scale = (float)(1.0 / sqrt(s.head_dim));
    float *q = test_random_floats(rng, q_count(s), s.std);
    float *k = test_random_floats(rng, kv_count(s), s.std);
    float *v = test_random_floats(rng, kv_count(s), 1.0);
    float *dout = test_random_floats(rng, q_count(s), 1.0);
    fd_problem p = {s,
                    scale,
                    test_to_double(q, q_count(s)),
                    test_to_double(k, kv_count(s)),
                    test_to_double(v, kv_count(s)),
                    test_to_double(dout, q_count(s)),
                    test_malloc(q_count(s) * 8)};
    double *dq_ref = test_malloc(q_count(s) * 8), *dk_ref = test_malloc(kv_count(s) * 8);
    double *dv_ref = test_malloc(kv_count(s) * 8);
    CHECK(ref_attention_bwd(dq_ref, dk_ref, dv_ref, p.dout, p.q, p.k, p.v, s.batch, s.seq,
                            s.q_heads, s.kv_heads, s.head_dim, p.scale) == 0,
          "reference backward: out of host memory");
    double *fd_q = test_malloc(q_count(s) * 8), *fd_k = test_malloc(kv_count(s) * 8);
    double *fd_v = test_malloc(kv_count(s) * 8);
    /* Central differences with h = 1e-4: truncation error ~h^2 * |d3 loss| ~1e-8,
     * rounding ~1e-16 / h ~1e-12. */
    const double h = 1e-4;
    for (size_t i = 0; i < q_count(s); i++)
        fd_q[i] = test_finite_difference(fd_loss, &p, p.q, i, h);
    for (size_t i = 0; i < kv_count(s); i++) {
        fd_k[i] = test_finite_difference(fd_loss, &p, p.k, i, h);
        fd_v[i] = test_finite_difference(fd_loss, &p, p.v, i, h);
    }

    /* The fp64 backward against the fp64 forward: only the O(h^2) truncation
     * of the differences remains. */
    const struct {
        const char *what;
        const double *analytic, *numeric;
        size_t n;
    } ref_checks[3] = {{"reference dq vs finite differences", dq_ref, fd_q, q_count(s)},
                       {"reference dk vs finite differences", dk_ref, fd_k, kv_count(s)},
                       {"reference dv vs finite differences", dv_ref, fd_v, kv_count(s)}};
    for (int c = 0; c < 3; c++) {
        double max_abs = 0;
        for (size_t i = 0; i < ref_checks[c].n; i++) {
            double d = fabs(ref_checks[c].analytic[i] - ref_checks[c].numeric[i]);
            if (!(d <= max_abs)) max_abs = d;
        }
        int ok = max_abs <= 1e-6;
        printf("%s %s: n=%zu max_abs=%.3g (tol 1e-06)\n", ok ? "ok  " : "FAIL", ref_checks[c].what,
               ref_checks[c].n, max_abs);
        test_checks++;
        if (!ok) test_failures++;
    }

    /* The GPU backward against the same differences: fp32 rounding of the
     * kernels (~1e-6 at these sizes) dominates. */
    results got = results_alloc(s);
    gpu_attention(ctx, s, LWS_F32, scale, q, k, v, dout, &got, 1);
    CHECK_CLOSE("GPU dq vs finite differences", got.dq, fd_q, q_count(s), 2e-5, 1e-5);
    CHECK_CLOSE("GPU dk vs finite differences", got.dk, fd_k, kv_count(s), 2e-5, 1e-5);
    CHECK_CLOSE("GPU dv vs finite differences", got.dv, fd_v, kv_count(s), 2e-5, 1e-5);

    results_free(got);
    free(q), free(k), free(v), free(dout), free(p.q), free(p.k), free(p.v);
    free(p.dout), free(p.o), free(dq_ref), free(dk_ref), free(dv_ref), free(fd_q), free(fd_k);
    free(fd_v);
    lws_arena_reset(ctx, mark);
}

/* ---- unsupported shapes are refused with a message ---- */

static void check_refused(lws_context *ctx, shape s, const char *expect) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer q = test_output(ctx, q_count(s)), kv = test_output(ctx, kv_count(s));
    lws_buffer rows = test_output(ctx, row_count(s));
    for (int backward = 0; backward < 2; backward++) {
        lws_cmd *cmd;
        CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
        lws_status st =
            backward ? lws_op_attention_bwd(cmd, q, kv, kv, q, q, kv, kv, q, rows, rows, s.batch,
                                            s.seq, s.q_heads, s.kv_heads, s.head_dim, 0.5f)
                     : lws_op_attention_fwd(cmd, q, rows, q, kv, kv, s.batch, s.seq, s.q_heads,
                                            s.kv_heads, s.head_dim, 0.5f);
        const char *message = lws_error_message();
        int ok = st == LWS_ERR_INVALID && strstr(message, expect) != NULL;
        printf("%s refused (want '%s'): %s\n", ok ? "ok  " : "FAIL", expect, message);
        test_checks++;
        if (!ok) test_failures++;
        CHECK(lws_cmd_end(cmd) == LWS_ERR_INVALID, "the refused command buffer ends failed");
        lws_cmd_destroy(cmd);
    }
    lws_error_clear();
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 7);
    /* (batch, seq, q_heads, kv_heads, head_dim, std): sequence lengths that
     * are not multiples of any block; groups of 1, 2, 3, 4 and q_heads; an
     * odd number of vec4s per row (head_dim 20); peaky rows (std 3 gives
     * scores of std ~9, so the running max moves and rescales often); the
     * 16-bit storage types. Blocks NULL: the table's choice (lavapipe's: the
     * row form, 32x16 blocks halved to fit 32 KiB, 4 rows per invocation;
     * NVIDIA's, AMD's and Intel's: the GPU form, 4 lanes per row, 64x32
     * blocks halved to fit). Other devices' choices on every table and
     * subgroup size: 8x32, key blocks spanning several query blocks in every
     * kernel; 64x64x1, the row form at one row per invocation, halved to
     * 64x32 and 32x32 here, 32- and 64-invocation workgroups; .../LANES, the
     * GPU form: 64x32x1/4 the vendors' table, 16x16x2/8 two rows per group
     * of 8 lanes, 32x8x1/8 one key per lane and lanes without columns at
     * head_dim 8, 32x64x4/32 32 lanes per row. */
    const struct {
        const char *blocks;
        shape s;
        lws_dtype t;
    } cases[] = {
        {NULL, {1, 1, 1, 1, 16, 1.0}, LWS_F32},
        {NULL, {2, 7, 4, 2, 16, 1.0}, LWS_F32},
        {NULL, {1, 37, 6, 3, 32, 1.0}, LWS_F32},
        {NULL, {1, 67, 4, 1, 64, 1.0}, LWS_F32},
        {NULL, {2, 33, 2, 2, 128, 1.0}, LWS_F32},
        {NULL, {1, 130, 8, 8, 64, 1.0}, LWS_F32},
        {NULL, {1, 29, 3, 1, 20, 3.0}, LWS_F32},
        {NULL, {3, 50, 2, 1, 4, 3.0}, LWS_F32},
        {NULL, {2, 45, 4, 2, 8, 1.0}, LWS_F32},
        {NULL, {1, 2048, 2, 1, 16, 1.0}, LWS_F32},
        {NULL, {2, 45, 4, 2, 8, 1.0}, LWS_BF16},
        {NULL, {1, 37, 6, 3, 64, 1.0}, LWS_F16},
        {"8x32", {1, 37, 6, 3, 32, 1.0}, LWS_F32},
        {"8x32", {2, 61, 4, 2, 20, 3.0}, LWS_F32},
        {"64x64x1", {2, 7, 4, 2, 16, 1.0}, LWS_F32},
        {"64x64x1", {1, 200, 3, 1, 32, 1.0}, LWS_F32},
        {"64x32x1/4", {1, 130, 4, 2, 64, 1.0}, LWS_F32},
        {"64x32x1/4", {2, 45, 4, 2, 8, 1.0}, LWS_BF16},
        {"64x32x1/4", {1, 37, 6, 3, 16, 1.0}, LWS_F16},
        {"16x16x2/8", {1, 67, 4, 1, 64, 3.0}, LWS_F32},
        {"32x8x1/8", {3, 50, 2, 1, 8, 1.0}, LWS_F32},
        {"32x64x4/32", {1, 70, 2, 2, 64, 1.0}, LWS_F32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].blocks)
            setenv("LWS_ATTENTION_BLOCKS", cases[i].blocks, 1);
        else
            unsetenv("LWS_ATTENTION_BLOCKS");
        printf("blocks %s:\n", cases[i].blocks ? cases[i].blocks : "of the table");
        check_shape(ctx, &rng, cases[i].s, cases[i].t);
    }
    unsetenv("LWS_ATTENTION_BLOCKS");

    check_finite_differences(ctx, &rng);
    check_refused(ctx, (shape){1, 5, 2, 1, 6, 1.0}, "head_dim 6");
    check_refused(ctx, (shape){1, 5, 2, 1, 132, 1.0}, "head_dim 132");
    check_refused(ctx, (shape){1, 5, 6, 4, 16, 1.0}, "kv_heads 4");
    /* Forced choices the GPU form cannot run. */
    const char *const bad_blocks[][2] = {
        {"16x2x1/4", "a block of 2 rows does not split into 4 lanes per row"},
        {"64x32x1/3", "3 lanes per row; use a power of two from 1 to 32"},
        {"64x32/", "LWS_ATTENTION_BLOCKS='64x32/' is not QxKV"},
    };
    for (size_t i = 0; i < sizeof bad_blocks / sizeof *bad_blocks; i++) {
        setenv("LWS_ATTENTION_BLOCKS", bad_blocks[i][0], 1);
        check_refused(ctx, (shape){1, 5, 2, 1, 16, 1.0}, bad_blocks[i][1]);
    }
    unsetenv("LWS_ATTENTION_BLOCKS");
    return test_finish(ctx);
}
