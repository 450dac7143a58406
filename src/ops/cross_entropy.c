/* Fused softmax cross-entropy over a chunked vocabulary
 * (shaders/cross_entropy.comp): four passes, deterministic; the count of
 * valid rows (pass 0) can run apart from the others, so the output head runs
 * the loss over chunks of rows against one count. */
#include "ops/common.h"

typedef struct cross_entropy_push {
    uint64_t logits, dlogits, losses, targets, scratch;
    uint32_t rows, vocab, chunk, n_chunks, ignore_index;
    float z_loss, grad_scale;
    uint64_t scale; /* 0, or the address of a loss scale (fp16 training) */
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

/* Pass 0: the count of valid targets among `rows`, into the scratch header. */
lws_status lws_op_cross_entropy_count(lws_cmd *cmd, lws_buffer targets, lws_buffer scratch,
                                      uint32_t rows, uint32_t ignore_index) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    LWS_OP_REQUIRE(cmd, rows >= 1, "cross_entropy: rows = %u must be at least 1", rows);
    LWS_OP_REQUIRE(cmd, targets.size >= 4ull * rows && scratch.size >= 4 * CROSS_ENTROPY_HEADER,
                   "cross_entropy: targets (%llu bytes) must hold rows = %u values, scratch (%llu "
                   "bytes) its header",
                   (unsigned long long)targets.size, rows, (unsigned long long)scratch.size);
    uint32_t spec[2] = {t.reduce_wg, 0};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "cross_entropy", spec, 2, &pipe);
    cross_entropy_push push = {.targets = targets.addr,
                               .scratch = scratch.addr,
                               .rows = rows,
                               .ignore_index = ignore_index};
    lws_op_reads(cmd, targets, 0, 4ull * rows);
    lws_op_writes(cmd, scratch, 0, 4);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, 1, 1, 1);
    return LWS_OK;
}

static lws_status check_rows(lws_cmd *cmd, const lws_ce_args *a, uint64_t scratch_floats) {
    uint64_t elements = (uint64_t)a->rows * a->vocab;
    LWS_OP_REQUIRE(cmd, a->rows >= 1 && a->vocab >= 1,
                   "cross_entropy: rows = %u and vocab = %u must both be at least 1", a->rows,
                   a->vocab);
    LWS_OP_REQUIRE(cmd, scratch_floats <= UINT32_MAX,
                   "cross_entropy: rows = %u x vocab = %u needs %llu scratch floats, more than "
                   "2^32 - 1; split the rows into several calls",
                   a->rows, a->vocab, (unsigned long long)scratch_floats);
    LWS_OP_F32(cmd, "cross_entropy", "logits, losses and scratch", a->logits, a->losses,
               a->scratch);
    uint32_t esize = lws_dtype_bytes(a->dlogits.dtype);
    LWS_OP_REQUIRE(cmd, a->dlogits.dtype != LWS_U32,
                   "cross_entropy: dlogits holds u32; it must be f32, bf16 or f16");
    LWS_OP_REQUIRE(cmd,
                   a->dlogits.dtype == LWS_F32 || a->dlogits.buffer != a->logits.buffer ||
                       a->dlogits.offset >= a->logits.offset + 4 * elements ||
                       a->logits.offset >= a->dlogits.offset + esize * elements,
                   "cross_entropy: a %s dlogits must not overlap the f32 logits (only an f32 "
                   "dlogits may be the logits themselves)",
                   lws_dtype_name(a->dlogits.dtype));
    LWS_OP_REQUIRE(
        cmd,
        a->logits.size >= 4 * elements && (!a->dlogits.addr || a->dlogits.size >= esize * elements),
        "cross_entropy: logits (%llu bytes) and dlogits (%llu bytes) must hold rows = "
        "%u x vocab = %u elements",
        (unsigned long long)a->logits.size, (unsigned long long)a->dlogits.size, a->rows, a->vocab);
    LWS_OP_REQUIRE(cmd, a->losses.size >= 4ull * a->rows && a->targets.size >= 4ull * a->rows,
                   "cross_entropy: losses (%llu bytes) and targets (%llu bytes) must hold rows = "
                   "%u values",
                   (unsigned long long)a->losses.size, (unsigned long long)a->targets.size,
                   a->rows);
    LWS_OP_REQUIRE(cmd, a->scratch.size >= 4 * scratch_floats,
                   "cross_entropy: scratch needs lws_cross_entropy_scratch_floats = %llu floats, "
                   "has %llu bytes",
                   (unsigned long long)scratch_floats, (unsigned long long)a->scratch.size);
    LWS_OP_REQUIRE(cmd, !a->scale.addr || (a->scale.size >= 4 && a->scale.dtype == LWS_F32),
                   "cross_entropy: the loss scale must be one f32");
    return LWS_OK;
}

lws_status lws_op_cross_entropy_rows(lws_cmd *cmd, const lws_ce_args *a) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    uint32_t rows = a->rows, chunk = vocab_chunk(&t), n_chunks = lws_div_up(a->vocab, chunk);
    uint64_t elements = (uint64_t)rows * a->vocab;
    LWS_TRY(check_rows(cmd, a, scratch_floats_of(&t, rows, a->vocab)));
    lws_pipeline *pass[4];
    char shader[48];
    lws_op_shader(shader, sizeof shader, "cross_entropy", a->dlogits.dtype);
    for (uint32_t i = 1; i < 4; i++) {
        uint32_t spec[2] = {t.reduce_wg, i};
        LWS_OP_PIPELINE(cmd, i == 3 ? shader : "cross_entropy", spec, 2, &pass[i]);
    }
    cross_entropy_push push = {
        a->logits.addr, a->dlogits.addr, a->losses.addr, a->targets.addr, a->scratch.addr,
        rows,           a->vocab,        chunk,          n_chunks,        a->ignore_index,
        a->z_loss,      a->grad_scale,   a->scale.addr};
    /* Scratch bytes: the count, the lse rows, the chunk partials. */
    const uint64_t count_at = 0, lse_at = 4 * CROSS_ENTROPY_HEADER, lse_bytes = 4ull * rows;
    const uint64_t part_at = lse_at + lse_bytes, part_bytes = 8ull * rows * n_chunks;
    lws_op_reads(cmd, a->logits, 0, 4 * elements);
    lws_op_writes(cmd, a->scratch, part_at, part_bytes);
    lws_cmd_dispatch(cmd, pass[1], &push, sizeof push, n_chunks, rows, 1);
    lws_cmd_barrier(cmd);
    /* The loss reads each row's logit at its target: any logit. */
    lws_op_reads(cmd, a->scratch, part_at, part_bytes);
    lws_op_reads(cmd, a->targets, 0, 4ull * rows);
    lws_op_reads(cmd, a->logits, 0, 4 * elements);
    lws_op_writes(cmd, a->scratch, lse_at, lse_bytes);
    lws_op_writes(cmd, a->losses, 0, 4ull * rows);
    lws_cmd_dispatch(cmd, pass[2], &push, sizeof push, lws_div_up(rows, t.reduce_wg), 1, 1);
    if (!a->dlogits.addr) return LWS_OK;
    lws_cmd_barrier(cmd);
    lws_op_reads(cmd, a->scratch, count_at, 4);
    lws_op_reads(cmd, a->scratch, lse_at, lse_bytes);
    lws_op_reads(cmd, a->targets, 0, 4ull * rows);
    lws_op_reads(cmd, a->logits, 0, 4 * elements);
    if (a->scale.addr) lws_op_reads(cmd, a->scale, 0, 4);
    lws_op_writes(cmd, a->dlogits, 0, (uint64_t)lws_dtype_bytes(a->dlogits.dtype) * elements);
    lws_cmd_dispatch(cmd, pass[3], &push, sizeof push, n_chunks, rows, 1);
    return LWS_OK;
}

lws_status lws_op_cross_entropy(lws_cmd *cmd, lws_buffer losses, lws_buffer dlogits,
                                lws_buffer logits, lws_buffer targets, lws_buffer scratch,
                                uint32_t rows, uint32_t vocab, uint32_t ignore_index, float z_loss,
                                float grad_scale) {
    lws_ce_args a = {.losses = losses,
                     .dlogits = dlogits,
                     .logits = logits,
                     .targets = targets,
                     .scratch = scratch,
                     .rows = rows,
                     .vocab = vocab,
                     .ignore_index = ignore_index,
                     .z_loss = z_loss,
                     .grad_scale = grad_scale};
    /* The count and the chunk partials write disjoint scratch: no barrier. */
    LWS_TRY(lws_op_cross_entropy_count(cmd, targets, scratch, rows, ignore_index));
    return lws_op_cross_entropy_rows(cmd, &a);
}
