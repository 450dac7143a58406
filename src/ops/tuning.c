/* Every per-vendor kernel choice, with its reason beside it. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ops/tuning.h"

void lws_tuning_for(const lws_device_caps *caps, lws_tuning *t) {
    /* 256 invocations is a full occupancy unit on NVIDIA (8 warps), AMD
     * (4 wave64) and Intel; lavapipe runs a workgroup as a loop over its
     * subgroups on one thread, so the size only sets the loop length there. */
    t->elementwise_wg = 256;
    t->reduce_wg = 256;
    t->reduce_chunk = 16384;
    t->max_groups_1d = 4096;
    /* Per-row kernels (one workgroup per row): 128 invocations give a 768-wide
     * norm row six elements each and 4 warps (2 wave64) to hide load latency,
     * without idling most of a workgroup on narrow rows; a power of two, for
     * the halving trees. */
    t->row_wg = 128;
    /* A GPU splits a row over up to the whole workgroup (about 4 columns per
     * invocation): coalesced loads, a short tree. */
    t->row_threads = 128;

    /* Matmul tiles: 64x64 with 16-deep k steps and 16x16 invocations holding
     * 4x4 outputs each: one vec4 of A and one of B from shared memory feed 16
     * FMAs, and the tiles take 2*16*(64+4)*4 = 8.5 KiB of shared memory,
     * inside every device's 16 KiB minimum. */
    t->mm_tile_m = 64;
    t->mm_tile_n = 64;
    t->mm_tile_k = 16;
    t->mm_wg_x = 16;
    t->mm_wg_y = 16;
    /* A GPU has tens to a hundred and more compute units, each wanting a
     * couple of workgroups in flight. */
    t->mm_min_groups = 128;
    /* Split over k: a weight gradient dW[M, N] sums over every token of the
     * micro-batch (K = 8192 at 8 x 1024) but may have few tiles: crown-18l's
     * dWk [192, 768] is 12 tiles of 128x128, a tenth of an H100's 132
     * multiprocessors. Such a product is cut into up to 16 slices of at
     * least 256 tokens, each a batch entry writing fp32 partial sums, summed
     * in a fixed order after the caller's next barrier (ops/matmul_split.c):
     * the partials cost 2 x 4 bytes per output per slice against 2 x 256
     * FLOPs. From this arithmetic, not measured on a GPU. */
    t->mm_split_k_max = 16;
    t->mm_split_k_depth = 256;
    if (caps->vendor_id == 0x10005 || !caps->vendor_id) {
        /* lavapipe (CPU): every shared-memory access is a loop over the SIMD
         * lanes (~250 instructions for a vec4) while an FMA is one vector
         * instruction, so each invocation holds a 16x16 block (8 vec4 reads
         * per 256 FMAs). Measured at 1024x768x768 fp32 on 2 cores, in
         * GFLOP per CPU-second: 64x64 tiles with 8x8 blocks ~4.5, 128x128
         * with 16x16 blocks ~9, 128x256 ~10 (but 2x the compile time and
         * more waste on small shapes); 8x8 invocations beat 4x4 and 16x16 at
         * the same block size; k steps of 8 or 32 are no better than 16.
         * Tiles: 2*16*(128+4)*4 = 16.5 KiB of the 32 KiB. */
        t->mm_tile_m = 128;
        t->mm_tile_n = 128;
        t->mm_tile_k = 16;
        t->mm_wg_x = 8;
        t->mm_wg_y = 8;
        /* lavapipe spreads workgroups over one thread per core; a few per
         * thread balance uneven tiles. */
        t->mm_min_groups = 8;
        /* Smaller tiles reach 8 workgroups for every model shape; a second
         * pass over partial sums only costs a CPU. */
        t->mm_split_k_max = 1;
        /* Rows: one invocation per row, its SIMD lanes on neighbouring rows,
         * no barriers in the sum. Tiny crown step (2048 x 64 rows): RMSNorm
         * forward 30 ms with 1, 47 ms with 8, 284 ms with 128 invocations
         * per row; backward 111, 131 and 421 ms. */
        t->row_threads = 1;
    }

    /* Attention, the row form: a workgroup has one invocation per row it owns (block_q
     * query rows in the forward and dq kernels, block_kv key rows in dk/dv)
     * and holds that many scores per invocation against the other block in
     * registers. 64x64 gives 64-invocation workgroups (2 warps, 1 wave64) and
     * 64 scores in registers; ops/attention.c halves the blocks until the
     * head-row tiles fit max_shared_memory (e.g. 16x8 for head_dim 64 in
     * the generic table's 16 KiB). lavapipe (32 KiB): 32x16 measured fastest with 16x16,
     * 16x32, 32x32 and 64x16 within 10% (forward + backward, 1024 tokens,
     * head_dim 64); fewer scores per invocation keep LLVM's compile short. */
    t->attn_block_q = 64;
    t->attn_block_kv = 64;
    if (caps->max_shared_memory < 65536) {
        t->attn_block_q = 32;
        t->attn_block_kv = 16;
    }

    /* Attention rows per invocation. lavapipe: every shared-memory access is
     * a loop over the SIMD lanes while an FMA is one vector instruction, so
     * each vec4 read from a tile is reused for 4 rows (forward + backward at
     * 1024 tokens, head_dim 64: 2x faster than 1 row; 2 and 8 rows slower
     * than 4). GPUs: one row, so the scores (one block of floats) stay in
     * registers and a workgroup keeps one invocation (or lane group) per row. */
    t->attn_rows_per_invocation = caps->vendor_id == 0x10005 ? 4 : 1;

    /* Attention on NVIDIA, AMD and Intel: the GPU form, 4 lanes per row
     * (shaders/common/attention_lanes.glsl). A 64-row block makes 256
     * invocations (8 warps, 4 wave64) where the row form has 64 or fewer;
     * each lane does a quarter of a row's dot products and owns a quarter of
     * its output columns, so the serial work per invocation shrinks 4x.
     * 64x32 blocks at head_dim 64 take 44 KiB (q, k, v tiles 34 KiB, the
     * probabilities 9 KiB, the lanes' partials 1 KiB): they fit NVIDIA's
     * 48 KiB, and the launcher halves them for larger head_dims and for the
     * backward kernels (32x32 there at head_dim 64). Both the 4 lanes and the
     * blocks are chosen from this arithmetic; they are not yet measured
     * on a GPU. The generic table (16 KiB, unknown subgroups) and lavapipe keep
     * the row form. */
    t->attn_lanes_per_row = 1;
    if (caps->vendor_id == 0x10DE || caps->vendor_id == 0x1002 || caps->vendor_id == 0x8086) {
        t->attn_lanes_per_row = 4;
        t->attn_block_q = 64;
        t->attn_block_kv = 32;
    }

    /* matvec (decoding one token). GPUs: 32 invocations per output row make
     * a warp (half a wave64) whose loads of a weight row are contiguous.
     * lavapipe runs the lanes of a subgroup as SIMD on one CPU thread: a
     * decode step of the tiny crown config took 25 ms with 1 (every lane
     * gathers from another row), 3.0-4.2 ms with 2 or 4, 3.4-5.2 ms with 8,
     * 4.1-6.4 ms with 16. */
    t->matvec_threads = caps->vendor_id == 0x10005 ? 4 : 32;
}

lws_tuning lws_tuning_get(lws_context *ctx) {
    lws_tuning t;
    lws_tuning_for(lws_context_tuning_caps(ctx), &t);
    return t;
}

void lws_tuning_note(lws_context *ctx, const char *what, const char *fmt, ...) {
    const char *table = lws_context_tuning_name(ctx);
    if (!table) return;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char said[16][64];
    static int count;
    pthread_mutex_lock(&lock);
    int seen = 0;
    for (int i = 0; i < count && !seen; i++) seen = strcmp(said[i], what) == 0;
    if (!seen && count < 16) snprintf(said[count++], sizeof said[0], "%s", what);
    pthread_mutex_unlock(&lock);
    if (seen) return;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fprintf(stderr, "LWS_TUNING=%s: %s\n", table, message);
}
