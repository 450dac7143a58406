/* Every per-vendor kernel choice, with its reason beside it. */
#include "ops/tuning.h"

void lws_tuning_for(const lws_device_caps *caps, lws_tuning *t) {
    /* 256 invocations is a full occupancy unit on NVIDIA (8 warps), AMD
     * (4 wave64) and Intel; lavapipe runs a workgroup as a loop over its
     * subgroups on one thread, so the size only sets the loop length there. */
    t->elementwise_wg = 256;
    t->reduce_wg = 256;
    t->reduce_chunk = 16384;
    t->max_groups_1d = 4096;
    t->row_wg = 128;

    /* Matmul tiles: 64x64 with 16-deep K steps and 256 invocations holding
     * 4x4 outputs each fits 2*64*16*4 = 8 KiB of shared memory, inside every
     * device's 16 KiB minimum, and gives each invocation enough independent
     * FMAs to hide shared-memory latency on GPUs. */
    t->mm_tile_m = 64;
    t->mm_tile_n = 64;
    t->mm_tile_k = 16;
    t->mm_wg_x = 16;
    t->mm_wg_y = 16;
    if (caps->vendor_id == 0x10005 || !caps->vendor_id) {
        /* lavapipe (CPU): one invocation per SIMD lane, workgroups spread over
         * host threads; smaller tiles mean more workgroups for few cores to
         * share and less spilled register state per invocation. */
        t->mm_tile_m = 32;
        t->mm_tile_n = 32;
        t->mm_tile_k = 16;
        t->mm_wg_x = 8;
        t->mm_wg_y = 8;
    }

    /* Attention: 64x64 blocks keep Q, K and V tiles for head_dim 128 within
     * 3*64*128*4 = 96 KiB on large GPUs; the kernel shrinks them to fit
     * max_shared_memory (32 KiB on lavapipe and many integrated GPUs). */
    t->attn_block_q = 64;
    t->attn_block_kv = 64;
    if (caps->max_shared_memory < 65536) {
        t->attn_block_q = 32;
        t->attn_block_kv = 16;
    }
}

lws_tuning lws_tuning_get(lws_context *ctx) {
    lws_tuning t;
    lws_tuning_for(lws_context_caps(ctx), &t);
    return t;
}
