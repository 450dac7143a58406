// lws-test: plain
/* The device checks that need no device: the features every shader needs
 * (a capability record without shaderInt64, bufferDeviceAddress or
 * scalarBlockLayout is refused, naming the feature and the device), those
 * of train.precision (bf16 and fp16 refused without 16-bit storage), the
 * queue family lws records on, and timestamps masked to the queue's valid
 * bits (the counter wraps there and the bits above are undefined). */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "lws/model.h"

static void check_features(void) {
    VkPhysicalDeviceFeatures core = {.shaderInt64 = VK_TRUE};
    VkPhysicalDeviceVulkan12Features v12 = {.bufferDeviceAddress = VK_TRUE,
                                            .scalarBlockLayout = VK_TRUE};
    CHECK_OK(lws_check_required_features("Full GPU", &core, &v12));
    const struct {
        const char *feature;
        VkBool32 *flag;
    } each[] = {{"shaderInt64", &core.shaderInt64},
                {"bufferDeviceAddress", &v12.bufferDeviceAddress},
                {"scalarBlockLayout", &v12.scalarBlockLayout}};
    for (size_t i = 0; i < sizeof each / sizeof *each; i++) {
        *each[i].flag = VK_FALSE;
        lws_status s = lws_check_required_features("Old GPU 9000", &core, &v12);
        const char *msg = lws_error_message();
        int ok = s == LWS_ERR_VULKAN && test_contains(msg, each[i].feature) &&
                 test_contains(msg, "Old GPU 9000");
        CHECK(ok, "without %s: status %d, message '%s'", each[i].feature, s, msg);
        printf("%s without %s refused: %s\n", ok ? "ok  " : "FAIL", each[i].feature, msg);
        *each[i].flag = VK_TRUE;
    }
}

static void check_queue_family(void) {
    VkQueueFamilyProperties both = {.queueFlags = VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT};
    VkQueueFamilyProperties compute = {.queueFlags = VK_QUEUE_COMPUTE_BIT | VK_QUEUE_TRANSFER_BIT};
    VkQueueFamilyProperties transfer = {.queueFlags = VK_QUEUE_TRANSFER_BIT};
    VkQueueFamilyProperties three[] = {both, compute, transfer};
    CHECK(lws_pick_queue_family(three, 3) == 1, "a compute-only family is preferred");
    CHECK(lws_pick_queue_family(three, 1) == 0, "else any family with compute");
    CHECK(lws_pick_queue_family(&transfer, 1) == -1, "no compute family: -1");
}

static void check_timestamps(void) {
    /* 64 valid bits: the plain difference. */
    CHECK(lws_timestamp_ticks(1000, 1750, 64) == 750, "64 bits: end - start");
    /* 36 bits (the least a graphics and compute queue may have): the counter
     * wrapped between the two reads. */
    uint64_t top = (1ull << 36) - 10;
    CHECK(lws_timestamp_ticks(top, 5, 36) == 15, "36 bits: a wrap counts 15 ticks, got %llu",
          (unsigned long long)lws_timestamp_ticks(top, 5, 36));
    /* Undefined bits above the valid ones are ignored. */
    uint64_t start = 0xABCD000000001000ull, end = 0x1234000000001064ull;
    CHECK(lws_timestamp_ticks(start, end, 48) == 100, "48 bits: garbage above is masked, got %llu",
          (unsigned long long)lws_timestamp_ticks(start, end, 48));
    CHECK(lws_timestamp_ticks(start, end, 0) == 0, "0 valid bits: no timestamps, 0 ticks");
    printf("ok   timestamps masked to their valid bits\n");
}

static void check_precision(void) {
    lws_device_caps caps = {.name = "Old GPU", .storage_buffer_16bit = 0};
    const char *names[] = {"fp32", "bf16", "fp16"};
    for (int i = 0; i < 3; i++) {
        lws_config cfg;
        char set[48];
        snprintf(set, sizeof set, "train.precision=%s", names[i]);
        const char *sets[] = {set};
        CHECK_OK(lws_config_load_with("configs/tiny/crown.json", sets, 1, &cfg));
        caps.storage_buffer_16bit = 0;
        lws_status s = lws_model_check_device(&cfg, &caps);
        if (i == 0) {
            CHECK(s == LWS_OK, "fp32 needs no 16-bit storage: %s", lws_error_message());
        } else {
            CHECK(s != LWS_OK && test_contains(lws_error_message(), "storageBuffer16BitAccess") &&
                      test_contains(lws_error_message(), "Old GPU") &&
                      test_contains(lws_error_message(), names[i]) &&
                      test_contains(lws_error_message(), "train.precision=fp32"),
                  "%s without 16-bit storage: '%s'", names[i], lws_error_message());
            caps.storage_buffer_16bit = 1;
            CHECK_OK(lws_model_check_device(&cfg, &caps));
        }
    }
    printf("ok   bf16 and fp16 need 16-bit storage, fp32 does not\n");
}

int main(void) {
    check_features();
    check_precision();
    check_queue_family();
    check_timestamps();
    return test_finish(NULL);
}
