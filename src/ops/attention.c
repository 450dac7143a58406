/* Causal GQA attention, forward and backward (shaders/attention_fwd.comp,
 * shaders/attention_bwd_{dq,dkdv}.comp and their *_lanes forms). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/common.h"

/* The kernels. In the row form (lanes = 1) an invocation owns rows of its
 * block: query rows in the forward and dq kernels, key rows in the dk/dv
 * kernel. In the GPU form (lanes > 1, the *_lanes shaders) a group of
 * `lanes` invocations shares each such row and splits the other block's rows
 * among its lanes. */
typedef enum attention_kernel { ATTN_FWD, ATTN_BWD_DQ, ATTN_BWD_DKDV } attention_kernel;

static const char *const kernel_names[] = {"attention forward", "attention dq", "attention dk/dv"};

/* The block a kernel's rows come from, and the block split among the lanes. */
static uint32_t *owned_block(attention_kernel kind, uint32_t *bq, uint32_t *bkv) {
    return kind == ATTN_BWD_DKDV ? bkv : bq;
}
static uint32_t *split_block(attention_kernel kind, uint32_t *bq, uint32_t *bkv) {
    return kind == ATTN_BWD_DKDV ? bq : bkv;
}

/* The head_dim the shared tiles are sized for: head_dim rounded up to a
 * multiple of 32, so a few pipelines serve every head_dim (each one a shader
 * compile, which takes seconds on lavapipe) and 64 or 128 waste nothing. */
static uint32_t head_dim_max(uint32_t head_dim) {
    return (head_dim + 31) / 32 * 32;
}

/* Shared memory of a kernel (see the shaders): head-row tiles padded by one
 * vec4, and lse and delta of a query block in dk/dv. The GPU form keeps its
 * accumulators in registers and adds float tiles of (rows, split block +
 * lanes): probabilities in the forward (and the lanes' partial maxima and
 * sums, rows x lanes), dS in dq, P and dS in dk/dv. */
static uint64_t shared_bytes(attention_kernel kind, uint32_t bq, uint32_t bkv, uint32_t lanes,
                             uint32_t head_dim) {
    uint64_t row = 16ull * (head_dim_max(head_dim) / 4 + 1);
    if (lanes > 1) {
        uint64_t rows = *owned_block(kind, &bq, &bkv);
        uint64_t probs = 4ull * rows * (*split_block(kind, &bq, &bkv) + lanes);
        /* forward: q; k, v.  dq: q, dout; k, v.  dk/dv: q, dout, lse, delta; k, v. */
        if (kind == ATTN_FWD) return row * (bq + 2ull * bkv) + probs + 4ull * rows * lanes;
        if (kind == ATTN_BWD_DQ) return row * (2ull * bq + 2ull * bkv) + probs;
        return row * (2ull * bq + 2ull * bkv) + 2 * probs + 8ull * bq;
    }
    /* forward: q, acc; k, v.  dq: q, dout, dq; k, v.  dk/dv: q, dout; k, v, dk, dv. */
    if (kind == ATTN_FWD) return row * (2ull * bq + 2ull * bkv);
    if (kind == ATTN_BWD_DQ) return row * (3ull * bq + 2ull * bkv);
    return row * (2ull * bq + 4ull * bkv) + 8ull * bq;
}

/* How a kernel runs: its specialisation constants (workgroup size, blocks,
 * head_dim_max, lanes) and its shader. */
typedef struct attention_launch {
    uint32_t spec[5];
    uint32_t spec_count; /* 4 for the row form, 5 with the lanes */
    const char *shader;  /* without the element type's suffix */
} attention_launch;

/* A decimal count at *p, which moves past it; 0 when there is none. */
static unsigned read_count(const char **p) {
    if (!isdigit((unsigned char)**p)) return 0;
    char *end;
    unsigned long n = strtoul(*p, &end, 10);
    *p = end;
    return n > 65536 ? 0 : (unsigned)n;
}

/* The blocks, rows per invocation (row form) or per row group (GPU form) and
 * lanes per row: the tuning's, or LWS_ATTENTION_BLOCKS=QxKV[xROWS][/LANES]
 * (e.g. 64x32x1/4; ROWS defaults to the tuning's, LANES to 1, the row form),
 * so the tests run other devices' choices on lavapipe. */
static lws_status launch_choice(lws_cmd *cmd, uint32_t *bq, uint32_t *bkv, uint32_t *owned,
                                uint32_t *lanes) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    *bq = t.attn_block_q, *bkv = t.attn_block_kv, *owned = t.attn_rows_per_invocation;
    *lanes = t.attn_lanes_per_row;
    const char *force = getenv("LWS_ATTENTION_BLOCKS");
    if (force && *force) {
        const char *p = force;
        unsigned q = read_count(&p), kv = 0, rows = *owned, split = 1;
        int ok = q && *p++ == 'x' && (kv = read_count(&p));
        if (ok && *p == 'x') p++, ok = (rows = read_count(&p)) != 0;
        if (ok && *p == '/') p++, ok = (split = read_count(&p)) != 0;
        LWS_OP_REQUIRE(cmd, ok && *p == '\0',
                       "LWS_ATTENTION_BLOCKS='%s' is not QxKV, QxKVxROWS or QxKVxROWS/LANES "
                       "(e.g. 64x32x1/4)",
                       force);
        *bq = q, *bkv = kv, *owned = rows, *lanes = split;
    }
    LWS_OP_REQUIRE(cmd, *bq >= 1 && *bkv >= 1, "attention: blocks %u x %u must be at least 1 x 1",
                   *bq, *bkv);
    LWS_OP_REQUIRE(cmd, *lanes >= 1 && *lanes <= 32 && (*lanes & (*lanes - 1)) == 0,
                   "attention: %u lanes per row; use a power of two from 1 to 32", *lanes);
    return LWS_OK;
}

/* Halves the blocks (the larger first) until the kernel's tiles fit the
 * device's shared memory; in the GPU form the split block stays a multiple
 * of the lanes. */
static lws_status fit_blocks(lws_cmd *cmd, attention_kernel kind, uint32_t *bq, uint32_t *bkv,
                             uint32_t lanes, uint32_t head_dim) {
    lws_context *ctx = lws_cmd_context(cmd);
    uint32_t limit = lws_context_caps(ctx)->max_shared_memory;
    uint32_t want_q = *bq, want_kv = *bkv, *split = split_block(kind, bq, bkv);
    LWS_OP_REQUIRE(cmd, *split % lanes == 0,
                   "%s: a block of %u rows does not split into %u lanes per row",
                   kernel_names[kind], *split, lanes);
    while (shared_bytes(kind, *bq, *bkv, lanes, head_dim) > limit) {
        int split_halves = lanes == 1 || *split % (2 * lanes) == 0;
        uint32_t *larger = *bkv >= *bq ? bkv : bq;
        if (larger == split && !split_halves) larger = owned_block(kind, bq, bkv);
        LWS_OP_REQUIRE(cmd, *larger > 1,
                       "%s: head_dim %u needs %llu bytes of shared memory with %ux%u blocks and "
                       "%u lanes per row; the device has %u",
                       kernel_names[kind], head_dim,
                       (unsigned long long)shared_bytes(kind, *bq, *bkv, lanes, head_dim), *bq,
                       *bkv, lanes, limit);
        *larger /= 2;
    }
    if (*bq != want_q || *bkv != want_kv)
        lws_tuning_note(
            ctx, kernel_names[kind],
            "%s blocks %ux%u need %llu KiB shared memory at head_dim %u, device has "
            "%u KiB; using %ux%u",
            kernel_names[kind], want_q, want_kv,
            (unsigned long long)(shared_bytes(kind, want_q, want_kv, lanes, head_dim) + 1023) /
                1024,
            head_dim, limit / 1024, *bq, *bkv);
    return LWS_OK;
}

/* The launch of a kernel at head_dim: the tuning's (or forced) choice with
 * its blocks fitted to shared memory and a workgroup of rows / owned * lanes
 * invocations (owned halved until it divides the rows). */
static lws_status kernel_launch(lws_cmd *cmd, attention_kernel kind, uint32_t head_dim,
                                attention_launch *out) {
    const lws_device_caps *caps = lws_context_caps(lws_cmd_context(cmd));
    uint32_t bq, bkv, owned, lanes;
    LWS_TRY(launch_choice(cmd, &bq, &bkv, &owned, &lanes));
    LWS_TRY(fit_blocks(cmd, kind, &bq, &bkv, lanes, head_dim));
    uint32_t rows = *owned_block(kind, &bq, &bkv);
    while (rows % owned) owned /= 2;
    uint64_t invocations = (uint64_t)rows / owned * lanes;
    LWS_OP_REQUIRE(cmd, invocations <= caps->max_workgroup_invocations,
                   "%s: %u rows at a time with %u lanes each exceed the device's %u "
                   "invocations per workgroup",
                   kernel_names[kind], rows / owned, lanes, caps->max_workgroup_invocations);
    static const char *const row_form[] = {"attention_fwd", "attention_bwd_dq",
                                           "attention_bwd_dkdv"};
    static const char *const gpu_form[] = {"attention_fwd_lanes", "attention_bwd_dq_lanes",
                                           "attention_bwd_dkdv_lanes"};
    *out =
        (attention_launch){.spec = {(uint32_t)invocations, bq, bkv, head_dim_max(head_dim), lanes},
                           .spec_count = lanes > 1 ? 5 : 4,
                           .shader = lanes > 1 ? gpu_form[kind] : row_form[kind]};
    return LWS_OK;
}

/* Checks shared by the forward and the backward. */
static lws_status attention_check(lws_cmd *cmd, const char *what, uint32_t batch, uint32_t seq,
                                  uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim) {
    LWS_OP_REQUIRE(cmd, head_dim >= 4 && head_dim <= 128 && head_dim % 4 == 0,
                   "%s: head_dim %u is not supported; use a multiple of 4 from 4 to 128", what,
                   head_dim);
    LWS_OP_REQUIRE(cmd, kv_heads >= 1 && q_heads >= kv_heads && q_heads % kv_heads == 0,
                   "%s: q_heads %u is not a multiple of kv_heads %u; every KV head must serve "
                   "the same number of query heads",
                   what, q_heads, kv_heads);
    LWS_OP_REQUIRE(cmd, batch >= 1 && seq >= 1, "%s: batch %u and seq %u must be at least 1", what,
                   batch, seq);
    LWS_OP_REQUIRE(cmd, (uint64_t)batch * seq * q_heads * head_dim < (1ull << 32),
                   "%s: batch*seq*q_heads*head_dim = %llu exceeds 2^32 elements", what,
                   (unsigned long long)batch * seq * q_heads * head_dim);
    return LWS_OK;
}

/* A tensor argument: large enough and aligned to 4 elements (the kernels
 * read vec4s of head rows; lse and delta are f32). */
static lws_status attention_tensor(lws_cmd *cmd, const char *what, const char *name, lws_buffer b,
                                   uint64_t elems) {
    uint32_t esize = lws_dtype_bytes(b.dtype);
    LWS_OP_REQUIRE(cmd, b.size >= esize * elems,
                   "%s: %s holds %llu bytes; it needs %llu elements of %s", what, name,
                   (unsigned long long)b.size, (unsigned long long)elems, lws_dtype_name(b.dtype));
    LWS_OP_REQUIRE(cmd, b.addr % (4 * esize) == 0,
                   "%s: %s starts at device address 0x%llx; it must be %u-byte aligned", what, name,
                   (unsigned long long)b.addr, 4 * esize);
    return LWS_OK;
}

lws_status lws_op_attention_fwd(lws_cmd *cmd, lws_buffer o, lws_buffer lse, lws_buffer q,
                                lws_buffer k, lws_buffer v, uint32_t batch, uint32_t seq,
                                uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim,
                                float scale) {
    const char *what = "attention forward";
    LWS_TRY(attention_check(cmd, what, batch, seq, q_heads, kv_heads, head_dim));
    lws_dtype type;
    LWS_OP_ELEM(cmd, what, &type, "o, q, k, v", o, q, k, v);
    LWS_OP_F32(cmd, what, "lse", lse);
    uint64_t tokens = (uint64_t)batch * seq;
    LWS_TRY(attention_tensor(cmd, what, "o", o, tokens * q_heads * head_dim));
    LWS_TRY(attention_tensor(cmd, what, "lse", lse, tokens * q_heads));
    LWS_TRY(attention_tensor(cmd, what, "q", q, tokens * q_heads * head_dim));
    LWS_TRY(attention_tensor(cmd, what, "k", k, tokens * kv_heads * head_dim));
    LWS_TRY(attention_tensor(cmd, what, "v", v, tokens * kv_heads * head_dim));

    lws_attention_fwd_args args = {o, lse, q, k, v, batch, seq, q_heads, kv_heads, head_dim, scale};
    int handled = 0;
    lws_status fast = lws_attention_fast(cmd, &args, &handled);
    if (handled || fast != LWS_OK) return fast;
    return lws_attention_fwd_tuned(cmd, &args);
}

void lws_attention_fwd_declare(lws_cmd *cmd, const lws_attention_fwd_args *p) {
    uint64_t esize = lws_dtype_bytes(p->o.dtype), tokens = (uint64_t)p->batch * p->seq;
    uint64_t q_bytes = esize * tokens * p->q_heads * p->head_dim;
    uint64_t kv_bytes = esize * tokens * p->kv_heads * p->head_dim;
    lws_op_reads(cmd, p->q, 0, q_bytes);
    lws_op_reads(cmd, p->k, 0, kv_bytes);
    lws_op_reads(cmd, p->v, 0, kv_bytes);
    lws_op_writes(cmd, p->o, 0, q_bytes);
    lws_op_writes(cmd, p->lse, 0, 4 * tokens * p->q_heads);
}

lws_attention_push lws_attention_fwd_push(const lws_attention_fwd_args *p) {
    return (lws_attention_push){.q = p->q.addr,
                                .k = p->k.addr,
                                .v = p->v.addr,
                                .o = p->o.addr,
                                .lse = p->lse.addr,
                                .batch = p->batch,
                                .seq = p->seq,
                                .q_heads = p->q_heads,
                                .kv_heads = p->kv_heads,
                                .head_dim = p->head_dim,
                                .scale = p->scale};
}

lws_status lws_attention_fwd_tuned(lws_cmd *cmd, const lws_attention_fwd_args *p) {
    attention_launch launch;
    LWS_TRY(kernel_launch(cmd, ATTN_FWD, p->head_dim, &launch));
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, launch.shader, p->o.dtype),
                    launch.spec, launch.spec_count, &pipe);
    lws_attention_push push = lws_attention_fwd_push(p);
    lws_attention_fwd_declare(cmd, p);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(p->seq, launch.spec[1]), p->q_heads,
                     p->batch);
    return LWS_OK;
}

/* What both gradient kernels of the backward read (q, dout, k, v, lse). */
static void attention_bwd_reads(lws_cmd *cmd, lws_buffer q, lws_buffer k, lws_buffer v,
                                lws_buffer dout, lws_buffer lse, uint64_t q_bytes,
                                uint64_t kv_bytes, uint64_t row_bytes) {
    lws_op_reads(cmd, q, 0, q_bytes);
    lws_op_reads(cmd, dout, 0, q_bytes);
    lws_op_reads(cmd, k, 0, kv_bytes);
    lws_op_reads(cmd, v, 0, kv_bytes);
    lws_op_reads(cmd, lse, 0, row_bytes);
}

lws_status lws_op_attention_bwd(lws_cmd *cmd, lws_buffer dq, lws_buffer dk, lws_buffer dv,
                                lws_buffer dout, lws_buffer q, lws_buffer k, lws_buffer v,
                                lws_buffer o, lws_buffer lse, lws_buffer delta, uint32_t batch,
                                uint32_t seq, uint32_t q_heads, uint32_t kv_heads,
                                uint32_t head_dim, float scale) {
    const char *what = "attention backward";
    LWS_TRY(attention_check(cmd, what, batch, seq, q_heads, kv_heads, head_dim));
    lws_dtype type;
    LWS_OP_ELEM(cmd, what, &type, "dq, dk, dv, dout, q, k, v, o", dq, dk, dv, dout, q, k, v, o);
    LWS_OP_F32(cmd, what, "lse and delta", lse, delta);
    uint64_t tokens = (uint64_t)batch * seq;
    uint64_t q_elems = tokens * q_heads * head_dim, kv_elems = tokens * kv_heads * head_dim;
    LWS_TRY(attention_tensor(cmd, what, "dq", dq, q_elems));
    LWS_TRY(attention_tensor(cmd, what, "dk", dk, kv_elems));
    LWS_TRY(attention_tensor(cmd, what, "dv", dv, kv_elems));
    LWS_TRY(attention_tensor(cmd, what, "dout", dout, q_elems));
    LWS_TRY(attention_tensor(cmd, what, "q", q, q_elems));
    LWS_TRY(attention_tensor(cmd, what, "k", k, kv_elems));
    LWS_TRY(attention_tensor(cmd, what, "v", v, kv_elems));
    LWS_TRY(attention_tensor(cmd, what, "o", o, q_elems));
    LWS_TRY(attention_tensor(cmd, what, "lse", lse, tokens * q_heads));
    LWS_TRY(attention_tensor(cmd, what, "delta", delta, tokens * q_heads));

    attention_launch dq_launch, dkdv_launch;
    LWS_TRY(kernel_launch(cmd, ATTN_BWD_DQ, head_dim, &dq_launch));
    LWS_TRY(kernel_launch(cmd, ATTN_BWD_DKDV, head_dim, &dkdv_launch));
    lws_pipeline *dkdv_pipe, *dq_pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, dkdv_launch.shader, type),
                    dkdv_launch.spec, dkdv_launch.spec_count, &dkdv_pipe);
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, dq_launch.shader, type),
                    dq_launch.spec, dq_launch.spec_count, &dq_pipe);

    lws_attention_push push = {.q = q.addr,
                               .k = k.addr,
                               .v = v.addr,
                               .o = o.addr,
                               .lse = lse.addr,
                               .dout = dout.addr,
                               .delta = delta.addr,
                               .dq = dq.addr,
                               .dk = dk.addr,
                               .dv = dv.addr,
                               .batch = batch,
                               .seq = seq,
                               .q_heads = q_heads,
                               .kv_heads = kv_heads,
                               .head_dim = head_dim,
                               .scale = scale};
    uint32_t rows = (uint32_t)(tokens * q_heads);
    uint64_t esize = lws_dtype_bytes(type);
    uint64_t q_bytes = esize * q_elems, kv_bytes = esize * kv_elems, row_bytes = 4ull * rows;
    /* dq first: each workgroup computes delta = rowsum(dout * o) of its
     * query rows, uses it and writes it; dk/dv reads it after the barrier. */
    attention_bwd_reads(cmd, q, k, v, dout, lse, q_bytes, kv_bytes, row_bytes);
    lws_op_reads(cmd, o, 0, q_bytes);
    lws_op_writes(cmd, dq, 0, q_bytes);
    lws_op_writes(cmd, delta, 0, row_bytes);
    lws_cmd_dispatch(cmd, dq_pipe, &push, sizeof push, lws_div_up(seq, dq_launch.spec[1]), q_heads,
                     batch);
    lws_cmd_barrier(cmd);
    attention_bwd_reads(cmd, q, k, v, dout, lse, q_bytes, kv_bytes, row_bytes);
    lws_op_reads(cmd, delta, 0, row_bytes);
    lws_op_writes(cmd, dk, 0, kv_bytes);
    lws_op_writes(cmd, dv, 0, kv_bytes);
    lws_cmd_dispatch(cmd, dkdv_pipe, &push, sizeof push, lws_div_up(seq, dkdv_launch.spec[2]),
                     kv_heads, batch);
    return LWS_OK;
}
