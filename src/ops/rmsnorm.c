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

/* shaders/rmsnorm_bwd.comp: one or two problems over the same rows. */
typedef struct rmsnorm_bwd_push {
    uint64_t dx[2], dy[2], x[2], w[2], rstd[2], scratch;
    uint32_t rows, cols[2], rows_per_block[2];
    uint32_t split; /* blocks0 | log2 T0 << 16 | log2 T1 << 20 | accumulate_dx << 24 + p */
    uint32_t seq_len, head_dim;
    float ratio_hi, ratio_lo;
} rmsnorm_bwd_push;
_Static_assert(sizeof(rmsnorm_bwd_push) <= LWS_PUSH_BYTES, "rmsnorm_bwd's pushes fit");

/* shaders/rmsnorm_dw.comp: the deferred weight-gradient sums. */
typedef struct rmsnorm_dw_push {
    uint64_t partials[LWS_NORM_DW_MAX], dw[LWS_NORM_DW_MAX];
    uint32_t count[LWS_NORM_DW_MAX], cols[LWS_NORM_DW_MAX];
    uint32_t entries;
} rmsnorm_dw_push;
_Static_assert(sizeof(rmsnorm_dw_push) <= LWS_PUSH_BYTES, "rmsnorm_dw's pushes fit");

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

/* One problem of a rows pass, checked: its row split, rows per workgroup,
 * workgroups, and bytes of dx, dy and x. */
typedef struct norm_bwd_plan {
    row_split r;
    uint32_t per, blocks, partial_floats;
    uint64_t bytes;
} norm_bwd_plan;

static lws_status norm_bwd_check(lws_cmd *cmd, const char *op, const lws_norm_bwd *p, uint32_t rows,
                                 const lws_tuning *t, lws_dtype *type, norm_bwd_plan *plan) {
    LWS_TRY(rmsnorm_check_shape(cmd, op, rows, p->cols, t->row_wg));
    LWS_TRY(rope_rows_check(cmd, op, rows, p->cols, p->rope));
    LWS_OP_ELEM(cmd, op, type, "dx, dy, x", p->dx, p->dy, p->x);
    LWS_OP_F32(cmd, op, "dw, w and rstd", p->dw, p->w, p->rstd);
    uint64_t n = (uint64_t)rows * p->cols, bytes = lws_dtype_bytes(*type) * n;
    LWS_OP_REQUIRE(cmd, p->dx.size >= bytes && p->dy.size >= bytes && p->x.size >= bytes,
                   "%s: dx, dy or x holds fewer than rows * cols = %llu elements of %s", op,
                   (unsigned long long)n, lws_dtype_name(*type));
    LWS_OP_REQUIRE(cmd, p->w.size >= 4ull * p->cols && p->dw.size >= 4ull * p->cols,
                   "%s: w or dw holds fewer than cols = %u floats", op, p->cols);
    LWS_OP_REQUIRE(cmd, p->rstd.size >= 4ull * rows, "%s: rstd holds fewer than rows = %u floats",
                   op, rows);
    plan->r = rmsnorm_split(t, p->cols);
    plan->per = rmsnorm_rows_per_block(rows, plan->r);
    plan->blocks = lws_div_up(rows, plan->per);
    plan->partial_floats = lws_rmsnorm_scratch_floats(lws_cmd_context(cmd), rows, p->cols);
    plan->bytes = bytes;
    return LWS_OK;
}

/* The problems of one dispatch: one element type, the same RoPE (or none),
 * and no input gradient overlapping the other problem's operands. */
static lws_status norm_bwd_pair_check(lws_cmd *cmd, const char *op, const lws_norm_bwd *p,
                                      uint32_t n) {
    LWS_OP_REQUIRE(cmd, n >= 1 && n <= 2, "%s: %u problems; one dispatch takes 1 or 2", op, n);
    if (n == 1) return LWS_OK;
    const lws_rope_shape *a = p[0].rope, *b = p[1].rope;
    LWS_OP_REQUIRE(cmd,
                   (!a && !b) || (a && b && a->seq_len == b->seq_len &&
                                  a->head_dim == b->head_dim && a->theta == b->theta),
                   "%s: the two problems' RoPE differ (both need none, or the same seq_len, "
                   "head_dim and theta)",
                   op);
    for (uint32_t i = 0; i < 2; i++) {
        const lws_norm_bwd *o = &p[1 - i];
        LWS_OP_REQUIRE(
            cmd, !overlap(p[i].dx, o->dx) && !overlap(p[i].dx, o->dy) && !overlap(p[i].dx, o->x),
            "%s: problem %u's dx overlaps dx, dy or x of problem %u", op, i, 1 - i);
    }
    return LWS_OK;
}

static void rows_pass_declare(lws_cmd *cmd, const lws_norm_bwd *p, const norm_bwd_plan *plan,
                              lws_buffer partials, uint32_t rows) {
    lws_op_reads(cmd, p->dy, 0, plan->bytes);
    lws_op_reads(cmd, p->x, 0, plan->bytes);
    lws_op_reads(cmd, p->w, 0, 4ull * p->cols);
    lws_op_reads(cmd, p->rstd, 0, 4ull * rows);
    if (p->accumulate_dx) lws_op_reads(cmd, p->dx, 0, plan->bytes);
    lws_op_writes(cmd, p->dx, 0, plan->bytes);
    /* every partial row is written, zeros for a row group without rows */
    lws_op_writes(cmd, partials, 0, partials.size);
}

/* Log2 of a power of two. */
static uint32_t log2_of(uint32_t v) {
    uint32_t l = 0;
    while ((1u << l) < v) l++;
    return l;
}

/* The rows pass of n problems in one dispatch (shaders/rmsnorm_bwd.comp);
 * each leaves its partials in the next part of sums->scratch and an entry. */
static lws_status rows_pass(lws_cmd *cmd, const char *op, const lws_norm_bwd *p, uint32_t n,
                            uint32_t rows, lws_norm_dw_sums *sums) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    LWS_TRY(norm_bwd_pair_check(cmd, op, p, n));
    LWS_OP_REQUIRE(cmd, sums->n + n <= LWS_NORM_DW_MAX,
                   "%s: %u deferred weight-gradient sums already; at most %u fit in one sum", op,
                   sums->n, LWS_NORM_DW_MAX);
    LWS_OP_F32(cmd, op, "scratch", sums->scratch);
    norm_bwd_plan plan[2];
    lws_dtype type = LWS_F32, other;
    uint64_t need = 0;
    for (uint32_t i = 0; i < n; i++) {
        LWS_TRY(norm_bwd_check(cmd, op, &p[i], rows, &t, i ? &other : &type, &plan[i]));
        LWS_OP_REQUIRE(cmd, !i || other == type, "%s: problem 1 is %s, problem 0 %s", op,
                       lws_dtype_name(other), lws_dtype_name(type));
        need += plan[i].partial_floats;
    }
    LWS_OP_REQUIRE(cmd, 4 * (sums->used + need) <= sums->scratch.size,
                   "%s: scratch holds %llu bytes, %llu floats taken by earlier norms; the rows "
                   "pass needs lws_rmsnorm_scratch_floats's %llu floats more (rows = %u)",
                   op, (unsigned long long)sums->scratch.size, (unsigned long long)sums->used,
                   (unsigned long long)need, rows);
    rope_push rope = rope_part(p[0].rope);
    rmsnorm_bwd_push push = {.rows = rows,
                             .split = plan[0].blocks,
                             .seq_len = rope.seq_len,
                             .head_dim = rope.head_dim,
                             .ratio_hi = rope.ratio_hi,
                             .ratio_lo = rope.ratio_lo};
    push.scratch = sums->scratch.addr + 4 * sums->used;
    uint32_t groups = 0;
    for (uint32_t i = 0; i < n; i++) {
        push.dx[i] = p[i].dx.addr, push.dy[i] = p[i].dy.addr, push.x[i] = p[i].x.addr;
        push.w[i] = p[i].w.addr, push.rstd[i] = p[i].rstd.addr;
        push.cols[i] = p[i].cols, push.rows_per_block[i] = plan[i].per;
        push.split |= log2_of(plan[i].r.threads) << (16 + 4 * i);
        push.split |= (p[i].accumulate_dx ? 1u : 0u) << (24 + i);
        lws_buffer partials =
            lws_buffer_slice(sums->scratch, 4 * sums->used, 4ull * plan[i].partial_floats);
        rows_pass_declare(cmd, &p[i], &plan[i], partials, rows);
        sums->partials[sums->n] = partials, sums->dw[sums->n] = p[i].dw;
        sums->count[sums->n] = plan[i].blocks * plan[i].r.rows_at_once;
        sums->cols[sums->n++] = p[i].cols;
        sums->used += plan[i].partial_floats;
        groups += plan[i].blocks;
    }
    /* spec: workgroup, ROW_THREADS (the pushes give each problem's), ROPE */
    uint32_t spec[3] = {t.row_wg, 1, p[0].rope ? 1u : 0u};
    lws_pipeline *pipe;
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, "rmsnorm_bwd", type), spec, 3, &pipe);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, groups, 1, 1);
    return LWS_OK;
}

lws_status lws_op_rmsnorm_bwd_rows(lws_cmd *cmd, const lws_norm_bwd *p, uint32_t n, uint32_t rows,
                                   lws_norm_dw_sums *sums) {
    return rows_pass(cmd, "rmsnorm_bwd_rows", p, n, rows, sums);
}

lws_status lws_op_rmsnorm_dw_sum(lws_cmd *cmd, lws_norm_dw_sums *sums) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    rmsnorm_dw_push push = {.entries = sums->n};
    uint64_t total = 0;
    /* one dispatch adds into every dw: two that overlap would race */
    for (uint32_t e = 0; e < sums->n; e++)
        for (uint32_t f = e + 1; f < sums->n; f++)
            LWS_OP_REQUIRE(cmd,
                           !lws_buffers_overlap(sums->dw[e], 4ull * sums->cols[e], sums->dw[f],
                                                4ull * sums->cols[f]),
                           "rmsnorm_dw: the weight gradients of norms %u and %u overlap", e, f);
    for (uint32_t e = 0; e < sums->n; e++) {
        push.partials[e] = sums->partials[e].addr, push.dw[e] = sums->dw[e].addr;
        push.count[e] = sums->count[e], push.cols[e] = sums->cols[e];
        lws_op_reads(cmd, sums->partials[e], 0, sums->partials[e].size);
        lws_op_updates(cmd, sums->dw[e], 0, 4ull * sums->cols[e]);
        total += sums->cols[e];
    }
    sums->n = 0, sums->used = 0;
    if (total == 0) return LWS_OK;
    uint32_t spec[1] = {t.elementwise_wg};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "rmsnorm_dw", spec, 1, &pipe);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(total, t.elementwise_wg), 1, 1);
    return LWS_OK;
}

/* dx (+)= d/dx, dw += d/dw of y = RMSNorm(x) w, rotated when rope is not
 * NULL: the rows pass, a barrier, the weight-gradient sum. */
static lws_status rmsnorm_bwd(lws_cmd *cmd, const char *op, lws_norm_bwd p, uint32_t rows,
                              lws_buffer scratch) {
    lws_norm_dw_sums sums = {.scratch = scratch};
    LWS_TRY(rows_pass(cmd, op, &p, 1, rows, &sums));
    lws_cmd_barrier(cmd);
    return lws_op_rmsnorm_dw_sum(cmd, &sums);
}

lws_status lws_op_rmsnorm_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                              lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                              uint32_t rows, uint32_t cols, int accumulate_dx) {
    lws_norm_bwd p = {dx, dw, dy, x, w, rstd, cols, accumulate_dx, NULL};
    return rmsnorm_bwd(cmd, "rmsnorm_bwd", p, rows, scratch);
}

lws_status lws_op_rmsnorm_rope_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                                   lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                                   uint32_t rows, lws_rope_shape rope, int accumulate_dx) {
    lws_norm_bwd p = {dx, dw, dy, x, w, rstd, rope.heads * rope.head_dim, accumulate_dx, &rope};
    return rmsnorm_bwd(cmd, "rmsnorm_rope_bwd", p, rows, scratch);
}
