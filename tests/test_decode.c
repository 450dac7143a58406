// lws-test: vulkan kernel
/* KV-cache decoding (src/model/decode.c) against the full forward, and its
 * kernels against references:
 *  - matvec against the fp64 matmul reference, every row-sharing width, the
 *    vec4 and the scalar path;
 *  - attention_decode against the fp64 reference on odd shapes (head_dim 1 to
 *    128, GQA groups 1 to 5, several chunks of keys, cache rows past the
 *    position poisoned with NaN), with the position changed between
 *    submissions of one recorded command buffer, and with scores large
 *    enough that an unshifted softmax would overflow;
 *  - rope_decode bit-identical to lws_op_rope at the same position (and
 *    within the fp64 reference's tolerance), writing only row pos;
 *  - tiny random models, post_norm and pre_norm, tied and untied, QK-norm on
 *    and off, GQA groups 1 to 6: the logits of the decode path, token by
 *    token, match lws_model_logits at every position (its logits come chunk
 *    by chunk of the output head: chunks of 5 tokens here, so several); so do
 *    the ones after a prefill through the full forward, one longer than the
 *    model's sequence, and a second run (bit-identical). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model/decode.h"
#include "ops/decode_ops.h"
#include "ref/attention_decode.h"
#include "ref/matmul.h"
#include "ref/rope.h"

/* ---- matvec --------------------------------------------------------------- */

typedef struct matvec_job {
    lws_buffer y, w, x;
    uint32_t n, k;
} matvec_job;

static void record_matvec(lws_cmd *cmd, void *arg) {
    matvec_job *j = arg;
    lws_op_matvec(cmd, j->y, j->w, j->x, j->n, j->k);
}

/* Every row-sharing width (LWS_MATVEC_THREADS), the vec4 path (k % 4 == 0)
 * and the scalar one, against the fp64 reference and bit-identical reruns. */
static void check_matvec(lws_context *ctx, test_rng *rng, uint32_t n, uint32_t k) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *w = test_random_floats(rng, (size_t)n * k, 1.0), *x = test_random_floats(rng, k, 1.0);
    float *got = test_malloc(n * sizeof(float)), *again = test_malloc(n * sizeof(float));
    double *wd = test_to_double(w, (size_t)n * k), *xd = test_to_double(x, k);
    double *want = test_malloc(n * sizeof(double));
    ref_matmul(LWS_MM_NT, want, xd, wd, 1, n, k, 0);
    matvec_job j = {test_output(ctx, n), test_upload_floats(ctx, w, (size_t)n * k),
                    test_upload_floats(ctx, x, k), n, k};
    const char *widths[] = {"1", "4", "32", "256", ""};
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++) {
        setenv("LWS_MATVEC_THREADS", widths[i], 1);
        CHECK_OK(lws_fill(ctx, j.y, 0x7FC00000u));
        test_run(ctx, record_matvec, &j);
        test_download(ctx, j.y, got, n);
        char what[128];
        snprintf(what, sizeof what, "matvec n=%u k=%u threads=%s", n, k,
                 widths[i][0] ? widths[i] : "default");
        /* A k-long fp32 dot of unit normals: |y| ~ sqrt(k), error ~ sqrt(k)
         * ulps of the partial sums: below 1e-5 * sqrt(k) absolute. */
        CHECK_CLOSE(what, got, want, n, 1e-5 * sqrt((double)k), 1e-6);
        test_run(ctx, record_matvec, &j);
        test_download(ctx, j.y, again, n);
        snprintf(what + strlen(what), sizeof what - strlen(what), " rerun");
        CHECK(test_bitwise_equal(what, got, again, n), "%s", what);
    }
    unsetenv("LWS_MATVEC_THREADS");
    free(w), free(x), free(got), free(again), free(wd), free(xd), free(want);
    lws_arena_reset(ctx, mark);
}

/* ---- attention_decode --------------------------------------------------- */

typedef struct attn_shape {
    uint32_t q_heads, kv_heads, head_dim, max_seq;
    double q_std; /* large: scores far beyond exp's range without the max shift */
} attn_shape;

typedef struct attn_job {
    lws_buffer o, q, k, v, pos;
    attn_shape s;
} attn_job;

static void record_attn(lws_cmd *cmd, void *arg) {
    attn_job *j = arg;
    lws_op_attention_decode(cmd, j->o, j->q, j->k, j->v, j->pos, j->s.max_seq, j->s.q_heads,
                            j->s.kv_heads, j->s.head_dim, 1.0f / sqrtf((float)j->s.head_dim));
}

static void check_attention(lws_context *ctx, test_rng *rng, attn_shape s) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t nq = (size_t)s.q_heads * s.head_dim, row = (size_t)s.kv_heads * s.head_dim;
    size_t nc = s.max_seq * row;
    float *q = test_random_floats(rng, nq, s.q_std);
    float *k = test_random_floats(rng, nc, 1.0), *v = test_random_floats(rng, nc, 1.0);
    float *got = test_malloc(nq * sizeof(float)), *again = test_malloc(nq * sizeof(float));
    float *kp = test_malloc(nc * sizeof(float)), *vp = test_malloc(nc * sizeof(float));
    double *qd = test_to_double(q, nq), *kd = test_to_double(k, nc), *vd = test_to_double(v, nc);
    double *want = test_malloc(nq * sizeof(double));
    attn_job j = {.o = test_output(ctx, nq),
                  .q = test_upload_floats(ctx, q, nq),
                  .k = test_output(ctx, nc),
                  .v = test_output(ctx, nc),
                  .pos = test_output(ctx, 1),
                  .s = s};
    /* One recording serves every position: only the device's pos changes. */
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 1, &cmd));
    record_attn(cmd, &j);
    CHECK_OK(lws_cmd_end(cmd));
    uint32_t positions[] = {0, 1, s.max_seq / 2, s.max_seq - 1};
    for (size_t i = 0; i < sizeof positions / sizeof *positions; i++) {
        uint32_t pos = positions[i];
        if (pos >= s.max_seq) continue;
        /* Rows after pos hold NaN: the kernel must not read them. */
        for (size_t e = 0; e < nc; e++) {
            int past = e >= (size_t)(pos + 1) * row;
            kp[e] = past ? NAN : k[e];
            vp[e] = past ? NAN : v[e];
        }
        CHECK_OK(lws_upload(ctx, j.k, kp, nc * sizeof(float)));
        CHECK_OK(lws_upload(ctx, j.v, vp, nc * sizeof(float)));
        CHECK_OK(lws_upload(ctx, j.pos, &pos, sizeof pos));
        CHECK_OK(lws_fill(ctx, j.o, 0x7FC00000u));
        CHECK_OK(lws_submit(ctx, &cmd, 1));
        test_download(ctx, j.o, got, nq);
        CHECK(ref_attention_decode(want, qd, kd, vd, pos, s.q_heads, s.kv_heads, s.head_dim,
                                   1.0 / sqrt(s.head_dim)) == 0,
              "reference: out of host memory");
        char what[160];
        snprintf(what, sizeof what,
                 "attention_decode q_heads=%u kv_heads=%u head_dim=%u pos=%u/%u q_std=%g",
                 s.q_heads, s.kv_heads, s.head_dim, pos, s.max_seq, s.q_std);
        /* fp32: each score a head_dim-long dot (relative error ~1e-7 of
         * |s| <= ~40, or ~1e3 with q_std 30, where the softmax is nearly
         * one-hot and an error of 1e-4 in s moves a weight by 1e-4), exp and
         * the chunk rescale a few ulps, o a convex combination of v (|v| <~ 5). */
        double tol = s.q_std > 1 ? 1e-3 : 3e-5;
        CHECK_CLOSE(what, got, want, nq, tol, tol / 3);
        CHECK_OK(lws_submit(ctx, &cmd, 1));
        test_download(ctx, j.o, again, nq);
        snprintf(what + strlen(what), sizeof what - strlen(what), " rerun");
        CHECK(test_bitwise_equal(what, got, again, nq), "%s", what);
    }
    lws_cmd_destroy(cmd);
    free(q), free(k), free(v), free(got), free(again), free(kp), free(vp);
    free(qd), free(kd), free(vd), free(want);
    lws_arena_reset(ctx, mark);
}

/* ---- rope_decode and store_row ------------------------------------------ */

typedef struct rope_job {
    lws_buffer full_y, full_x, cache, x, pos, v_cache;
    uint32_t tokens, heads, head_dim;
    float theta;
} rope_job;

static void record_rope_full(lws_cmd *cmd, void *arg) {
    rope_job *j = arg;
    lws_op_rope(cmd, j->full_y, j->full_x, j->tokens, j->tokens, j->heads, j->head_dim, j->theta,
                0);
}

static void record_rope_decode(lws_cmd *cmd, void *arg) {
    rope_job *j = arg;
    uint32_t width = j->heads * j->head_dim;
    lws_op_rope_decode(cmd, j->cache, j->x, j->pos, j->heads, j->head_dim, width, j->tokens - 1,
                       j->theta);
    lws_op_store_row(cmd, j->v_cache, j->x, j->pos, width, width, j->tokens - 1);
}

/* In place, as the decode step rotates its query: one row (stride 0), the
 * angle still that of the position. */
static void record_rope_in_place(lws_cmd *cmd, void *arg) {
    rope_job *j = arg;
    lws_op_rope_decode(cmd, j->x, j->x, j->pos, j->heads, j->head_dim, 0, 0, j->theta);
}

static void check_rope(lws_context *ctx, test_rng *rng, uint32_t tokens, uint32_t heads,
                       uint32_t head_dim, float theta) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t width = heads * head_dim;
    size_t n = (size_t)tokens * width;
    float *x = test_random_floats(rng, n, 1.0);
    float *full = test_malloc(n * sizeof(float)), *cache = test_malloc(n * sizeof(float));
    float *vcache = test_malloc(n * sizeof(float));
    double *xd = test_to_double(x, n), *want = test_malloc(n * sizeof(double));
    ref_rope(want, xd, tokens, tokens, heads, head_dim, theta, 0);
    rope_job j = {.full_y = test_output(ctx, n),
                  .full_x = test_upload_floats(ctx, x, n),
                  .cache = test_output(ctx, n),
                  .x = test_output(ctx, width),
                  .pos = test_output(ctx, 1),
                  .v_cache = test_output(ctx, n),
                  .tokens = tokens,
                  .heads = heads,
                  .head_dim = head_dim,
                  .theta = theta};
    test_run(ctx, record_rope_full, &j);
    test_download(ctx, j.full_y, full, n);
    uint32_t positions[] = {0, 1, tokens / 3, tokens - 1};
    for (size_t i = 0; i < sizeof positions / sizeof *positions; i++) {
        uint32_t p = positions[i];
        const float *xp = x + (size_t)p * width;
        CHECK_OK(lws_upload(ctx, j.x, xp, width * sizeof(float)));
        CHECK_OK(lws_upload(ctx, j.pos, &p, sizeof p));
        CHECK_OK(lws_fill(ctx, j.cache, 0x7FC00000u));
        CHECK_OK(lws_fill(ctx, j.v_cache, 0x7FC00000u));
        test_run(ctx, record_rope_decode, &j);
        test_download(ctx, j.cache, cache, n);
        test_download(ctx, j.v_cache, vcache, n);
        char what[160];
        snprintf(what, sizeof what, "rope_decode heads=%u head_dim=%u theta=%g pos=%u", heads,
                 head_dim, (double)theta, p);
        /* The same angle code as rope.comp: bit-identical to the full forward. */
        CHECK(test_bitwise_equal(what, cache + (size_t)p * width, full + (size_t)p * width, width),
              "%s: differs from lws_op_rope", what);
        /* Within rope's fp64 tolerance (tests/test_rope.c). */
        CHECK_CLOSE(what, cache + (size_t)p * width, want + (size_t)p * width, width, 2e-6, 5e-7);
        int others = 1, copied = memcmp(vcache + (size_t)p * width, xp, width * 4) == 0;
        for (size_t e = 0; e < n; e++) {
            if (e / width == p) continue;
            others &= isnan(cache[e]) && isnan(vcache[e]);
        }
        CHECK(others, "%s: rows other than pos were written", what);
        CHECK(copied, "store_row pos=%u: row is not an exact copy", p);
        test_run(ctx, record_rope_in_place, &j);
        test_download(ctx, j.x, cache, width);
        snprintf(what + strlen(what), sizeof what - strlen(what), " in place");
        CHECK(test_bitwise_equal(what, cache, full + (size_t)p * width, width),
              "%s: differs from lws_op_rope", what);
    }
    free(x), free(full), free(cache), free(vcache), free(xd), free(want);
    lws_arena_reset(ctx, mark);
}

/* ---- the decode path against the full forward ---------------------------- */

/* Logits of the full forward have |z| up to ~10 here; both paths run the
 * same fp32 kernels on the same weights but with other accumulation orders
 * (matvec vs matmul tiles, the decode attention's chunked softmax vs the
 * tiled one), which leaves differences of a few ulps per op that grow
 * through the layers to ~1e-6 of the logits' scale. Tolerance: 1e-4 relative
 * (L2), and 1e-4 times the largest |logit| at any element. */
static void compare_logits(const char *what, const float *got, const float *full, uint32_t V) {
    double *want = test_malloc(V * sizeof(double)), scale = 0;
    for (uint32_t v = 0; v < V; v++) {
        want[v] = full[v];
        if (fabs(want[v]) > scale) scale = fabs(want[v]);
    }
    CHECK_CLOSE(what, got, want, V, 1e-4 * (scale > 1 ? scale : 1), 1e-4);
    free(want);
}

static void check_model(lws_context *ctx, test_rng *rng, const char *name, const char *json) {
    static lws_config cfg;
    lws_status s = lws_config_parse(json, name, &cfg);
    CHECK_OK(s);
    if (s != LWS_OK) return;
    const uint32_t T = 13; /* prime: no tile or chunk divides it */
    uint32_t V = cfg.model.vocab_size;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_model *m = NULL, *short_m = NULL;
    lws_decoder *dec = NULL, *short_dec = NULL;
    uint32_t tokens[13];
    for (uint32_t t = 0; t < T; t++) tokens[t] = (uint32_t)(test_rng_next(rng) % V);
    float *full = test_malloc((size_t)T * V * sizeof(float));
    float *got = test_malloc((size_t)T * V * sizeof(float));
    float *again = test_malloc((size_t)T * V * sizeof(float));
    char what[160];

    CHECK_OK(s = lws_model_create(ctx, &cfg, 1, T, 0, &m));
    if (s == LWS_OK) CHECK_OK(s = lws_model_logits(m, tokens, full));
    /* A cache longer than the sequence: rows past the position hold garbage
     * from nothing (never written), which attention must not read. */
    if (s == LWS_OK) CHECK_OK(s = lws_decoder_create(m, T + 6, &dec));
    for (int run = 0; run < 2 && s == LWS_OK; run++) {
        float *out = run ? again : got;
        for (uint32_t t = 0; t < T && s == LWS_OK; t++)
            CHECK_OK(s = lws_decoder_step(dec, tokens[t], t, out + (size_t)t * V));
    }
    for (uint32_t t = 0; t < T && s == LWS_OK; t++) {
        snprintf(what, sizeof what, "%s: decode step at position %u vs full forward", name, t);
        compare_logits(what, got + (size_t)t * V, full + (size_t)t * V, V);
    }
    if (s == LWS_OK) {
        snprintf(what, sizeof what, "%s: decode twice", name);
        CHECK(test_bitwise_equal(what, got, again, (size_t)T * V), "%s", what);
    }

    /* Prefill through the full forward (5 tokens, then all T), then steps. */
    if (s == LWS_OK) CHECK_OK(s = lws_decoder_prefill(dec, tokens, 5, got));
    if (s == LWS_OK) {
        snprintf(what, sizeof what, "%s: prefill of 5 tokens", name);
        compare_logits(what, got, full + 4 * (size_t)V, V);
    }
    for (uint32_t t = 5; t < T && s == LWS_OK; t++) {
        CHECK_OK(s = lws_decoder_step(dec, tokens[t], t, got));
        snprintf(what, sizeof what, "%s: step at position %u after the prefill", name, t);
        if (s == LWS_OK) compare_logits(what, got, full + (size_t)t * V, V);
    }
    if (s == LWS_OK) CHECK_OK(s = lws_decoder_prefill(dec, tokens, T, got));
    if (s == LWS_OK) {
        snprintf(what, sizeof what, "%s: prefill of all %u tokens", name, T);
        compare_logits(what, got, full + (size_t)(T - 1) * V, V);
    }

    /* A model of batch 2 x seq 5 (same seed, same weights): a prefill of 9
     * tokens takes its forward for 5 and steps for 4. */
    if (s == LWS_OK) CHECK_OK(s = lws_model_create(ctx, &cfg, 2, 5, 0, &short_m));
    if (s == LWS_OK) CHECK_OK(s = lws_decoder_create(short_m, T, &short_dec));
    if (s == LWS_OK) CHECK_OK(s = lws_decoder_prefill(short_dec, tokens, 9, got));
    if (s == LWS_OK) {
        snprintf(what, sizeof what, "%s: prefill of 9 tokens past a 5-token forward", name);
        compare_logits(what, got, full + 8 * (size_t)V, V);
    }
    for (uint32_t t = 9; t < T && s == LWS_OK; t++) {
        CHECK_OK(s = lws_decoder_step(short_dec, tokens[t], t, got));
        snprintf(what, sizeof what, "%s: step at %u after the long prefill", name, t);
        if (s == LWS_OK) compare_logits(what, got, full + (size_t)t * V, V);
    }
    /* Out of range: refused with the position and the cache size. */
    if (s == LWS_OK) {
        lws_status e = lws_decoder_step(short_dec, tokens[0], T, NULL);
        CHECK(e == LWS_ERR_INVALID && strstr(lws_error_message(), "beyond the key/value cache"),
              "%s: a position past the cache is refused: %s", name, lws_error_message());
        e = lws_decoder_step(short_dec, V, 0, NULL);
        CHECK(e == LWS_ERR_INVALID && strstr(lws_error_message(), "outside the vocabulary"),
              "%s: a token outside the vocabulary is refused: %s", name, lws_error_message());
    }
    lws_decoder_destroy(short_dec);
    lws_decoder_destroy(dec);
    lws_model_destroy(short_m);
    lws_model_destroy(m);
    free(full), free(got), free(again);
    lws_arena_reset(ctx, mark);
}

/* Tiny configs: explicit per-layer heads so the GQA groups differ by layer.
 * init_std 0.3 (not 0.02) so attention is far from uniform and the logits
 * spread over several units. */
#define TINY(extra)                                                                                \
    "{\"model\": {\"d_model\": 24, \"head_dim\": 12, \"vocab_size\": 37, \"init_std\": "           \
    "0.3, " extra

int main(void) {
    setenv("LWS_HEAD_CHUNK_ROWS", "5", 1);
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 20250917);

    attn_shape shapes[] = {
        {1, 1, 1, 1, 1.0},     /* sizes 1 */
        {3, 1, 6, 5, 1.0},     /* group 3 */
        {4, 2, 10, 131, 1.0},  /* two chunks, the second of 3 keys */
        {6, 3, 128, 50, 1.0},  /* the widest head */
        {5, 5, 67, 301, 1.0},  /* head_dim > 64 (128 invocations), three chunks */
        {2, 1, 50, 257, 30.0}, /* scores ~1e3: exp overflows without the max shift */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        check_attention(ctx, &rng, shapes[i]);

    check_matvec(ctx, &rng, 1, 1);
    check_matvec(ctx, &rng, 37, 64);   /* vec4 path */
    check_matvec(ctx, &rng, 300, 129); /* scalar path, rows past one workgroup */
    check_matvec(ctx, &rng, 5, 1000);  /* long rows */

    check_rope(ctx, &rng, 37, 3, 12, 500000.0f);
    check_rope(ctx, &rng, 300, 1, 2, 10000.0f);
    check_rope(ctx, &rng, 9, 5, 128, 500000.0f);

    check_model(ctx, &rng, "post_norm untied qk_norm groups 2,1",
                TINY("\"n_layers\": 2, \"block\": \"post_norm\", \"tied_embeddings\": false, "
                     "\"qk_norm\": true}, "
                     "\"lws\": {\"ffn_dims\": [40, 24], \"q_heads\": [4, 2], "
                     "\"gqa\": {\"kv_heads\": 2}}}"));
    check_model(ctx, &rng, "pre_norm tied no qk_norm groups 2,6,3",
                TINY("\"n_layers\": 3, \"block\": \"pre_norm\", \"tied_embeddings\": true, "
                     "\"qk_norm\": false}, "
                     "\"lws\": {\"ffn_dims\": [16, 56, 32], \"q_heads\": [2, 6, 3], "
                     "\"gqa\": {\"kv_heads\": 1}}}"));
    check_model(ctx, &rng, "post_norm tied no qk_norm group 3",
                TINY("\"n_layers\": 1, \"block\": \"post_norm\", \"tied_embeddings\": true, "
                     "\"qk_norm\": false}, "
                     "\"lws\": {\"ffn_dims\": [48], \"q_heads\": [3], "
                     "\"gqa\": {\"group_size\": 3}}}"));
    check_model(ctx, &rng, "pre_norm untied qk_norm group 1",
                TINY("\"n_layers\": 2, \"block\": \"pre_norm\", \"tied_embeddings\": false, "
                     "\"qk_norm\": true}, "
                     "\"lws\": {\"ffn_dims\": [24, 40], \"q_heads\": [2, 4], "
                     "\"gqa\": {\"group_size\": 1}}}"));
    return test_finish(ctx);
}
