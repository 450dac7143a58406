/* Compute pipelines from embedded SPIR-V, and the on-disk pipeline cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/files.h"
#include "vk/internal.h"

/* A cache file larger than this is not read (compiling afresh rewrites it). */
#define CACHE_MAX_BYTES ((size_t)256 << 20)

/* $XDG_CACHE_HOME/lws (or ~/.cache/lws)/pipelines-<vendor>-<device>-<driver>-<uuid>.bin:
 * a driver update or another device gets a file of its own. */
static void cache_path(lws_context *ctx, char *out, size_t n) {
    char dir[900];
    if (!lws_cache_dir(dir, sizeof dir)) {
        out[0] = 0;
        return;
    }
    char uuid[33];
    for (int i = 0; i < 16; i++) snprintf(uuid + 2 * i, 3, "%02x", ctx->caps.uuid[i]);
    snprintf(out, n, "%s/pipelines-%04x-%04x-%08x-%s.bin", dir, ctx->caps.vendor_id,
             ctx->caps.device_id, ctx->caps.driver_version, uuid);
}

/* The cache header (VkPipelineCacheHeaderVersionOne) names the device it was
 * made on; a file from another device or driver is ignored. */
static int cache_matches(lws_context *ctx, const unsigned char *data, size_t size) {
    if (size < 32) return 0;
    uint32_t header_size, version, vendor, device;
    memcpy(&header_size, data, 4);
    memcpy(&version, data + 4, 4);
    memcpy(&vendor, data + 8, 4);
    memcpy(&device, data + 12, 4);
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(ctx->physical, &p);
    return header_size >= 32 && version == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           vendor == p.vendorID && device == p.deviceID &&
           memcmp(data + 16, p.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

lws_status lws_pipelines_init(lws_context *ctx, int use_cache) {
    VkPushConstantRange range = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = LWS_PUSH_BYTES};
    VkPipelineLayoutCreateInfo layout = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .pushConstantRangeCount = 1,
        .pPushConstantRanges = &range,
    };
    LWS_VK(vkCreatePipelineLayout(ctx->device, &layout, NULL, &ctx->layout));

    char *data = NULL;
    size_t size = 0;
    ctx->cache_path[0] = 0;
    if (use_cache) {
        cache_path(ctx, ctx->cache_path, sizeof ctx->cache_path);
        /* No cache yet, or one that cannot be read: start with an empty one. */
        if (ctx->cache_path[0] &&
            lws_read_file(ctx->cache_path, CACHE_MAX_BYTES, &data, &size) != LWS_OK)
            lws_error_clear();
        if (!cache_matches(ctx, (const unsigned char *)data, size)) size = 0;
    }
    VkPipelineCacheCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = size ? data : NULL,
    };
    VkResult r = vkCreatePipelineCache(ctx->device, &info, NULL, &ctx->cache);
    if (r != VK_SUCCESS && size) { /* a corrupt file: start empty */
        info.initialDataSize = 0;
        info.pInitialData = NULL;
        r = vkCreatePipelineCache(ctx->device, &info, NULL, &ctx->cache);
    }
    free(data);
    if (r != VK_SUCCESS) return lws_vk_fail(r, "vkCreatePipelineCache");
    return LWS_OK;
}

/* Written atomically, so a crash never leaves half a cache. The cache only
 * saves time: a failure to save it is not reported, and must not replace
 * the message of an error the caller may be about to report. */
static void save_cache(lws_context *ctx) {
    if (!ctx->cache_path[0] || !ctx->cache) return;
    size_t size = 0;
    if (vkGetPipelineCacheData(ctx->device, ctx->cache, &size, NULL) != VK_SUCCESS || !size) return;
    void *data = malloc(size);
    char *dir = strdup(ctx->cache_path);
    char *message = strdup(lws_error_message());
    if (data && dir && message &&
        vkGetPipelineCacheData(ctx->device, ctx->cache, &size, data) == VK_SUCCESS) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        lws_status s = slash ? lws_mkdir_p(dir) : LWS_OK;
        if (s == LWS_OK) s = lws_write_file_atomic(ctx->cache_path, data, size);
        if (s != LWS_OK && strcmp(message, "no error") == 0)
            lws_error_clear();
        else if (s != LWS_OK)
            lws_fail(s, "%s", message);
    }
    free(data), free(dir), free(message);
}

void lws_pipelines_destroy(lws_context *ctx) {
    save_cache(ctx);
    for (lws_pipeline *p = ctx->pipelines, *next; p; p = next) {
        next = p->next;
        vkDestroyPipeline(ctx->device, p->pipeline, NULL);
        free(p);
    }
    ctx->pipelines = NULL;
    for (lws_shader_module *m = ctx->modules, *next; m; m = next) {
        next = m->next;
        vkDestroyShaderModule(ctx->device, m->module, NULL);
        free(m);
    }
    ctx->modules = NULL;
    if (ctx->cache) vkDestroyPipelineCache(ctx->device, ctx->cache, NULL);
    if (ctx->layout) vkDestroyPipelineLayout(ctx->device, ctx->layout, NULL);
}

static lws_status get_module(lws_context *ctx, const char *shader, VkShaderModule *out) {
    for (lws_shader_module *m = ctx->modules; m; m = m->next)
        if (strcmp(m->spirv->name, shader) == 0) {
            *out = m->module;
            return LWS_OK;
        }
    const lws_spirv *spirv = lws_spirv_find(shader);
    if (!spirv)
        return lws_fail(LWS_ERR_INVALID, "no shader named '%s' is built into this lws", shader);
    lws_shader_module *m = calloc(1, sizeof *m);
    if (!m) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    VkShaderModuleCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = spirv->bytes,
        .pCode = spirv->code,
    };
    VkResult r = vkCreateShaderModule(ctx->device, &info, NULL, &m->module);
    if (r != VK_SUCCESS) {
        free(m);
        lws_vk_fail(r, "vkCreateShaderModule");
        lws_error_context("shader %s", shader);
        return LWS_ERR_VULKAN;
    }
    m->spirv = spirv;
    m->next = ctx->modules;
    ctx->modules = m;
    *out = m->module;
    return LWS_OK;
}

lws_status lws_pipeline_get(lws_context *ctx, const char *shader, const uint32_t *spec,
                            uint32_t spec_count, lws_pipeline **out) {
    if (spec_count > 16) return lws_fail(LWS_ERR_INVALID, "at most 16 specialization constants");
    for (lws_pipeline *p = ctx->pipelines; p; p = p->next)
        if (p->spec_count == spec_count && strcmp(p->shader, shader) == 0 &&
            (spec_count == 0 || memcmp(p->spec, spec, spec_count * sizeof *spec) == 0)) {
            *out = p;
            return LWS_OK;
        }
    VkShaderModule module = VK_NULL_HANDLE;
    LWS_TRY(get_module(ctx, shader, &module));
    VkSpecializationMapEntry entries[16];
    for (uint32_t i = 0; i < spec_count; i++)
        entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
    VkSpecializationInfo spec_info = {
        .mapEntryCount = spec_count,
        .pMapEntries = entries,
        .dataSize = 4 * spec_count,
        .pData = spec,
    };
    VkComputePipelineCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .flags = VK_PIPELINE_CREATE_DISPATCH_BASE_BIT,
        .stage =
            {
                .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                .module = module,
                .pName = "main",
                .pSpecializationInfo = spec_count ? &spec_info : NULL,
            },
        .layout = ctx->layout,
    };
    lws_pipeline *p = calloc(1, sizeof *p);
    if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    VkResult r = vkCreateComputePipelines(ctx->device, ctx->cache, 1, &info, NULL, &p->pipeline);
    if (r != VK_SUCCESS) {
        free(p);
        lws_vk_fail(r, "vkCreateComputePipelines");
        lws_error_context("shader %s", shader);
        return LWS_ERR_VULKAN;
    }
    snprintf(p->shader, sizeof p->shader, "%s", shader);
    if (spec_count) memcpy(p->spec, spec, spec_count * sizeof *spec);
    p->spec_count = spec_count;
    p->next = ctx->pipelines;
    ctx->pipelines = p;
    *out = p;
    return LWS_OK;
}
