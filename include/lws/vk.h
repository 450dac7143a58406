/* lws — the Vulkan runtime: devices, memory, pipelines, command recording.
 *
 * Tensors live in a few large device allocations and are addressed by buffer
 * device address: a shader receives 64-bit addresses and shapes in its push
 * constants, so there are no descriptor sets and no per-binding size cap. */
#ifndef LWS_VK_H
#define LWS_VK_H

#include <stddef.h>
#include <stdint.h>

#include <volk.h>

#include "lws/status.h"
#include "lws/tensor.h"

/* ---- devices ---------------------------------------------------------- */

typedef struct lws_memory_heap {
    uint64_t size;
    int device_local;
} lws_memory_heap;

/* Matrix units: one M x N x K shape the device multiplies at subgroup scope
 * with fp16 inputs and fp32 accumulation (a row of
 * vkGetPhysicalDeviceCooperativeMatrixPropertiesNV/KHR). */
typedef struct lws_coopmat_shape {
    uint32_t m, n, k;
} lws_coopmat_shape;
#define LWS_MAX_COOPMAT_SHAPES 8

typedef enum lws_coopmat_api {
    LWS_COOPMAT_NONE, /* the portable fp32 matmul */
    LWS_COOPMAT_NV,   /* VK_NV_cooperative_matrix */
    LWS_COOPMAT_KHR,  /* VK_KHR_cooperative_matrix */
} lws_coopmat_api;

typedef struct lws_device_caps {
    uint32_t index; /* position in vkEnumeratePhysicalDevices */
    char name[256];
    uint32_t vendor_id, device_id;
    const char *vendor;      /* "NVIDIA", "AMD", "Intel", "Mesa (CPU)", ... */
    const char *device_type; /* "discrete GPU", "integrated GPU", "CPU", ... */
    char driver_name[256];
    char driver_info[256];
    uint32_t driver_version; /* raw, vendor encoded */
    uint32_t api_version;
    uint8_t uuid[16];
    uint32_t subgroup_size;
    uint32_t min_subgroup_size, max_subgroup_size; /* subgroup size control range */
    int subgroup_size_control;
    uint32_t max_shared_memory;
    uint32_t max_workgroup_invocations;
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_count[3];
    uint32_t max_push_constants;
    uint64_t max_storage_buffer_range;
    uint64_t max_allocation_size; /* maxMemoryAllocationSize: one vkAllocateMemory */
    uint64_t max_buffer_size;     /* maxBufferSize (maintenance4); 0 when not reported */
    uint32_t heap_count;
    lws_memory_heap heaps[16];
    uint64_t device_local_bytes; /* largest device-local heap */
    /* 0 when the queue family lws records on has no timestamps
     * (timestampValidBits 0; timestampComputeAndGraphics = VK_FALSE only
     * says that some graphics or compute family lacks them). */
    float timestamp_period_ns;
    uint32_t timestamp_valid_bits; /* of that queue family */
    int shader_float16, shader_int8, float_atomic_add, buffer_device_address;
    int shader_int64, scalar_block_layout;             /* required: every shader uses both */
    int nv_cooperative_matrix, khr_cooperative_matrix; /* the extensions are listed */
    /* What the matrix-unit matmul needs besides an extension: the
     * cooperativeMatrix feature with compute-stage support, fp16 arithmetic
     * (shader_float16), 16-bit storage buffers, the Vulkan memory model with
     * device scope, and subgroup arithmetic in compute shaders. */
    int nv_cooperative_matrix_feature, khr_cooperative_matrix_feature;
    int storage_buffer_16bit, vulkan_memory_model, subgroup_arithmetic;
    /* fp16 x fp16 + fp32 -> fp32 subgroup shapes each extension lists. */
    uint32_t nv_coopmat_count, khr_coopmat_count;
    lws_coopmat_shape nv_coopmat[LWS_MAX_COOPMAT_SHAPES], khr_coopmat[LWS_MAX_COOPMAT_SHAPES];
    int coopmat_bf16; /* a bf16 x bf16 -> fp32 shape is listed (KHR) */
} lws_device_caps;

/* The matmul path a device gets: the matrix-unit API (KHR where the device
 * and this build have it, else NV) and its shape (16x16x16 where listed,
 * else the listed shape with the fewest elements that the kernel's tiles
 * take), or LWS_COOPMAT_NONE. `why` (may be NULL) receives a sentence: the
 * path, or what is missing for matrix units. Pure: tests call it with made-up
 * capability records. khr_built / nv_built: whether this lws embeds the KHR
 * and NV shaders (lws_coopmat_built). */
lws_coopmat_api lws_coopmat_choose(const lws_device_caps *caps, int nv_built, int khr_built,
                                   lws_coopmat_shape *shape, char *why, size_t why_size);
/* Whether this lws embeds the matrix-unit shaders of an API. */
int lws_coopmat_built(lws_coopmat_api api);

/* Lists the Vulkan devices (a temporary instance is created). *out is malloc'd. */
lws_status lws_list_devices(lws_device_caps **out, uint32_t *count);

/* The features every lws shader needs, from vkGetPhysicalDeviceFeatures2:
 * shaderInt64 (64-bit addresses), bufferDeviceAddress and scalarBlockLayout.
 * Returns LWS_ERR_VULKAN naming the missing feature and the device, so a
 * device without them is refused when it is chosen, not when a shader fails. */
lws_status lws_check_required_features(const char *device_name,
                                       const VkPhysicalDeviceFeatures *core,
                                       const VkPhysicalDeviceVulkan12Features *v12);
/* The queue family that lws records on: a compute-only family where there is
 * one (asynchronous compute), else any with compute; -1 when none has compute. */
int lws_pick_queue_family(const VkQueueFamilyProperties *families, uint32_t count);
/* Timestamps of a queue with valid_bits meaningful bits: the difference
 * end - start of two raw values, modulo 2^valid_bits (the counter wraps
 * there; the bits above are undefined). valid_bits 0 gives 0. */
uint64_t lws_timestamp_ticks(uint64_t start, uint64_t end, uint32_t valid_bits);

/* ---- context ---------------------------------------------------------- */

typedef struct lws_context lws_context;

typedef struct lws_context_options {
    const char *device; /* index ("1") or name substring; NULL or "" = first */
    int validation;     /* 1 on, 0 off, -1 from LWS_VALIDATION */
    int pipeline_cache; /* 1 use the on-disk cache, 0 not, -1 from LWS_PIPELINE_CACHE (default on)
                         */
    /* The fields below read 0 as "from the environment", so zero-initialised
     * options keep the environment's settings. */
    int check_hazards;     /* 1 on, -1 off, 0 from LWS_CHECK_HAZARDS (default off) */
    uint32_t skip_barrier; /* N: the N-th lws_cmd_barrier of the context does nothing (a
                            * test hook); 0 from LWS_SKIP_BARRIER (default none) */
    const char *tuning;    /* nvidia, amd, intel, generic or auto; NULL or "" from
                            * LWS_TUNING (default auto: the device's own) */
} lws_context_options;

lws_status lws_context_create(const lws_context_options *options, lws_context **out);
void lws_context_destroy(lws_context *ctx);
const lws_device_caps *lws_context_caps(const lws_context *ctx);
VkDevice lws_context_device(const lws_context *ctx);

/* The matrix-unit API enabled on this context's device (extension and
 * feature), with its shape; LWS_COOPMAT_NONE when the device has none. */
lws_coopmat_api lws_context_coopmat(const lws_context *ctx, lws_coopmat_shape *shape);
/* Whether the context's matmuls may use matrix units (ops/matmul_coopmat.c
 * keeps it): 0 not checked yet, 1 checked and in use, -1 portable after a
 * failed check. */
int lws_context_matmul_verdict(const lws_context *ctx);
void lws_context_set_matmul_verdict(lws_context *ctx, int verdict);
/* The same for the matrix-unit attention forward (ops/attention_coopmat.c): 0 not
 * checked yet, 1 checked and in use, -1 the tuning's form after a failed check. */
int lws_context_attention_verdict(const lws_context *ctx);
void lws_context_set_attention_verdict(lws_context *ctx, int verdict);

/* The capability record the kernel tuning sees: the device's own, or with
 * LWS_TUNING=vendor a copy carrying that vendor's id and typical limits
 * (shared memory, subgroup size), so that vendor's kernel choices run on any
 * device. Launchers still fit the real device (lws_context_caps) and say on
 * stderr where they had to shrink a forced choice. */
const lws_device_caps *lws_context_tuning_caps(const lws_context *ctx);
/* The forced table's name ("nvidia", ...), or NULL for the device's own. */
const char *lws_context_tuning_name(const lws_context *ctx);
/* The allowed LWS_TUNING values, for messages: "nvidia, amd, intel, generic, auto". */
const char *lws_tuning_names(void);
/* Whether command buffers of this context check their hazards (see below). */
int lws_context_checks_hazards(const lws_context *ctx);
/* Barriers recorded in this context's command buffers (lws_cmd_barrier calls
 * that did something) and, with hazard checking on, how many of them were
 * unneeded (see lws_cmd_barrier_stats); counted when each buffer ends. */
void lws_context_barrier_stats(const lws_context *ctx, uint64_t *total, uint64_t *unneeded);
/* Dispatches recorded in this context's command buffers (a dispatch split
 * over the device's workgroup-count limit counts once); counted when each
 * buffer ends. */
uint64_t lws_context_dispatches(const lws_context *ctx);
/* Times the host has waited for the device in this context: every fence
 * wait of a submission (lws_submit, lws_submit_polling) and of a transfer
 * (lws_upload, lws_download, lws_fill). Reading timestamps after a
 * submission completed does not wait and is not counted. */
uint64_t lws_context_host_waits(const lws_context *ctx);

/* Validation messages (warnings and errors) seen by the debug messenger of
 * any context in this process; tests fail when it is non-zero. */
uint32_t lws_validation_message_count(void);
/* Whether the validation layer is active in this context. */
int lws_context_validation(const lws_context *ctx);

/* ---- memory ----------------------------------------------------------- */

/* A range of a device buffer. addr is the buffer device address of offset;
 * dtype is the element type of what it holds (views keep their parent's). */
typedef struct lws_buffer {
    VkBuffer buffer;
    VkDeviceSize offset;
    VkDeviceSize size;
    VkDeviceAddress addr;
    lws_dtype dtype;
} lws_buffer;

/* Sub-allocates size bytes (aligned to 256) from the context's arena; the
 * range's dtype is LWS_F32 until the caller says otherwise. */
lws_status lws_alloc(lws_context *ctx, VkDeviceSize size, lws_buffer *out);
/* A view of bytes [offset, offset+size) of b. */
lws_buffer lws_buffer_slice(lws_buffer b, VkDeviceSize offset, VkDeviceSize size);
/* Names a range ("layers.3.q") for hazard messages; a range named again
 * takes the new name, and names inside memory released by lws_arena_reset
 * are forgotten. Unnamed bytes print as "buffer+0xOFFSET (N bytes)". Only
 * kept when the context checks hazards. */
void lws_buffer_name(lws_context *ctx, lws_buffer range, const char *name);
/* Arena marks: everything allocated after a mark is released by reset. */
typedef struct lws_arena_mark {
    uint32_t block;
    VkDeviceSize used;
} lws_arena_mark;
lws_arena_mark lws_arena_get_mark(lws_context *ctx);
void lws_arena_reset(lws_context *ctx, lws_arena_mark mark);
VkDeviceSize lws_memory_in_use(const lws_context *ctx);
VkDeviceSize lws_memory_peak(const lws_context *ctx);
/* Bytes reserved from the driver by the arena (blocks), staging excluded. */
VkDeviceSize lws_memory_reserved(const lws_context *ctx);

/* A host-visible, host-coherent buffer of its own allocation, mapped for
 * its lifetime: command buffers copy between it and the arena (range is the
 * whole buffer, to slice), the host reads and writes map. Outside the arena
 * and its memory plan: host memory on most devices. */
typedef struct lws_host_buffer {
    lws_buffer range;
    void *map;
    VkDeviceMemory memory;
} lws_host_buffer;
lws_status lws_host_buffer_create(lws_context *ctx, VkDeviceSize bytes, lws_host_buffer *out);
void lws_host_buffer_destroy(lws_context *ctx, lws_host_buffer *b);

/* Copies host memory to a buffer and back, through a host-visible staging
 * buffer; both wait for completion. */
lws_status lws_upload(lws_context *ctx, lws_buffer dst, const void *src, size_t bytes);
lws_status lws_download(lws_context *ctx, lws_buffer src, void *dst, size_t bytes);
/* Fills a buffer with a 32-bit pattern (used to poison outputs in tests). */
lws_status lws_fill(lws_context *ctx, lws_buffer dst, uint32_t pattern);

/* ---- pipelines -------------------------------------------------------- */

/* Every pipeline shares one layout: LWS_PUSH_BYTES of push constants. */
#define LWS_PUSH_BYTES 128

typedef struct lws_pipeline lws_pipeline;

/* The pipeline for an embedded shader, specialised with constants 0..n-1
 * (by convention 0,1,2 are local_size_x/y/z). Created once, then cached. */
lws_status lws_pipeline_get(lws_context *ctx, const char *shader, const uint32_t *spec,
                            uint32_t spec_count, lws_pipeline **out);

/* Embedded SPIR-V lookup (generated at build time). */
typedef struct lws_spirv {
    const char *name;
    const uint32_t *code;
    size_t bytes;
} lws_spirv;
const lws_spirv *lws_spirv_find(const char *name);
const lws_spirv *lws_spirv_all(size_t *count);

/* ---- command recording ------------------------------------------------ */

typedef struct lws_cmd lws_cmd;
typedef struct lws_timer lws_timer;

/* Begins a command buffer. reusable = 1 records once for many submissions,
 * also several times within one submission (simultaneous use: a training
 * step submits each micro-batch's buffers once per micro-batch).
 * Every command buffer ends with a full compute/transfer barrier (as do the
 * transfers of lws_upload and its kind), which orders it against everything
 * after it in submission order: command buffers submitted one after another
 * see each other's writes.
 *
 * Hazard checking (LWS_CHECK_HAZARDS=1, or lws_context_options.check_hazards):
 * a launcher declares the bytes its next dispatch reads and writes
 * (lws_cmd_reads, lws_cmd_writes; copies and fills declare their own), and
 * the recorder keeps every range read or written since the last barrier. A
 * dispatch that reads or writes bytes an earlier op wrote since then (read or
 * write after write), or writes bytes an earlier op read (write after read),
 * is refused: the command buffer fails with a message naming both ops, their
 * shaders, labels and buffer names and the overlapping bytes. One op reading
 * and writing the same bytes (in place) is fine. A dispatch that declared no
 * write is refused too, so a kernel without declarations cannot be recorded.
 * Off, each of these calls returns at once. */
lws_status lws_cmd_begin(lws_context *ctx, int reusable, lws_cmd **out);
lws_context *lws_cmd_context(lws_cmd *cmd);
VkCommandBuffer lws_cmd_handle(lws_cmd *cmd);
/* Dispatches a (gx, gy, gz) grid of workgroups, split into several
 * vkCmdDispatchBase calls where a dimension exceeds maxComputeWorkGroupCount
 * (shaders see the global gl_WorkGroupID either way). */
void lws_cmd_dispatch(lws_cmd *cmd, lws_pipeline *pipe, const void *push, uint32_t push_bytes,
                      uint32_t gx, uint32_t gy, uint32_t gz);
/* Declare bytes the next lws_cmd_dispatch reads or writes (exactly the bytes
 * the shader touches, from the shapes: slices of the arguments). Consumed by
 * that dispatch; declarations left over at a barrier or at the end fail the
 * command buffer. */
void lws_cmd_reads(lws_cmd *cmd, lws_buffer range);
void lws_cmd_writes(lws_cmd *cmd, lws_buffer range);
/* Declare `count` ranges of first.size bytes, each `stride` bytes after the
 * one before: the matrices of a strided batch, a column block of a row-major
 * matrix. */
void lws_cmd_reads_strided(lws_cmd *cmd, lws_buffer first, VkDeviceSize stride, uint64_t count);
void lws_cmd_writes_strided(lws_cmd *cmd, lws_buffer first, VkDeviceSize stride, uint64_t count);
/* Declares that the next dispatch reads (write = 0) or reads and writes
 * (write = 1) any byte of the context's arena: for kernels that follow device
 * addresses stored in device memory (the optimizer table), which the host
 * cannot list. `what` names those bytes in hazard messages. */
void lws_cmd_accesses_arena(lws_cmd *cmd, int write, const char *what);
/* Names the current position of the recording ("layer 3 forward") in hazard
 * messages, until the next label. */
void lws_cmd_label(lws_cmd *cmd, const char *label);
/* Makes earlier compute and transfer writes visible to later reads. */
void lws_cmd_barrier(lws_cmd *cmd);
/* Barriers recorded so far and, with hazard checking on, how many were
 * unneeded: no access between the barrier and the next one (or the end)
 * conflicts with an access between it and the previous one (or the start).
 * A barrier is judged when the next one comes or the buffer ends. */
void lws_cmd_barrier_stats(const lws_cmd *cmd, uint32_t *total, uint32_t *unneeded);
/* Dispatches and barriers (lws_cmd_barrier) recorded in cmd so far; the full
 * barrier every command buffer ends with is not among them. */
void lws_cmd_counts(const lws_cmd *cmd, uint32_t *dispatches, uint32_t *barriers);
/* Work left to run after the next barrier: a launcher whose last step only
 * reads what its earlier steps wrote (the sum of a matmul split over k) can
 * defer that step, so it shares the phase of whatever is recorded after the
 * caller's next barrier instead of costing a barrier of its own. The caller
 * of such an op must leave its output alone until a second barrier (the
 * deferred step writes it after the first). fn(cmd, copy of arg) runs right
 * after the next lws_cmd_barrier (lws_cmd_end and lws_cmd_settle record one
 * while work waits); at most LWS_DEFERRED_MAX pieces of up to
 * LWS_DEFERRED_ARG_BYTES bytes of argument wait at a time. */
#define LWS_DEFERRED_MAX       16
#define LWS_DEFERRED_ARG_BYTES 128
typedef void (*lws_deferred_fn)(lws_cmd *cmd, const void *arg);
lws_status lws_cmd_defer(lws_cmd *cmd, lws_deferred_fn fn, const void *arg, size_t bytes);
/* Records barriers until no deferred work waits (none when none does):
 * before the end of a timed region that should hold its deferred work (the
 * model's layer regions do; a per-op region does not, so a deferred sum is
 * timed with whatever op follows it). */
void lws_cmd_settle(lws_cmd *cmd);
/* Device memory launchers may use for intermediate results within this
 * command buffer (the matmul's partial sums over slices of k): a region
 * taken with lws_cmd_scratch_take(cmd, bytes, barriers) is the taker's until
 * `barriers` more lws_cmd_barrier calls, then free again (a region written
 * before one barrier and read by deferred work after it: 2). Regions are
 * aligned to 256 bytes, at most 16 held at once; take returns 0 when no free
 * range of that size exists (the launcher then does without), scratch_room
 * the largest one. A
 * command buffer has no scratch until one is set. */
void lws_cmd_set_scratch(lws_cmd *cmd, lws_buffer scratch);
VkDeviceSize lws_cmd_scratch_room(lws_cmd *cmd);
int lws_cmd_scratch_take(lws_cmd *cmd, VkDeviceSize bytes, uint32_t barriers, lws_buffer *out);
/* Fill dst (its size rounded up to 4 bytes) / copy bytes; each declares its
 * own accesses. */
void lws_cmd_fill(lws_cmd *cmd, lws_buffer dst, uint32_t pattern);
void lws_cmd_copy(lws_cmd *cmd, lws_buffer src, lws_buffer dst, VkDeviceSize bytes);
/* Makes the transfer writes recorded so far visible to the host once the
 * submission's fence has signalled (copies into an lws_host_buffer that the
 * host reads after the wait). */
void lws_cmd_host_barrier(lws_cmd *cmd);
/* Records a failure during recording (a launcher that cannot get its
 * pipeline); lws_cmd_end then returns it. */
lws_status lws_cmd_fail(lws_cmd *cmd, lws_status s);
lws_status lws_cmd_end(lws_cmd *cmd);
/* Submits command buffers in order and waits for them. */
lws_status lws_submit(lws_context *ctx, lws_cmd *const *cmds, uint32_t count);
/* The same, calling poll(user) about every 0.1 ms while the device works
 * (the host's turn to progress other work, such as network transfers). A
 * poll that fails is not called again; its status is returned once the
 * device is done. */
typedef lws_status (*lws_poll_fn)(void *user);
lws_status lws_submit_polling(lws_context *ctx, lws_cmd *const *cmds, uint32_t count,
                              lws_poll_fn poll, void *user);
void lws_cmd_destroy(lws_cmd *cmd);

/* ---- timestamps ------------------------------------------------------- */

/* Named time regions measured with timestamp queries. */
lws_status lws_timer_create(lws_context *ctx, uint32_t max_regions, lws_timer **out);
void lws_timer_destroy(lws_timer *timer);
/* Returns the region index, or -1 when the timer is full or the device has
 * no timestamps. */
int lws_cmd_region_begin(lws_cmd *cmd, lws_timer *timer, const char *name);
void lws_cmd_region_end(lws_cmd *cmd, lws_timer *timer, int region);
uint32_t lws_timer_count(const lws_timer *timer);
const char *lws_timer_name(const lws_timer *timer, uint32_t region);
/* Milliseconds of each region after its command buffer completed. */
lws_status lws_timer_read(lws_context *ctx, lws_timer *timer, double *ms, uint32_t count);

/* ---- helpers ---------------------------------------------------------- */

const char *lws_vk_result_name(VkResult r);

#endif
