// lws-test: vulkan
/* The runtime: device record, arena, transfers, grids larger than the
 * device's workgroup-count limit, reusable command buffers, timestamps, the
 * pipeline cache, and error messages. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "ops/ops.h"

typedef struct iota_push {
    uint64_t out;
    uint32_t n, offset, groups_x, groups_y;
} iota_push;

static void check_caps(lws_context *ctx) {
    const lws_device_caps *c = lws_context_caps(ctx);
    CHECK(c->buffer_device_address, "buffer device address is required");
    CHECK(c->subgroup_size >= 1 && c->subgroup_size <= 128, "subgroup size %u", c->subgroup_size);
    CHECK(c->max_shared_memory >= 16384, "shared memory %u", c->max_shared_memory);
    CHECK(c->heap_count >= 1 && c->device_local_bytes > 0, "memory heaps");
    const char *width = getenv("LP_NATIVE_VECTOR_WIDTH");
    if (width && strstr(c->name, "llvmpipe")) {
        /* lavapipe runs one fp32 lane per 32 bits of its native vector. */
        uint32_t want = (uint32_t)atoi(width) / 32;
        CHECK(c->subgroup_size == want, "LP_NATIVE_VECTOR_WIDTH=%s: subgroup %u, expected %u",
              width, c->subgroup_size, want);
    }
}

static void check_arena(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    VkDeviceSize before = lws_memory_in_use(ctx);
    lws_buffer a, b, big;
    CHECK_OK(lws_alloc(ctx, 1, &a));
    CHECK_OK(lws_alloc(ctx, 1000, &b));
    CHECK(a.addr % 256 == 0 && b.addr % 256 == 0, "allocations are 256-byte aligned");
    CHECK(b.addr >= a.addr + 256 || b.buffer != a.buffer, "allocations do not overlap");
    /* Larger than the default block: gets a block of its own. */
    CHECK_OK(lws_alloc(ctx, (VkDeviceSize)300 << 20, &big));
    CHECK(big.size == (VkDeviceSize)300 << 20, "big allocation size");
    VkDeviceSize peak = lws_memory_peak(ctx);
    CHECK(peak >= before + ((VkDeviceSize)300 << 20), "peak accounts the big allocation");
    lws_arena_reset(ctx, mark);
    CHECK(lws_memory_in_use(ctx) == before, "reset releases to the mark");
    CHECK(lws_memory_peak(ctx) == peak, "peak survives a reset");
}

static void check_transfers(lws_context *ctx) {
    /* More than the 64 MiB staging buffer, odd length: chunked both ways. */
    size_t bytes = ((size_t)65 << 20) + 12;
    uint8_t *src = test_malloc(bytes), *dst = test_malloc(bytes);
    for (size_t i = 0; i < bytes; i++) src[i] = (uint8_t)(i * 2654435761u >> 13);
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer buf;
    CHECK_OK(lws_alloc(ctx, bytes, &buf));
    CHECK_OK(lws_upload(ctx, buf, src, bytes));
    memset(dst, 0, bytes);
    CHECK_OK(lws_download(ctx, buf, dst, bytes));
    CHECK(memcmp(src, dst, bytes) == 0, "upload then download returns the same bytes");
    lws_buffer small = lws_buffer_slice(buf, 0, 16);
    CHECK(lws_upload(ctx, small, src, 17) == LWS_ERR_INVALID, "an upload past the end is refused");
    lws_arena_reset(ctx, mark);
    free(src), free(dst);
}

static void check_big_grid(lws_context *ctx) {
    const lws_device_caps *c = lws_context_caps(ctx);
    /* One more workgroup than a dispatch may have in x: lws_cmd_dispatch
     * must split it, and every element must still be written once. */
    uint32_t groups = c->max_workgroup_count[0] + 1, wg = 4;
    uint32_t n = groups * wg - 3;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer out = test_output(ctx, n);
    lws_pipeline *pipe;
    uint32_t spec[1] = {wg};
    CHECK_OK(lws_pipeline_get(ctx, "iota", spec, 1, &pipe));
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    iota_push push = {out.addr, n, 5, groups, 1};
    lws_cmd_writes(cmd, lws_buffer_slice(out, 0, 4ull * n));
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    CHECK_OK(lws_cmd_end(cmd));
    CHECK_OK(lws_submit(ctx, &cmd, 1));
    lws_cmd_destroy(cmd);
    uint32_t *got = test_malloc((size_t)n * 4);
    CHECK_OK(lws_download(ctx, out, got, (size_t)n * 4));
    size_t bad = 0;
    for (uint32_t i = 0; i < n; i++) bad += got[i] != i + 5;
    CHECK(bad == 0, "split grid of %u workgroups: %zu wrong elements", groups, bad);
    printf("ok   grid of %u workgroups (limit %u) wrote all %u elements\n", groups,
           c->max_workgroup_count[0], n);
    free(got);
    lws_arena_reset(ctx, mark);
}

static void check_reusable(lws_context *ctx) {
    /* A command buffer recorded once and submitted three times: y += x each time. */
    enum { N = 1000 };
    float x[N], y[N], got[N];
    for (int i = 0; i < N; i++) x[i] = (float)i, y[i] = 1.0f;
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer bx = test_upload_floats(ctx, x, N), by = test_upload_floats(ctx, y, N);
    lws_timer *timer;
    CHECK_OK(lws_timer_create(ctx, 4, &timer));
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 1, &cmd));
    int region = lws_cmd_region_begin(cmd, timer, "axpby");
    CHECK_OK(lws_op_axpby(cmd, by, bx, by, 1.0f, 1.0f, N));
    lws_cmd_region_end(cmd, timer, region);
    CHECK_OK(lws_cmd_end(cmd));
    for (int k = 0; k < 3; k++) CHECK_OK(lws_submit(ctx, &cmd, 1));
    double ms[4];
    CHECK_OK(lws_timer_read(ctx, timer, ms, 4));
    if (lws_context_caps(ctx)->timestamp_period_ns > 0) {
        CHECK(region == 0 && lws_timer_count(timer) == 1, "one region recorded");
        CHECK(strcmp(lws_timer_name(timer, 0), "axpby") == 0, "region name");
        CHECK(ms[0] >= 0 && ms[0] < 10000, "region time %.3f ms", ms[0]);
    }
    lws_cmd_destroy(cmd);
    lws_timer_destroy(timer);
    test_download(ctx, by, got, N);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += got[i] != 1.0f + 3.0f * (float)i;
    CHECK(bad == 0, "reusable command buffer ran three times (%d wrong)", bad);
    lws_arena_reset(ctx, mark);
}

static void check_errors(void) {
    lws_context *ctx = NULL;
    lws_context_options opt = {.device = "no-such-gpu-name", .validation = -1, .pipeline_cache = 0};
    CHECK(lws_context_create(&opt, &ctx) == LWS_ERR_INVALID, "unknown device name is refused");
    CHECK(strstr(lws_error_message(), "no-such-gpu-name") != NULL, "message names the device: %s",
          lws_error_message());
    opt.device = "99";
    CHECK(lws_context_create(&opt, &ctx) == LWS_ERR_INVALID, "device index out of range");
    CHECK(strstr(lws_error_message(), "numbered 0 to") != NULL, "message gives the range: %s",
          lws_error_message());
}

static void check_pipeline_cache(void) {
    const char *base = getenv("LWS_TEST_DIR");
    char dir[1024], file[1200];
    snprintf(dir, sizeof dir, "%s/runtime-cache-%d", base ? base : "/tmp", (int)getpid());
    mkdir(base ? base : "/tmp", 0755);
    setenv("XDG_CACHE_HOME", dir, 1);
    lws_context_options opt = {.device = NULL, .validation = -1, .pipeline_cache = 1};
    for (int round = 0; round < 3; round++) {
        lws_context *ctx;
        CHECK_OK(lws_context_create(&opt, &ctx));
        lws_pipeline *p;
        uint32_t spec[1] = {64};
        CHECK_OK(lws_pipeline_get(ctx, "axpby", spec, 1, &p));
        CHECK(lws_pipeline_get(ctx, "no_such_shader", NULL, 0, &p) == LWS_ERR_INVALID,
              "unknown shader refused");
        lws_context_destroy(ctx);
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "ls %s/lws/pipelines-*.bin > /dev/null 2>&1", dir);
        CHECK(system(cmd) == 0, "round %d: the pipeline cache file is written under %s/lws", round,
              dir);
        if (round == 1) {
            /* A damaged cache file must be ignored, not crash or fail. */
            snprintf(cmd, sizeof cmd, "for f in %s/lws/pipelines-*.bin; do echo garbage > $f; done",
                     dir);
            CHECK(system(cmd) == 0, "damage the cache");
        }
    }
    snprintf(file, sizeof file, "rm -rf %s", dir);
    CHECK(system(file) == 0, "clean up");
    unsetenv("XDG_CACHE_HOME");
}

int main(void) {
    lws_context *ctx = test_context();
    check_caps(ctx);
    check_arena(ctx);
    check_transfers(ctx);
    check_big_grid(ctx);
    check_reusable(ctx);
    lws_context_destroy(ctx);
    check_errors();
    check_pipeline_cache();
    return test_finish(NULL);
}
