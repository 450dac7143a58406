// lws-test: vulkan kernel
/* The count of non-finite parameters over a multi-tensor table against a
 * count on the host: NaNs of both signs and payloads, both infinities, and
 * the finite values nearest them (FLT_MAX, the smallest subnormal, -0) that
 * must not count; tensors of odd sizes around the 4096-element chunk and one
 * of zero elements, a chunk made only of NaNs, more chunks than a workgroup
 * has invocations, no non-finite value at all, and only count[0] written. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/nonfinite.h"

typedef struct job {
    lws_buffer count, table, scratch;
    uint32_t n_tensors, total_chunks;
} job;

static void record(lws_cmd *cmd, void *arg) {
    job *j = arg;
    lws_op_count_nonfinite(cmd, j->count, j->table, j->n_tensors, j->total_chunks, j->scratch);
}

static float bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Values that are not finite, then values that are (and must not count). */
static float special(test_rng *rng, int finite) {
    static const uint32_t bad[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u,
                                   0x7fffffffu, 0x7f800000u, 0xff800000u};
    const float good[] = {FLT_MAX, -FLT_MAX, bits(1), -0.0f, FLT_MIN, 1e30f};
    uint32_t k = (uint32_t)(test_rng_next(rng) % 6);
    return finite ? good[k] : bits(bad[k]);
}

/* sizes[t] elements per tensor; every `every`-th element made non-finite
 * (0: none) plus finite specials beside them; all_bad: tensor 1 only NaNs. */
static void run_table(lws_context *ctx, test_rng *rng, const uint32_t *sizes, uint32_t n_tensors,
                      uint32_t every, int all_bad, const char *name) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_optim_entry *table = test_malloc(n_tensors * sizeof *table);
    uint32_t total_chunks = 0;
    uint64_t want = 0;
    for (uint32_t t = 0; t < n_tensors; t++) {
        uint32_t n = sizes[t] ? sizes[t] : 1; /* a zero-size tensor still points at a buffer */
        float *p = test_random_floats(rng, n, 1.0);
        for (uint32_t i = 0; i < sizes[t]; i++) {
            if (all_bad && t == 1)
                p[i] = bits(0x7fc00000u);
            else if (every && test_rng_next(rng) % every == 0)
                p[i] = special(rng, 0);
            else if (test_rng_next(rng) % 97 == 0)
                p[i] = special(rng, 1);
            want += !isfinite(p[i]);
        }
        if (!sizes[t]) p[0] = bits(0x7fc00000u); /* past the tensor's end: never read */
        lws_buffer b = test_upload_floats(ctx, p, n);
        table[t] = (lws_optim_entry){.param = b.addr, .n = sizes[t], .first_chunk = total_chunks};
        total_chunks += (sizes[t] + LWS_OPTIM_CHUNK - 1) / LWS_OPTIM_CHUNK;
        free(p);
    }
    /* count[0] sits inside a 16-float buffer whose other floats must stay. */
    float around[16];
    for (int i = 0; i < 16; i++) around[i] = (float)(i + 1);
    lws_buffer holder = test_upload_floats(ctx, around, 16);
    job j = {lws_buffer_slice(holder, 40, 4), test_upload(ctx, table, n_tensors * sizeof *table),
             test_output(ctx, total_chunks ? total_chunks : 1), n_tensors, total_chunks};
    test_run(ctx, record, &j);
    float got[16];
    test_download(ctx, holder, got, 16);
    CHECK(got[10] == (float)want, "%s: %.0f non-finite counted, want %llu (%u tensors, %u chunks)",
          name, got[10], (unsigned long long)want, n_tensors, total_chunks);
    int others = 1;
    for (int i = 0; i < 16; i++) others &= i == 10 || got[i] == around[i];
    CHECK(others, "%s: floats other than count[0] were written", name);
    /* The same count again: nothing carried over from the first run. */
    test_run(ctx, record, &j);
    test_download(ctx, holder, got, 16);
    CHECK(got[10] == (float)want, "%s: rerun counted %.0f", name, got[10]);
    free(table);
    lws_arena_reset(ctx, mark);
}

int main(void) {
    lws_context *ctx = test_context();
    test_rng rng;
    test_rng_seed(&rng, 17);
    const uint32_t one[] = {1};
    run_table(ctx, &rng, one, 1, 1, 0, "one NaN");
    run_table(ctx, &rng, one, 1, 0, 0, "one finite");
    const uint32_t odd[] = {1, 4095, 4097, 10007, 0, 4096, 3, 1100003, 65537};
    const uint32_t n_odd = sizeof odd / sizeof *odd;
    run_table(ctx, &rng, odd, n_odd, 0, 0, "odd sizes, all finite");
    run_table(ctx, &rng, odd, n_odd, 50000, 0, "odd sizes, a few non-finite");
    run_table(ctx, &rng, odd, n_odd, 3, 0, "odd sizes, a third non-finite");
    run_table(ctx, &rng, odd, n_odd, 0, 1, "a tensor of NaNs only");
    enum { MANY = 301 };
    uint32_t many[MANY];
    for (int i = 0; i < MANY; i++) many[i] = 1 + (uint32_t)(test_rng_uniform(&rng) * 9000);
    run_table(ctx, &rng, many, MANY, 7000, 0, "301 tensors");
    return test_finish(ctx);
}
