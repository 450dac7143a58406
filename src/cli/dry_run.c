/* --dry-run: will this config fit this device? The schedule and the memory
 * plan, checked against the device's limits, without allocating anything. */
#include <stdio.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "lws/model.h"

int lws_cli_dry_run(const lws_config *cfg, const char *device, uint32_t batch, uint32_t seq) {
    lws_context *ctx = NULL;
    lws_context_options copt = {.device = device, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&copt, &ctx) != LWS_OK) return lws_cli_error();
    const lws_device_caps *caps = lws_context_caps(ctx);
    lws_print_device(caps);
    lws_print_config(cfg);
    uint32_t A = lws_train_accum(&cfg->train);
    printf("shape: micro-batch %u x %u tokens, %u accumulation step%s (%llu tokens per step), "
           "precision %s\n",
           batch, seq, A, A == 1 ? "" : "s", (unsigned long long)batch * seq * A,
           cfg->train.precision);
    lws_memory_plan plan;
    if (lws_model_plan(ctx, cfg, batch, seq, 1, &plan) != LWS_OK) {
        lws_context_destroy(ctx);
        return lws_cli_error();
    }
    lws_memory_plan_print(&plan, stdout);
    printf("  largest buffer %s, %.2f MiB; largest matmul operand %s, %llu elements\n",
           plan.largest_name, plan.largest / 1048576.0, plan.largest_operand_name,
           (unsigned long long)plan.largest_operand);
    char why[768];
    int fits = lws_memory_plan_fits(&plan, caps, why, sizeof why);
    if (lws_model_check_device(cfg, caps) != LWS_OK) {
        printf("does not run: %s\n", lws_error_message());
        lws_error_clear();
        fits = 0;
    }
    if (fits)
        printf("fits: %.2f GiB of %.2f GiB device memory on %s\n", plan.total / 1073741824.0,
               caps->device_local_bytes / 1073741824.0, caps->name);
    else
        printf("does not fit: %s\n", why);
    /* The dry run allocates nothing: the arena's counters say so. */
    printf("device memory allocated by this dry run: %llu bytes\n",
           (unsigned long long)lws_memory_peak(ctx));
    lws_context_destroy(ctx);
    return fits ? 0 : 1;
}
