// lws-test: vulkan kernel
/* Token embedding gather and scatter-add against the fp64 reference: sizes 1,
 * primes and the paper's vocabulary (50304 x 64 with 1000 tokens), many
 * repeats of a few ids (a frequent word; one id for every token), ids >=
 * vocab (gathered as zero rows, ignored by the backward), dtable accumulated,
 * poisoned outputs, a finite-difference check, and bit-identical reruns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/embedding.h"

typedef struct job {
    lws_buffer out, table, tokens; /* forward */
    lws_buffer dtable, dout;       /* backward */
    uint32_t n_tokens, dim, vocab;
} job;

static void record_fwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_embedding_fwd(cmd, j->out, j->table, j->tokens, j->n_tokens, j->dim, j->vocab);
}

static void record_bwd(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_embedding_bwd(cmd, j->dtable, j->dout, j->tokens, j->n_tokens, j->dim, j->vocab);
}

/* How the ids are drawn. */
typedef enum { IDS_UNIFORM, IDS_FREQUENT, IDS_ONE, IDS_OUT_OF_RANGE } ids_kind;

static uint32_t *random_tokens(test_rng *rng, uint32_t n, uint32_t vocab, ids_kind kind) {
    uint32_t *tokens = test_malloc(n * sizeof *tokens);
    for (uint32_t t = 0; t < n; t++) {
        uint32_t id = (uint32_t)(test_rng_next(rng) % vocab);
        double u = test_rng_uniform(rng);
        /* half the tokens are one of 5 ids, the first and last row among them */
        if (kind == IDS_FREQUENT && u < 0.5)
            id = (uint32_t)(test_rng_next(rng) % 5) * ((vocab - 1) / 4);
        if (kind == IDS_ONE) id = vocab - 1;
        if (kind == IDS_OUT_OF_RANGE && u < 0.2) id = u < 0.1 ? vocab : 0xFFFFFFFFu - t;
        tokens[t] = id;
    }
    return tokens;
}

static void check_case(lws_context *ctx, test_rng *rng, uint32_t n_tokens, uint32_t dim,
                       uint32_t vocab, ids_kind kind) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t n_out = (size_t)n_tokens * dim, n_table = (size_t)vocab * dim;
    uint32_t *tokens = random_tokens(rng, n_tokens, vocab, kind);
    float *table = test_random_floats(rng, n_table, 1.0),
          *dout = test_random_floats(rng, n_out, 1.0);
    double *table_d = test_to_double(table, n_table), *dout_d = test_to_double(dout, n_out);
    double *out_want = test_malloc(n_out * sizeof(double));
    ref_embedding_fwd(out_want, table_d, tokens, n_tokens, dim, vocab);
    /* dtable starts as the table's values: the backward adds to it. */
    double *dtable_want = test_to_double(table, n_table);
    ref_embedding_bwd(dtable_want, dout_d, tokens, n_tokens, dim, vocab);
    /* The largest number of tokens summed into one row bounds the error. */
    uint32_t *count = calloc(vocab, sizeof *count), max_count = 0;
    for (uint32_t t = 0; t < n_tokens; t++)
        if (tokens[t] < vocab && ++count[tokens[t]] > max_count) max_count = count[tokens[t]];
    size_t n_max = n_out > n_table ? n_out : n_table;
    float *got = test_malloc(n_max * sizeof(float)), *again = test_malloc(n_max * sizeof(float));
    char what[128], shape[80];
    static const char *kinds[] = {"uniform ids", "frequent ids", "one id", "ids >= vocab"};
    snprintf(shape, sizeof shape, "tokens=%u dim=%u vocab=%u %s", n_tokens, dim, vocab,
             kinds[kind]);

    job j = {test_output(ctx, n_out),
             test_upload_floats(ctx, table, n_table),
             test_upload(ctx, tokens, n_tokens * sizeof *tokens),
             test_upload_floats(ctx, table, n_table),
             test_upload_floats(ctx, dout, n_out),
             n_tokens,
             dim,
             vocab};
    test_run(ctx, record_fwd, &j);
    test_download(ctx, j.out, got, n_out);
    snprintf(what, sizeof what, "embedding_fwd %s", shape);
    CHECK_CLOSE(what, got, out_want, n_out, 0.0, 0.0); /* a copy: exact */

    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.dtable, got, n_table);
    /* Each element is table + a sum of up to max_count terms of N(0, 1) in
     * fp32: worst case (max_count + 4) * 5 * 2^-24 absolute; the relative L2
     * over the whole table is a few 1e-8. */
    snprintf(what, sizeof what, "embedding_bwd %s (max %u per row)", shape, max_count);
    CHECK_CLOSE(what, got, dtable_want, n_table, 3e-7 * (max_count + 4), 1e-6);

    /* Bit-identical: the same table in, the same bits out. */
    CHECK_OK(lws_upload(ctx, j.dtable, table, n_table * sizeof(float)));
    test_run(ctx, record_bwd, &j);
    test_download(ctx, j.dtable, again, n_table);
    snprintf(what, sizeof what, "embedding_bwd %s twice", shape);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, n_table)) test_failures++;

    free(tokens), free(table), free(dout), free(table_d), free(dout_d), free(out_want);
    free(dtable_want), free(count), free(got), free(again);
    lws_arena_reset(ctx, mark);
}

/* L = sum dout * embedding(table), in fp64; dL/dtable by central differences. */
typedef struct fd_arg {
    double *table;
    const double *dout;
    const uint32_t *tokens;
    size_t n_tokens, dim, vocab;
} fd_arg;

static double fd_loss(void *arg) {
    fd_arg *f = arg;
    size_t n = f->n_tokens * f->dim;
    double *out = test_malloc(n * sizeof *out), loss = 0;
    ref_embedding_fwd(out, f->table, f->tokens, f->n_tokens, f->dim, f->vocab);
    for (size_t i = 0; i < n; i++) loss += f->dout[i] * out[i];
    free(out);
    return loss;
}

static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    enum { n_tokens = 9, dim = 3, vocab = 5, n_table = vocab * dim, n_out = n_tokens * dim };
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    const uint32_t tokens[n_tokens] = {2, 0, 2, 4, 2, 7, 0, 2, 1}; /* 7 >= vocab: ignored */
    float *dout = test_random_floats(rng, n_out, 1.0), zeros[n_table] = {0};
    double *dout_d = test_to_double(dout, n_out), table_d[n_table] = {0};
    job j = {{0},
             {0},
             test_upload(ctx, tokens, sizeof tokens),
             test_upload_floats(ctx, zeros, n_table),
             test_upload_floats(ctx, dout, n_out),
             n_tokens,
             dim,
             vocab};
    test_run(ctx, record_bwd, &j);
    float got[n_table];
    test_download(ctx, j.dtable, got, n_table);
    double fd[n_table];
    fd_arg f = {table_d, dout_d, tokens, n_tokens, dim, vocab};
    for (size_t i = 0; i < n_table; i++)
        fd[i] = test_finite_difference(fd_loss, &f, table_d, i, 1e-3);
    /* L is linear in the table: the differences are exact up to fp64
     * rounding; the GPU sums at most 4 fp32 terms per element. */
    CHECK_CLOSE("embedding_bwd vs finite differences", got, fd, n_table, 2e-6, 1e-6);
    free(dout), free(dout_d);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 61);
    check_case(ctx, &rng, 1, 1, 1, IDS_UNIFORM);
    check_case(ctx, &rng, 7, 5, 11, IDS_FREQUENT);
    check_case(ctx, &rng, 33, 48, 7, IDS_UNIFORM);       /* vocab below one row block */
    check_case(ctx, &rng, 129, 129, 1009, IDS_FREQUENT); /* one past the column block */
    check_case(ctx, &rng, 300, 768, 65, IDS_OUT_OF_RANGE);
    check_case(ctx, &rng, 3001, 5, 3, IDS_ONE); /* one row hit by every token, many chunks */
    check_case(ctx, &rng, 1000, 64, 50304, IDS_FREQUENT);
    check_case(ctx, &rng, 1000, 64, 50304, IDS_UNIFORM);
    check_case(ctx, &rng, 500, 67, 50257, IDS_FREQUENT); /* a short last row block */
    check_finite_difference(ctx, &rng);
    return test_finish(ctx);
}
