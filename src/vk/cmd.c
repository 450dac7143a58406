/* Command recording: dispatches, barriers, submission, timestamp regions. */
#include <stdlib.h>
#include <string.h>

#include "vk/internal.h"

/* Scratch regions a command buffer holds at once (lws_cmd_scratch_take). */
#define SCRATCH_REGIONS 16

struct lws_cmd {
    lws_context *ctx;
    VkCommandBuffer cb;
    VkPipeline bound;
    lws_status status;
    lws_hazards *hz; /* NULL unless the context checks hazards */
    uint32_t barriers, dispatches;
    int counted; /* barrier and dispatch counts added to the context */
    /* Work left to run after the next barrier (lws_cmd_defer). */
    struct deferred {
        lws_deferred_fn fn;
        uint64_t arg[LWS_DEFERRED_ARG_BYTES / 8];
    } deferred[LWS_DEFERRED_MAX];
    uint32_t n_deferred;
    /* Scratch (lws_cmd_set_scratch): regions in use, each free again once
     * `phase` reaches its free_at. phase counts lws_cmd_barrier calls. */
    lws_buffer scratch;
    struct scratch_region {
        VkDeviceSize offset, bytes;
        uint32_t free_at;
    } regions[SCRATCH_REGIONS];
    uint32_t n_regions, phase;
};

struct lws_timer {
    lws_context *ctx;
    VkQueryPool pool;
    uint32_t max_regions, count;
    char **names;
};

static void full_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    VkPipelineStageFlags stages =
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cb, stages, stages, 0, 1, &barrier, 0, NULL, 0, NULL);
}

lws_status lws_cmd_begin(lws_context *ctx, int reusable, lws_cmd **out) {
    lws_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    cmd->ctx = ctx;
    lws_status hs = lws_hazards_create(ctx, &cmd->hz);
    if (hs != LWS_OK) {
        free(cmd);
        return hs;
    }
    VkCommandBufferAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    VkResult r = vkAllocateCommandBuffers(ctx->device, &alloc, &cmd->cb);
    if (r != VK_SUCCESS) {
        lws_hazards_destroy(cmd->hz);
        free(cmd);
        return lws_vk_fail(r, "vkAllocateCommandBuffers");
    }
    VkCommandBufferBeginInfo begin = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = reusable ? VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT
                          : VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    r = vkBeginCommandBuffer(cmd->cb, &begin);
    if (r != VK_SUCCESS) {
        lws_cmd_destroy(cmd);
        return lws_vk_fail(r, "vkBeginCommandBuffer");
    }
    /* No barrier here: every command buffer the context records ends with a
     * full barrier (lws_cmd_end, and the transfers' own in memory.c), and a
     * barrier orders everything before it in submission order against
     * everything after it, in later command buffers and submissions too. */
    *out = cmd;
    return LWS_OK;
}

lws_context *lws_cmd_context(lws_cmd *cmd) {
    return cmd->ctx;
}
VkCommandBuffer lws_cmd_handle(lws_cmd *cmd) {
    return cmd->cb;
}

void lws_cmd_reads(lws_cmd *cmd, lws_buffer range) {
    if (!cmd->hz || cmd->status != LWS_OK) return;
    lws_hazards_declare(cmd->hz, range, 0, NULL);
}

void lws_cmd_writes(lws_cmd *cmd, lws_buffer range) {
    if (!cmd->hz || cmd->status != LWS_OK) return;
    lws_hazards_declare(cmd->hz, range, 1, NULL);
}

void lws_cmd_reads_strided(lws_cmd *cmd, lws_buffer first, VkDeviceSize stride, uint64_t count) {
    if (!cmd->hz || cmd->status != LWS_OK) return;
    lws_hazards_declare_strided(cmd->hz, first, stride, count, 0);
}

void lws_cmd_writes_strided(lws_cmd *cmd, lws_buffer first, VkDeviceSize stride, uint64_t count) {
    if (!cmd->hz || cmd->status != LWS_OK) return;
    lws_hazards_declare_strided(cmd->hz, first, stride, count, 1);
}

void lws_cmd_accesses_arena(lws_cmd *cmd, int write, const char *what) {
    if (!cmd->hz || cmd->status != LWS_OK) return;
    lws_hazards_declare_arena(cmd->hz, write, what);
}

void lws_cmd_label(lws_cmd *cmd, const char *label) {
    if (!cmd->hz || cmd->status != LWS_OK) return;
    lws_hazards_label(cmd->hz, label);
}

void lws_cmd_dispatch(lws_cmd *cmd, lws_pipeline *pipe, const void *push, uint32_t push_bytes,
                      uint32_t gx, uint32_t gy, uint32_t gz) {
    if (cmd->hz) {
        if (cmd->status != LWS_OK)
            lws_hazards_clear_pending(cmd->hz);
        else
            lws_cmd_fail(cmd, lws_hazards_dispatch(cmd->hz, pipe->shader));
    }
    if (cmd->status != LWS_OK || gx == 0 || gy == 0 || gz == 0) return;
    if (push_bytes > LWS_PUSH_BYTES) {
        cmd->status = lws_fail(LWS_ERR_INVALID, "push constants of %u bytes exceed %d (%s)",
                               push_bytes, LWS_PUSH_BYTES, pipe->shader);
        return;
    }
    if (cmd->bound != pipe->pipeline) {
        vkCmdBindPipeline(cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe->pipeline);
        cmd->bound = pipe->pipeline;
    }
    if (push_bytes) {
        /* Push the whole range so the layout's bytes are always defined. */
        uint8_t block[LWS_PUSH_BYTES] = {0};
        memcpy(block, push, push_bytes);
        vkCmdPushConstants(cmd->cb, cmd->ctx->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                           LWS_PUSH_BYTES, block);
    }
    cmd->dispatches++;
    const uint32_t *max = cmd->ctx->caps.max_workgroup_count;
    for (uint32_t z = 0; z < gz; z += max[2])
        for (uint32_t y = 0; y < gy; y += max[1])
            for (uint32_t x = 0; x < gx; x += max[0]) {
                uint32_t nx = gx - x < max[0] ? gx - x : max[0];
                uint32_t ny = gy - y < max[1] ? gy - y : max[1];
                uint32_t nz = gz - z < max[2] ? gz - z : max[2];
                vkCmdDispatchBase(cmd->cb, x, y, z, nx, ny, nz);
            }
}

/* Records the work deferred to after the barrier just recorded. */
static void run_deferred(lws_cmd *cmd) {
    struct deferred work[LWS_DEFERRED_MAX];
    uint32_t n = cmd->n_deferred;
    memcpy(work, cmd->deferred, n * sizeof *work);
    cmd->n_deferred = 0; /* the work may defer more, to the barrier after */
    for (uint32_t i = 0; i < n; i++) work[i].fn(cmd, work[i].arg);
}

void lws_cmd_barrier(lws_cmd *cmd) {
    cmd->phase++;
    /* LWS_SKIP_BARRIER=N: the N-th barrier of the context is left out, so a
     * test can check that the hazard checker notices. */
    if (++cmd->ctx->barrier_calls != cmd->ctx->skip_barrier) {
        full_barrier(cmd->cb);
        cmd->barriers++;
        if (cmd->hz) {
            if (cmd->status != LWS_OK) lws_hazards_clear_pending(cmd->hz);
            lws_status s = lws_hazards_barrier(cmd->hz);
            if (cmd->status == LWS_OK) lws_cmd_fail(cmd, s);
        }
    }
    run_deferred(cmd);
}

lws_status lws_cmd_defer(lws_cmd *cmd, lws_deferred_fn fn, const void *arg, size_t bytes) {
    if (cmd->n_deferred == LWS_DEFERRED_MAX || bytes > LWS_DEFERRED_ARG_BYTES)
        return lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID,
                                          "lws_cmd_defer: %u pieces of work are waiting for the "
                                          "next barrier (at most %d), this one of %zu bytes "
                                          "(at most %d)",
                                          cmd->n_deferred, LWS_DEFERRED_MAX, bytes,
                                          LWS_DEFERRED_ARG_BYTES));
    struct deferred *d = &cmd->deferred[cmd->n_deferred++];
    d->fn = fn;
    if (bytes) memcpy(d->arg, arg, bytes);
    return LWS_OK;
}

void lws_cmd_settle(lws_cmd *cmd) {
    while (cmd->n_deferred) lws_cmd_barrier(cmd);
}

void lws_cmd_set_scratch(lws_cmd *cmd, lws_buffer scratch) {
    cmd->scratch = scratch;
    cmd->n_regions = 0;
}

/* Drops the regions free by now; the rest stay sorted by offset. */
static void release_regions(lws_cmd *cmd) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < cmd->n_regions; i++)
        if (cmd->regions[i].free_at > cmd->phase) cmd->regions[kept++] = cmd->regions[i];
    cmd->n_regions = kept;
}

#define SCRATCH_ALIGN 256

/* Bytes free before region i (i = n_regions: after the last), from an
 * aligned *start. */
static VkDeviceSize scratch_gap(const lws_cmd *cmd, uint32_t i, VkDeviceSize *start) {
    VkDeviceSize from = i ? cmd->regions[i - 1].offset + cmd->regions[i - 1].bytes : 0;
    VkDeviceSize end = i < cmd->n_regions ? cmd->regions[i].offset : cmd->scratch.size;
    *start = (from + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
    return end > *start ? end - *start : 0;
}

VkDeviceSize lws_cmd_scratch_room(lws_cmd *cmd) {
    release_regions(cmd);
    if (!cmd->scratch.buffer || cmd->n_regions == SCRATCH_REGIONS) return 0;
    VkDeviceSize most = 0, start;
    for (uint32_t i = 0; i <= cmd->n_regions; i++) {
        VkDeviceSize gap = scratch_gap(cmd, i, &start);
        if (gap > most) most = gap;
    }
    return most;
}

int lws_cmd_scratch_take(lws_cmd *cmd, VkDeviceSize bytes, uint32_t barriers, lws_buffer *out) {
    release_regions(cmd);
    if (!cmd->scratch.buffer || !bytes || cmd->n_regions == SCRATCH_REGIONS) return 0;
    for (uint32_t i = 0; i <= cmd->n_regions; i++) {
        VkDeviceSize start;
        if (scratch_gap(cmd, i, &start) < bytes) continue;
        memmove(&cmd->regions[i + 1], &cmd->regions[i],
                (cmd->n_regions - i) * sizeof cmd->regions[0]);
        cmd->regions[i] = (struct scratch_region){start, bytes, cmd->phase + barriers};
        cmd->n_regions++;
        *out = lws_buffer_slice(cmd->scratch, start, bytes);
        return 1;
    }
    return 0;
}

void lws_cmd_barrier_stats(const lws_cmd *cmd, uint32_t *total, uint32_t *unneeded) {
    *total = cmd->barriers;
    *unneeded = 0;
    if (cmd->hz) lws_hazards_stats(cmd->hz, total, unneeded);
}

void lws_cmd_counts(const lws_cmd *cmd, uint32_t *dispatches, uint32_t *barriers) {
    *dispatches = cmd->dispatches;
    *barriers = cmd->barriers;
}

void lws_cmd_fill(lws_cmd *cmd, lws_buffer dst, uint32_t pattern) {
    VkDeviceSize bytes = (dst.size + 3) / 4 * 4;
    if (cmd->hz && cmd->status == LWS_OK)
        lws_cmd_fail(cmd,
                     lws_hazards_transfer(cmd->hz, "fill", NULL, lws_buffer_slice(dst, 0, bytes)));
    vkCmdFillBuffer(cmd->cb, dst.buffer, dst.offset, bytes, pattern);
}

void lws_cmd_copy(lws_cmd *cmd, lws_buffer src, lws_buffer dst, VkDeviceSize bytes) {
    if (cmd->hz && cmd->status == LWS_OK) {
        lws_buffer from = lws_buffer_slice(src, 0, bytes);
        lws_cmd_fail(cmd,
                     lws_hazards_transfer(cmd->hz, "copy", &from, lws_buffer_slice(dst, 0, bytes)));
    }
    VkBufferCopy region = {.srcOffset = src.offset, .dstOffset = dst.offset, .size = bytes};
    vkCmdCopyBuffer(cmd->cb, src.buffer, dst.buffer, 1, &region);
}

void lws_cmd_host_barrier(lws_cmd *cmd) {
    VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier(cmd->cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &barrier, 0, NULL, 0, NULL);
}

lws_status lws_cmd_fail(lws_cmd *cmd, lws_status s) {
    if (cmd->status == LWS_OK) cmd->status = s;
    return s;
}

lws_status lws_cmd_end(lws_cmd *cmd) {
    lws_cmd_settle(cmd);
    if (cmd->hz) {
        if (cmd->status != LWS_OK) lws_hazards_clear_pending(cmd->hz);
        lws_status s = lws_hazards_end(cmd->hz);
        if (cmd->status == LWS_OK) lws_cmd_fail(cmd, s);
    }
    if (!cmd->counted) {
        uint32_t total, unneeded;
        lws_cmd_barrier_stats(cmd, &total, &unneeded);
        cmd->ctx->barriers_total += total;
        cmd->ctx->barriers_unneeded += unneeded;
        cmd->ctx->dispatches_total += cmd->dispatches;
        cmd->counted = 1;
    }
    full_barrier(cmd->cb);
    VkResult r = vkEndCommandBuffer(cmd->cb);
    if (cmd->status != LWS_OK) return cmd->status;
    if (r != VK_SUCCESS) return lws_vk_fail(r, "vkEndCommandBuffer");
    return LWS_OK;
}

lws_status lws_submit(lws_context *ctx, lws_cmd *const *cmds, uint32_t count) {
    return lws_submit_polling(ctx, cmds, count, NULL, NULL);
}

/* How long one wait for the fence lasts between polls. */
#define POLL_INTERVAL_NS 100000ull

lws_status lws_submit_polling(lws_context *ctx, lws_cmd *const *cmds, uint32_t count,
                              lws_poll_fn poll, void *user) {
    VkCommandBuffer stack[64];
    VkCommandBuffer *cbs = count <= 64 ? stack : malloc(count * sizeof *cbs);
    if (!cbs) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t i = 0; i < count; i++) cbs[i] = cmds[i]->cb;
    VkSubmitInfo submit = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = count,
        .pCommandBuffers = cbs,
    };
    VkResult r = vkQueueSubmit(ctx->queue, 1, &submit, ctx->fence);
    if (cbs != stack) free(cbs);
    if (r != VK_SUCCESS) return lws_vk_fail(r, "vkQueueSubmit");
    /* A poll that fails stops the polling, not the wait: the device is
     * done with the command buffers before this returns. */
    lws_status polled = LWS_OK;
    for (;;) {
        r = vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE,
                            poll && polled == LWS_OK ? POLL_INTERVAL_NS : UINT64_MAX);
        if (r != VK_TIMEOUT) break;
        polled = poll(user);
    }
    ctx->host_waits++;
    vkResetFences(ctx->device, 1, &ctx->fence);
    if (r != VK_SUCCESS) return lws_vk_fail(r, "vkWaitForFences");
    return polled;
}

void lws_cmd_destroy(lws_cmd *cmd) {
    if (!cmd) return;
    if (cmd->cb) vkFreeCommandBuffers(cmd->ctx->device, cmd->ctx->pool, 1, &cmd->cb);
    lws_hazards_destroy(cmd->hz);
    free(cmd);
}

lws_status lws_timer_create(lws_context *ctx, uint32_t max_regions, lws_timer **out) {
    lws_timer *t = calloc(1, sizeof *t);
    if (!t) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    t->ctx = ctx;
    t->max_regions = max_regions;
    t->names = calloc(max_regions ? max_regions : 1, sizeof *t->names);
    if (!t->names) {
        free(t);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    if (ctx->caps.timestamp_period_ns > 0 && max_regions > 0) {
        VkQueryPoolCreateInfo info = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2 * max_regions,
        };
        VkResult r = vkCreateQueryPool(ctx->device, &info, NULL, &t->pool);
        if (r != VK_SUCCESS) {
            free(t->names);
            free(t);
            return lws_vk_fail(r, "vkCreateQueryPool");
        }
    }
    *out = t;
    return LWS_OK;
}

void lws_timer_destroy(lws_timer *t) {
    if (!t) return;
    if (t->pool) vkDestroyQueryPool(t->ctx->device, t->pool, NULL);
    for (uint32_t i = 0; i < t->count; i++) free(t->names[i]);
    free(t->names);
    free(t);
}

int lws_cmd_region_begin(lws_cmd *cmd, lws_timer *t, const char *name) {
    if (!t || !t->pool || t->count == t->max_regions) return -1;
    uint32_t i = t->count++;
    size_t len = strlen(name);
    t->names[i] = malloc(len + 1);
    if (t->names[i]) memcpy(t->names[i], name, len + 1);
    /* Reset inside the command buffer, so a recorded-once buffer can be
     * replayed: each submission resets and rewrites its own queries. */
    vkCmdResetQueryPool(cmd->cb, t->pool, 2 * i, 2);
    vkCmdWriteTimestamp(cmd->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t->pool, 2 * i);
    return (int)i;
}

void lws_cmd_region_end(lws_cmd *cmd, lws_timer *t, int region) {
    if (!t || !t->pool || region < 0) return;
    vkCmdWriteTimestamp(cmd->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, t->pool,
                        2 * (uint32_t)region + 1);
}

uint32_t lws_timer_count(const lws_timer *t) {
    return t ? t->count : 0;
}
const char *lws_timer_name(const lws_timer *t, uint32_t region) {
    return region < t->count && t->names[region] ? t->names[region] : "?";
}

lws_status lws_timer_read(lws_context *ctx, lws_timer *t, double *ms, uint32_t count) {
    if (!t->pool || t->count == 0) {
        for (uint32_t i = 0; i < count; i++) ms[i] = 0.0;
        return LWS_OK;
    }
    uint32_t n = count < t->count ? count : t->count;
    uint64_t *stamps = malloc(2 * n * sizeof *stamps);
    if (!stamps) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    VkResult r =
        vkGetQueryPoolResults(ctx->device, t->pool, 0, 2 * n, 2 * n * sizeof *stamps, stamps,
                              sizeof *stamps, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS) {
        free(stamps);
        return lws_vk_fail(r, "vkGetQueryPoolResults");
    }
    for (uint32_t i = 0; i < n; i++)
        ms[i] = (double)lws_timestamp_ticks(stamps[2 * i], stamps[2 * i + 1],
                                            ctx->caps.timestamp_valid_bits) *
                ctx->caps.timestamp_period_ns * 1e-6;
    for (uint32_t i = n; i < count; i++) ms[i] = 0.0;
    free(stamps);
    return LWS_OK;
}
