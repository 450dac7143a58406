/* Device capabilities, selection and the context (device, queue, pools). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/internal.h"

static int tolower_ascii(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static const char *vendor_name(uint32_t id) {
    switch (id) {
    case 0x10DE: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x106B: return "Apple";
    case 0x10005: return "Mesa (CPU)";
    default: return "unknown";
    }
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

static int has_extension(VkExtensionProperties *exts, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0) return 1;
    return 0;
}

void lws_query_caps(VkPhysicalDevice pd, uint32_t index, lws_device_caps *caps) {
    memset(caps, 0, sizeof *caps);
    caps->index = index;

    uint32_t ext_count = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &ext_count, NULL);
    VkExtensionProperties *exts = calloc(ext_count ? ext_count : 1, sizeof *exts);
    if (exts) vkEnumerateDeviceExtensionProperties(pd, NULL, &ext_count, exts);
    else ext_count = 0;

    VkPhysicalDeviceSubgroupSizeControlProperties sizes = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceVulkan12Properties p12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
    VkPhysicalDeviceVulkan11Properties p11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES, .pNext = &p12};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &p11};
    VkPhysicalDeviceMaintenance4Properties m4 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES, .pNext = &m3};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &m3};
    VkPhysicalDeviceProperties basic;
    vkGetPhysicalDeviceProperties(pd, &basic);
    int size_control = basic.apiVersion >= VK_API_VERSION_1_3 ||
                       has_extension(exts, ext_count, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    if (size_control) p12.pNext = &sizes;
    /* maxBufferSize: Vulkan 1.3 or VK_KHR_maintenance4. */
    if (basic.apiVersion >= VK_API_VERSION_1_3 ||
        has_extension(exts, ext_count, VK_KHR_MAINTENANCE_4_EXTENSION_NAME))
        props.pNext = &m4;
    vkGetPhysicalDeviceProperties2(pd, &props);
    const VkPhysicalDeviceLimits *lim = &props.properties.limits;

    snprintf(caps->name, sizeof caps->name, "%s", props.properties.deviceName);
    caps->vendor_id = props.properties.vendorID;
    caps->device_id = props.properties.deviceID;
    caps->vendor = vendor_name(caps->vendor_id);
    caps->device_type = type_name(props.properties.deviceType);
    snprintf(caps->driver_name, sizeof caps->driver_name, "%s", p12.driverName);
    snprintf(caps->driver_info, sizeof caps->driver_info, "%s", p12.driverInfo);
    caps->driver_version = props.properties.driverVersion;
    caps->api_version = props.properties.apiVersion;
    memcpy(caps->uuid, p11.deviceUUID, 16);
    caps->subgroup_size = p11.subgroupSize;
    caps->subgroup_size_control = size_control;
    caps->min_subgroup_size = size_control ? sizes.minSubgroupSize : p11.subgroupSize;
    caps->max_subgroup_size = size_control ? sizes.maxSubgroupSize : p11.subgroupSize;
    caps->max_shared_memory = lim->maxComputeSharedMemorySize;
    caps->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) {
        caps->max_workgroup_size[i] = lim->maxComputeWorkGroupSize[i];
        caps->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
    }
    caps->max_push_constants = lim->maxPushConstantsSize;
    caps->max_storage_buffer_range = lim->maxStorageBufferRange;
    caps->max_allocation_size = m3.maxMemoryAllocationSize;
    caps->max_buffer_size = props.pNext == &m4 ? m4.maxBufferSize : 0;

    VkPhysicalDeviceMemoryProperties mem;
    vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    caps->heap_count = mem.memoryHeapCount < 16 ? mem.memoryHeapCount : 16;
    for (uint32_t i = 0; i < caps->heap_count; i++) {
        caps->heaps[i].size = mem.memoryHeaps[i].size;
        caps->heaps[i].device_local =
            (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
        if (caps->heaps[i].device_local && caps->heaps[i].size > caps->device_local_bytes)
            caps->device_local_bytes = caps->heaps[i].size;
    }

    /* Timestamps of the queue family lws will record on. Its
     * timestampValidBits decide: timestampComputeAndGraphics = VK_FALSE only
     * says that not every graphics and compute queue has them. */
    uint32_t qf_count = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &qf_count, NULL);
    VkQueueFamilyProperties qf[16];
    if (qf_count > 16) qf_count = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &qf_count, qf);
    int family = lws_pick_queue_family(qf, qf_count);
    caps->timestamp_valid_bits = family >= 0 ? qf[family].timestampValidBits : 0;
    caps->timestamp_period_ns =
        caps->timestamp_valid_bits > 0 && lim->timestampPeriod > 0 ? lim->timestampPeriod : 0.0f;

    VkPhysicalDeviceShaderAtomicFloatFeaturesEXT atomic_float = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT};
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    if (has_extension(exts, ext_count, VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME))
        f12.pNext = &atomic_float;
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 features = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                          .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &features);
    caps->shader_float16 = f12.shaderFloat16;
    caps->storage_buffer_16bit = f11.storageBuffer16BitAccess;
    caps->shader_int8 = f12.shaderInt8;
    caps->buffer_device_address = f12.bufferDeviceAddress;
    caps->scalar_block_layout = f12.scalarBlockLayout;
    caps->shader_int64 = features.features.shaderInt64;
    caps->float_atomic_add = atomic_float.shaderBufferFloat32AtomicAdd;
    lws_query_coopmat(pd, has_extension(exts, ext_count, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME),
                      has_extension(exts, ext_count, "VK_KHR_cooperative_matrix"), caps);
    free(exts);
}

lws_status lws_check_required_features(const char *device_name,
                                       const VkPhysicalDeviceFeatures *core,
                                       const VkPhysicalDeviceVulkan12Features *v12) {
    const char *missing = !core->shaderInt64          ? "shaderInt64"
                          : !v12->bufferDeviceAddress ? "bufferDeviceAddress"
                          : !v12->scalarBlockLayout   ? "scalarBlockLayout"
                                                      : NULL;
    if (!missing) return LWS_OK;
    return lws_fail(LWS_ERR_VULKAN,
                    "device %s lacks the Vulkan feature %s, which every lws shader needs "
                    "(shaderInt64 and bufferDeviceAddress for 64-bit tensor addresses, "
                    "scalarBlockLayout for their layouts); update the driver or choose another "
                    "device with --device (see `lws devices`)",
                    device_name, missing);
}

int lws_pick_queue_family(const VkQueueFamilyProperties *families, uint32_t count) {
    for (uint32_t i = 0; i < count; i++)
        if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
            !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            return (int)i;
    for (uint32_t i = 0; i < count; i++)
        if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) return (int)i;
    return -1;
}

uint64_t lws_timestamp_ticks(uint64_t start, uint64_t end, uint32_t valid_bits) {
    if (valid_bits == 0) return 0;
    uint64_t mask = valid_bits >= 64 ? UINT64_MAX : (1ull << valid_bits) - 1;
    return (end - start) & mask;
}

/* The device's features, checked against what lws needs. */
static lws_status device_usable(VkPhysicalDevice pd) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceFeatures2 f = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                   .pNext = &f12};
    vkGetPhysicalDeviceFeatures2(pd, &f);
    return lws_check_required_features(p.deviceName, &f.features, &f12);
}

/* Picks a physical device by index ("1") or by a case-insensitive name
 * substring, and refuses one without the features lws needs. */
static lws_status select_device(VkPhysicalDevice *pds, uint32_t n, const char *want,
                                uint32_t *chosen) {
    if (!want || !*want) {
        /* First usable discrete GPU, else integrated GPU, else any usable
         * device; when none is usable, the first one's reason. */
        int best = -1, best_rank = 99;
        for (uint32_t i = 0; i < n; i++) {
            if (device_usable(pds[i]) != LWS_OK) continue;
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pds[i], &p);
            int rank = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU     ? 0
                       : p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? 1
                                                                                 : 2;
            if (rank < best_rank) best = (int)i, best_rank = rank;
        }
        if (best < 0) return device_usable(pds[0]);
        *chosen = (uint32_t)best;
        return LWS_OK;
    }
    char *end = NULL;
    long index = strtol(want, &end, 10);
    if (end && *end == 0) {
        if (index < 0 || index >= (long)n)
            return lws_fail(LWS_ERR_INVALID,
                            "--device %s: there are %u Vulkan devices, numbered 0 to %u "
                            "(see `lws devices`)",
                            want, n, n - 1);
        *chosen = (uint32_t)index;
        return device_usable(pds[index]);
    }
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pds[i], &p);
        char a[256], b[256];
        size_t k;
        for (k = 0; p.deviceName[k] && k < 255; k++) a[k] = (char)tolower_ascii(p.deviceName[k]);
        a[k] = 0;
        for (k = 0; want[k] && k < 255; k++) b[k] = (char)tolower_ascii(want[k]);
        b[k] = 0;
        if (strstr(a, b)) {
            *chosen = i;
            return device_usable(pds[i]);
        }
    }
    return lws_fail(LWS_ERR_INVALID,
                    "--device %s: no Vulkan device has that in its name (see `lws devices`)",
                    want);
}

static lws_status create_device(lws_context *ctx) {
    uint32_t qf_count = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &qf_count, NULL);
    VkQueueFamilyProperties qf[16];
    if (qf_count > 16) qf_count = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &qf_count, qf);
    int family = lws_pick_queue_family(qf, qf_count);
    if (family < 0)
        return lws_fail(LWS_ERR_VULKAN, "device %s has no compute queue", ctx->caps.name);
    ctx->queue_family = (uint32_t)family;

    VkPhysicalDeviceVulkan12Features have12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features have11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &have12};
    VkPhysicalDeviceFeatures2 have = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                      .pNext = &have11};
    vkGetPhysicalDeviceFeatures2(ctx->physical, &have);

    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .bufferDeviceAddress = VK_TRUE,
        .scalarBlockLayout = VK_TRUE,
        .shaderFloat16 = have12.shaderFloat16,
        .shaderInt8 = have12.shaderInt8,
        .storageBuffer8BitAccess = have12.storageBuffer8BitAccess,
        .hostQueryReset = have12.hostQueryReset,
    };
    /* Matrix units: the extension and feature of the API lws_coopmat_choose
     * picks, and the Vulkan memory model its shaders declare (only then:
     * with the model on, other shaders' device-scope atomics need
     * vulkanMemoryModelDeviceScope too). */
    const char *exts[1];
    uint32_t ext_count = 0;
    lws_coopmat_features coopmat;
    ctx->coopmat_api = lws_coopmat_choose(&ctx->caps, lws_coopmat_built(LWS_COOPMAT_NV),
                                          lws_coopmat_built(LWS_COOPMAT_KHR), &ctx->coopmat_shape,
                                          NULL, 0);
    if (ctx->coopmat_api != LWS_COOPMAT_NONE) {
        f12.vulkanMemoryModel = VK_TRUE;
        f12.vulkanMemoryModelDeviceScope = have12.vulkanMemoryModelDeviceScope;
    }
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = &f12,
        .storageBuffer16BitAccess = have11.storageBuffer16BitAccess,
    };
    void *chain = &f11;
    lws_coopmat_enable(ctx->coopmat_api, &coopmat, exts, &ext_count, &chain);
    VkPhysicalDeviceFeatures2 features = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = chain,
        .features = {.shaderInt64 = VK_TRUE, .shaderInt16 = have.features.shaderInt16},
    };
    float priority = 1.0f;
    VkDeviceQueueCreateInfo queue = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = ctx->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &priority,
    };
    VkDeviceCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &features,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &queue,
        .enabledExtensionCount = ext_count,
        .ppEnabledExtensionNames = ext_count ? exts : NULL,
    };
    LWS_VK(vkCreateDevice(ctx->physical, &info, NULL, &ctx->device));
    volkLoadDevice(ctx->device);
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);

    VkCommandPoolCreateInfo pool = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    LWS_VK(vkCreateCommandPool(ctx->device, &pool, NULL, &ctx->pool));
    VkFenceCreateInfo fence = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    LWS_VK(vkCreateFence(ctx->device, &fence, NULL, &ctx->fence));
    return LWS_OK;
}

/* The kernel tables LWS_TUNING can force, with the limits that vendor's GPUs
 * report to Vulkan (what lws_tuning_for reads besides the vendor): NVIDIA 48
 * KiB of shared memory per workgroup and subgroups of 32; AMD 64 KiB and 64
 * (wave64); Intel 64 KiB and up to 32; generic, a GPU of a vendor the tables
 * do not name, at Vulkan's guaranteed 16 KiB. */
typedef struct tuning_profile {
    const char *name;
    uint32_t vendor_id;
    const char *vendor;
    uint32_t shared_memory, subgroup;
} tuning_profile;

static const tuning_profile tuning_profiles[] = {
    {"nvidia", 0x10DE, "NVIDIA", 48 << 10, 32},
    {"amd", 0x1002, "AMD", 64 << 10, 64},
    {"intel", 0x8086, "Intel", 64 << 10, 32},
    {"generic", 0xFFFF, "unknown", 16 << 10, 32},
};

const char *lws_tuning_names(void) {
    return "nvidia, amd, intel, generic, auto";
}

static lws_status choose_tuning(lws_context *ctx, const char *want) {
    ctx->tuning_caps = ctx->caps;
    ctx->tuning_name = NULL;
    const char *from = "lws_context_options.tuning";
    if (!want || !*want) {
        want = getenv("LWS_TUNING");
        from = "LWS_TUNING";
    }
    if (!want || !*want || strcmp(want, "auto") == 0) return LWS_OK;
    for (size_t i = 0; i < sizeof tuning_profiles / sizeof *tuning_profiles; i++) {
        const tuning_profile *p = &tuning_profiles[i];
        if (strcmp(want, p->name) != 0) continue;
        lws_device_caps *t = &ctx->tuning_caps;
        t->vendor_id = p->vendor_id;
        t->vendor = p->vendor;
        t->max_shared_memory = p->shared_memory;
        t->subgroup_size = t->min_subgroup_size = t->max_subgroup_size = p->subgroup;
        ctx->tuning_name = p->name;
        return LWS_OK;
    }
    return lws_fail(LWS_ERR_INVALID, "%s = '%s' is not a kernel table; allowed: %s", from, want,
                    lws_tuning_names());
}

/* Hazard checking and the barrier to leave out, from the options or the
 * environment. */
static lws_status choose_checks(lws_context *ctx, const lws_context_options *o) {
    ctx->check_hazards = o->check_hazards > 0   ? 1
                         : o->check_hazards < 0 ? 0
                                                : lws_env_flag("LWS_CHECK_HAZARDS", 0);
    ctx->skip_barrier = o->skip_barrier;
    const char *env = getenv("LWS_SKIP_BARRIER");
    if (!o->skip_barrier && env && *env) {
        char *end = NULL;
        unsigned long n = strtoul(env, &end, 10);
        if (*end || n == 0 || n > UINT32_MAX || env[0] == '-')
            return lws_fail(LWS_ERR_INVALID,
                            "LWS_SKIP_BARRIER = '%s' is not a barrier number: give N >= 1 to "
                            "leave out the N-th lws_cmd_barrier of the context",
                            env);
        ctx->skip_barrier = (uint32_t)n;
    }
    return LWS_OK;
}

lws_status lws_context_create(const lws_context_options *options, lws_context **out) {
    lws_context_options defaults = {.device = NULL, .validation = -1, .pipeline_cache = -1};
    if (!options) options = &defaults;
    if (!options->device || !*options->device) {
        const char *env = getenv("LWS_DEVICE");
        defaults = *options;
        defaults.device = env && *env ? env : NULL;
        options = &defaults;
    }
    lws_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory creating the context");
    *out = NULL;
    lws_status s = choose_checks(ctx, options);
    if (s == LWS_OK) s = lws_instance_create(options->validation, &ctx->instance, &ctx->validation);
    if (s == LWS_OK && ctx->validation) s = lws_messenger_create(ctx->instance, &ctx->messenger);
    VkPhysicalDevice *pds = NULL;
    uint32_t n = 0, chosen = 0;
    if (s == LWS_OK) s = lws_physical_devices(ctx->instance, &pds, &n);
    if (s == LWS_OK) s = select_device(pds, n, options->device, &chosen);
    if (s == LWS_OK) {
        ctx->physical = pds[chosen];
        lws_query_caps(ctx->physical, chosen, &ctx->caps);
        s = choose_tuning(ctx, options->tuning);
        if (s == LWS_OK) s = create_device(ctx);
    }
    free(pds);
    int cache = options->pipeline_cache;
    if (cache < 0) cache = lws_env_flag("LWS_PIPELINE_CACHE", 1);
    if (s == LWS_OK) s = lws_memory_init(ctx);
    if (s == LWS_OK) s = lws_pipelines_init(ctx, cache);
    if (s != LWS_OK) {
        lws_context_destroy(ctx);
        return s;
    }
    *out = ctx;
    return LWS_OK;
}

void lws_context_destroy(lws_context *ctx) {
    if (!ctx) return;
    if (ctx->device) {
        vkDeviceWaitIdle(ctx->device);
        lws_pipelines_destroy(ctx);
        lws_memory_destroy(ctx);
        if (ctx->fence) vkDestroyFence(ctx->device, ctx->fence, NULL);
        if (ctx->pool) vkDestroyCommandPool(ctx->device, ctx->pool, NULL);
        vkDestroyDevice(ctx->device, NULL);
    }
    lws_names_destroy(ctx);
    if (ctx->messenger) vkDestroyDebugUtilsMessengerEXT(ctx->instance, ctx->messenger, NULL);
    if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
    free(ctx);
}

const lws_device_caps *lws_context_caps(const lws_context *ctx) { return &ctx->caps; }
const lws_device_caps *lws_context_tuning_caps(const lws_context *ctx) { return &ctx->tuning_caps; }
const char *lws_context_tuning_name(const lws_context *ctx) { return ctx->tuning_name; }
int lws_context_checks_hazards(const lws_context *ctx) { return ctx->check_hazards; }
void lws_context_barrier_stats(const lws_context *ctx, uint64_t *total, uint64_t *unneeded) {
    *total = ctx->barriers_total;
    *unneeded = ctx->barriers_unneeded;
}
uint64_t lws_context_dispatches(const lws_context *ctx) { return ctx->dispatches_total; }
uint64_t lws_context_host_waits(const lws_context *ctx) { return ctx->host_waits; }
VkDevice lws_context_device(const lws_context *ctx) { return ctx->device; }
int lws_context_validation(const lws_context *ctx) { return ctx->validation; }
