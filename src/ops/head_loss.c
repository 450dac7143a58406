/* The output head with its loss over chunks of tokens (see ops.h): the
 * logits of one chunk at a time in a fixed scratch, so no (tokens, vocab)
 * buffer exists. */
#include <stdlib.h>

#include "ops/common.h"

/* Bytes of fp32 logits one chunk may hold: 64 MiB keeps the scratch small
 * next to any model's activations while a chunk of a GPT-2 vocabulary
 * (50304) is still 320 tokens, a matmul of 320 x 50304 x d that fills a GPU. */
#define HEAD_CHUNK_BYTES (64ull << 20)

lws_status lws_head_loss_chunk_rows(uint32_t rows, uint32_t vocab, uint32_t *out) {
    uint64_t chunk = HEAD_CHUNK_BYTES / (4ull * (vocab ? vocab : 1));
    if (chunk > 64) chunk -= chunk % 64; /* whole matmul tiles */
    /* LWS_HEAD_CHUNK_ROWS=n cuts the tokens into chunks of n (tests run a
     * tiny model's head over several chunks that way). */
    const char *env = getenv("LWS_HEAD_CHUNK_ROWS");
    if (env && *env) {
        char *end = NULL;
        chunk = strtoull(env, &end, 10);
        if (*end || env[0] == '-' || chunk < 1 || chunk > 0x7FFFFFFFull)
            return lws_fail(LWS_ERR_INVALID,
                            "LWS_HEAD_CHUNK_ROWS = '%s' is not a number of tokens: give 1 .. "
                            "2147483647 (tokens per chunk of the output head)",
                            env);
    }
    if (chunk < 1) chunk = 1;
    *out = chunk < rows ? (uint32_t)chunk : rows;
    return LWS_OK;
}

static lws_status check_args(lws_cmd *cmd, const lws_head_loss_args *a) {
    const char *op = "head_loss";
    LWS_OP_REQUIRE(cmd, a->rows >= 1 && a->d >= 1 && a->vocab >= 1 && a->chunk_rows >= 1,
                   "%s: rows %u, d %u, vocab %u and chunk_rows %u must all be at least 1", op,
                   a->rows, a->d, a->vocab, a->chunk_rows);
    int backward = a->dx.addr != 0;
    LWS_OP_REQUIRE(cmd, backward == (a->dw.addr != 0),
                   "%s: give both dx and dw (the backward) or neither (the loss only)", op);
    lws_dtype type;
    if (backward)
        LWS_OP_ELEM(cmd, op, &type, "x, w, dx and dlogits", a->x, a->w, a->dx, a->dlogits);
    else
        LWS_OP_ELEM(cmd, op, &type, "x and w", a->x, a->w);
    LWS_OP_F32(cmd, op, "losses, logits and the loss scratch", a->losses, a->logits, a->ce_scratch);
    if (backward) LWS_OP_F32(cmd, op, "dw", a->dw);
    uint64_t esize = lws_dtype_bytes(type), chunk = (uint64_t)a->chunk_rows * a->vocab;
    LWS_OP_REQUIRE(cmd,
                   a->x.size >= esize * a->rows * a->d && a->w.size >= esize * a->vocab * a->d &&
                       (!backward || a->dx.size >= esize * a->rows * a->d),
                   "%s: x, dx (rows %u x d %u) or w (vocab %u x d) is smaller than its shape", op,
                   a->rows, a->d, a->vocab);
    LWS_OP_REQUIRE(cmd,
                   a->logits.size >= 4 * chunk && (!backward || a->dlogits.size >= esize * chunk),
                   "%s: logits and dlogits must hold chunk_rows %u x vocab %u elements", op,
                   a->chunk_rows, a->vocab);
    return LWS_OK;
}

lws_status lws_op_head_loss(lws_cmd *cmd, const lws_head_loss_args *a) {
    LWS_TRY(check_args(cmd, a));
    int backward = a->dx.addr != 0;
    uint64_t esize = lws_dtype_bytes(a->x.dtype), row = esize * a->d;
    /* The count of valid targets covers every token, so each chunk's
     * gradient is divided by the count of the whole micro-batch. */
    LWS_TRY(lws_op_cross_entropy_count(cmd, a->targets, a->ce_scratch, a->rows, a->ignore_index));
    for (uint32_t r0 = 0; r0 < a->rows; r0 += a->chunk_rows) {
        uint32_t n = a->rows - r0 < a->chunk_rows ? a->rows - r0 : a->chunk_rows;
        /* The chunk before read the logits this one rewrites: in its loss, or
         * (as dlogits, in place) in its products. A separate dlogits (16-bit)
         * has a barrier between the loss and the products already. */
        if (r0 && (!backward || a->dlogits.addr == a->logits.addr)) lws_cmd_barrier(cmd);
        lws_buffer x = lws_buffer_slice(a->x, r0 * row, n * row);
        LWS_TRY(lws_op_matmul(cmd, LWS_MM_NT, a->logits, x, a->w, n, a->vocab, a->d, 0));
        lws_cmd_barrier(cmd);
        lws_ce_args ce = {.losses = lws_buffer_slice(a->losses, 4ull * r0, 4ull * n),
                          .dlogits = backward ? a->dlogits : (lws_buffer){0},
                          .logits = a->logits,
                          .targets = lws_buffer_slice(a->targets, 4ull * r0, 4ull * n),
                          .scratch = a->ce_scratch,
                          .scale = a->scale,
                          .rows = n,
                          .vocab = a->vocab,
                          .ignore_index = a->ignore_index,
                          .z_loss = a->z_loss,
                          .grad_scale = a->grad_scale};
        LWS_TRY(lws_op_cross_entropy_rows(cmd, &ce));
        if (!backward) continue;
        lws_cmd_barrier(cmd);
        /* dx = dlogits . W and dW += dlogits^T . x: the chunk's rows of dx,
         * the chunk's share of dW (added in chunk order: deterministic). */
        lws_buffer dx = lws_buffer_slice(a->dx, r0 * row, n * row);
        LWS_TRY(lws_op_matmul(cmd, LWS_MM_NN, dx, a->dlogits, a->w, n, a->d, a->vocab, 0));
        LWS_TRY(lws_op_matmul(cmd, LWS_MM_TN, a->dw, a->dlogits, x, a->vocab, a->d, n, 1));
    }
    return LWS_OK;
}
