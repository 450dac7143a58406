/* Token embedding gather and deterministic scatter-add (shaders/embedding.comp,
 * shaders/embedding_bwd.comp). */
#include "ops/common.h"

typedef struct embedding_push {
    uint64_t out, table, tokens;
    uint32_t n_tokens, dim, vocab;
} embedding_push;

typedef struct embedding_bwd_push {
    uint64_t dtable, dout, tokens;
    uint32_t n_tokens, dim, vocab;
} embedding_bwd_push;

/* Backward workgroup: EMBEDDING_BWD_WG columns (one per invocation) of a block
 * of vocabulary rows; 64 keeps a 64-row block's shared partial sums at 16 KiB
 * (24 KiB with the chunk's token list). PER_THREAD (tokens each invocation
 * classifies per chunk) must match shaders/embedding_bwd.comp. */
#define EMBEDDING_BWD_WG         64u
#define EMBEDDING_BWD_PER_THREAD 16u

static uint32_t embedding_bwd_shared_bytes(uint32_t rows) {
    return 4 * (rows * EMBEDDING_BWD_WG + EMBEDDING_BWD_WG +
                2 * EMBEDDING_BWD_WG * EMBEDDING_BWD_PER_THREAD + (rows + 31) / 32);
}

/* Rows per backward workgroup: each workgroup reads every token id, so fewer,
 * taller blocks cost fewer reads; 64 rows (16 KiB of partial sums) leaves room
 * for several workgroups per GPU core. Devices with less shared memory get
 * shorter blocks. */
static uint32_t embedding_bwd_rows(const lws_device_caps *caps) {
    uint32_t rows = 64;
    while (rows > 1 && embedding_bwd_shared_bytes(rows) > caps->max_shared_memory) rows /= 2;
    return rows;
}

/* rows_buf (the token rows: out or dout) is fp32, bf16 or fp16; the table
 * (the fp32 master weights, or their fp32 gradient) is f32. */
static lws_status embedding_check(lws_cmd *cmd, const char *op, lws_buffer rows_buf,
                                  const char *rows_name, lws_buffer table, const char *table_name,
                                  lws_buffer tokens, uint32_t n_tokens, uint32_t dim,
                                  uint32_t vocab) {
    LWS_OP_F32(cmd, op, table_name, table);
    LWS_OP_REQUIRE(cmd, rows_buf.dtype != LWS_U32, "%s: %s holds u32; it must be f32, bf16 or f16",
                   op, rows_name);
    uint32_t esize = lws_dtype_bytes(rows_buf.dtype);
    LWS_OP_REQUIRE(cmd, dim >= 1 && vocab >= 1, "%s: dim = %u, vocab = %u; both must be >= 1", op,
                   dim, vocab);
    uint64_t n = (uint64_t)n_tokens * dim, v = (uint64_t)vocab * dim;
    LWS_OP_REQUIRE(cmd, n <= UINT32_MAX && v <= UINT32_MAX,
                   "%s: n_tokens * dim = %llu and vocab * dim = %llu; each must be below 2^32", op,
                   (unsigned long long)n, (unsigned long long)v);
    LWS_OP_REQUIRE(cmd, rows_buf.size >= esize * n,
                   "%s: %s holds fewer than n_tokens * dim = %llu elements of %s", op, rows_name,
                   (unsigned long long)n, lws_dtype_name(rows_buf.dtype));
    LWS_OP_REQUIRE(cmd, table.size >= 4 * v, "%s: %s holds fewer than vocab * dim = %llu floats",
                   op, table_name, (unsigned long long)v);
    LWS_OP_REQUIRE(cmd, tokens.size >= 4ull * n_tokens,
                   "%s: tokens holds fewer than n_tokens = %u uint32 ids", op, n_tokens);
    return LWS_OK;
}

lws_status lws_op_embedding_fwd(lws_cmd *cmd, lws_buffer out, lws_buffer table, lws_buffer tokens,
                                uint32_t n_tokens, uint32_t dim, uint32_t vocab) {
    LWS_TRY(embedding_check(cmd, "embedding_fwd", out, "out", table, "table", tokens, n_tokens, dim,
                            vocab));
    lws_pipeline *pipe;
    uint32_t groups;
    LWS_TRY(
        lws_op_elementwise(cmd, "embedding", out.dtype, (uint64_t)n_tokens * dim, &pipe, &groups));
    embedding_push push = {out.addr, table.addr, tokens.addr, n_tokens, dim, vocab};
    /* Which table rows are read depends on the tokens: all of them. */
    lws_op_reads(cmd, tokens, 0, 4ull * n_tokens);
    lws_op_reads(cmd, table, 0, 4ull * vocab * dim);
    lws_op_writes(cmd, out, 0, (uint64_t)lws_dtype_bytes(out.dtype) * n_tokens * dim);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}

lws_status lws_op_embedding_bwd(lws_cmd *cmd, lws_buffer dtable, lws_buffer dout, lws_buffer tokens,
                                uint32_t n_tokens, uint32_t dim, uint32_t vocab) {
    LWS_TRY(embedding_check(cmd, "embedding_bwd", dout, "dout", dtable, "dtable", tokens, n_tokens,
                            dim, vocab));
    /* The shader steps through the tokens in chunks of 1024 in uint32. */
    LWS_OP_REQUIRE(cmd, n_tokens <= (1u << 31),
                   "embedding_bwd: n_tokens = %u; at most 2^31 are allowed", n_tokens);
    const lws_device_caps *caps = lws_context_caps(lws_cmd_context(cmd));
    uint32_t rows = embedding_bwd_rows(caps);
    uint32_t spec[2] = {EMBEDDING_BWD_WG, rows};
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, "embedding_bwd", dout.dtype), spec, 2,
                    &pipe);
    embedding_bwd_push push = {dtable.addr, dout.addr, tokens.addr, n_tokens, dim, vocab};
    /* The rows the tokens hit are added to: any row of dtable. */
    lws_op_reads(cmd, tokens, 0, 4ull * n_tokens);
    lws_op_reads(cmd, dout, 0, (uint64_t)lws_dtype_bytes(dout.dtype) * n_tokens * dim);
    lws_op_updates(cmd, dtable, 0, 4ull * vocab * dim);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(vocab, rows),
                     lws_div_up(dim, EMBEDDING_BWD_WG), 1);
    return LWS_OK;
}
