/* One attention forward against the fp64 reference (attention_check.h). */
#include <math.h>
#include <stdlib.h>

#include "attention_check.h"
#include "ref/attention.h"

/* Guard elements on each side of o and lse: NaN before the run and after. */
#define GUARD 16

void record_attention_forward(lws_cmd *cmd, void *arg) {
    lws_attention_fwd_args *a = arg;
    lws_op_attention_fwd(cmd, a->o, a->lse, a->q, a->k, a->v, a->batch, a->seq, a->q_heads,
                         a->kv_heads, a->head_dim, a->scale);
}

/* Whether every value is NaN (the guards). */
static int all_nan(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i])) return 0;
    return 1;
}

void check_attention_forward(lws_context *ctx, test_rng *rng, attention_shape s, lws_dtype t,
                             double o_u, double lse_abs, double rel, int want_match) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t nq = (size_t)s.batch * s.seq * s.q_heads * s.head_dim;
    size_t nkv = (size_t)s.batch * s.seq * s.kv_heads * s.head_dim;
    size_t rows = (size_t)s.batch * s.seq * s.q_heads;
    float scale = (float)(1.0 / sqrt(s.head_dim));
    double qk_std = s.qk_std > 0 ? s.qk_std : 1.0, v_std = s.v_std > 0 ? s.v_std : 1.0;
    float *q = test_random_floats(rng, nq, qk_std), *k = test_random_floats(rng, nkv, qk_std);
    float *v = test_random_floats(rng, nkv, v_std);
    double vmax = 0;
    for (size_t i = 0; i < nkv; i++) v[i] = test_round(v[i], t), vmax = fmax(vmax, fabs(v[i]));
    for (size_t i = 0; i < nq; i++) q[i] = test_round(q[i], t);
    for (size_t i = 0; i < nkv; i++) k[i] = test_round(k[i], t);
    double *qd = test_to_double(q, nq), *kd = test_to_double(k, nkv), *vd = test_to_double(v, nkv);
    double *o_ref = test_malloc(nq * 8), *lse_ref = test_malloc(rows * 8);
    CHECK(ref_attention_fwd(o_ref, lse_ref, qd, kd, vd, s.batch, s.seq, s.q_heads, s.kv_heads,
                            s.head_dim, scale) == 0,
          "reference forward: out of host memory");

    lws_buffer o_all = test_output_as(ctx, nq + 2 * GUARD, t);
    lws_buffer lse_all = test_output(ctx, rows + 2 * GUARD);
    uint32_t esize = lws_dtype_bytes(t);
    lws_attention_fwd_args a = {lws_buffer_slice(o_all, GUARD * esize, nq * esize),
                                lws_buffer_slice(lse_all, GUARD * 4, rows * 4),
                                test_upload_as(ctx, q, nq, t),
                                test_upload_as(ctx, k, nkv, t),
                                test_upload_as(ctx, v, nkv, t),
                                s.batch,
                                s.seq,
                                s.q_heads,
                                s.kv_heads,
                                s.head_dim,
                                scale};
    a.o.dtype = t;
    test_run(ctx, record_attention_forward, &a);
    float *o = test_malloc((nq + 2 * GUARD) * 4), *lse = test_malloc((rows + 2 * GUARD) * 4);
    test_download_as(ctx, o_all, o, nq + 2 * GUARD);
    test_download(ctx, lse_all, lse, rows + 2 * GUARD);

    char what[192];
    snprintf(what, sizeof what, "batch=%u seq=%u heads=%u/%u head_dim=%u std %g/%g [%s]", s.batch,
             s.seq, s.q_heads, s.kv_heads, s.head_dim, qk_std, v_std, lws_dtype_name(t));
    double out_u = test_unit_roundoff(t), o_peak = 0;
    for (size_t i = 0; i < nq; i++) o_peak = fmax(o_peak, fabs(o_ref[i]));
    double o_tol = (o_u > 0 ? o_u * vmax : 0) + 3e-5 + out_u * o_peak;
    if (want_match) {
        char name[240];
        snprintf(name, sizeof name, "o %s", what);
        CHECK_CLOSE(name, o + GUARD, o_ref, nq, o_tol, rel + out_u);
        snprintf(name, sizeof name, "lse %s", what);
        CHECK_CLOSE(name, lse + GUARD, lse_ref, rows, lse_abs + 3e-5, rel);
    } else {
        test_error e = test_compare(o + GUARD, o_ref, nq);
        printf("%s o %s: max |diff| %.3g (a wrong stand-in: must exceed %.3g)\n",
               e.max_abs > o_tol ? "ok  " : "FAIL", what, e.max_abs, o_tol);
        CHECK(e.max_abs > o_tol, "the wrong stand-in ran: o differs from the reference");
    }
    CHECK(all_nan(o, GUARD) && all_nan(o + GUARD + nq, GUARD), "o's guards untouched %s", what);
    CHECK(all_nan(lse, GUARD) && all_nan(lse + GUARD + rows, GUARD), "lse's guards untouched %s",
          what);
    free(q), free(k), free(v), free(qd), free(kd), free(vd), free(o_ref), free(lse_ref);
    free(o), free(lse);
    lws_arena_reset(ctx, mark);
}
