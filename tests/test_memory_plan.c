// lws-test: vulkan
/* The memory plan is the allocation: for every tiny config (post- and
 * pre-norm blocks, tied and untied embeddings, both GQA policies), built for
 * training and for inference, at shapes whose buffers are not multiples of
 * the arena's 256-byte alignment, in fp32, bf16 and fp16, the arena's
 * high-water mark after building the model equals the plan's total exactly,
 * and every buffer knows its element type. A plan that does not fit names the limit it breaks. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lws/model.h"
#include "model/model.h"

static void check_config(const char *path, uint32_t batch, uint32_t seq, int training,
                         const char *precision) {
    lws_config cfg;
    char set[64];
    snprintf(set, sizeof set, "train.precision=%s", precision);
    const char *sets[] = {set};
    CHECK_OK(lws_config_load_with(path, sets, 1, &cfg));
    lws_dtype act = strcmp(precision, "bf16") == 0   ? LWS_BF16
                    : strcmp(precision, "fp16") == 0 ? LWS_F16
                                                     : LWS_F32;
    lws_context *ctx = test_context();
    lws_memory_plan plan;
    CHECK_OK(lws_model_plan(ctx, &cfg, batch, seq, training, &plan));
    CHECK(lws_memory_peak(ctx) == 0, "%s: planning allocated %llu bytes", path,
          (unsigned long long)lws_memory_peak(ctx));
    lws_model *m = NULL;
    CHECK_OK(lws_model_create(ctx, &cfg, batch, seq, training, &m));
    uint64_t peak = lws_memory_peak(ctx);
    CHECK(peak == plan.total,
          "%s %ux%u %s: the arena's high-water mark %llu != the plan's total %llu", path, batch,
          seq, training ? "training" : "inference", (unsigned long long)peak,
          (unsigned long long)plan.total);
    uint64_t sum = plan.params + plan.grads + plan.optimizer + plan.activations + plan.scratch;
    CHECK(sum == plan.total, "%s: the kinds add up to %llu, the total is %llu", path,
          (unsigned long long)sum, (unsigned long long)plan.total);
    /* 16-bit: the parameters add the matmuls' copy at half the fp32 size
     * (each block rounded to the arena's 256 bytes). */
    uint64_t floats = m ? lws_model_floats(m) : 0;
    uint64_t master = (4 * floats + 255) / 256 * 256;
    uint64_t copy = act == LWS_F32 ? 0 : (2 * floats + 255) / 256 * 256;
    CHECK(plan.params == master + copy, "%s %s: parameters %llu, want %llu + %llu", path, precision,
          (unsigned long long)plan.params, (unsigned long long)master, (unsigned long long)copy);
    CHECK(training ? plan.grads == master && plan.optimizer == 2 * master
                   : plan.grads == 0 && plan.optimizer == 0,
          "%s: gradients %llu and moments %llu for parameters %llu (training %d)", path,
          (unsigned long long)plan.grads, (unsigned long long)plan.optimizer,
          (unsigned long long)plan.params, training);
    if (m) {
        CHECK(m->head_logits.dtype == LWS_F32 && m->io.dtype == LWS_U32 &&
                  m->acts[0].x.dtype == act && m->acts[0].lse.dtype == LWS_F32 &&
                  m->param_block.dtype == LWS_F32 && m->head_dlogits.dtype == act &&
                  m->lm_head->mm.dtype == act && (!training || m->grad_block.dtype == LWS_F32),
              "%s %s: buffers carry their element types", path, precision);
        CHECK(m->mem.count >= plan.tensors, "%s: %u entries for %u buffers", path, m->mem.count,
              plan.tensors);
        /* weight gradients split over k (LWS_MATMUL_SPLIT_K): their partial
         * sums' scratch is in the plan, and only then */
        int split = training && getenv("LWS_MATMUL_SPLIT_K") != NULL;
        CHECK(split == (m->gs.split_k.size > 0), "%s: split-k scratch of %llu bytes (split: %d)",
              path, (unsigned long long)m->gs.split_k.size, split);
    }
    printf("%-28s %2ux%-3u %-9s %s plan %10llu bytes = high-water %10llu (%u buffers)\n", path,
           batch, seq, training ? "training" : "inference", precision,
           (unsigned long long)plan.total, (unsigned long long)peak, plan.tensors);
    lws_model_destroy(m);
    lws_context_destroy(ctx);
}

/* A plan past the device's heap names the heap and the kinds; one past the
 * 2^31-element operand limit names the buffer. */
static void check_refusals(void) {
    lws_config cfg;
    CHECK_OK(lws_config_load("configs/tiny/crown.json", &cfg));
    lws_context *ctx = test_context();
    lws_device_caps caps = *lws_context_caps(ctx);
    lws_memory_plan plan;
    char why[768];
    CHECK_OK(lws_model_plan(ctx, &cfg, 4, 32, 1, &plan));
    CHECK(lws_memory_plan_fits(&plan, &caps, why, sizeof why), "tiny plan fits: %s", why);
    caps.device_local_bytes = plan.total - 1;
    CHECK(!lws_memory_plan_fits(&plan, &caps, why, sizeof why) &&
              test_contains(why, "GiB of device memory") && test_contains(why, "activations"),
          "one byte short of the plan: '%s'", why);
    caps = *lws_context_caps(ctx);
    caps.max_allocation_size = plan.largest - 1;
    CHECK(!lws_memory_plan_fits(&plan, &caps, why, sizeof why) &&
              test_contains(why, plan.largest_name) &&
              test_contains(why, "maxMemoryAllocationSize"),
          "largest buffer past the allocation limit: '%s'", why);
    /* 2^31 logits, vocab 256 x 2^23 tokens (planned, never built): the head
     * runs over chunks of tokens, so no buffer holds them and the plan fits
     * the operand limit; its largest operand is one chunk's logits or an
     * activation. At 2^24 tokens an FFN activation (N x ffn) passes 2^31. */
    caps = *lws_context_caps(ctx);
    caps.device_local_bytes = ~0ull;
    caps.max_allocation_size = 0;
    CHECK_OK(lws_model_plan(ctx, &cfg, 1u << 13, 1u << 10, 0, &plan));
    CHECK(lws_memory_plan_fits(&plan, &caps, why, sizeof why) &&
              plan.largest_operand < (1ull << 31),
          "2^31 logits need no buffer: largest operand %s, %llu elements: '%s'",
          plan.largest_operand_name, (unsigned long long)plan.largest_operand, why);
    CHECK_OK(lws_model_plan(ctx, &cfg, 1u << 14, 1u << 10, 0, &plan));
    CHECK(!lws_memory_plan_fits(&plan, &caps, why, sizeof why) && test_contains(why, ".gate") &&
              test_contains(why, "2^31"),
          "2^24 tokens x ffn past 2^31 elements: '%s'", why);
    lws_context_destroy(ctx);
}

int main(void) {
    /* On a device with matrix units the matmul's and the attention's checks
     * at first use allocate their own operands while the model records; the
     * plan is the model's, so those kernels are left out here. */
    setenv("LWS_MATMUL", "portable", 1);
    setenv("LWS_ATTENTION", "portable", 1);
    static const char *const configs[] = {"configs/tiny/crown.json", "configs/tiny/framed.json",
                                          "configs/tiny/vanilla.json", "configs/tiny/reverse.json",
                                          "configs/tiny/isotropic.json"};
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        check_config(configs[i], 3, 7, 1, "fp32");
        check_config(configs[i], 2, 16, 0, "fp32");
    }
    check_config("configs/tiny/crown.json", 16, 128, 1, "fp32");
    check_config("configs/tiny/crown.json", 3, 7, 1, "bf16");
    check_config("configs/tiny/framed.json", 2, 16, 0, "fp16");
    check_config("configs/tiny/crown.json", 16, 128, 1, "fp16");
    /* as a GPU table splits crown-18l's weight gradients (4 slices of 16 or
     * more tokens here, on every table) */
    setenv("LWS_MATMUL_SPLIT_K", "4x16", 1);
    check_config("configs/tiny/crown.json", 16, 128, 1, "bf16");
    unsetenv("LWS_MATMUL_SPLIT_K");
    check_refusals();
    return test_finish(NULL);
}
