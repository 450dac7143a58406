/* Vulkan loading (volk), the instance, validation layers and the messenger. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/internal.h"

static atomic_uint validation_messages;

uint32_t lws_validation_message_count(void) { return atomic_load(&validation_messages); }

int lws_env_flag(const char *name, int fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    return !(strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "false") == 0);
}

const char *lws_vk_result_name(VkResult r) {
    switch (r) {
#define CASE(x)                                                                                    \
    case x: return #x;
        CASE(VK_SUCCESS)
        CASE(VK_NOT_READY)
        CASE(VK_TIMEOUT)
        CASE(VK_INCOMPLETE)
        CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
        CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        CASE(VK_ERROR_INITIALIZATION_FAILED)
        CASE(VK_ERROR_DEVICE_LOST)
        CASE(VK_ERROR_MEMORY_MAP_FAILED)
        CASE(VK_ERROR_LAYER_NOT_PRESENT)
        CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
        CASE(VK_ERROR_FEATURE_NOT_PRESENT)
        CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
        CASE(VK_ERROR_TOO_MANY_OBJECTS)
        CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
        CASE(VK_ERROR_FRAGMENTED_POOL)
        CASE(VK_ERROR_UNKNOWN)
        CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
        CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        CASE(VK_ERROR_FRAGMENTATION)
        CASE(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        CASE(VK_PIPELINE_COMPILE_REQUIRED)
#undef CASE
    default: return "VkResult(unknown)";
    }
}

lws_status lws_vk_fail(VkResult r, const char *call) {
    const char *hint = "";
    lws_status s = LWS_ERR_VULKAN;
    switch (r) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
        hint = " (the device is out of memory: use a smaller micro-batch or model)";
        s = LWS_ERR_OUT_OF_MEMORY;
        break;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
        hint = " (the host is out of memory)";
        s = LWS_ERR_OUT_OF_MEMORY;
        break;
    case VK_ERROR_DEVICE_LOST:
        hint = " (the GPU driver reset the device: a shader ran too long or faulted; check "
               "the kernel log)";
        break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
    case VK_ERROR_INITIALIZATION_FAILED:
        hint = " (no usable Vulkan driver: install mesa-vulkan-drivers for the CPU, or your "
               "GPU vendor's driver)";
        s = LWS_ERR_NO_DRIVER;
        break;
    case VK_ERROR_LAYER_NOT_PRESENT:
        hint = " (install vulkan-validationlayers, or unset LWS_VALIDATION)";
        break;
    default: break;
    }
    return lws_fail(s, "%s failed with %s%s", call, lws_vk_result_name(r), hint);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT type,
                                                 const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                 void *user) {
    (void)user;
    (void)type;
    if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    atomic_fetch_add(&validation_messages, 1);
    fprintf(stderr, "lws: validation %s: %s\n",
            severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
            data->pMessage ? data->pMessage : "(no text)");
    return VK_FALSE;
}

static lws_status load_loader(void) {
    static int loaded = 0;
    if (loaded) return LWS_OK;
    if (volkInitialize() != VK_SUCCESS)
        return lws_fail(LWS_ERR_NO_DRIVER,
                        "no Vulkan loader: libvulkan.so.1 was not found (install libvulkan1, "
                        "and mesa-vulkan-drivers for the CPU or your GPU vendor's driver)");
    loaded = 1;
    return LWS_OK;
}

static int layer_available(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS) return 0;
    VkLayerProperties *props = calloc(n ? n : 1, sizeof *props);
    if (!props) return 0;
    int found = 0;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(props[i].layerName, name) == 0;
    free(props);
    return found;
}

static int instance_extension_available(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS) return 0;
    VkExtensionProperties *props = calloc(n ? n : 1, sizeof *props);
    if (!props) return 0;
    int found = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(props[i].extensionName, name) == 0;
    free(props);
    return found;
}

lws_status lws_instance_create(int validation, VkInstance *instance, int *validation_on) {
    LWS_TRY(load_loader());
    if (validation < 0) validation = lws_env_flag("LWS_VALIDATION", 0);
    const char *layers[1];
    const char *extensions[2];
    uint32_t layer_count = 0, extension_count = 0;
    if (validation) {
        if (!layer_available("VK_LAYER_KHRONOS_validation"))
            return lws_fail(LWS_ERR_VULKAN,
                            "validation was requested (LWS_VALIDATION=1) but the layer "
                            "VK_LAYER_KHRONOS_validation is not installed: install "
                            "vulkan-validationlayers, or unset LWS_VALIDATION");
        layers[layer_count++] = "VK_LAYER_KHRONOS_validation";
        if (instance_extension_available(VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
            extensions[extension_count++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "lws",
        .applicationVersion = VK_MAKE_API_VERSION(0, 0, 1, 0),
        .pEngineName = "lws",
        .apiVersion = VK_API_VERSION_1_3,
    };
    /* Validate best practices of synchronization too: a missing barrier is a
     * race that only shows on some GPUs. */
    VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
    VkValidationFeaturesEXT features = {
        .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
        .enabledValidationFeatureCount = 1,
        .pEnabledValidationFeatures = enables,
    };
    VkInstanceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = validation && lws_env_flag("LWS_VALIDATION_SYNC", 1) ? &features : NULL,
        .pApplicationInfo = &app,
        .enabledLayerCount = layer_count,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = extension_count,
        .ppEnabledExtensionNames = extensions,
    };
    VkResult r = vkCreateInstance(&info, NULL, instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return lws_fail(LWS_ERR_NO_DRIVER,
                        "vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER: no Vulkan "
                        "driver: install mesa-vulkan-drivers for the CPU, or your GPU vendor's "
                        "driver");
    if (r != VK_SUCCESS) return lws_vk_fail(r, "vkCreateInstance");
    volkLoadInstanceOnly(*instance);
    *validation_on = validation && extension_count > 0;
    return LWS_OK;
}

lws_status lws_messenger_create(VkInstance instance, VkDebugUtilsMessengerEXT *out) {
    VkDebugUtilsMessengerCreateInfoEXT info = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = on_message,
    };
    LWS_VK(vkCreateDebugUtilsMessengerEXT(instance, &info, NULL, out));
    return LWS_OK;
}

lws_status lws_physical_devices(VkInstance instance, VkPhysicalDevice **out, uint32_t *count) {
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(instance, &n, NULL);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return lws_vk_fail(r, "vkEnumeratePhysicalDevices");
    if (n == 0)
        return lws_fail(LWS_ERR_NO_DRIVER,
                        "no Vulkan driver: the loader found no device (install "
                        "mesa-vulkan-drivers for the CPU, or your GPU vendor's driver; check "
                        "VK_ICD_FILENAMES / VK_DRIVER_FILES if set)");
    *out = calloc(n, sizeof **out);
    if (!*out) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory listing devices");
    r = vkEnumeratePhysicalDevices(instance, &n, *out);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(*out);
        return lws_vk_fail(r, "vkEnumeratePhysicalDevices");
    }
    *count = n;
    return LWS_OK;
}

lws_status lws_list_devices(lws_device_caps **out, uint32_t *count) {
    VkInstance instance;
    int validation_on = 0;
    LWS_TRY(lws_instance_create(0, &instance, &validation_on));
    VkPhysicalDevice *pds = NULL;
    uint32_t n = 0;
    lws_status s = lws_physical_devices(instance, &pds, &n);
    if (s == LWS_OK) {
        *out = calloc(n, sizeof **out);
        if (!*out) {
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory listing devices");
        } else {
            for (uint32_t i = 0; i < n; i++) lws_query_caps(pds[i], i, &(*out)[i]);
            *count = n;
        }
    }
    free(pds);
    vkDestroyInstance(instance, NULL);
    return s;
}
