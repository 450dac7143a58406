// lws-test: vulkan
/* Choosing a device and its kernel table: LWS_TUNING (or the context option)
 * forces a vendor's table on any device, the tuning sees that vendor's id and
 * limits while the real device's stay in lws_context_caps, bad values are
 * refused with the allowed ones; LWS_SKIP_BARRIER and LWS_CHECK_HAZARDS are
 * read at context creation; the device's caps carry the limits and features
 * lws relies on. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/tuning.h"

static lws_status create(const char *tuning, lws_context **ctx) {
    lws_context_options opt = {.validation = -1, .pipeline_cache = -1, .tuning = tuning};
    *ctx = NULL;
    return lws_context_create(&opt, ctx);
}

static void check_forced(void) {
    static const struct {
        const char *name;
        uint32_t vendor_id, shared;
    } tables[] = {{"nvidia", 0x10DE, 48 << 10},
                  {"amd", 0x1002, 64 << 10},
                  {"intel", 0x8086, 64 << 10},
                  {"generic", 0xFFFF, 16 << 10}};
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        lws_context *ctx;
        CHECK_OK(create(tables[i].name, &ctx));
        if (!ctx) continue;
        const lws_device_caps *real = lws_context_caps(ctx), *seen = lws_context_tuning_caps(ctx);
        const char *name = lws_context_tuning_name(ctx);
        CHECK(name && strcmp(name, tables[i].name) == 0, "%s: tuning name '%s'", tables[i].name,
              name ? name : "(none)");
        CHECK(seen->vendor_id == tables[i].vendor_id && seen->max_shared_memory == tables[i].shared,
              "%s: the tuning sees vendor 0x%x, %u bytes of shared memory", tables[i].name,
              seen->vendor_id, seen->max_shared_memory);
        CHECK(real->vendor_id != seen->vendor_id, "%s: the real device's caps are unchanged",
              tables[i].name);
        /* A GPU table: one attention row and 32 matvec invocations per row,
         * where the CPU's has 4 and 4. */
        lws_tuning t = lws_tuning_get(ctx), own;
        lws_tuning_for(real, &own);
        CHECK(t.attn_rows_per_invocation == 1 && t.matvec_threads == 32 && t.row_threads == 128,
              "%s: GPU choices (rows %u, matvec %u, row threads %u)", tables[i].name,
              t.attn_rows_per_invocation, t.matvec_threads, t.row_threads);
        CHECK(own.attn_rows_per_invocation == 4, "%s: the device's own table is still lavapipe's",
              tables[i].name);
        /* Attention's GPU form (4 lanes per row) on the vendors' tables; the
         * generic table and lavapipe keep the row form. */
        uint32_t lanes = tables[i].vendor_id == 0xFFFF ? 1 : 4;
        CHECK(t.attn_lanes_per_row == lanes && own.attn_lanes_per_row == 1,
              "%s: attention lanes per row %u (want %u), the device's own %u", tables[i].name,
              t.attn_lanes_per_row, lanes, own.attn_lanes_per_row);
        /* Weight gradients split over k on every GPU table, never on lavapipe's. */
        CHECK(t.mm_split_k_max == 16 && t.mm_split_k_depth == 256 && own.mm_split_k_max == 1,
              "%s: split over k up to %u slices of %u (the device's own: %u)", tables[i].name,
              t.mm_split_k_max, t.mm_split_k_depth, own.mm_split_k_max);
        printf("ok   LWS_TUNING=%s: vendor 0x%x, %u KiB, matmul tiles %ux%u\n", tables[i].name,
               seen->vendor_id, seen->max_shared_memory / 1024, t.mm_tile_m, t.mm_tile_n);
        lws_context_destroy(ctx);
    }
    lws_context *ctx;
    CHECK_OK(create("auto", &ctx));
    if (ctx) {
        CHECK(!lws_context_tuning_name(ctx) &&
                  lws_context_tuning_caps(ctx)->vendor_id == lws_context_caps(ctx)->vendor_id,
              "auto: the device's own table");
        lws_context_destroy(ctx);
    }
}

static void expect_refused(const char *what, lws_status s, const char *const *parts) {
    const char *msg = lws_error_message();
    int ok = s == LWS_ERR_INVALID;
    for (const char *const *p = parts; *p; p++) ok &= test_contains(msg, *p);
    CHECK(ok, "%s: status %d, message '%s'", what, s, msg);
    printf("%s %s refused: %s\n", ok ? "ok  " : "FAIL", what, msg);
}

static void check_bad_values(void) {
    lws_context *ctx;
    const char *option[] = {"'nvdia'", "nvidia, amd, intel, generic, auto", NULL};
    expect_refused("tuning option 'nvdia'", create("nvdia", &ctx), option);
    CHECK(ctx == NULL, "no context after a refusal");

    setenv("LWS_TUNING", "NVIDIA", 1);
    const char *env[] = {"LWS_TUNING", "'NVIDIA'", "allowed: nvidia, amd", NULL};
    expect_refused("LWS_TUNING=NVIDIA", create(NULL, &ctx), env);
    unsetenv("LWS_TUNING");

    setenv("LWS_SKIP_BARRIER", "two", 1);
    const char *skip[] = {"LWS_SKIP_BARRIER", "'two'", NULL};
    expect_refused("LWS_SKIP_BARRIER=two", create(NULL, &ctx), skip);
    unsetenv("LWS_SKIP_BARRIER");
}

static void check_environment(void) {
    const char *keep = getenv("LWS_CHECK_HAZARDS");
    char *saved = keep ? strdup(keep) : NULL;
    lws_context *ctx;
    setenv("LWS_CHECK_HAZARDS", "1", 1);
    CHECK_OK(create(NULL, &ctx));
    CHECK(ctx && lws_context_checks_hazards(ctx), "LWS_CHECK_HAZARDS=1 turns checking on");
    lws_context_destroy(ctx);
    setenv("LWS_CHECK_HAZARDS", "0", 1);
    CHECK_OK(create(NULL, &ctx));
    CHECK(ctx && !lws_context_checks_hazards(ctx), "LWS_CHECK_HAZARDS=0 turns it off");
    lws_context_destroy(ctx);
    if (saved)
        setenv("LWS_CHECK_HAZARDS", saved, 1);
    else
        unsetenv("LWS_CHECK_HAZARDS");
    free(saved);
}

int main(void) {
    check_forced();
    check_bad_values();
    check_environment();
    lws_context *ctx = test_context();
    const lws_device_caps *c = lws_context_caps(ctx);
    CHECK(c->shader_int64 && c->buffer_device_address && c->scalar_block_layout,
          "the chosen device has int64, buffer device address and scalar block layout");
    CHECK(c->max_allocation_size > 0 && c->max_buffer_size > 0,
          "maxMemoryAllocationSize %llu and maxBufferSize %llu are known",
          (unsigned long long)c->max_allocation_size, (unsigned long long)c->max_buffer_size);
    CHECK(c->timestamp_period_ns > 0 && c->timestamp_valid_bits > 0,
          "lavapipe's compute queue has timestamps (%g ns, %u valid bits)",
          (double)c->timestamp_period_ns, c->timestamp_valid_bits);
    /* The arena's blocks respect both limits: a tensor larger than one
     * buffer may be is refused, naming them. */
    uint64_t limit =
        c->max_buffer_size < c->max_allocation_size ? c->max_buffer_size : c->max_allocation_size;
    lws_buffer b;
    lws_status s = lws_alloc(ctx, limit + 4096, &b);
    const char *parts[] = {"maxBufferSize", "maxMemoryAllocationSize", c->name, NULL};
    int ok = s == LWS_ERR_OUT_OF_MEMORY;
    for (const char *const *p = parts; *p; p++) ok &= test_contains(lws_error_message(), *p);
    CHECK(ok, "a tensor over the device's buffer limit: status %d, '%s'", s, lws_error_message());
    printf("%s a tensor over the buffer limit refused: %s\n", ok ? "ok  " : "FAIL",
           lws_error_message());
    return test_finish(ctx);
}
