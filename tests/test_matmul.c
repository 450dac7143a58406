// lws-test: vulkan kernel
/* matmul in the NT, NN and TN layouts against the fp64 reference: sizes 1,
 * primes, non-multiples of every tile side, shapes larger than a tile in every
 * dimension (element-wise and four-wide paths), accumulate on and off,
 * batches with packed, padded and zero strides, poisoned outputs and guard
 * regions, determinism, argument checks, the forward/backward pair
 * y = x W^T, dx = dy W, dW = dy^T x against finite differences, and problems
 * split into pieces under a lowered element limit (LWS_MATMUL_MAX_ELEMS). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/matmul.h"

static const char *const layout_names[] = {"NT", "NN", "TN"};
#define POISON 0x7FC00000u /* the quiet NaN test_output fills with */
#define GUARD  8           /* poisoned floats after the last C matrix */

typedef struct job {
    lws_mm_layout layout;
    lws_buffer c, a, b;
    uint32_t m, n, k, batch;
    int accumulate, batched;
    uint64_t stride_c, stride_a, stride_b;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    if (j->batched)
        lws_op_matmul_batched(cmd, j->layout, j->c, j->a, j->b, j->m, j->n, j->k, j->accumulate,
                              j->batch, j->stride_c, j->stride_a, j->stride_b);
    else
        lws_op_matmul(cmd, j->layout, j->c, j->a, j->b, j->m, j->n, j->k, j->accumulate);
}

/* Maximum error allowed for outputs that are length-K fp32 dot products of
 * N(0,1) inputs. Sequential fp32 summation errs by at most ~K*u*sum|a*b|
 * (u = 2^-24), and in practice by ~u*K (measured here: below 1.5e-7*K on
 * lavapipe). 1e-6*(K+2) is ~7x the measured worst case and still 100x below
 * the output scale sqrt(K) at K = 150; the rel-L2 bound 1e-5 (measured
 * ~1e-7) catches any systematic error that the max bound would let through. */
static double tol_abs(uint32_t k) {
    return 1e-6 * (k + 2);
}
#define TOL_REL 1e-5

typedef struct shape {
    uint32_t m, n, k;
} shape;

/* One problem: C (+)= op(A) op(B) over `batch` entries, each operand with
 * `pad_*` unused floats between entries (stride_b = 0 when share_b), A
 * starting `offset_a` floats into its allocation. */
static void run_case(lws_context *ctx, test_rng *rng, lws_mm_layout layout, shape s, int accumulate,
                     uint32_t batch, uint32_t pad_c, uint32_t pad_a, uint32_t pad_b, int share_b,
                     uint32_t offset_a) {
    uint64_t c_elems = (uint64_t)s.m * s.n, a_elems = (uint64_t)s.m * s.k,
             b_elems = (uint64_t)s.n * s.k;
    uint64_t sc = c_elems + pad_c, sa = a_elems + pad_a, sb = share_b ? 0 : b_elems + pad_b;
    size_t c_total = (batch - 1) * sc + c_elems + GUARD;
    size_t a_total = offset_a + (batch - 1) * sa + a_elems, b_total = (batch - 1) * sb + b_elems;
    lws_arena_mark mark = lws_arena_get_mark(ctx);

    float *a = test_random_floats(rng, a_total, 1.0), *b = test_random_floats(rng, b_total, 1.0);
    float *c0 = test_random_floats(rng, c_total, 1.0);
    /* Only the matrices hold data: pads and the guard keep the poison. */
    uint32_t poison = POISON;
    for (size_t i = 0; i < c_total; i++) {
        size_t z = i / sc, within = i % sc;
        if (!accumulate || z >= batch || within >= c_elems) memcpy(&c0[i], &poison, 4);
    }
    double *ad = test_to_double(a + offset_a, a_total - offset_a), *bd = test_to_double(b, b_total);
    double *want = test_to_double(c0, c_total);
    ref_matmul_batched(layout, want, ad, bd, s.m, s.n, s.k, accumulate, batch, sc, sa, sb);

    lws_buffer a_all = test_upload_floats(ctx, a, a_total);
    job j = {layout,
             test_upload_floats(ctx, c0, c_total),
             lws_buffer_slice(a_all, 4ull * offset_a, 4ull * (a_total - offset_a)),
             test_upload_floats(ctx, b, b_total),
             s.m,
             s.n,
             s.k,
             batch,
             accumulate,
             batch > 1 || pad_c || pad_a || pad_b || share_b,
             sc,
             sa,
             sb};
    float *got = test_malloc(c_total * sizeof *got), *again = test_malloc(c_total * sizeof *again);
    test_run(ctx, record, &j);
    test_download(ctx, j.c, got, c_total);

    char what[160];
    snprintf(what, sizeof what, "%s %ux%ux%u%s batch=%u pads=%u,%u,%u%s%s", layout_names[layout],
             s.m, s.n, s.k, accumulate ? " accumulate" : "", batch, pad_c, pad_a, pad_b,
             share_b ? " shared-B" : "", offset_a ? " A-offset" : "");
    /* Compare the matrices; the pads and the guard must still be poison. */
    float *got_c = test_malloc(batch * c_elems * sizeof *got_c);
    double *want_c = test_malloc(batch * c_elems * sizeof *want_c);
    size_t untouched = 0, outside = 0;
    for (size_t i = 0; i < c_total; i++) {
        size_t z = i / sc, within = i % sc;
        if (z < batch && within < c_elems) {
            got_c[z * c_elems + within] = got[i];
            want_c[z * c_elems + within] = want[i];
        } else {
            outside++;
            untouched += memcmp(&got[i], &poison, 4) == 0;
        }
    }
    CHECK_CLOSE(what, got_c, want_c, batch * c_elems, tol_abs(s.k), TOL_REL);
    CHECK(untouched == outside, "%s: %zu of %zu floats outside the C matrices were written", what,
          outside - untouched, outside);

    /* Twice: bit-identical (C reset first when accumulating). */
    if (accumulate) CHECK_OK(lws_upload(ctx, j.c, c0, c_total * sizeof *c0));
    test_run(ctx, record, &j);
    test_download(ctx, j.c, again, c_total);
    test_checks++;
    if (!test_bitwise_equal(what, got, again, c_total)) test_failures++;

    free(a), free(b), free(c0), free(ad), free(bd), free(want), free(got), free(again);
    free(got_c), free(want_c);
    lws_arena_reset(ctx, mark);
}

/* ---- forward/backward consistency ----------------------------------------- */

/* L = sum(G . (X W^T)), X [M,K], W [N,K], G [M,N]: the fp64 forward. */
typedef struct loss_args {
    double *x, *w, *g, *y;
    uint32_t m, n, k;
} loss_args;

static double loss(void *arg) {
    loss_args *l = arg;
    ref_matmul(LWS_MM_NT, l->y, l->x, l->w, l->m, l->n, l->k, 0);
    double sum = 0;
    for (size_t i = 0; i < (size_t)l->m * l->n; i++) sum += l->g[i] * l->y[i];
    return sum;
}

static void check_backward_pair(lws_context *ctx, test_rng *rng) {
    const uint32_t m = 5, n = 7, k = 6;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *x = test_random_floats(rng, m * k, 1.0), *w = test_random_floats(rng, n * k, 1.0);
    float *g = test_random_floats(rng, m * n, 1.0);
    float *dx = test_malloc(m * k * sizeof *dx), *dw = test_malloc(n * k * sizeof *dw);
    lws_buffer xb = test_upload_floats(ctx, x, m * k), wb = test_upload_floats(ctx, w, n * k);
    lws_buffer gb = test_upload_floats(ctx, g, m * n);
    /* dx [M,K] = G [M,N] . W [N,K]: NN with (m, n, k) = (M, K, N).
     * dW [N,K] = G^T . X with G [M,N] as A [k=M, m=N]: TN with (N, K, M). */
    job jx = {LWS_MM_NN, test_output(ctx, m * k), gb, wb, m, k, n, 1, 0, 0, 0, 0, 0};
    job jw = {LWS_MM_TN, test_output(ctx, n * k), gb, xb, n, k, m, 1, 0, 0, 0, 0, 0};
    test_run(ctx, record, &jx);
    test_run(ctx, record, &jw);
    test_download(ctx, jx.c, dx, m * k);
    test_download(ctx, jw.c, dw, n * k);

    loss_args l = {test_to_double(x, m * k),
                   test_to_double(w, n * k),
                   test_to_double(g, m * n),
                   test_malloc(m * n * sizeof(double)),
                   m,
                   n,
                   k};
    double *fd_x = test_malloc(m * k * sizeof *fd_x), *fd_w = test_malloc(n * k * sizeof *fd_w);
    /* L is linear in each of X and W, so the central difference is exact up
     * to fp64 rounding (~1e-15 relative) for any step. */
    for (size_t i = 0; i < (size_t)m * k; i++)
        fd_x[i] = test_finite_difference(loss, &l, l.x, i, 0.5);
    for (size_t i = 0; i < (size_t)n * k; i++)
        fd_w[i] = test_finite_difference(loss, &l, l.w, i, 0.5);
    /* Each gradient entry is an fp32 dot product of length N (dx) or M (dW). */
    CHECK_CLOSE("dx = dy W (NN) vs finite differences of x W^T", dx, fd_x, m * k, tol_abs(n),
                TOL_REL);
    CHECK_CLOSE("dW = dy^T x (TN) vs finite differences of x W^T", dw, fd_w, n * k, tol_abs(m),
                TOL_REL);
    free(x), free(w), free(g), free(dx), free(dw), free(l.x), free(l.w), free(l.g), free(l.y);
    free(fd_x), free(fd_w);
    lws_arena_reset(ctx, mark);
}

/* ---- problems split into pieces ------------------------------------------------ */

static void expect_refused(lws_context *ctx, const char *what, job j, const char *needle);

/* Records one problem and returns how many barriers the launcher put between
 * its pieces (pieces that add into the same C). */
static uint32_t pieces_barriers(lws_context *ctx, job j) {
    lws_cmd *cmd;
    uint32_t total = 0, unneeded = 0;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    if (!cmd) return 0;
    record(cmd, &j);
    CHECK_OK(lws_cmd_end(cmd));
    lws_cmd_barrier_stats(cmd, &total, &unneeded);
    lws_cmd_destroy(cmd);
    return total;
}

/* The launcher splits a matrix of more than lws_matmul_max_elements()
 * elements; with the limit lowered to a few hundred, small shapes (not
 * multiples of any tile) take every split: rows of A and C (NT, NN), column
 * blocks through one-row batches (NT with B over the limit), depth pieces
 * added in turn (NN with B over it, TN), and TN one k at a time when C is
 * over it. Each against the fp64 reference, accumulating or not, batched. */
static void check_split(lws_context *ctx, test_rng *rng) {
    setenv("LWS_MATMUL_MAX_ELEMS", "300", 1);
    CHECK(lws_matmul_max_elements() == 300, "LWS_MATMUL_MAX_ELEMS=300 lowers the limit to %llu",
          (unsigned long long)lws_matmul_max_elements());
    /* All three over the limit; A and C only; A and B only (C small). */
    const shape shapes[] = {{37, 45, 29}, {200, 7, 9}, {7, 9, 200}};
    for (int layout = LWS_MM_NT; layout <= LWS_MM_TN; layout++) {
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            for (int accumulate = 0; accumulate < 2; accumulate++)
                run_case(ctx, rng, layout, shapes[i], accumulate, 1, 0, 0, 0, 0, 0);
        run_case(ctx, rng, layout, (shape){37, 45, 29}, 1, 2, 3, 1, 5, 0, 1);
    }
    /* Four-wide pieces: 448 = 16 * 28 gives NT column blocks of 16. */
    setenv("LWS_MATMUL_MAX_ELEMS", "448", 1);
    for (int layout = LWS_MM_NT; layout <= LWS_MM_TN; layout++)
        run_case(ctx, rng, layout, (shape){36, 44, 28}, 1, 1, 0, 0, 0, 0, 0);

    /* The pieces happened: TN 7x9x200 at 300 adds 7 depth pieces of 33 rows
     * (6 barriers), NN the same over B [200, 9]; TN 37x45x29 (C over the
     * limit) one k at a time (28 barriers); NT none. */
    setenv("LWS_MATMUL_MAX_ELEMS", "300", 1);
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer c = test_output(ctx, 2000), a = test_output(ctx, 2000), b = test_output(ctx, 2000);
    job j = {LWS_MM_TN, c, a, b, 7, 9, 200, 1, 0, 0, 0, 0, 0};
    uint32_t got = pieces_barriers(ctx, j);
    CHECK(got == 6, "TN 7x9x200 at 300 elements: %u barriers between pieces, want 6", got);
    j.layout = LWS_MM_NN;
    got = pieces_barriers(ctx, j);
    CHECK(got == 6, "NN 7x9x200 at 300 elements: %u barriers between pieces, want 6", got);
    j.layout = LWS_MM_TN, j.m = 37, j.n = 45, j.k = 29;
    got = pieces_barriers(ctx, j);
    CHECK(got == 28, "TN 37x45x29 at 300 elements: %u barriers, want 28", got);
    j.layout = LWS_MM_NT;
    got = pieces_barriers(ctx, j);
    CHECK(got == 0, "NT 37x45x29 at 300 elements: %u barriers, want 0", got);
    printf("ok   pieces: TN and NN add 7 depth pieces, TN with a large C 29 single-k steps\n");

    /* A row longer than the limit cannot be cut by these splits. */
    setenv("LWS_MATMUL_MAX_ELEMS", "100", 1);
    j = (job){LWS_MM_NT, c, a, b, 2, 3, 150, 1, 0, 0, 0, 0, 0};
    expect_refused(ctx, "a row of K = 150 over a limit of 100", j, "rows of 150 elements");
    setenv("LWS_MATMUL_MAX_ELEMS", "0", 1);
    j.k = 4;
    expect_refused(ctx, "LWS_MATMUL_MAX_ELEMS=0", j, "LWS_MATMUL_MAX_ELEMS");
    unsetenv("LWS_MATMUL_MAX_ELEMS");
    CHECK(lws_matmul_max_elements() == (1ull << 31) - 1, "the limit is 2^31 - 1 by default");
    lws_arena_reset(ctx, mark);
}

/* ---- argument checks -------------------------------------------------------- */

static void expect_refused(lws_context *ctx, const char *what, job j, const char *needle) {
    test_expect_refused(ctx, what, record, &j, needle);
}

static void check_refusals(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer c = test_output(ctx, 64), a = test_output(ctx, 64), b = test_output(ctx, 64);
    job base = {LWS_MM_NT, c, a, b, 4, 4, 4, 1, 0, 0, 0, 0, 0};
    job j = base;
    j.k = 0;
    expect_refused(ctx, "K = 0", j, "zero");
    j = base;
    j.m = 9;
    j.k = 8; /* A needs 72 floats, has 64 */
    expect_refused(ctx, "A too small", j, "smaller");
    j = base;
    j.a = lws_buffer_slice(c, 16, 128); /* overlaps C */
    expect_refused(ctx, "C overlapping A", j, "overlaps");
    j = base;
    j.batched = 1, j.batch = 2, j.stride_c = 15, j.stride_a = 16, j.stride_b = 16;
    expect_refused(ctx, "overlapping batch entries of C", j, "stride_c");
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    lws_tuning t = lws_tuning_get(ctx);
    test_rng rng;
    test_rng_seed(&rng, 7);
    printf("tiles %ux%ux%u, workgroup %ux%u\n", t.mm_tile_m, t.mm_tile_n, t.mm_tile_k, t.mm_wg_x,
           t.mm_wg_y);
    /* Element-wise path: 1, primes, and one past a tile in every dimension.
     * Four-wide path (M, N, K multiples of 4): small, past a tile in every
     * dimension without being a multiple of any tile side, and whole tiles. */
    const shape shapes[] = {
        {1, 1, 1},
        {7, 13, 29},
        {67, 31, 97},
        {t.mm_tile_m + 3, t.mm_tile_n + 5, 2 * t.mm_tile_k + 7},
        {4, 8, 4},
        {12, 20, 36},
        {t.mm_tile_m + 4, t.mm_tile_n + 8, 3 * t.mm_tile_k + 4},
        {t.mm_tile_m, 2 * t.mm_tile_n, 2 * t.mm_tile_k},
    };
    for (int layout = LWS_MM_NT; layout <= LWS_MM_TN; layout++) {
        for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
            for (int accumulate = 0; accumulate < 2; accumulate++)
                run_case(ctx, &rng, layout, shapes[i], accumulate, 1, 0, 0, 0, 0, 0);
        /* Batches: packed; padded by odd amounts (element-wise path); padded
         * by multiples of 4 (four-wide path); one B for every entry. */
        run_case(ctx, &rng, layout, (shape){7, 13, 29}, 0, 3, 0, 0, 0, 0, 0);
        run_case(ctx, &rng, layout, (shape){12, 20, 36}, 1, 3, 5, 3, 1, 0, 0);
        run_case(ctx, &rng, layout, (shape){12, 20, 36}, 0, 3, 4, 8, 12, 0, 0);
        run_case(ctx, &rng, layout, (shape){t.mm_tile_m + 4, 8, 20}, 1, 3, 4, 0, 0, 1, 0);
        /* A four-wide shape whose A is not 16-byte aligned. */
        run_case(ctx, &rng, layout, (shape){12, 20, 36}, 0, 1, 0, 0, 0, 0, 1);
    }
    check_backward_pair(ctx, &rng);
    check_split(ctx, &rng);
    check_refusals(ctx);
    return test_finish(ctx);
}
