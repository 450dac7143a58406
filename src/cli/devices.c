/* lws devices [--json]: the Vulkan devices and what lws will use on each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "lws/vk.h"
#include "ops/ops.h"
#include "ops/tuning.h"

static const char *usage = "lws devices [--json]";

/* The attention kernels' form the device's tuning table picks, with its
 * blocks before the launcher fits them to the shared memory of each kernel
 * and head_dim (src/ops/attention.c); where the device has matrix units that
 * the matrix-unit forward takes at head_dim 64 or 128, that forward first
 * (src/ops/attention_coopmat.c). *forward: "coopmat-nv", "coopmat-khr",
 * "gpu" or "row", the form of the forward at head_dim 64 or 128. */
static void attention_form(const lws_device_caps *c, char *out, size_t n, int *lanes,
                           const char **forward) {
    lws_tuning t;
    lws_tuning_for(c, &t);
    *lanes = (int)t.attn_lanes_per_row;
    *forward = t.attn_lanes_per_row > 1 ? "gpu" : "row";
    lws_coopmat_shape s;
    lws_coopmat_api api = lws_coopmat_choose(c, lws_coopmat_built(LWS_COOPMAT_NV),
                                             lws_coopmat_built(LWS_COOPMAT_KHR), &s, NULL, 0);
    lws_attention_cm_plan p64 = {0, 0, 0}, p128 = {0, 0, 0};
    int at64 = api != LWS_COOPMAT_NONE && lws_attention_cm_plan_for(c, s, 64, &p64);
    int at128 = api != LWS_COOPMAT_NONE && lws_attention_cm_plan_for(c, s, 128, &p128);
    size_t used = 0;
    if (at64 || at128) {
        *forward = api == LWS_COOPMAT_KHR ? "coopmat-khr" : "coopmat-nv";
        char b64[32] = "none", b128[32] = "none";
        if (at64) snprintf(b64, sizeof b64, "%u", p64.block);
        if (at128) snprintf(b128, sizeof b128, "%u", p128.block);
        int w = snprintf(out, n,
                         "matrix-unit forward (%s %ux%ux%u, blocks of %s rows at head_dim 64, %s "
                         "at 128), once checked at first use; backward and other head_dims: ",
                         api == LWS_COOPMAT_KHR ? "KHR" : "NV", s.m, s.n, s.k, b64, b128);
        used = w > 0 && (size_t)w < n ? (size_t)w : 0;
    }
    if (t.attn_lanes_per_row > 1)
        snprintf(out + used, n - used, "GPU form: %u invocations per row, blocks %ux%u",
                 t.attn_lanes_per_row, t.attn_block_q, t.attn_block_kv);
    else
        snprintf(out + used, n - used, "row form: %u row%s per invocation, blocks %ux%u",
                 t.attn_rows_per_invocation, t.attn_rows_per_invocation == 1 ? "" : "s",
                 t.attn_block_q, t.attn_block_kv);
}

/* Whether the device's table splits weight gradients with few tiles over
 * k (src/ops/matmul_split.c), and how far: the most slices (1: never). */
static uint32_t split_k_form(const lws_device_caps *c, char *out, size_t n) {
    lws_tuning t;
    lws_tuning_for(c, &t);
    if (t.mm_split_k_max > 1)
        snprintf(out, n, "split over k below %u workgroups: up to %u slices of at least %u tokens",
                 t.mm_min_groups, t.mm_split_k_max, t.mm_split_k_depth);
    else
        snprintf(out, n, "never split over k (smaller tiles reach %u workgroups)", t.mm_min_groups);
    return t.mm_split_k_max;
}

static void api_string(uint32_t v, char *out, size_t n) {
    snprintf(out, n, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
             VK_API_VERSION_PATCH(v));
}

static const char *yes(int b) {
    return b ? "yes" : "no";
}

static void print_shapes(const char *api, int listed, int feature, const lws_coopmat_shape *shapes,
                         uint32_t count) {
    if (!listed) return;
    printf("  %-17s %s", api, feature ? "feature on" : "feature off for compute");
    if (count) printf(", fp16 -> fp32 shapes");
    for (uint32_t i = 0; i < count; i++)
        printf("%s%ux%ux%u", i ? ", " : " ", shapes[i].m, shapes[i].n, shapes[i].k);
    printf("\n");
}

static void print_coopmat(const lws_device_caps *c) {
    if (!c->nv_cooperative_matrix && !c->khr_cooperative_matrix) {
        printf("  matrix units      none (no VK_KHR_ or VK_NV_cooperative_matrix)\n");
        return;
    }
    print_shapes("VK_KHR_coopmat", c->khr_cooperative_matrix, c->khr_cooperative_matrix_feature,
                 c->khr_coopmat, c->khr_coopmat_count);
    print_shapes("VK_NV_coopmat", c->nv_cooperative_matrix, c->nv_cooperative_matrix_feature,
                 c->nv_coopmat, c->nv_coopmat_count);
    if (c->coopmat_bf16)
        printf("  %-17s bf16 shapes listed (lws's shaders use fp16: glslang has no bf16 "
               "matrices before GL_EXT_bfloat16)\n",
               "");
}

static void print_table(const lws_device_caps *d, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        const lws_device_caps *c = &d[i];
        char api[32];
        api_string(c->api_version, api, sizeof api);
        printf("device %u: %s\n", c->index, c->name);
        printf("  vendor            %s (0x%04x), %s, device 0x%04x\n", c->vendor, c->vendor_id,
               c->device_type, c->device_id);
        printf("  driver            %s %s, Vulkan %s\n", c->driver_name, c->driver_info, api);
        if (c->subgroup_size_control)
            printf("  subgroup size     %u (size control %u..%u)\n", c->subgroup_size,
                   c->min_subgroup_size, c->max_subgroup_size);
        else
            printf("  subgroup size     %u\n", c->subgroup_size);
        printf("  shared memory     %u KiB per workgroup\n", c->max_shared_memory / 1024);
        printf("  workgroup         %u invocations, size %u x %u x %u, count %u x %u x %u\n",
               c->max_workgroup_invocations, c->max_workgroup_size[0], c->max_workgroup_size[1],
               c->max_workgroup_size[2], c->max_workgroup_count[0], c->max_workgroup_count[1],
               c->max_workgroup_count[2]);
        printf("  storage buffer    %.0f MiB per binding (lws uses device addresses instead)\n",
               c->max_storage_buffer_range / 1048576.0);
        printf("  largest buffer    %.0f MiB, allocation %.0f MiB\n",
               c->max_buffer_size / 1048576.0, c->max_allocation_size / 1048576.0);
        for (uint32_t h = 0; h < c->heap_count; h++)
            printf("  memory heap %u     %.2f GiB%s\n", h, c->heaps[h].size / 1073741824.0,
                   c->heaps[h].device_local ? ", device local" : "");
        if (c->timestamp_period_ns > 0)
            printf("  timestamps        yes, %.3g ns per tick, %u valid bits\n",
                   c->timestamp_period_ns, c->timestamp_valid_bits);
        else
            printf("  timestamps        no (per-layer times unavailable)\n");
        printf("  features          fp16 %s, int8 %s, int64 %s, float atomic add %s, buffer "
               "device address %s, scalar block layout %s, 16-bit storage %s, Vulkan memory "
               "model %s\n",
               yes(c->shader_float16), yes(c->shader_int8), yes(c->shader_int64),
               yes(c->float_atomic_add), yes(c->buffer_device_address), yes(c->scalar_block_layout),
               yes(c->storage_buffer_16bit), yes(c->vulkan_memory_model));
        print_coopmat(c);
        int usable = c->shader_int64 && c->buffer_device_address && c->scalar_block_layout;
        char path[256];
        lws_coopmat_choose(c, lws_coopmat_built(LWS_COOPMAT_NV), lws_coopmat_built(LWS_COOPMAT_KHR),
                           NULL, path, sizeof path);
        printf("  lws paths         portable fp32 kernels%s\n",
               usable ? ""
                      : " (unusable: lws needs int64, buffer device address and scalar block "
                        "layout)");
        if (usable) {
            char attn[320];
            int lanes;
            const char *forward;
            attention_form(c, attn, sizeof attn, &lanes, &forward);
            printf("  matmul path       %s\n", path);
            char split[128];
            split_k_form(c, split, sizeof split);
            printf("  weight gradients  %s\n", split);
            printf("  attention         %s (shrunk where a kernel needs more shared memory)\n",
                   attn);
        }
    }
}

static cJSON *caps_json(const lws_device_caps *c) {
    cJSON *o = cJSON_CreateObject();
    char api[32];
    api_string(c->api_version, api, sizeof api);
    cJSON_AddNumberToObject(o, "index", c->index);
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddStringToObject(o, "vendor", c->vendor);
    cJSON_AddNumberToObject(o, "vendor_id", c->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", c->device_id);
    cJSON_AddStringToObject(o, "device_type", c->device_type);
    cJSON_AddStringToObject(o, "driver_name", c->driver_name);
    cJSON_AddStringToObject(o, "driver_info", c->driver_info);
    cJSON_AddNumberToObject(o, "driver_version", c->driver_version);
    cJSON_AddStringToObject(o, "api_version", api);
    cJSON_AddNumberToObject(o, "subgroup_size", c->subgroup_size);
    cJSON_AddNumberToObject(o, "min_subgroup_size", c->min_subgroup_size);
    cJSON_AddNumberToObject(o, "max_subgroup_size", c->max_subgroup_size);
    cJSON_AddNumberToObject(o, "max_shared_memory", c->max_shared_memory);
    cJSON_AddNumberToObject(o, "max_workgroup_invocations", c->max_workgroup_invocations);
    cJSON *size = cJSON_AddArrayToObject(o, "max_workgroup_size");
    cJSON *count = cJSON_AddArrayToObject(o, "max_workgroup_count");
    for (int i = 0; i < 3; i++) {
        cJSON_AddItemToArray(size, cJSON_CreateNumber(c->max_workgroup_size[i]));
        cJSON_AddItemToArray(count, cJSON_CreateNumber(c->max_workgroup_count[i]));
    }
    cJSON_AddNumberToObject(o, "max_storage_buffer_range", (double)c->max_storage_buffer_range);
    cJSON *heaps = cJSON_AddArrayToObject(o, "memory_heaps");
    for (uint32_t h = 0; h < c->heap_count; h++) {
        cJSON *heap = cJSON_CreateObject();
        cJSON_AddNumberToObject(heap, "bytes", (double)c->heaps[h].size);
        cJSON_AddBoolToObject(heap, "device_local", c->heaps[h].device_local);
        cJSON_AddItemToArray(heaps, heap);
    }
    cJSON_AddNumberToObject(o, "timestamp_period_ns", c->timestamp_period_ns);
    cJSON_AddNumberToObject(o, "timestamp_valid_bits", c->timestamp_valid_bits);
    cJSON_AddNumberToObject(o, "max_buffer_size", (double)c->max_buffer_size);
    cJSON_AddNumberToObject(o, "max_allocation_size", (double)c->max_allocation_size);
    cJSON_AddBoolToObject(o, "shader_int64", c->shader_int64);
    cJSON_AddBoolToObject(o, "scalar_block_layout", c->scalar_block_layout);
    cJSON_AddBoolToObject(o, "shader_float16", c->shader_float16);
    cJSON_AddBoolToObject(o, "storage_16bit", c->storage_buffer_16bit);
    cJSON_AddBoolToObject(o, "shader_int8", c->shader_int8);
    cJSON_AddBoolToObject(o, "float_atomic_add", c->float_atomic_add);
    cJSON_AddBoolToObject(o, "buffer_device_address", c->buffer_device_address);
    cJSON_AddBoolToObject(o, "nv_cooperative_matrix", c->nv_cooperative_matrix);
    cJSON_AddBoolToObject(o, "khr_cooperative_matrix", c->khr_cooperative_matrix);
    lws_coopmat_shape shape;
    char path[256];
    lws_coopmat_api path_api =
        lws_coopmat_choose(c, lws_coopmat_built(LWS_COOPMAT_NV), lws_coopmat_built(LWS_COOPMAT_KHR),
                           &shape, path, sizeof path);
    cJSON_AddStringToObject(o, "matmul_path",
                            path_api == LWS_COOPMAT_KHR  ? "coopmat-khr"
                            : path_api == LWS_COOPMAT_NV ? "coopmat-nv"
                                                         : "portable");
    cJSON_AddStringToObject(o, "matmul_path_detail", path);
    char split[128];
    cJSON_AddNumberToObject(o, "matmul_split_k_max", split_k_form(c, split, sizeof split));
    cJSON_AddStringToObject(o, "matmul_split_k_detail", split);
    char attn[320];
    int lanes;
    const char *forward;
    attention_form(c, attn, sizeof attn, &lanes, &forward);
    cJSON_AddStringToObject(o, "attention_form", lanes > 1 ? "gpu" : "row");
    cJSON_AddStringToObject(o, "attention_forward", forward);
    cJSON_AddStringToObject(o, "attention_form_detail", attn);
    return o;
}

int lws_cli_devices(int argc, char **argv) {
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            printf("usage: %s\n", usage);
            return 0;
        } else
            return lws_cli_usage(usage, "unknown option '%s'", argv[i]);
    }
    lws_device_caps *devices = NULL;
    uint32_t n = 0;
    if (lws_list_devices(&devices, &n) != LWS_OK) return lws_cli_error();
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, caps_json(&devices[i]));
        char *text = cJSON_Print(arr);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(arr);
    } else {
        print_table(devices, n);
        lws_cli_dist_describe(stdout);
    }
    free(devices);
    return 0;
}
