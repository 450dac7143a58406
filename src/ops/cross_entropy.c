/* Fused softmax cross-entropy over a chunked vocabulary
 * (shaders/cross_entropy.comp): four passes, deterministic. */
#include "ops/common.h"

typedef struct cross_entropy_push {
    uint64_t logits, dlogits, losses, targets, scratch;
    uint32_t rows, vocab, chunk, n_chunks, ignore_index;
    float z_loss, grad_scale;
} cross_entropy_push;

/* Scratch header: n_valid in float 0, padded to 4; then lse [rows]; then the
 * (max, sum of exp) partials [rows, n_chunks, 2]. */
#define CROSS_ENTROPY_HEADER 4u

/* A workgroup reduces one chunk of a row: reduce_chunk entries, the amount
 * the tuning gives one workgroup of any first reduction pass (GPT-2's 50304
 * is then 4 chunks: few partials per row, and rows*4 workgroups for
 * parallelism at training batch sizes). */
static uint32_t vocab_chunk(const lws_tuning *t) {
    return t->reduce_chunk;
}

/* Scratch: a header, one lse per row, and a (max, sum) pair per row and chunk. */
static uint64_t scratch_floats_of(const lws_tuning *t, uint32_t rows, uint32_t vocab) {
    uint64_t n_chunks = lws_div_up(vocab, vocab_chunk(t));
    return CROSS_ENTROPY_HEADER + rows + 2ull * rows * n_chunks;
}

uint32_t lws_cross_entropy_scratch_floats(lws_context *ctx, uint32_t rows, uint32_t vocab) {
    lws_tuning t = lws_tuning_get(ctx);
    uint64_t floats = scratch_floats_of(&t, rows, vocab);
    return floats > UINT32_MAX ? UINT32_MAX : (uint32_t)floats;
}

lws_status lws_op_cross_entropy(lws_cmd *cmd, lws_buffer losses, lws_buffer dlogits,
                                lws_buffer logits, lws_buffer targets, lws_buffer scratch,
                                uint32_t rows, uint32_t vocab, uint32_t ignore_index, float z_loss,
                                float grad_scale) {
    lws_context *ctx = lws_cmd_context(cmd);
    lws_tuning t = lws_tuning_get(ctx);
    uint64_t elements = (uint64_t)rows * vocab;
    uint32_t chunk = vocab_chunk(&t), n_chunks = lws_div_up(vocab, chunk);
    uint64_t scratch_floats = scratch_floats_of(&t, rows, vocab);
    LWS_OP_REQUIRE(cmd, rows >= 1 && vocab >= 1,
                   "cross_entropy: rows = %u and vocab = %u must both be at least 1", rows, vocab);
    LWS_OP_REQUIRE(cmd, scratch_floats <= UINT32_MAX,
                   "cross_entropy: rows = %u x vocab = %u needs %llu scratch floats, more than "
                   "2^32 - 1; split the rows into several calls",
                   rows, vocab, (unsigned long long)scratch_floats);
    LWS_OP_REQUIRE(cmd, logits.size >= 4 * elements && dlogits.size >= 4 * elements,
                   "cross_entropy: logits (%llu bytes) and dlogits (%llu bytes) must hold rows = "
                   "%u x vocab = %u floats",
                   (unsigned long long)logits.size, (unsigned long long)dlogits.size, rows, vocab);
    LWS_OP_REQUIRE(cmd, losses.size >= 4ull * rows && targets.size >= 4ull * rows,
                   "cross_entropy: losses (%llu bytes) and targets (%llu bytes) must hold rows = "
                   "%u values",
                   (unsigned long long)losses.size, (unsigned long long)targets.size, rows);
    LWS_OP_REQUIRE(cmd, scratch.size >= 4 * scratch_floats,
                   "cross_entropy: scratch needs lws_cross_entropy_scratch_floats = %llu floats, "
                   "has %llu bytes",
                   (unsigned long long)scratch_floats, (unsigned long long)scratch.size);

    lws_pipeline *pass[4];
    for (uint32_t i = 0; i < 4; i++) {
        uint32_t spec[2] = {t.reduce_wg, i};
        LWS_OP_PIPELINE(cmd, "cross_entropy", spec, 2, &pass[i]);
    }
    cross_entropy_push push = {logits.addr,  dlogits.addr, losses.addr, targets.addr,
                               scratch.addr, rows,         vocab,       chunk,
                               n_chunks,     ignore_index, z_loss,      grad_scale};
    /* Scratch bytes: the count, the lse rows, the chunk partials. */
    const uint64_t count_at = 0, lse_at = 4 * CROSS_ENTROPY_HEADER, lse_bytes = 4ull * rows;
    const uint64_t part_at = lse_at + lse_bytes, part_bytes = 8ull * rows * n_chunks;
    /* Count and chunk partials write disjoint scratch: no barrier between. */
    lws_op_reads(cmd, targets, 0, 4ull * rows);
    lws_op_writes(cmd, scratch, count_at, 4);
    lws_cmd_dispatch(cmd, pass[0], &push, sizeof push, 1, 1, 1);
    lws_op_reads(cmd, logits, 0, 4 * elements);
    lws_op_writes(cmd, scratch, part_at, part_bytes);
    lws_cmd_dispatch(cmd, pass[1], &push, sizeof push, n_chunks, rows, 1);
    lws_cmd_barrier(cmd);
    /* The loss reads each row's logit at its target: any logit. */
    lws_op_reads(cmd, scratch, part_at, part_bytes);
    lws_op_reads(cmd, targets, 0, 4ull * rows);
    lws_op_reads(cmd, logits, 0, 4 * elements);
    lws_op_writes(cmd, scratch, lse_at, lse_bytes);
    lws_op_writes(cmd, losses, 0, 4ull * rows);
    lws_cmd_dispatch(cmd, pass[2], &push, sizeof push, lws_div_up(rows, t.reduce_wg), 1, 1);
    lws_cmd_barrier(cmd);
    lws_op_reads(cmd, scratch, count_at, 4);
    lws_op_reads(cmd, scratch, lse_at, lse_bytes);
    lws_op_reads(cmd, targets, 0, 4ull * rows);
    lws_op_reads(cmd, logits, 0, 4 * elements);
    lws_op_writes(cmd, dlogits, 0, 4 * elements);
    lws_cmd_dispatch(cmd, pass[3], &push, sizeof push, n_chunks, rows, 1);
    return LWS_OK;
}
