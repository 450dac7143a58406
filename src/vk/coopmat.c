/* Matrix units (cooperative matrices): what a device offers, which API and
 * shape lws uses on it, and the device features that path enables.
 *
 * The Vulkan headers of Debian 12 (1.3.239) predate VK_KHR_cooperative_matrix
 * (1.3.255), so its structures are declared here from the specification when
 * the headers lack them; the entry point is looked up by name. */
#include <stdio.h>
#include <string.h>

#include "vk/internal.h"

#ifndef VK_KHR_cooperative_matrix
#define VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME "VK_KHR_cooperative_matrix"
#define LWS_STYPE_COOPMAT_FEATURES_KHR           ((VkStructureType)1000506000)
#define LWS_STYPE_COOPMAT_PROPERTIES_KHR         ((VkStructureType)1000506001)
#define LWS_STYPE_COOPMAT_DEVICE_PROPERTIES_KHR  ((VkStructureType)1000506002)
typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    int32_t AType, BType, CType, ResultType; /* VkComponentTypeKHR */
    VkBool32 saturatingAccumulation;
    int32_t scope; /* VkScopeKHR */
} VkCooperativeMatrixPropertiesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    VkShaderStageFlags cooperativeMatrixSupportedStages;
} VkPhysicalDeviceCooperativeMatrixPropertiesKHR;
typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
    VkPhysicalDevice, uint32_t *, VkCooperativeMatrixPropertiesKHR *);
#else
#define LWS_STYPE_COOPMAT_FEATURES_KHR                                                             \
    VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR
#define LWS_STYPE_COOPMAT_PROPERTIES_KHR VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR
#define LWS_STYPE_COOPMAT_DEVICE_PROPERTIES_KHR                                                    \
    VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_KHR
#endif

/* VkComponentTypeKHR/NV and VkScopeKHR/NV share these values. */
#define COMPONENT_FLOAT16  0
#define COMPONENT_FLOAT32  1
#define COMPONENT_BFLOAT16 1000141000
#define SCOPE_SUBGROUP     3

static void add_shape(lws_coopmat_shape *list, uint32_t *count, uint32_t m, uint32_t n,
                      uint32_t k) {
    for (uint32_t i = 0; i < *count; i++)
        if (list[i].m == m && list[i].n == n && list[i].k == k) return;
    if (*count < LWS_MAX_COOPMAT_SHAPES) list[(*count)++] = (lws_coopmat_shape){m, n, k};
}

static int fp16_to_fp32(int32_t a, int32_t b, int32_t c, int32_t d, int32_t scope) {
    return a == COMPONENT_FLOAT16 && b == COMPONENT_FLOAT16 && c == COMPONENT_FLOAT32 &&
           d == COMPONENT_FLOAT32 && scope == SCOPE_SUBGROUP;
}

static void query_nv(VkPhysicalDevice pd, lws_device_caps *caps) {
    VkPhysicalDeviceCooperativeMatrixPropertiesNV stages = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &stages};
    vkGetPhysicalDeviceProperties2(pd, &props);
    VkPhysicalDeviceCooperativeMatrixFeaturesNV feature = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceFeatures2 features = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                          .pNext = &feature};
    vkGetPhysicalDeviceFeatures2(pd, &features);
    caps->nv_cooperative_matrix_feature =
        feature.cooperativeMatrix &&
        (stages.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
    if (!vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) return;
    VkCooperativeMatrixPropertiesNV list[64];
    uint32_t n = 64;
    for (uint32_t i = 0; i < n; i++)
        list[i] = (VkCooperativeMatrixPropertiesNV){
            .sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkResult r = vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, list);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return;
    for (uint32_t i = 0; i < n; i++)
        if (fp16_to_fp32(list[i].AType, list[i].BType, list[i].CType, list[i].DType, list[i].scope))
            add_shape(caps->nv_coopmat, &caps->nv_coopmat_count, list[i].MSize, list[i].NSize,
                      list[i].KSize);
}

static void query_khr(VkPhysicalDevice pd, lws_device_caps *caps) {
    VkPhysicalDeviceCooperativeMatrixPropertiesKHR stages = {
        .sType = LWS_STYPE_COOPMAT_DEVICE_PROPERTIES_KHR};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &stages};
    vkGetPhysicalDeviceProperties2(pd, &props);
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR feature = {.sType =
                                                                LWS_STYPE_COOPMAT_FEATURES_KHR};
    VkPhysicalDeviceFeatures2 features = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                          .pNext = &feature};
    vkGetPhysicalDeviceFeatures2(pd, &features);
    caps->khr_cooperative_matrix_feature =
        feature.cooperativeMatrix &&
        (stages.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr(
            volkGetLoadedInstance(), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    if (!get) return;
    VkCooperativeMatrixPropertiesKHR list[64];
    uint32_t n = 64;
    for (uint32_t i = 0; i < n; i++)
        list[i] = (VkCooperativeMatrixPropertiesKHR){.sType = LWS_STYPE_COOPMAT_PROPERTIES_KHR};
    VkResult r = get(pd, &n, list);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return;
    for (uint32_t i = 0; i < n; i++) {
        const VkCooperativeMatrixPropertiesKHR *p = &list[i];
        if (fp16_to_fp32(p->AType, p->BType, p->CType, p->ResultType, p->scope))
            add_shape(caps->khr_coopmat, &caps->khr_coopmat_count, p->MSize, p->NSize, p->KSize);
        if (p->AType == COMPONENT_BFLOAT16 && p->BType == COMPONENT_BFLOAT16 &&
            p->ResultType == COMPONENT_FLOAT32 && p->scope == SCOPE_SUBGROUP)
            caps->coopmat_bf16 = 1;
    }
}

void lws_query_coopmat(VkPhysicalDevice pd, int nv, int khr, lws_device_caps *caps) {
    caps->nv_cooperative_matrix = nv;
    caps->khr_cooperative_matrix = khr;
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12};
    VkPhysicalDeviceFeatures2 features = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                          .pNext = &f11};
    vkGetPhysicalDeviceFeatures2(pd, &features);
    caps->storage_buffer_16bit = f11.storageBuffer16BitAccess;
    /* With the model on, lws's other shaders' device-scope atomics need the
     * device scope as well. */
    caps->vulkan_memory_model = f12.vulkanMemoryModel && f12.vulkanMemoryModelDeviceScope;
    VkPhysicalDeviceVulkan11Properties p11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &p11};
    vkGetPhysicalDeviceProperties2(pd, &props);
    caps->subgroup_arithmetic =
        (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
        (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    if (nv) query_nv(pd, caps);
    if (khr) query_khr(pd, caps);
}

int lws_coopmat_built(lws_coopmat_api api) {
    if (api == LWS_COOPMAT_NV) return lws_spirv_find("matmul_cm_nv_nt") != NULL;
    if (api == LWS_COOPMAT_KHR) return lws_spirv_find("matmul_cm_khr_nt") != NULL;
    return 0;
}

/* A shape the kernel's tiles take: sides that divide 32 (tiles are 32 to
 * 128 wide) and k a multiple of 8 (the shared rows' 16-byte alignment). */
static int shape_fits(lws_coopmat_shape s) {
    return s.m && s.n && s.k && 32 % s.m == 0 && 32 % s.n == 0 && s.k % 8 == 0 && s.k <= 32;
}

static int pick_shape(const lws_coopmat_shape *list, uint32_t count, lws_coopmat_shape *out) {
    int best = -1;
    for (uint32_t i = 0; i < count; i++) {
        if (!shape_fits(list[i])) continue;
        if (list[i].m == 16 && list[i].n == 16 && list[i].k == 16) {
            best = (int)i;
            break;
        }
        if (best < 0 ||
            list[i].m * list[i].n * list[i].k < list[best].m * list[best].n * list[best].k)
            best = (int)i;
    }
    if (best >= 0) *out = list[best];
    return best >= 0;
}

lws_coopmat_api lws_coopmat_choose(const lws_device_caps *caps, int nv_built, int khr_built,
                                   lws_coopmat_shape *shape, char *why, size_t why_size) {
    char scratch[8];
    if (!why) why = scratch, why_size = sizeof scratch;
    lws_coopmat_shape s = {0, 0, 0};
    if (shape) *shape = s;
    if (!caps->nv_cooperative_matrix && !caps->khr_cooperative_matrix) {
        snprintf(why, why_size,
                 "portable fp32 (no matrix units: neither VK_KHR_ nor "
                 "VK_NV_cooperative_matrix)");
        return LWS_COOPMAT_NONE;
    }
    const char *missing = !caps->shader_float16         ? "shaderFloat16"
                          : !caps->storage_buffer_16bit ? "storageBuffer16BitAccess"
                          : !caps->vulkan_memory_model  ? "vulkanMemoryModel"
                          : !caps->subgroup_arithmetic  ? "subgroup arithmetic in compute"
                                                        : NULL;
    if (missing) {
        snprintf(why, why_size, "portable fp32 (matrix units, but no %s)", missing);
        return LWS_COOPMAT_NONE;
    }
    lws_coopmat_api api = LWS_COOPMAT_NONE;
    if (caps->khr_cooperative_matrix && caps->khr_cooperative_matrix_feature && khr_built &&
        pick_shape(caps->khr_coopmat, caps->khr_coopmat_count, &s))
        api = LWS_COOPMAT_KHR;
    else if (caps->nv_cooperative_matrix && caps->nv_cooperative_matrix_feature && nv_built &&
             pick_shape(caps->nv_coopmat, caps->nv_coopmat_count, &s))
        api = LWS_COOPMAT_NV;
    if (api == LWS_COOPMAT_NONE) {
        const char *reason =
            caps->khr_cooperative_matrix && !khr_built && !caps->nv_cooperative_matrix
                ? "VK_KHR_cooperative_matrix is there, but the glslang that built this lws "
                  "could not compile GL_KHR_cooperative_matrix (glslang 13 or later can)"
                : "no listed fp16 x fp16 -> fp32 subgroup shape that the kernel takes, or the "
                  "cooperativeMatrix feature is off for compute";
        snprintf(why, why_size, "portable fp32 (matrix units, but %s)", reason);
        return LWS_COOPMAT_NONE;
    }
    snprintf(why, why_size, "%s coopmat fp16 %ux%ux%u, fp32 accumulation (portable fp32 kept)",
             api == LWS_COOPMAT_KHR ? "KHR" : "NV", s.m, s.n, s.k);
    if (shape) *shape = s;
    return api;
}

/* Adds the chosen API's extension and feature structure to a device create
 * info; the structures live in *storage (kept until vkCreateDevice). */
void lws_coopmat_enable(lws_coopmat_api api, lws_coopmat_features *storage, const char **exts,
                        uint32_t *ext_count, void **pnext) {
    if (api == LWS_COOPMAT_NV) {
        storage->nv = (VkPhysicalDeviceCooperativeMatrixFeaturesNV){
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
            .pNext = *pnext,
            .cooperativeMatrix = VK_TRUE};
        *pnext = &storage->nv;
        exts[(*ext_count)++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    } else if (api == LWS_COOPMAT_KHR) {
        VkPhysicalDeviceCooperativeMatrixFeaturesKHR khr = {
            .sType = LWS_STYPE_COOPMAT_FEATURES_KHR, .pNext = *pnext, .cooperativeMatrix = VK_TRUE};
        memcpy(storage->khr, &khr, sizeof khr);
        *pnext = storage->khr;
        exts[(*ext_count)++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
    }
}

lws_coopmat_api lws_context_coopmat(const lws_context *ctx, lws_coopmat_shape *shape) {
    if (shape) *shape = ctx->coopmat_shape;
    return ctx->coopmat_api;
}

int lws_context_matmul_verdict(const lws_context *ctx) {
    return ctx->matmul_verdict;
}
void lws_context_set_matmul_verdict(lws_context *ctx, int verdict) {
    ctx->matmul_verdict = verdict;
}

int lws_context_attention_verdict(const lws_context *ctx) {
    return ctx->attention_verdict;
}
void lws_context_set_attention_verdict(lws_context *ctx, int verdict) {
    ctx->attention_verdict = verdict;
}
