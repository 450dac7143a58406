// lws-test: vulkan kernel
/* A weight gradient split over k (ops/matmul_split.c): C (+)= A[K, M]^T .
 * B[K, N] as slices of K writing fp32 partial sums into the command buffer's
 * scratch and their sum deferred to after the next barrier. Against the fp64
 * reference (sizes that are multiples of no tile, a shorter last slice, the
 * four-wide path, accumulate on and off, fp32 and bf16 / fp16 operands with
 * outputs of their type or fp32), bit for bit against the slices' products
 * recorded one by one and summed on the host in slice order, NaN-poisoned
 * outputs, scratch and guards; the choice of slices (LWS_MATMUL_SPLIT_K), a
 * short scratch, two splits in one phase, the barrier counts the hazard
 * checker judges, and refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/matmul.h"

#define GUARD 8

/* One TN problem and the buffers it runs on. */
typedef struct job {
    lws_buffer c, a, b, scratch;
    uint32_t m, n, k, slices; /* slices 0: lws_op_matmul decides */
    int accumulate;
    lws_buffer c2; /* a second product into c2 in the same phase (same A, B) */
} job;

static lws_matmul_args args_of(const job *j, lws_buffer c) {
    return (lws_matmul_args){LWS_MM_TN, c, j->a, j->b, j->m, j->n, j->k, j->accumulate, 1, 0, 0, 0};
}

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    if (j->scratch.buffer) lws_cmd_set_scratch(cmd, j->scratch);
    if (!j->slices) {
        lws_op_matmul(cmd, LWS_MM_TN, j->c, j->a, j->b, j->m, j->n, j->k, j->accumulate);
        if (j->c2.buffer)
            lws_op_matmul(cmd, LWS_MM_TN, j->c2, j->a, j->b, j->m, j->n, j->k, j->accumulate);
        return; /* lws_cmd_end records the barrier the sums wait for */
    }
    lws_matmul_args p = args_of(j, j->c);
    int handled = 0;
    if (lws_matmul_split_with(cmd, &p, j->slices, &handled) == LWS_OK && !handled)
        lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID, "the split was not recorded"));
}

/* The slices' products one by one (no scratch: never split) into parts[s]. */
typedef struct slices_job {
    const job *j;
    lws_buffer parts;
    uint32_t depth, count;
} slices_job;

static void record_slices(lws_cmd *cmd, void *arg) {
    slices_job *s = arg;
    const job *j = s->j;
    uint32_t ea = lws_dtype_bytes(j->a.dtype), eb = lws_dtype_bytes(j->b.dtype);
    for (uint32_t i = 0; i < s->count; i++) {
        uint32_t k0 = i * s->depth, k = j->k - k0 < s->depth ? j->k - k0 : s->depth;
        lws_buffer c = lws_buffer_slice(s->parts, 4ull * i * j->m * j->n, 4ull * j->m * j->n);
        lws_buffer a = lws_buffer_slice(j->a, (uint64_t)ea * k0 * j->m, (uint64_t)ea * k * j->m);
        lws_buffer b = lws_buffer_slice(j->b, (uint64_t)eb * k0 * j->n, (uint64_t)eb * k * j->n);
        lws_op_matmul(cmd, LWS_MM_TN, c, a, b, j->m, j->n, k, 0);
    }
}

/* The split's result as the host predicts it bit for bit: the slices'
 * products summed in slice order in fp32, added to c0, rounded to C's type. */
static void predict(lws_context *ctx, const job *j, uint32_t slices, const float *c0, float *out) {
    uint32_t depth = ((j->k + slices - 1) / slices + 15) / 16 * 16;
    uint32_t count = (j->k + depth - 1) / depth;
    size_t mn = (size_t)j->m * j->n;
    slices_job s = {j, test_output(ctx, count * mn), depth, count};
    test_run(ctx, record_slices, &s);
    float *parts = test_malloc(count * mn * sizeof *parts);
    test_download(ctx, s.parts, parts, count * mn);
    for (size_t i = 0; i < mn; i++) {
        float sum = parts[i];
        for (uint32_t p = 1; p < count; p++) sum += parts[p * mn + i];
        if (j->accumulate) sum = c0[i] + sum;
        out[i] = test_round(sum, j->c.dtype);
    }
    free(parts);
}

/* Expected dispatches of j's recording: the slices' products (one batch and
 * a shorter last slice) and the sum, or the one product. */
static uint32_t expected_dispatches(uint32_t k, uint32_t slices) {
    if (slices < 2) return 1;
    uint32_t depth = ((k + slices - 1) / slices + 15) / 16 * 16;
    return 1 + (k % depth != 0) + 1;
}

typedef struct types {
    lws_dtype ab, c;
} types;

/* One case: C0 random (accumulate) or NaN, NaN guards after C and a
 * NaN-filled scratch; checks the fp64 reference, the guards, the host's bit
 * prediction and the dispatch and barrier counts. */
static void run_case(lws_context *ctx, test_rng *rng, uint32_t m, uint32_t n, uint32_t k,
                     uint32_t slices, int accumulate, types t, uint64_t scratch_bytes) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    size_t mn = (size_t)m * n;
    float *a = test_random_floats(rng, (size_t)k * m, 1.0);
    float *b = test_random_floats(rng, (size_t)k * n, 1.0);
    float *c0 = test_random_floats(rng, mn + GUARD, 1.0);
    for (size_t i = 0; i < (size_t)k * m; i++) a[i] = test_round(a[i], t.ab);
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = test_round(b[i], t.ab);
    for (size_t i = 0; i < mn + GUARD; i++)
        c0[i] = accumulate && i < mn ? test_round(c0[i], t.c) : NAN;
    job j = {.a = test_upload_as(ctx, a, (size_t)k * m, t.ab),
             .b = test_upload_as(ctx, b, (size_t)k * n, t.ab),
             .c = test_upload_as(ctx, c0, mn + GUARD, t.c),
             .scratch = test_output(ctx, scratch_bytes / 4),
             .m = m,
             .n = n,
             .k = k,
             .slices = slices,
             .accumulate = accumulate};
    lws_matmul_args p = args_of(&j, j.c);
    uint32_t chosen = slices ? slices : lws_matmul_split_slices(ctx, &p, 0);
    if (!slices && (uint64_t)chosen * mn * 4 > scratch_bytes)
        chosen = (uint32_t)(scratch_bytes / (4 * mn));

    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    record(cmd, &j);
    uint32_t dispatches, barriers, total, unneeded;
    lws_cmd_counts(cmd, &dispatches, &barriers);
    CHECK(barriers == 0, "%u barriers before the end; a split records none of its own", barriers);
    CHECK_OK(lws_cmd_end(cmd));
    lws_cmd_counts(cmd, &dispatches, &barriers);
    lws_cmd_barrier_stats(cmd, &total, &unneeded);
    CHECK_OK(lws_submit(ctx, &cmd, 1));
    lws_cmd_destroy(cmd);

    char what[160];
    snprintf(what, sizeof what, "TN %ux%ux%u %s%s%s, %u slices%s", m, n, k, lws_dtype_name(t.ab),
             t.c != t.ab ? "->" : "", t.c != t.ab ? lws_dtype_name(t.c) : "", chosen,
             accumulate ? ", accumulate" : "");
    CHECK(dispatches == expected_dispatches(k, chosen) && unneeded == 0,
          "%s: %u dispatches (want %u), %u of %u barriers unneeded", what, dispatches,
          expected_dispatches(k, chosen), unneeded, total);
    float *got = test_malloc((mn + GUARD) * sizeof *got);
    test_download_as(ctx, j.c, got, mn + GUARD);
    double *ad = test_to_double(a, (size_t)k * m), *bd = test_to_double(b, (size_t)k * n);
    double *want = test_to_double(c0, mn);
    ref_matmul(LWS_MM_TN, want, ad, bd, m, n, k, accumulate);
    /* fp32 sums of k N(0,1) products (test_matmul.c's bounds) and the
     * output's rounding when it is 16-bit */
    double u = t.c == LWS_F32 ? 0 : test_unit_roundoff(t.c), biggest = 0;
    for (size_t i = 0; i < mn; i++) biggest = fmax(biggest, fabs(want[i]));
    CHECK_CLOSE(what, got, want, mn, 1e-6 * (k + 2) + u * biggest, 1e-5 + u);
    size_t written = 0;
    for (size_t i = mn; i < mn + GUARD; i++) written += !isnan(got[i]);
    CHECK(written == 0, "%s: %zu guard elements after C were written", what, written);
    if (chosen >= 2) {
        float *bits = test_malloc(mn * sizeof *bits);
        predict(ctx, &j, chosen, c0, bits);
        test_checks++;
        if (!test_bitwise_equal(what, got, bits, mn)) test_failures++;
        free(bits);
    }
    free(a), free(b), free(c0), free(ad), free(bd), free(want), free(got);
    lws_arena_reset(ctx, mark);
}

/* Two splits in one phase take separate scratch regions; both sums land. */
static void two_in_a_phase(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    uint32_t m = 24, n = 20, k = 160;
    size_t mn = (size_t)m * n;
    float *a = test_random_floats(rng, (size_t)k * m, 1.0);
    float *b = test_random_floats(rng, (size_t)k * n, 1.0);
    job j = {.a = test_upload_floats(ctx, a, (size_t)k * m),
             .b = test_upload_floats(ctx, b, (size_t)k * n),
             .c = test_output(ctx, mn),
             .c2 = test_output(ctx, mn),
             .scratch = test_output(ctx, 2 * 4 * mn * 4 / 4 + 512),
             .m = m,
             .n = n,
             .k = k};
    lws_matmul_args p = args_of(&j, j.c);
    uint32_t slices = lws_matmul_split_slices(ctx, &p, 0);
    CHECK(slices == 4, "TN %ux%ux%u under LWS_MATMUL_SPLIT_K=4x16: %u slices, want 4", m, n, k,
          slices);
    test_run(ctx, record, &j);
    double *ad = test_to_double(a, (size_t)k * m), *bd = test_to_double(b, (size_t)k * n);
    double *want = test_malloc(mn * sizeof *want);
    ref_matmul(LWS_MM_TN, want, ad, bd, m, n, k, 0);
    float *got = test_malloc(mn * sizeof *got);
    test_download(ctx, j.c, got, mn);
    CHECK_CLOSE("first of two splits in one phase", got, want, mn, 1e-6 * (k + 2), 1e-5);
    test_download(ctx, j.c2, got, mn);
    CHECK_CLOSE("second of two splits in one phase", got, want, mn, 1e-6 * (k + 2), 1e-5);
    free(a), free(b), free(ad), free(bd), free(want), free(got);
    lws_arena_reset(ctx, mark);
}

/* The scratch allocator: a region taken for 2 barriers is free after them. */
static void scratch_regions(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    CHECK(lws_cmd_scratch_room(cmd) == 0, "a command buffer without scratch has room");
    lws_cmd_set_scratch(cmd, test_output(ctx, 256)); /* 1024 bytes */
    lws_buffer r1, r2, r3;
    CHECK(lws_cmd_scratch_take(cmd, 300, 2, &r1) && r1.size == 300, "first region");
    CHECK(lws_cmd_scratch_room(cmd) == 512, "room after 300 bytes at 256 alignment: %llu",
          (unsigned long long)lws_cmd_scratch_room(cmd));
    CHECK(lws_cmd_scratch_take(cmd, 500, 1, &r2) && r2.offset == r1.offset + 512,
          "second region after the first, aligned");
    CHECK(!lws_cmd_scratch_take(cmd, 100, 2, &r3), "a third region in 12 bytes");
    lws_cmd_barrier(cmd); /* r2 free, r1 still held */
    CHECK(lws_cmd_scratch_room(cmd) == 512, "room after one barrier: %llu",
          (unsigned long long)lws_cmd_scratch_room(cmd));
    lws_cmd_barrier(cmd);
    CHECK(lws_cmd_scratch_room(cmd) == 1024, "room after two barriers: %llu",
          (unsigned long long)lws_cmd_scratch_room(cmd));
    /* all 16 regions held (of 256 bytes each, aligned), then free again
     * after their barrier */
    lws_cmd_set_scratch(cmd, test_output(ctx, 2048)); /* 8192 bytes */
    for (int i = 0; i < 16; i++) CHECK(lws_cmd_scratch_take(cmd, 16, 1, &r3), "region %d of 16", i);
    CHECK(!lws_cmd_scratch_take(cmd, 16, 1, &r3) && lws_cmd_scratch_room(cmd) == 0,
          "a 17th region while 16 are held");
    lws_cmd_barrier(cmd);
    CHECK(lws_cmd_scratch_room(cmd) == 8192, "room after the 16 regions' barrier: %llu",
          (unsigned long long)lws_cmd_scratch_room(cmd));
    CHECK_OK(lws_cmd_end(cmd));
    lws_cmd_destroy(cmd);
    lws_arena_reset(ctx, mark);
}

static void nothing(lws_cmd *cmd, const void *arg) {
    (void)cmd, (void)arg;
}
static void too_much_deferred(lws_cmd *cmd, void *arg) {
    (void)arg;
    for (int i = 0; i <= LWS_DEFERRED_MAX; i++) lws_cmd_defer(cmd, nothing, NULL, 0);
}

typedef struct sum_job {
    lws_buffer out, parts;
} sum_job;
static void record_sum(lws_cmd *cmd, void *arg) {
    sum_job *s = arg;
    lws_op_sum_slices(cmd, s->out, s->parts, 2, 16, 0);
}

static void refusals(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    test_expect_refused(ctx, "17 pieces of deferred work", too_much_deferred, NULL,
                        "waiting for the next barrier");
    sum_job s = {test_output(ctx, 16), test_output_as(ctx, 32, LWS_BF16)};
    test_expect_refused(ctx, "sum_slices of bf16 parts", record_sum, &s, "parts must be f32");
    s.parts = test_output(ctx, 32);
    s.out = lws_buffer_slice(s.parts, 64, 64);
    test_expect_refused(ctx, "sum_slices into its parts", record_sum, &s, "overlaps the parts");
    /* what the whole product would refuse, refused when it would be split */
    job bad = {.a = test_output_as(ctx, 160 * 24, LWS_BF16),
               .b = test_output_as(ctx, 160 * 20, LWS_BF16),
               .c = test_output_as(ctx, 24 * 20, LWS_F16),
               .scratch = test_output(ctx, 8192),
               .m = 24,
               .n = 20,
               .k = 160};
    test_expect_refused(ctx, "a split product into f16 from bf16", record, &bad,
                        "C be of their type or f32");
    bad.a = test_output(ctx, 160 * 24);
    bad.b = test_output(ctx, 160 * 20);
    bad.c = lws_buffer_slice(bad.a, 0, 4 * 24 * 20);
    test_expect_refused(ctx, "a split product into its own A", record, &bad, "C overlaps A or B");
    setenv("LWS_MATMUL_SPLIT_K", "4y16", 1);
    job j = {.a = test_output(ctx, 64),
             .b = test_output(ctx, 64),
             .c = test_output(ctx, 64),
             .m = 8,
             .n = 8,
             .k = 8};
    test_expect_refused(ctx, "LWS_MATMUL_SPLIT_K=4y16", record, &j, "LWS_MATMUL_SPLIT_K = '4y16'");
    setenv("LWS_MATMUL_SPLIT_K", "4x16", 1);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 1234);
    const types f32 = {LWS_F32, LWS_F32}, bf16 = {LWS_BF16, LWS_BF16},
                bf16_c32 = {LWS_BF16, LWS_F32}, f16 = {LWS_F16, LWS_F16},
                f16_c32 = {LWS_F16, LWS_F32};
    const uint64_t roomy = 1 << 20;
    /* given slices: a shorter last slice (301 = 2 x 160 - 19, 3 x 112 - 35,
     * 5 x 64 - 19), none (512 = 4 x 128), and 2 slices of 16 */
    run_case(ctx, &rng, 37, 53, 301, 2, 0, f32, roomy);
    run_case(ctx, &rng, 37, 53, 301, 3, 1, f32, roomy);
    run_case(ctx, &rng, 37, 53, 301, 5, 0, bf16_c32, roomy);
    run_case(ctx, &rng, 64, 48, 512, 4, 1, f32, roomy);
    run_case(ctx, &rng, 64, 48, 512, 4, 1, bf16, roomy);
    run_case(ctx, &rng, 17, 9, 32, 2, 1, f16, roomy);
    run_case(ctx, &rng, 40, 24, 200, 3, 0, f16_c32, roomy);
    /* the choice: LWS_MATMUL_SPLIT_K=4x16 (at most 4 slices of 16 or more)
     * on every table; a scratch of room for 2 slices; too small for any */
    setenv("LWS_MATMUL_SPLIT_K", "4x16", 1);
    run_case(ctx, &rng, 40, 24, 200, 0, 1, f32, roomy);
    run_case(ctx, &rng, 40, 24, 200, 0, 0, bf16, 2 * 4 * 40 * 24 + 256);
    run_case(ctx, &rng, 40, 24, 200, 0, 0, f32, 4 * 40 * 24);
    run_case(ctx, &rng, 40, 24, 24, 0, 1, f32, roomy); /* k too short: 1 slice */
    two_in_a_phase(ctx, &rng);
    scratch_regions(ctx);
    refusals(ctx);
    unsetenv("LWS_MATMUL_SPLIT_K");
    return test_finish(ctx);
}
