/* Per-device kernel parameters: workgroup and tile sizes, passed to shaders
 * as specialization constants. Chosen in one place, lws_tuning_for(). */
#ifndef LWS_OPS_TUNING_H
#define LWS_OPS_TUNING_H

#include "lws/vk.h"

typedef struct lws_tuning {
    uint32_t elementwise_wg; /* workgroup size of elementwise kernels */
    uint32_t reduce_wg;      /* workgroup size of reductions (a power of two) */
    uint32_t reduce_chunk;   /* elements per workgroup in the first pass of a reduction */
    uint32_t max_groups_1d;  /* cap on a grid-stride 1-D grid */
    /* matmul: a workgroup computes a TILE_M x TILE_N block of C, stepping TILE_K */
    uint32_t mm_tile_m, mm_tile_n, mm_tile_k;
    uint32_t mm_wg_x, mm_wg_y; /* invocations; each owns (TILE_M/wg_y) x (TILE_N/wg_x) */
    uint32_t mm_min_groups;    /* tiles shrink (down to 4x4 per invocation) to reach this many */
    /* TN products (weight gradients) with fewer workgroups than mm_min_groups
     * at their smallest tiles are cut into up to mm_split_k_max slices of k,
     * each at least mm_split_k_depth deep (1: never) */
    uint32_t mm_split_k_max, mm_split_k_depth;
    /* attention: BLOCK_Q query rows x BLOCK_KV key rows per step */
    uint32_t attn_block_q, attn_block_kv;
    uint32_t attn_rows_per_invocation; /* rows each invocation (or lane group) owns */
    uint32_t attn_lanes_per_row;       /* 1: the row form; more: the GPU form's lanes */
    uint32_t matvec_threads;           /* invocations sharing one output row of matvec */
    uint32_t row_wg;                   /* workgroup size of per-row kernels (norms, softmax rows) */
    uint32_t row_threads; /* at most this many invocations share one row (a power of two) */
} lws_tuning;

/* The parameters for this context's device, or for the table LWS_TUNING
 * forces (lws_context_tuning_caps); cheap: a few assignments. */
lws_tuning lws_tuning_get(lws_context *ctx);
/* The choice itself, from a capability record (tests call it directly). */
void lws_tuning_for(const lws_device_caps *caps, lws_tuning *out);
/* A launcher shrank a choice of a table forced by LWS_TUNING to fit the real
 * device: says so on stderr ("LWS_TUNING=nvidia: <message>"), once per
 * process for each `what`. Silent for the device's own table. */
void lws_tuning_note(lws_context *ctx, const char *what, const char *fmt, ...) LWS_PRINTF(3, 4);

#endif
