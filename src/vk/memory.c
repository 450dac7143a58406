/* The arena: a few large device allocations carved into aligned ranges, each
 * reachable by its buffer device address; and staging for host transfers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk/internal.h"

#define BLOCK_BYTES ((VkDeviceSize)256 << 20) /* default block: 256 MiB */
#define STAGING_BYTES ((VkDeviceSize)64 << 20)

static const VkBufferUsageFlags usage_all =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
    VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT;

static int find_type(const VkPhysicalDeviceMemoryProperties *m, uint32_t bits,
                     VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < m->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (m->memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

lws_status lws_memory_init(lws_context *ctx) {
    vkGetPhysicalDeviceMemoryProperties(ctx->physical, &ctx->memory_props);
    int dev = find_type(&ctx->memory_props, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (dev < 0) dev = find_type(&ctx->memory_props, ~0u, 0);
    int host = find_type(&ctx->memory_props, ~0u,
                         VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                             VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                             VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (host < 0)
        host = find_type(&ctx->memory_props, ~0u,
                         VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (dev < 0 || host < 0)
        return lws_fail(LWS_ERR_VULKAN, "device %s has no usable memory type", ctx->caps.name);
    ctx->device_memory_type = (uint32_t)dev;
    ctx->host_memory_type = (uint32_t)host;
    return LWS_OK;
}

static lws_status make_buffer(lws_context *ctx, VkDeviceSize size, uint32_t type_hint, int host,
                              VkBuffer *buffer, VkDeviceMemory *memory) {
    VkBufferCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = usage_all,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    LWS_VK(vkCreateBuffer(ctx->device, &info, NULL, buffer));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx->device, *buffer, &req);
    if (ctx->caps.max_allocation_size && req.size > ctx->caps.max_allocation_size) {
        vkDestroyBuffer(ctx->device, *buffer, NULL);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY,
                        "a buffer of %.1f MiB needs an allocation of %.1f MiB, more than the "
                        "%.1f MiB device %s allows (maxMemoryAllocationSize)",
                        size / 1048576.0, req.size / 1048576.0,
                        ctx->caps.max_allocation_size / 1048576.0, ctx->caps.name);
    }
    uint32_t type = type_hint;
    if (!(req.memoryTypeBits & (1u << type))) {
        VkMemoryPropertyFlags want = host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                                          : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
        int t = find_type(&ctx->memory_props, req.memoryTypeBits, want);
        if (t < 0) {
            vkDestroyBuffer(ctx->device, *buffer, NULL);
            return lws_fail(LWS_ERR_VULKAN, "no memory type fits a buffer of %llu bytes",
                            (unsigned long long)size);
        }
        type = (uint32_t)t;
    }
    VkMemoryAllocateFlagsInfo flags = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
        .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT,
    };
    VkMemoryAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .pNext = &flags,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    VkResult r = vkAllocateMemory(ctx->device, &alloc, NULL, memory);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(ctx->device, *buffer, NULL);
        uint32_t heap = ctx->memory_props.memoryTypes[type].heapIndex;
        return lws_fail(r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY
                            ? LWS_ERR_OUT_OF_MEMORY
                            : LWS_ERR_VULKAN,
                        "vkAllocateMemory failed with %s: asked for %.1f MiB from heap %u, which "
                        "has %.1f MiB in all, %.1f MiB already reserved by lws (use a smaller "
                        "micro-batch or model)",
                        lws_vk_result_name(r), req.size / 1048576.0, heap,
                        ctx->memory_props.memoryHeaps[heap].size / 1048576.0,
                        lws_memory_reserved(ctx) / 1048576.0);
    }
    r = vkBindBufferMemory(ctx->device, *buffer, *memory, 0);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(ctx->device, *buffer, NULL);
        vkFreeMemory(ctx->device, *memory, NULL);
        return lws_vk_fail(r, "vkBindBufferMemory");
    }
    return LWS_OK;
}

static VkDeviceAddress address_of(lws_context *ctx, VkBuffer buffer) {
    VkBufferDeviceAddressInfo info = {.sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
                                      .buffer = buffer};
    return vkGetBufferDeviceAddress(ctx->device, &info);
}

/* The largest block the device allows: one VkBuffer (maxBufferSize) bound
 * to one allocation (maxMemoryAllocationSize); 0 when neither is reported. */
static VkDeviceSize block_limit(const lws_device_caps *caps) {
    VkDeviceSize a = caps->max_allocation_size, b = caps->max_buffer_size;
    return !a ? b : !b ? a : a < b ? a : b;
}

static lws_status add_block(lws_context *ctx, VkDeviceSize need) {
    if (ctx->block_count == LWS_MAX_BLOCKS)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "the arena has used all of its %d blocks",
                        LWS_MAX_BLOCKS);
    VkDeviceSize size = need > BLOCK_BYTES ? need : BLOCK_BYTES;
    VkDeviceSize limit = block_limit(&ctx->caps);
    if (limit && size > limit) {
        if (need > limit)
            return lws_fail(LWS_ERR_OUT_OF_MEMORY,
                            "one tensor needs %llu bytes (%.1f MiB) but device %s allows buffers "
                            "of at most %llu bytes (maxBufferSize %.1f MiB, "
                            "maxMemoryAllocationSize %.1f MiB)",
                            (unsigned long long)need, need / 1048576.0, ctx->caps.name,
                            (unsigned long long)limit, ctx->caps.max_buffer_size / 1048576.0,
                            ctx->caps.max_allocation_size / 1048576.0);
        size = limit;
    }
    lws_block *b = &ctx->blocks[ctx->block_count];
    LWS_TRY(make_buffer(ctx, size, ctx->device_memory_type, 0, &b->buffer, &b->memory));
    b->addr = address_of(ctx, b->buffer);
    b->size = size;
    b->used = 0;
    ctx->block_count++;
    return LWS_OK;
}

lws_status lws_alloc(lws_context *ctx, VkDeviceSize size, lws_buffer *out) {
    if (size == 0) size = 4;
    VkDeviceSize padded = (size + LWS_ALIGN - 1) / LWS_ALIGN * LWS_ALIGN;
    /* First fit among the current block and the ones after it (released by a reset). */
    for (uint32_t i = ctx->block_current; i < ctx->block_count; i++) {
        lws_block *b = &ctx->blocks[i];
        if (b->size - b->used >= padded) {
            ctx->block_current = i;
            goto carve;
        }
    }
    LWS_TRY(add_block(ctx, padded));
    ctx->block_current = ctx->block_count - 1;
carve:;
    lws_block *b = &ctx->blocks[ctx->block_current];
    out->buffer = b->buffer;
    out->offset = b->used;
    out->size = size;
    out->addr = b->addr + b->used;
    out->dtype = LWS_F32; /* until the caller says otherwise */
    b->used += padded;
    ctx->in_use += padded;
    if (ctx->in_use > ctx->peak) ctx->peak = ctx->in_use;
    return LWS_OK;
}

lws_buffer lws_buffer_slice(lws_buffer b, VkDeviceSize offset, VkDeviceSize size) {
    lws_buffer s = b;
    s.offset += offset;
    s.addr += offset;
    s.size = size;
    return s;
}

lws_arena_mark lws_arena_get_mark(lws_context *ctx) {
    lws_arena_mark m = {ctx->block_current, 0};
    if (ctx->block_count) m.used = ctx->blocks[ctx->block_current].used;
    return m;
}

void lws_arena_reset(lws_context *ctx, lws_arena_mark mark) {
    for (uint32_t i = mark.block; i < ctx->block_count; i++) {
        VkDeviceSize keep = i == mark.block ? mark.used : 0;
        ctx->in_use -= ctx->blocks[i].used - keep;
        ctx->blocks[i].used = keep;
        lws_names_release(ctx, ctx->blocks[i].buffer, keep);
    }
    ctx->block_current = mark.block;
}

VkDeviceSize lws_memory_in_use(const lws_context *ctx) { return ctx->in_use; }
VkDeviceSize lws_memory_peak(const lws_context *ctx) { return ctx->peak; }
VkDeviceSize lws_memory_reserved(const lws_context *ctx) {
    VkDeviceSize total = 0;
    for (uint32_t i = 0; i < ctx->block_count; i++) total += ctx->blocks[i].size;
    return total;
}

void lws_memory_destroy(lws_context *ctx) {
    for (uint32_t i = 0; i < ctx->block_count; i++) {
        vkDestroyBuffer(ctx->device, ctx->blocks[i].buffer, NULL);
        vkFreeMemory(ctx->device, ctx->blocks[i].memory, NULL);
    }
    ctx->block_count = 0;
    if (ctx->staging) {
        vkDestroyBuffer(ctx->device, ctx->staging, NULL);
        vkFreeMemory(ctx->device, ctx->staging_memory, NULL);
        ctx->staging = VK_NULL_HANDLE;
    }
}

/* A host-visible buffer of its own allocation, mapped. */
static lws_status make_mapped(lws_context *ctx, VkDeviceSize size, VkBuffer *buffer,
                              VkDeviceMemory *memory, void **map) {
    LWS_TRY(make_buffer(ctx, size, ctx->host_memory_type, 1, buffer, memory));
    VkResult r = vkMapMemory(ctx->device, *memory, 0, VK_WHOLE_SIZE, 0, map);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(ctx->device, *buffer, NULL);
        vkFreeMemory(ctx->device, *memory, NULL);
        *buffer = VK_NULL_HANDLE;
        return lws_vk_fail(r, "vkMapMemory");
    }
    return LWS_OK;
}

static lws_status ensure_staging(lws_context *ctx) {
    if (ctx->staging) return LWS_OK;
    LWS_TRY(
        make_mapped(ctx, STAGING_BYTES, &ctx->staging, &ctx->staging_memory, &ctx->staging_map));
    ctx->staging_size = STAGING_BYTES;
    return LWS_OK;
}

lws_status lws_host_buffer_create(lws_context *ctx, VkDeviceSize bytes, lws_host_buffer *out) {
    memset(out, 0, sizeof *out);
    if (bytes == 0) bytes = 4;
    VkBuffer buffer;
    LWS_TRY(make_mapped(ctx, bytes, &buffer, &out->memory, &out->map));
    out->range.buffer = buffer;
    out->range.offset = 0;
    out->range.size = bytes;
    out->range.addr = address_of(ctx, buffer);
    out->range.dtype = LWS_U32;
    return LWS_OK;
}

void lws_host_buffer_destroy(lws_context *ctx, lws_host_buffer *b) {
    if (!b->range.buffer) return;
    vkDestroyBuffer(ctx->device, b->range.buffer, NULL);
    vkFreeMemory(ctx->device, b->memory, NULL); /* unmaps */
    memset(b, 0, sizeof *b);
}

lws_status lws_onetime_begin(lws_context *ctx, VkCommandBuffer *out) {
    VkCommandBufferAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    LWS_VK(vkAllocateCommandBuffers(ctx->device, &alloc, out));
    VkCommandBufferBeginInfo begin = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                      .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VkResult r = vkBeginCommandBuffer(*out, &begin);
    if (r != VK_SUCCESS) {
        vkFreeCommandBuffers(ctx->device, ctx->pool, 1, out);
        return lws_vk_fail(r, "vkBeginCommandBuffer");
    }
    /* Earlier submissions' writes must be visible to this transfer. */
    VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(*out,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &barrier, 0, NULL, 0, NULL);
    return LWS_OK;
}

lws_status lws_onetime_submit(lws_context *ctx, VkCommandBuffer cb) {
    VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT |
                         VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                             VK_PIPELINE_STAGE_TRANSFER_BIT,
                         0, 1, &barrier, 0, NULL, 0, NULL);
    lws_status s = LWS_OK;
    VkResult r = vkEndCommandBuffer(cb);
    if (r != VK_SUCCESS) s = lws_vk_fail(r, "vkEndCommandBuffer");
    if (s == LWS_OK) {
        VkSubmitInfo submit = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                               .commandBufferCount = 1,
                               .pCommandBuffers = &cb};
        r = vkQueueSubmit(ctx->queue, 1, &submit, ctx->fence);
        if (r != VK_SUCCESS) s = lws_vk_fail(r, "vkQueueSubmit");
    }
    if (s == LWS_OK) {
        r = vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX);
        ctx->host_waits++;
        if (r != VK_SUCCESS) s = lws_vk_fail(r, "vkWaitForFences");
        vkResetFences(ctx->device, 1, &ctx->fence);
    }
    vkFreeCommandBuffers(ctx->device, ctx->pool, 1, &cb);
    return s;
}

static lws_status check_range(lws_buffer b, size_t bytes, const char *what) {
    if (bytes > b.size)
        return lws_fail(LWS_ERR_INVALID, "%s of %zu bytes does not fit a buffer of %llu bytes",
                        what, bytes, (unsigned long long)b.size);
    return LWS_OK;
}

lws_status lws_upload(lws_context *ctx, lws_buffer dst, const void *src, size_t bytes) {
    LWS_TRY(check_range(dst, bytes, "upload"));
    LWS_TRY(ensure_staging(ctx));
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < ctx->staging_size ? bytes - done : ctx->staging_size;
        memcpy(ctx->staging_map, (const char *)src + done, n);
        VkCommandBuffer cb;
        LWS_TRY(lws_onetime_begin(ctx, &cb));
        VkBufferCopy region = {.srcOffset = 0, .dstOffset = dst.offset + done, .size = n};
        vkCmdCopyBuffer(cb, ctx->staging, dst.buffer, 1, &region);
        LWS_TRY(lws_onetime_submit(ctx, cb));
        done += n;
    }
    return LWS_OK;
}

lws_status lws_download(lws_context *ctx, lws_buffer src, void *dst, size_t bytes) {
    LWS_TRY(check_range(src, bytes, "download"));
    LWS_TRY(ensure_staging(ctx));
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < ctx->staging_size ? bytes - done : ctx->staging_size;
        VkCommandBuffer cb;
        LWS_TRY(lws_onetime_begin(ctx, &cb));
        VkBufferCopy region = {.srcOffset = src.offset + done, .dstOffset = 0, .size = n};
        vkCmdCopyBuffer(cb, src.buffer, ctx->staging, 1, &region);
        LWS_TRY(lws_onetime_submit(ctx, cb));
        memcpy((char *)dst + done, ctx->staging_map, n);
        done += n;
    }
    return LWS_OK;
}

lws_status lws_fill(lws_context *ctx, lws_buffer dst, uint32_t pattern) {
    VkCommandBuffer cb;
    LWS_TRY(lws_onetime_begin(ctx, &cb));
    vkCmdFillBuffer(cb, dst.buffer, dst.offset, (dst.size + 3) / 4 * 4, pattern);
    return lws_onetime_submit(ctx, cb);
}
