// lws-test: vulkan
/* The harness's guard: a deliberate misuse of Vulkan must be seen by the
 * validation layer and counted, so a test that misuses Vulkan would fail. */
#include <string.h>

#include "harness.h"

int main(void) {
    lws_context *ctx = test_context();
    if (!lws_context_validation(ctx)) {
        printf("validation is off (LWS_VALIDATION unset): the guard cannot be checked\n");
        lws_context_destroy(ctx);
        printf("0 checks: 0 passed, 0 failed\n");
        return 0;
    }
    uint32_t before = lws_validation_message_count();
    /* A buffer of size 0 breaks VUID-VkBufferCreateInfo-size-00912. */
    VkBufferCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = 0,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
    };
    VkBuffer buffer = VK_NULL_HANDLE;
    VkResult r = vkCreateBuffer(lws_context_device(ctx), &info, NULL, &buffer);
    if (r == VK_SUCCESS && buffer) vkDestroyBuffer(lws_context_device(ctx), buffer, NULL);
    uint32_t after = lws_validation_message_count();
    lws_context_destroy(ctx);
    int ok = after > before;
    printf("%s the validation layer reported %u message(s) for a deliberate misuse\n",
           ok ? "ok  " : "FAIL", after - before);
    printf("1 checks: %d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}
