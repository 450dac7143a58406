/* RMSNorm forward and backward (shaders/rmsnorm.comp, shaders/rmsnorm_bwd.comp). */
#include <stdlib.h>

#include "ops/common.h"

/* The rotation's part of the pushes (shaders with ROPE = 1 read it). */
typedef struct rope_push {
    uint32_t seq_len, heads, head_dim;
    float ratio_hi, ratio_lo;
} rope_push;

typedef struct rmsnorm_push {
    uint64_t y, rstd, x, w;
    uint32_t rows, cols;
    float eps;
    rope_push rope;
} rmsnorm_push;

typedef struct rmsnorm_bwd_push {
    uint64_t dx, dw, dy, x, w, rstd, scratch;
    uint32_t rows, cols, rows_per_block, partials, accumulate_dx;
    rope_push rope;
} rmsnorm_bwd_push;

static rope_push rope_part(const lws_rope_shape *r) {
    rope_push p = {0};
    if (!r) return p;
    p.seq_len = r->seq_len, p.heads = r->heads, p.head_dim = r->head_dim;
    lws_rope_ratio(r->theta, r->head_dim, &p.ratio_hi, &p.ratio_lo);
    return p;
}

/* QK-norm with RoPE: rows of rope->heads * head_dim columns, rotatable. */
static lws_status rope_rows_check(lws_cmd *cmd, const char *op, uint32_t rows, uint32_t cols,
                                  const lws_rope_shape *rope) {
    if (!rope) return LWS_OK;
    LWS_TRY(lws_rope_check(cmd, op, rows, *rope));
    LWS_OP_REQUIRE(cmd, cols == rope->heads * rope->head_dim,
                   "%s: cols = %u; RoPE over the norm's rows needs cols = heads * head_dim = %u",
                   op, cols, rope->heads * rope->head_dim);
    return LWS_OK;
}

/* How a workgroup of t.row_wg invocations covers rows: threads invocations
 * per row (about 4 columns each, at most t.row_threads), rows_at_once rows. */
typedef struct row_split {
    uint32_t threads, rows_at_once;
} row_split;

static row_split rmsnorm_split(const lws_tuning *t, uint32_t cols) {
    row_split r = {1, 0};
    uint32_t most = t->row_threads;
    /* LWS_ROW_THREADS=n replaces the tuning's cap, so tests run the other
     * devices' splits on lavapipe too. */
    const char *force = getenv("LWS_ROW_THREADS");
    if (force && *force) most = (uint32_t)strtoul(force, NULL, 10);
    while (r.threads < most && r.threads < t->row_wg && 4ull * r.threads < cols) r.threads *= 2;
    r.rows_at_once = t->row_wg / r.threads;
    return r;
}

/* The backward's dw is summed in two fixed-order passes: each row group's
 * rows into scratch (partials, cols), then over the partials. At most this
 * many partials keeps both serial sums short (about rows / 256 terms, then
 * 256), so dw's rounding error stays that of a two-level sum. */
#define RMSNORM_MAX_PARTIALS 256u

static uint32_t rmsnorm_rows_per_block(uint32_t rows, row_split r) {
    uint32_t blocks = RMSNORM_MAX_PARTIALS / r.rows_at_once;
    if (blocks == 0) blocks = 1;
    uint32_t per = lws_div_up(rows, blocks);
    return lws_div_up(per, r.rows_at_once) * r.rows_at_once;
}

static lws_status rmsnorm_check_shape(lws_cmd *cmd, const char *op, uint32_t rows, uint32_t cols,
                                      uint32_t wg) {
    LWS_OP_REQUIRE(cmd, rows >= 1 && cols >= 1, "%s: rows = %u, cols = %u; both must be >= 1", op,
                   rows, cols);
    LWS_OP_REQUIRE(cmd, (uint64_t)rows * cols <= UINT32_MAX,
                   "%s: rows * cols = %llu elements; at most 2^32 - 1 are allowed", op,
                   (unsigned long long)rows * cols);
    LWS_OP_REQUIRE(cmd, wg && (wg & (wg - 1)) == 0,
                   "%s: row workgroup size %u is not a power of two (tuning row_wg)", op, wg);
    return LWS_OK;
}

/* A forward norm's operands: the activations (one element type), rstd and w. */
typedef struct norm_fwd {
    const char *op, *names; /* for messages: the op and its activations' names */
    lws_buffer elems[4];
    uint32_t n_elems;
    lws_buffer rstd, w;
    uint32_t rows, cols;
    float eps;
} norm_fwd;

static lws_status norm_fwd_check(lws_cmd *cmd, const norm_fwd *a, const lws_tuning *t,
                                 lws_dtype *type) {
    LWS_TRY(rmsnorm_check_shape(cmd, a->op, a->rows, a->cols, t->row_wg));
    LWS_TRY(lws_op_elem_type(cmd, a->op, a->names, a->elems, a->n_elems, type));
    LWS_OP_F32(cmd, a->op, "rstd and w", a->rstd, a->w);
    uint64_t n = (uint64_t)a->rows * a->cols, bytes = lws_dtype_bytes(*type) * n;
    for (uint32_t i = 0; i < a->n_elems; i++)
        LWS_OP_REQUIRE(cmd, a->elems[i].size >= bytes,
                       "%s: operand %u of %s holds fewer than rows * cols = %llu elements of %s",
                       a->op, i + 1, a->names, (unsigned long long)n, lws_dtype_name(*type));
    LWS_OP_REQUIRE(cmd, a->w.size >= 4ull * a->cols, "%s: w holds fewer than cols = %u floats",
                   a->op, a->cols);
    LWS_OP_REQUIRE(cmd, a->rstd.size >= 4ull * a->rows,
                   "%s: rstd holds fewer than rows = %u floats", a->op, a->rows);
    LWS_OP_REQUIRE(cmd, a->eps >= 0.0f, "%s: eps = %g; it must be >= 0", a->op, (double)a->eps);
    return LWS_OK;
}

/* y = RMSNorm(x) w, rotated when rope is not NULL (shaders/rmsnorm.comp). */
static lws_status rmsnorm_fwd(lws_cmd *cmd, const char *op, lws_buffer y, lws_buffer rstd,
                              lws_buffer x, lws_buffer w, uint32_t rows, uint32_t cols, float eps,
                              const lws_rope_shape *rope) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    norm_fwd a = {op, "y, x", {y, x}, 2, rstd, w, rows, cols, eps};
    lws_dtype type;
    LWS_TRY(norm_fwd_check(cmd, &a, &t, &type));
    LWS_TRY(rope_rows_check(cmd, op, rows, cols, rope));
    uint64_t bytes = lws_dtype_bytes(type) * (uint64_t)rows * cols;
    row_split r = rmsnorm_split(&t, cols);
    uint32_t spec[3] = {t.row_wg, r.threads, rope ? 1u : 0u};
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, "rmsnorm", type), spec, 3, &pipe);
    rmsnorm_push push = {y.addr, rstd.addr, x.addr, w.addr, rows, cols, eps, rope_part(rope)};
    lws_op_reads(cmd, x, 0, bytes);
    lws_op_reads(cmd, w, 0, 4ull * cols);
    lws_op_writes(cmd, y, 0, bytes);
    lws_op_writes(cmd, rstd, 0, 4ull * rows);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(rows, r.rows_at_once), 1, 1);
    return LWS_OK;
}

lws_status lws_op_rmsnorm_fwd(lws_cmd *cmd, lws_buffer y, lws_buffer rstd, lws_buffer x,
                              lws_buffer w, uint32_t rows, uint32_t cols, float eps) {
    return rmsnorm_fwd(cmd, "rmsnorm_fwd", y, rstd, x, w, rows, cols, eps, NULL);
}

lws_status lws_op_rmsnorm_rope_fwd(lws_cmd *cmd, lws_buffer y, lws_buffer rstd, lws_buffer x,
                                   lws_buffer w, uint32_t rows, lws_rope_shape rope, float eps) {
    return rmsnorm_fwd(cmd, "rmsnorm_rope_fwd", y, rstd, x, w, rows, rope.heads * rope.head_dim,
                       eps, &rope);
}

/* One problem of shaders/rmsnorm.comp's PAIR variants (56 bytes, scalar). */
typedef struct norm_problem_push {
    uint64_t y, rstd, x, w;
    uint32_t cols, heads, head_dim;
    float ratio_hi, ratio_lo;
    uint32_t pad;
} norm_problem_push;

typedef struct rmsnorm_pair_push {
    norm_problem_push p[2];
    uint32_t rows;
    float eps;
    uint32_t seq_len;
} rmsnorm_pair_push;

/* Problem i's checks as lws_op_rmsnorm_rope_fwd's, and its outputs (y,
 * rstd) clear of the other problem's operands: one dispatch runs both. */
static lws_status pair_check(lws_cmd *cmd, const lws_norm_rope *p, uint32_t i, uint32_t rows,
                             float eps, const lws_tuning *t, lws_dtype *type) {
    static const char *const ops[] = {"rmsnorm_rope_fwd_pair[0]", "rmsnorm_rope_fwd_pair[1]"};
    const lws_norm_rope *q = &p[i], *o = &p[1 - i];
    uint32_t cols = q->rope.heads * q->rope.head_dim, ocols = o->rope.heads * o->rope.head_dim;
    norm_fwd a = {ops[i], "y, x", {q->y, q->x}, 2, q->rstd, q->w, rows, cols, eps};
    LWS_TRY(norm_fwd_check(cmd, &a, t, type));
    LWS_TRY(rope_rows_check(cmd, ops[i], rows, cols, &q->rope));
    LWS_OP_REQUIRE(cmd, q->rope.seq_len == p[0].rope.seq_len && q->rope.theta == p[0].rope.theta,
                   "%s: seq_len %u and theta %g differ from problem 0's %u and %g; the pair "
                   "shares them",
                   ops[i], q->rope.seq_len, (double)q->rope.theta, p[0].rope.seq_len,
                   (double)p[0].rope.theta);
    uint32_t e = lws_dtype_bytes(*type);
    uint64_t ob[] = {(uint64_t)e * rows * ocols, 4ull * rows, (uint64_t)e * rows * ocols,
                     4ull * ocols};
    const lws_buffer others[] = {o->y, o->rstd, o->x, o->w};
    for (int k = 0; k < 4; k++)
        LWS_OP_REQUIRE(cmd,
                       !lws_buffers_overlap(q->y, (uint64_t)e * rows * cols, others[k], ob[k]) &&
                           !lws_buffers_overlap(q->rstd, 4ull * rows, others[k], ob[k]),
                       "%s: y or rstd overlaps an operand of the other problem; the two must "
                       "share no buffer range",
                       ops[i]);
    return LWS_OK;
}

lws_status lws_op_rmsnorm_rope_fwd_pair(lws_cmd *cmd, const lws_norm_rope p[2], uint32_t rows,
                                        float eps) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    lws_dtype type[2];
    for (uint32_t i = 0; i < 2; i++) LWS_TRY(pair_check(cmd, p, i, rows, eps, &t, &type[i]));
    LWS_OP_REQUIRE(cmd, type[0] == type[1],
                   "rmsnorm_rope_fwd_pair: problem 0 is %s, problem 1 %s; both must be of one "
                   "element type",
                   lws_dtype_name(type[0]), lws_dtype_name(type[1]));
    /* One split of a row for both: the wider problem's (the other's rows
     * leave some invocations idle, its results as with any split). */
    uint32_t cols[2] = {p[0].rope.heads * p[0].rope.head_dim, p[1].rope.heads * p[1].rope.head_dim};
    row_split r = rmsnorm_split(&t, cols[0] > cols[1] ? cols[0] : cols[1]);
    uint32_t spec[3] = {t.row_wg, r.threads, 1};
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, "rmsnorm_pair", type[0]), spec, 3,
                    &pipe);
    rmsnorm_pair_push push = {.rows = rows, .eps = eps, .seq_len = p[0].rope.seq_len};
    for (uint32_t i = 0; i < 2; i++) {
        rope_push rp = rope_part(&p[i].rope);
        push.p[i] =
            (norm_problem_push){p[i].y.addr, p[i].rstd.addr, p[i].x.addr, p[i].w.addr, cols[i],
                                rp.heads,    rp.head_dim,    rp.ratio_hi, rp.ratio_lo, 0};
        uint64_t bytes = lws_dtype_bytes(type[i]) * (uint64_t)rows * cols[i];
        lws_op_reads(cmd, p[i].x, 0, bytes);
        lws_op_reads(cmd, p[i].w, 0, 4ull * cols[i]);
        lws_op_writes(cmd, p[i].y, 0, bytes);
        lws_op_writes(cmd, p[i].rstd, 0, 4ull * rows);
    }
    /* workgroup (g, i): rows g * rows_at_once.. of problem i */
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(rows, r.rows_at_once), 2, 1);
    return LWS_OK;
}

typedef struct rmsnorm_add_push {
    uint64_t sum, normed, rstd, res, y, w;
    uint32_t rows, cols;
    float eps;
} rmsnorm_add_push;

/* shaders/rmsnorm_add.comp: add_first = 0 gives sum = res + RMSNorm(y) * w,
 * 1 gives sum = res + y and normed = RMSNorm(sum) * w. */
static lws_status rmsnorm_add(lws_cmd *cmd, const norm_fwd *a, int add_first, lws_buffer sum,
                              lws_buffer normed, lws_buffer res, lws_buffer y) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    lws_dtype type;
    LWS_TRY(norm_fwd_check(cmd, a, &t, &type));
    uint64_t bytes = lws_dtype_bytes(type) * (uint64_t)a->rows * a->cols;
    row_split r = rmsnorm_split(&t, a->cols);
    uint32_t spec[3] = {t.row_wg, r.threads, add_first ? 1u : 0u};
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, "rmsnorm_add", type), spec, 3, &pipe);
    rmsnorm_add_push push = {.sum = sum.addr,
                             .normed = add_first ? normed.addr : 0,
                             .rstd = a->rstd.addr,
                             .res = res.addr,
                             .y = y.addr,
                             .w = a->w.addr,
                             .rows = a->rows,
                             .cols = a->cols,
                             .eps = a->eps};
    lws_op_reads(cmd, res, 0, bytes);
    lws_op_reads(cmd, y, 0, bytes);
    lws_op_reads(cmd, a->w, 0, 4ull * a->cols);
    lws_op_writes(cmd, sum, 0, bytes);
    if (add_first) lws_op_writes(cmd, normed, 0, bytes);
    lws_op_writes(cmd, a->rstd, 0, 4ull * a->rows);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(a->rows, r.rows_at_once), 1, 1);
    return LWS_OK;
}

lws_status lws_op_rmsnorm_add(lws_cmd *cmd, lws_buffer out, lws_buffer rstd, lws_buffer res,
                              lws_buffer y, lws_buffer w, uint32_t rows, uint32_t cols, float eps) {
    norm_fwd a = {"rmsnorm_add", "out, res, y", {out, res, y}, 3, rstd, w, rows, cols, eps};
    return rmsnorm_add(cmd, &a, 0, out, out, res, y);
}

static int overlap(lws_buffer a, lws_buffer b) {
    return a.buffer == b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

lws_status lws_op_add_rmsnorm(lws_cmd *cmd, lws_buffer h, lws_buffer hn, lws_buffer rstd,
                              lws_buffer res, lws_buffer y, lws_buffer w, uint32_t rows,
                              uint32_t cols, float eps) {
    norm_fwd a = {"add_rmsnorm", "h, hn, res, y", {h, hn, res, y}, 4, rstd, w, rows, cols, eps};
    /* h must survive, and other rows still read res and y while hn is written */
    LWS_OP_REQUIRE(cmd, !overlap(hn, h) && !overlap(hn, res) && !overlap(hn, y),
                   "add_rmsnorm: hn overlaps h, res or y; it must be a buffer of its own");
    return rmsnorm_add(cmd, &a, 1, h, hn, res, y);
}

uint32_t lws_rmsnorm_scratch_floats(lws_context *ctx, uint32_t rows, uint32_t cols) {
    lws_tuning t = lws_tuning_get(ctx);
    row_split r = rmsnorm_split(&t, cols);
    uint32_t blocks = lws_div_up(rows, rmsnorm_rows_per_block(rows, r));
    uint64_t n = (uint64_t)(blocks ? blocks : 1) * r.rows_at_once * (cols ? cols : 1);
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* dx (+)= d/dx, dw += d/dw of y = RMSNorm(x) w, rotated when rope is not
 * NULL (shaders/rmsnorm_bwd.comp). */
static lws_status rmsnorm_bwd(lws_cmd *cmd, const char *op, lws_buffer dx, lws_buffer dw,
                              lws_buffer dy, lws_buffer x, lws_buffer w, lws_buffer rstd,
                              lws_buffer scratch, uint32_t rows, uint32_t cols, int accumulate_dx,
                              const lws_rope_shape *rope) {
    lws_context *ctx = lws_cmd_context(cmd);
    lws_tuning t = lws_tuning_get(ctx);
    LWS_TRY(rmsnorm_check_shape(cmd, op, rows, cols, t.row_wg));
    LWS_TRY(rope_rows_check(cmd, op, rows, cols, rope));
    lws_dtype type;
    LWS_OP_ELEM(cmd, op, &type, "dx, dy, x", dx, dy, x);
    LWS_OP_F32(cmd, op, "dw, w, rstd and scratch", dw, w, rstd, scratch);
    uint64_t n = (uint64_t)rows * cols, bytes = lws_dtype_bytes(type) * n;
    LWS_OP_REQUIRE(cmd, dx.size >= bytes && dy.size >= bytes && x.size >= bytes,
                   "%s: dx, dy or x holds fewer than rows * cols = %llu elements of %s", op,
                   (unsigned long long)n, lws_dtype_name(type));
    LWS_OP_REQUIRE(cmd, w.size >= 4ull * cols && dw.size >= 4ull * cols,
                   "%s: w or dw holds fewer than cols = %u floats", op, cols);
    LWS_OP_REQUIRE(cmd, rstd.size >= 4ull * rows, "%s: rstd holds fewer than rows = %u floats", op,
                   rows);
    row_split r = rmsnorm_split(&t, cols);
    uint32_t per = rmsnorm_rows_per_block(rows, r), blocks = lws_div_up(rows, per);
    uint32_t need = lws_rmsnorm_scratch_floats(ctx, rows, cols);
    LWS_OP_REQUIRE(cmd, scratch.size >= 4ull * need,
                   "%s: scratch holds %llu bytes; lws_rmsnorm_scratch_floats gives %u "
                   "floats for rows = %u, cols = %u",
                   op, (unsigned long long)scratch.size, need, rows, cols);
    /* spec: workgroup, ROW_THREADS, PASS, ROPE (pass 1 is the same for both) */
    uint32_t spec0[4] = {t.row_wg, r.threads, 0, rope ? 1u : 0u};
    uint32_t spec1[4] = {t.elementwise_wg, 1, 1, 0};
    lws_pipeline *rows_pass, *dw_pass;
    char shader[48];
    lws_op_shader(shader, sizeof shader, "rmsnorm_bwd", type);
    LWS_OP_PIPELINE(cmd, shader, spec0, 4, &rows_pass);
    LWS_OP_PIPELINE(cmd, shader, spec1, 4, &dw_pass);
    rmsnorm_bwd_push push = {.dx = dx.addr,
                             .dw = dw.addr,
                             .dy = dy.addr,
                             .x = x.addr,
                             .w = w.addr,
                             .rstd = rstd.addr,
                             .scratch = scratch.addr,
                             .rows = rows,
                             .cols = cols,
                             .rows_per_block = per,
                             .partials = blocks * r.rows_at_once,
                             .accumulate_dx = accumulate_dx ? 1u : 0u,
                             .rope = rope_part(rope)};
    /* Pass 0: dx and the dw partials (every partial row is written, zeros for
     * a row group without rows); pass 1 adds the partials into dw. */
    uint64_t partial_bytes = 4ull * blocks * r.rows_at_once * cols;
    lws_op_reads(cmd, dy, 0, bytes);
    lws_op_reads(cmd, x, 0, bytes);
    lws_op_reads(cmd, w, 0, 4ull * cols);
    lws_op_reads(cmd, rstd, 0, 4ull * rows);
    if (accumulate_dx) lws_op_reads(cmd, dx, 0, bytes);
    lws_op_writes(cmd, dx, 0, bytes);
    lws_op_writes(cmd, scratch, 0, partial_bytes);
    lws_cmd_dispatch(cmd, rows_pass, &push, sizeof push, blocks, 1, 1);
    lws_cmd_barrier(cmd);
    lws_op_reads(cmd, scratch, 0, partial_bytes);
    lws_op_updates(cmd, dw, 0, 4ull * cols);
    lws_cmd_dispatch(cmd, dw_pass, &push, sizeof push, lws_div_up(cols, t.elementwise_wg), 1, 1);
    return LWS_OK;
}

lws_status lws_op_rmsnorm_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                              lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                              uint32_t rows, uint32_t cols, int accumulate_dx) {
    return rmsnorm_bwd(cmd, "rmsnorm_bwd", dx, dw, dy, x, w, rstd, scratch, rows, cols,
                       accumulate_dx, NULL);
}

lws_status lws_op_rmsnorm_rope_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                                   lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                                   uint32_t rows, lws_rope_shape rope, int accumulate_dx) {
    return rmsnorm_bwd(cmd, "rmsnorm_rope_bwd", dx, dw, dy, x, w, rstd, scratch, rows,
                       rope.heads * rope.head_dim, accumulate_dx, &rope);
}
