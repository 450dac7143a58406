// lws-test: vulkan kernel
/* Fused softmax cross-entropy against the fp64 reference: rows 1, 7, 33 and
 * vocabularies 1, 5, 257, 16385 (one past a chunk) and 50304 (several chunks),
 * ignored targets (out of and inside the vocabulary), z_loss 0 and 1e-4,
 * separate and in-place dlogits, logits of +-80 and shifted past where exp
 * overflows fp32, no valid row, a target outside the vocabulary, a finite-
 * difference check of dlogits, and bit-identical reruns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/cross_entropy.h"

#define IGNORE_NONE ((uint32_t)-100)

typedef struct job {
    lws_buffer losses, dlogits, logits, targets, scratch;
    uint32_t rows, vocab, ignore_index;
    float z_loss, grad_scale;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_cross_entropy(cmd, j->losses, j->dlogits, j->logits, j->targets, j->scratch, j->rows,
                         j->vocab, j->ignore_index, j->z_loss, j->grad_scale);
}

typedef enum logit_kind { LOGITS_NORMAL, LOGITS_WIDE, LOGITS_SHIFTED } logit_kind;

typedef struct ce_case {
    uint32_t rows, vocab;
    float z_loss, grad_scale;
    int in_place;
    logit_kind kind;
    uint32_t ignore_index;
} ce_case;

static float *make_logits(test_rng *rng, size_t n, logit_kind kind) {
    float *x = test_malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        double u = 2 * test_rng_uniform(rng) - 1;
        /* normal: std 2, like a trained model's logits; wide: uniform in
         * [-80, 80]; shifted: [20, 180], where exp(x) alone overflows fp32. */
        x[i] = kind == LOGITS_NORMAL ? (float)(2 * test_rng_normal(rng))
               : kind == LOGITS_WIDE ? (float)(80 * u)
                                     : (float)(100 + 80 * u);
    }
    return x;
}

/* Targets uniform over the vocabulary; row 1 and about a fifth of the others
 * ignored (row 0 never, so one row is always valid). */
static uint32_t *make_targets(test_rng *rng, uint32_t rows, uint32_t vocab, uint32_t ignore) {
    uint32_t *t = test_malloc(rows * sizeof *t);
    for (uint32_t r = 0; r < rows; r++) {
        t[r] = (uint32_t)(test_rng_uniform(rng) * vocab);
        if (r == 1 || (r > 0 && test_rng_uniform(rng) < 0.2)) t[r] = ignore;
    }
    return t;
}

static void run_case(lws_context *ctx, test_rng *rng, const ce_case *c) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t rows = c->rows, vocab = c->vocab;
    size_t n = (size_t)rows * vocab;
    float *x = make_logits(rng, n, c->kind);
    uint32_t *targets = make_targets(rng, rows, vocab, c->ignore_index);
    double *xd = test_to_double(x, n), *want_d = test_malloc(n * sizeof *want_d);
    double *want_loss = test_malloc(rows * sizeof *want_loss);
    size_t n_valid = ref_cross_entropy(want_loss, want_d, xd, targets, rows, vocab, c->ignore_index,
                                       c->z_loss, c->grad_scale);
    double max_lse = 0;
    for (uint32_t r = 0; r < rows; r++) {
        double m = xd[(size_t)r * vocab], s = 0;
        for (uint32_t i = 0; i < vocab; i++) m = fmax(m, xd[(size_t)r * vocab + i]);
        for (uint32_t i = 0; i < vocab; i++) s += exp(xd[(size_t)r * vocab + i] - m);
        max_lse = fmax(max_lse, fabs(m + log(s)));
    }

    job j = {test_output(ctx, rows),
             test_output(ctx, n),
             test_upload_floats(ctx, x, n),
             test_upload(ctx, targets, rows * sizeof *targets),
             test_output(ctx, lws_cross_entropy_scratch_floats(ctx, rows, vocab)),
             rows,
             vocab,
             c->ignore_index,
             c->z_loss,
             c->grad_scale};
    if (c->in_place) j.dlogits = j.logits;
    float *loss = test_malloc(rows * sizeof *loss), *loss2 = test_malloc(rows * sizeof *loss2);
    float *d = test_malloc(n * sizeof *d), *d2 = test_malloc(n * sizeof *d2);
    test_run(ctx, record, &j);
    test_download(ctx, j.losses, loss, rows);
    test_download(ctx, j.dlogits, d, n);

    char what[160];
    const char *kind = c->kind == LOGITS_NORMAL ? "normal"
                       : c->kind == LOGITS_WIDE ? "+-80"
                                                : "shifted";
    snprintf(what, sizeof what, "rows=%u vocab=%u z=%g %s %s n_valid=%zu", rows, vocab,
             (double)c->z_loss, c->in_place ? "in-place" : "separate", kind, n_valid);
    char label[200];
    /* fp32 error budget: lse = max + log(sum of exp) carries one rounding of
     * |lse| (6e-8 |lse|) plus the sum's relative error (exp within a few ulp
     * per term, a sequential run of at most chunk/workgroup = 64 terms, then
     * trees: under 1e-6). The loss adds the subtraction's rounding. */
    double tol_loss = 2e-6 + 2.5e-7 * max_lse;
    snprintf(label, sizeof label, "loss %s", what);
    CHECK_CLOSE(label, loss, want_loss, rows, tol_loss, 1e-6 + 1e-7 * max_lse);
    /* dlogits: p = exp(x - lse) inherits lse's error relatively and exp's own
     * error (a few ulp plus ~|x - lse| ulp on GPUs; p |x - lse| <= 1/e keeps
     * that small in absolute terms), scaled by grad_scale / n_valid. */
    double coef = n_valid ? c->grad_scale / (double)n_valid : 0;
    double tol_d = coef * (1.5e-6 + 2.5e-7 * max_lse);
    snprintf(label, sizeof label, "dlogits %s", what);
    CHECK_CLOSE(label, d, want_d, n, tol_d, 2e-6 + 2e-7 * max_lse);

    /* Rerun on the same inputs (restoring logits when in place): bit-identical. */
    if (c->in_place) CHECK_OK(lws_upload(ctx, j.logits, x, n * sizeof *x));
    test_run(ctx, record, &j);
    test_download(ctx, j.losses, loss2, rows);
    test_download(ctx, j.dlogits, d2, n);
    snprintf(label, sizeof label, "rerun loss %s", what);
    test_checks++;
    if (!test_bitwise_equal(label, loss, loss2, rows)) test_failures++;
    snprintf(label, sizeof label, "rerun dlogits %s", what);
    test_checks++;
    if (!test_bitwise_equal(label, d, d2, n)) test_failures++;

    free(x), free(targets), free(xd), free(want_d), free(want_loss);
    free(loss), free(loss2), free(d), free(d2);
    lws_arena_reset(ctx, mark);
}

/* Every target ignored: n_valid = 0, so losses and dlogits are exactly 0. */
static void check_no_valid_row(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t rows = 7, vocab = 257, targets[7];
    size_t n = (size_t)rows * vocab;
    for (uint32_t r = 0; r < rows; r++) targets[r] = IGNORE_NONE;
    float *x = make_logits(rng, n, LOGITS_NORMAL), *d = test_malloc(n * sizeof *d), loss[7];
    double *zeros = calloc(n, sizeof *zeros);
    job j = {test_output(ctx, rows),
             test_output(ctx, n),
             test_upload_floats(ctx, x, n),
             test_upload(ctx, targets, sizeof targets),
             test_output(ctx, lws_cross_entropy_scratch_floats(ctx, rows, vocab)),
             rows,
             vocab,
             IGNORE_NONE,
             1e-4f,
             1.0f};
    test_run(ctx, record, &j);
    test_download(ctx, j.losses, loss, rows);
    test_download(ctx, j.dlogits, d, n);
    /* Exact: ignored rows are written as zeros, nothing is divided by 0. */
    CHECK_CLOSE("loss with every target ignored", loss, zeros, rows, 0, 0);
    CHECK_CLOSE("dlogits with every target ignored", d, zeros, n, 0, 0);
    free(x), free(d), free(zeros);
    lws_arena_reset(ctx, mark);
}

/* A target past the vocabulary (and not ignore_index) is a data error: that
 * row's loss and gradient are NaN, the other rows stay finite. */
static void check_target_outside_vocab(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t rows = 3, vocab = 5, targets[3] = {2, 5, 0};
    float *x = make_logits(rng, rows * vocab, LOGITS_NORMAL), loss[3], d[15];
    job j = {test_output(ctx, rows),
             test_output(ctx, rows * vocab),
             test_upload_floats(ctx, x, rows * vocab),
             test_upload(ctx, targets, sizeof targets),
             test_output(ctx, lws_cross_entropy_scratch_floats(ctx, rows, vocab)),
             rows,
             vocab,
             IGNORE_NONE,
             0.0f,
             1.0f};
    test_run(ctx, record, &j);
    test_download(ctx, j.losses, loss, rows);
    test_download(ctx, j.dlogits, d, rows * vocab);
    int row1_nan = isnan(loss[1]), others_finite = isfinite(loss[0]) && isfinite(loss[2]);
    for (uint32_t i = 0; i < vocab; i++) {
        row1_nan = row1_nan && isnan(d[vocab + i]);
        others_finite = others_finite && isfinite(d[i]) && isfinite(d[2 * vocab + i]);
    }
    CHECK(row1_nan && others_finite,
          "target %u outside vocab %u: want NaN loss and gradient in that row only", targets[1],
          vocab);
    printf("%s target outside the vocabulary gives NaN in its row only\n",
           row1_nan && others_finite ? "ok  " : "FAIL");
    free(x);
    lws_arena_reset(ctx, mark);
}

typedef struct fd_problem {
    double *x;
    const uint32_t *targets;
    size_t rows, vocab;
    uint32_t ignore_index;
    double z_loss, grad_scale;
} fd_problem;

static double fd_objective(void *arg) {
    fd_problem *p = arg;
    return ref_cross_entropy_objective(p->x, p->targets, p->rows, p->vocab, p->ignore_index,
                                       p->z_loss, p->grad_scale);
}

/* dlogits from the device against central differences of the fp64 objective
 * grad_scale * mean over valid rows of the loss (with a large z_loss so its
 * term is well above the tolerance). */
static void check_finite_difference(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    enum { ROWS = 4, VOCAB = 7 };
    uint32_t targets[ROWS] = {3, IGNORE_NONE, 0, 6};
    float *x = make_logits(rng, ROWS * VOCAB, LOGITS_NORMAL), d[ROWS * VOCAB];
    float z_loss = 0.05f, grad_scale = 1.7f;
    job j = {test_output(ctx, ROWS),
             test_output(ctx, ROWS * VOCAB),
             test_upload_floats(ctx, x, ROWS * VOCAB),
             test_upload(ctx, targets, sizeof targets),
             test_output(ctx, lws_cross_entropy_scratch_floats(ctx, ROWS, VOCAB)),
             ROWS,
             VOCAB,
             IGNORE_NONE,
             z_loss,
             grad_scale};
    test_run(ctx, record, &j);
    test_download(ctx, j.dlogits, d, ROWS * VOCAB);
    fd_problem p = {
        test_to_double(x, ROWS * VOCAB), targets, ROWS, VOCAB, IGNORE_NONE, z_loss, grad_scale};
    double fd[ROWS * VOCAB];
    for (size_t i = 0; i < ROWS * VOCAB; i++)
        fd[i] = test_finite_difference(fd_objective, &p, p.x, i, 1e-5);
    /* Central differences with h = 1e-5 in fp64 are good to ~1e-10; the rest
     * is fp32 rounding of gradients of size ~0.5. */
    CHECK_CLOSE("dlogits vs finite differences (4x7, z_loss 0.05)", d, fd, ROWS * VOCAB, 2e-6,
                4e-6);
    free(x), free(p.x);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 7);
    const uint32_t rows[] = {1, 7, 33}, vocabs[] = {1, 5, 257, 16385};
    int index = 0;
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
        for (size_t v = 0; v < sizeof vocabs / sizeof *vocabs; v++)
            for (int variant = 0; variant < 4; variant++, index++) {
                uint32_t vocab = vocabs[v];
                /* A third of the cases ignore a token inside the vocabulary
                 * (a padding id) rather than -100. */
                uint32_t ignore = index % 3 == 2 && vocab > 1 ? vocab / 2 : IGNORE_NONE;
                ce_case c = {rows[r],
                             vocab,
                             variant & 1 ? 1e-4f : 0.0f,
                             index % 2 ? 0.37f : 1.0f,
                             variant >> 1,
                             LOGITS_NORMAL,
                             ignore};
                run_case(ctx, &rng, &c);
            }
    /* Stability: +-80 and shifted to [20, 180]. */
    const ce_case extreme[] = {
        {7, 257, 1e-4f, 1.0f, 0, LOGITS_WIDE, IGNORE_NONE},
        {33, 5, 0.0f, 1.0f, 1, LOGITS_WIDE, IGNORE_NONE},
        {7, 16385, 0.0f, 1.0f, 1, LOGITS_WIDE, IGNORE_NONE},
        {7, 257, 1e-4f, 1.0f, 0, LOGITS_SHIFTED, IGNORE_NONE},
        {7, 16385, 0.0f, 1.0f, 0, LOGITS_SHIFTED, IGNORE_NONE},
    };
    for (size_t i = 0; i < sizeof extreme / sizeof *extreme; i++) run_case(ctx, &rng, &extreme[i]);
    /* GPT-2's padded vocabulary: several chunks per row. */
    const ce_case gpt2[] = {
        {33, 50304, 1e-4f, 1.0f, 1, LOGITS_NORMAL, IGNORE_NONE},
        {33, 50304, 0.0f, 0.37f, 0, LOGITS_WIDE, IGNORE_NONE},
    };
    for (size_t i = 0; i < sizeof gpt2 / sizeof *gpt2; i++) run_case(ctx, &rng, &gpt2[i]);
    check_no_valid_row(ctx, &rng);
    check_target_outside_vocab(ctx, &rng);
    check_finite_difference(ctx, &rng);
    return test_finish(ctx);
}
