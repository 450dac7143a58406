/* Private state of the Vulkan runtime, shared by the files of src/vk/. */
#ifndef LWS_VK_INTERNAL_H
#define LWS_VK_INTERNAL_H

#include "lws/vk.h"

#define LWS_MAX_BLOCKS 64
#define LWS_ALIGN      256

typedef struct lws_block {
    VkDeviceMemory memory;
    VkBuffer buffer;
    VkDeviceAddress addr;
    VkDeviceSize size, used;
} lws_block;

struct lws_pipeline {
    char shader[64];
    uint32_t spec[16];
    uint32_t spec_count;
    VkPipeline pipeline;
    struct lws_pipeline *next;
};

typedef struct lws_shader_module {
    const lws_spirv *spirv;
    VkShaderModule module;
    struct lws_shader_module *next;
} lws_shader_module;

/* A named byte range of an arena block (lws_buffer_name). */
typedef struct lws_range_name {
    VkBuffer buffer;
    VkDeviceSize begin, end;
    char *name;
} lws_range_name;

struct lws_context {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool pool;
    VkFence fence;
    lws_device_caps caps;
    int validation;

    VkPhysicalDeviceMemoryProperties memory_props;
    uint32_t device_memory_type; /* device-local, used by the arena */
    uint32_t host_memory_type;   /* host-visible + coherent, for staging */
    lws_block blocks[LWS_MAX_BLOCKS];
    uint32_t block_count, block_current;
    VkDeviceSize in_use, peak;

    VkBuffer staging;
    VkDeviceMemory staging_memory;
    void *staging_map;
    VkDeviceSize staging_size;

    VkPipelineLayout layout;
    VkPipelineCache cache;
    char cache_path[1024];
    lws_pipeline *pipelines;
    lws_shader_module *modules;

    /* Hazard checking (hazard.c) and the barrier test hook. */
    int check_hazards;
    uint32_t skip_barrier, barrier_calls;
    uint64_t barriers_total, barriers_unneeded, dispatches_total;
    uint64_t host_waits; /* fence waits of the host (lws_context_host_waits) */
    lws_range_name *names;
    uint32_t name_count, name_capacity;

    /* Matrix units enabled on the device (coopmat.c). */
    lws_coopmat_api coopmat_api;
    lws_coopmat_shape coopmat_shape;
    int matmul_verdict;
    int attention_verdict; /* the matrix-unit attention forward's (ops/attention_coopmat.c) */

    /* LWS_TUNING: the capability record the tuning sees, and its name. */
    lws_device_caps tuning_caps;
    const char *tuning_name;
};

/* ---- hazard checking (hazard.c), used by cmd.c ---- */
typedef struct lws_hazards lws_hazards;
/* NULL (and LWS_OK) when the context does not check. */
lws_status lws_hazards_create(lws_context *ctx, lws_hazards **out);
void lws_hazards_destroy(lws_hazards *hz);
/* Declares one access of the next dispatch. */
void lws_hazards_declare(lws_hazards *hz, lws_buffer range, int write, const char *note);
void lws_hazards_declare_strided(lws_hazards *hz, lws_buffer first, VkDeviceSize stride,
                                 uint64_t count, int write);
void lws_hazards_declare_arena(lws_hazards *hz, int write, const char *what);
void lws_hazards_label(lws_hazards *hz, const char *label);
/* Drops the pending declarations (the command buffer has already failed). */
void lws_hazards_clear_pending(lws_hazards *hz);
/* An op: the pending declarations (a dispatch of `shader`) or, for copies and
 * fills, the accesses given here. Returns the hazard it finds (the message is
 * recorded), else LWS_OK after adding the op's accesses. */
lws_status lws_hazards_dispatch(lws_hazards *hz, const char *shader);
lws_status lws_hazards_transfer(lws_hazards *hz, const char *what, const lws_buffer *read,
                                lws_buffer write);
/* A barrier, and the end of the command buffer: each judges the barrier
 * before it and fails on declarations that no dispatch consumed. */
lws_status lws_hazards_barrier(lws_hazards *hz);
lws_status lws_hazards_end(lws_hazards *hz);
void lws_hazards_stats(const lws_hazards *hz, uint32_t *total, uint32_t *unneeded);
/* Forgets the names of ranges of `buffer` at or after byte `from`. */
void lws_names_release(lws_context *ctx, VkBuffer buffer, VkDeviceSize from);
void lws_names_destroy(lws_context *ctx);

/* Formats a failed Vulkan call into the error message. */
lws_status lws_vk_fail(VkResult r, const char *call);
#define LWS_VK(call)                                                                               \
    do {                                                                                           \
        VkResult lws_vk_r_ = (call);                                                               \
        if (lws_vk_r_ != VK_SUCCESS) return lws_vk_fail(lws_vk_r_, #call);                         \
    } while (0)

lws_status lws_instance_create(int validation, VkInstance *instance, int *validation_on);
lws_status lws_messenger_create(VkInstance instance, VkDebugUtilsMessengerEXT *out);
lws_status lws_physical_devices(VkInstance instance, VkPhysicalDevice **out, uint32_t *count);
void lws_query_caps(VkPhysicalDevice pd, uint32_t index, lws_device_caps *caps);

/* ---- matrix units (coopmat.c) ---- */
/* Fills the cooperative-matrix fields of caps; nv and khr: the extensions
 * are listed. */
void lws_query_coopmat(VkPhysicalDevice pd, int nv, int khr, lws_device_caps *caps);
typedef struct lws_coopmat_features {
    VkPhysicalDeviceCooperativeMatrixFeaturesNV nv;
    uint64_t khr[4]; /* VkPhysicalDeviceCooperativeMatrixFeaturesKHR (32 bytes) */
} lws_coopmat_features;
void lws_coopmat_enable(lws_coopmat_api api, lws_coopmat_features *storage, const char **exts,
                        uint32_t *ext_count, void **pnext);

lws_status lws_memory_init(lws_context *ctx);
void lws_memory_destroy(lws_context *ctx);
lws_status lws_pipelines_init(lws_context *ctx, int use_cache);
void lws_pipelines_destroy(lws_context *ctx);

/* One-time command buffer for transfers: begin, then end + submit + wait. */
lws_status lws_onetime_begin(lws_context *ctx, VkCommandBuffer *out);
lws_status lws_onetime_submit(lws_context *ctx, VkCommandBuffer cb);

int lws_env_flag(const char *name, int fallback);

#endif
