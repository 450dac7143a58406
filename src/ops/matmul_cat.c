/* A product over a concatenation of matrices held in separate buffers
 * (shaders/matmul.comp's CAT variants), the W1|W3 product with SwiGLU in
 * its epilogue (its SWIGLU variants) and W2's input gradient with SwiGLU's
 * backward in its epilogue (SWIGLU_BWD): the fused projections of a layer. Where
 * the fast path would take one of the parts' products, or a matrix is too
 * large for one dispatch, the parts are recorded one by one as before, so a
 * fused dispatch only ever replaces portable matmuls. */
#include <stdio.h>

#include "ops/common.h"

static const char *const cat_layouts[] = {"NT", "NN", "TN"};
static const char *const cat_shaders[] = {"matmul_nt_cat", "matmul_nn_cat", "matmul_tn_cat"};

/* The push constants of the CAT and SWIGLU variants (scalar layout, 96 bytes). */
typedef struct cat_push {
    uint64_t c[3], a[3], b[3];
    uint32_t m, n, k, accumulate;
    uint32_t start1, start2;
} cat_push;

/* Whether operand 'a', 'b' or 'c' has one matrix per part in this layout. */
static int spans(lws_mm_layout layout, char operand) {
    switch (layout) {
    case LWS_MM_NT:
        return operand != 'a';
    case LWS_MM_NN:
        return operand != 'c';
    default:
        return operand != 'b';
    }
}

/* The concatenated dimension of p: a pointer to its m, n or k. */
static const uint32_t *cat_dim(const lws_mm_cat *p) {
    return p->layout == LWS_MM_NT ? &p->n : p->layout == LWS_MM_NN ? &p->k : &p->m;
}

/* Part i's product as a plain matmul. NN's parts add into one C in turn. */
static lws_matmul_args part_args(const lws_mm_cat *p, uint32_t i) {
    lws_mm_layout l = p->layout;
    lws_matmul_args r = {l,
                         p->c[spans(l, 'c') ? i : 0],
                         p->a[spans(l, 'a') ? i : 0],
                         p->b[spans(l, 'b') ? i : 0],
                         p->m,
                         p->n,
                         p->k,
                         p->accumulate || (l == LWS_MM_NN && i > 0),
                         1,
                         0,
                         0,
                         0};
    if (l == LWS_MM_NT)
        r.n = p->size[i];
    else if (l == LWS_MM_NN)
        r.k = p->size[i];
    else
        r.m = p->size[i];
    return r;
}

/* Shapes, types, sizes and overlaps, with messages naming the part. */
static lws_status check_cat(lws_cmd *cmd, const lws_mm_cat *p) {
    LWS_OP_REQUIRE(cmd, (unsigned)p->layout <= LWS_MM_TN,
                   "matmul_cat: layout %d is not one of LWS_MM_NT, LWS_MM_NN, LWS_MM_TN",
                   (int)p->layout);
    const char *name = cat_layouts[p->layout];
    LWS_OP_REQUIRE(cmd, p->parts >= 1 && p->parts <= 3, "matmul_cat %s: %u parts; give 1 to 3",
                   name, p->parts);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < p->parts; i++) {
        LWS_OP_REQUIRE(cmd, p->size[i] >= 1, "matmul_cat %s: part %u has size 0; each is >= 1",
                       name, i);
        sum += p->size[i];
    }
    LWS_OP_REQUIRE(cmd, p->m >= 1 && p->n >= 1 && p->k >= 1 && sum == *cat_dim(p),
                   "matmul_cat %s: M=%u N=%u K=%u with parts summing to %llu; every size must be "
                   ">= 1 and the concatenated dimension (%s) the parts' sum",
                   name, p->m, p->n, p->k, (unsigned long long)sum,
                   p->layout == LWS_MM_NT   ? "N"
                   : p->layout == LWS_MM_NN ? "K"
                                            : "M");
    lws_dtype ab = p->a[0].dtype, ct = p->c[0].dtype;
    uint32_t eab = lws_dtype_bytes(ab), ec = lws_dtype_bytes(ct);
    for (uint32_t i = 0; i < p->parts; i++) {
        lws_matmul_args r = part_args(p, i);
        LWS_OP_REQUIRE(cmd,
                       ab != LWS_U32 && r.a.dtype == ab && r.b.dtype == ab && r.c.dtype == ct &&
                           (ct == ab || ct == LWS_F32),
                       "matmul_cat %s part %u: A is %s, B %s and C %s; every A and B must share "
                       "f32, bf16 or f16 (here %s), every C be of that type or f32 (here %s)",
                       name, i, lws_dtype_name(r.a.dtype), lws_dtype_name(r.b.dtype),
                       lws_dtype_name(r.c.dtype), lws_dtype_name(ab), lws_dtype_name(ct));
        uint64_t cb = ec * (uint64_t)r.m * r.n, abytes = eab * (uint64_t)r.m * r.k,
                 bb = eab * (uint64_t)r.n * r.k;
        LWS_OP_REQUIRE(cmd, r.c.size >= cb && r.a.size >= abytes && r.b.size >= bb,
                       "matmul_cat %s part %u (M=%u N=%u K=%u): buffers of %llu, %llu, %llu bytes "
                       "(C, A, B) are smaller than the %llu, %llu, %llu it needs",
                       name, i, r.m, r.n, r.k, (unsigned long long)r.c.size,
                       (unsigned long long)r.a.size, (unsigned long long)r.b.size,
                       (unsigned long long)cb, (unsigned long long)abytes, (unsigned long long)bb);
        for (uint32_t j = 0; j < p->parts; j++) {
            lws_matmul_args o = part_args(p, j);
            int clash = lws_buffers_overlap(r.c, cb, o.a, eab * (uint64_t)o.m * o.k) ||
                        lws_buffers_overlap(r.c, cb, o.b, eab * (uint64_t)o.n * o.k) ||
                        (j != i && spans(p->layout, 'c') &&
                         lws_buffers_overlap(r.c, cb, o.c, ec * (uint64_t)o.m * o.n));
            LWS_OP_REQUIRE(cmd, !clash,
                           "matmul_cat %s: C of part %u overlaps an operand of part %u; every "
                           "output must be a separate buffer range",
                           name, i, j);
        }
    }
    return LWS_OK;
}

/* Whether the parts must be recorded one by one: the fast path takes one
 * (the fused dispatch is the portable kernel's, and only it is checked on
 * this device), or a matrix is over the element limit (the fused dispatch
 * is not split into pieces). */
static int record_parts(lws_cmd *cmd, const lws_mm_cat *p) {
    uint64_t limit;
    if (!lws_mm_max_elements_env(&limit)) return 1; /* lws_op_matmul reports it */
    for (uint32_t i = 0; i < p->parts; i++) {
        lws_matmul_args r = part_args(p, i);
        if (lws_matmul_fast_takes(lws_cmd_context(cmd), &r)) return 1;
        if ((uint64_t)r.m * r.n > limit || (uint64_t)r.m * r.k > limit ||
            (uint64_t)r.n * r.k > limit)
            return 1;
    }
    return 0;
}

/* Declares what one operand's matrices span: `count` buffers of elems[i]
 * elements of `esize` bytes. */
static void declare(lws_cmd *cmd, const lws_buffer *x, const uint64_t *elems, uint32_t count,
                    uint32_t esize, int write) {
    for (uint32_t i = 0; i < count; i++) {
        if (write)
            lws_op_writes(cmd, x[i], 0, esize * elems[i]);
        else
            lws_op_reads(cmd, x[i], 0, esize * elems[i]);
    }
}

/* A fused problem ready to dispatch: its push constants (addresses filled
 * from the buffers here), the buffers and their elements for the hazard
 * declarations, and the output width the tile is chosen for. */
typedef struct cat_dispatch {
    char shader[40];
    cat_push push;
    lws_buffer a[3], b[3], c[3];
    uint64_t a_elems[3], b_elems[3], c_elems[3];
    uint32_t na, nb, nc;
    uint32_t tile_cols; /* output columns of the GEMM (SwiGLU: gate and up) */
    int swiglu;
} cat_dispatch;

static lws_status dispatch(lws_cmd *cmd, cat_dispatch *d) {
    lws_tuning t;
    uint32_t tile_k, tile_m, tile_n;
    LWS_TRY(lws_mm_tuning(cmd, &t, &tile_k));
    lws_mm_tile(&t, d->push.m, d->tile_cols, 1, &tile_m, &tile_n);
    /* The four-wide path: groups of 4 never straddle a part or a matrix edge
     * (every size and part start a multiple of 4), and every matrix is
     * aligned to 4 elements. */
    const cat_push *q = &d->push;
    uint32_t eab = lws_dtype_bytes(d->a[0].dtype), ec = lws_dtype_bytes(d->c[0].dtype);
    uint32_t vec4 = (q->m | q->n | q->k | q->start1 | q->start2) % 4 == 0;
    for (uint32_t i = 0; i < 3; i++) {
        if (i < d->na) vec4 &= (d->push.a[i] = d->a[i].addr) % (4 * eab) == 0;
        if (i < d->nb) vec4 &= (d->push.b[i] = d->b[i].addr) % (4 * eab) == 0;
        if (i < d->nc) vec4 &= (d->push.c[i] = d->c[i].addr) % (4 * ec) == 0;
    }
    uint32_t spec[7] = {t.mm_wg_x, t.mm_wg_y, 1, tile_m, tile_n, tile_k, vec4};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, d->shader, spec, 7, &pipe);
    declare(cmd, d->a, d->a_elems, d->na, eab, 0);
    declare(cmd, d->b, d->b_elems, d->nb, eab, 0);
    if (d->push.accumulate) declare(cmd, d->c, d->c_elems, d->nc, ec, 0);
    declare(cmd, d->c, d->c_elems, d->nc, ec, 1);
    /* SwiGLU: a workgroup's TILE_N columns are TILE_N/2 gate and up pairs. */
    uint32_t groups_x =
        d->swiglu ? lws_div_up(d->push.n, tile_n / 2) : lws_div_up(d->push.n, tile_n);
    lws_cmd_dispatch(cmd, pipe, &d->push, sizeof d->push, groups_x, lws_div_up(d->push.m, tile_m),
                     1);
    return LWS_OK;
}

/* The fused dispatch of a checked problem. */
static lws_status dispatch_cat(lws_cmd *cmd, const lws_mm_cat *p) {
    lws_mm_layout l = p->layout;
    cat_dispatch d = {0};
    char base[32];
    lws_op_shader(base, sizeof base, cat_shaders[l], p->a[0].dtype);
    snprintf(d.shader, sizeof d.shader, "%s%s", base, p->c[0].dtype != p->a[0].dtype ? "_c32" : "");
    d.na = spans(l, 'a') ? p->parts : 1;
    d.nb = spans(l, 'b') ? p->parts : 1;
    d.nc = spans(l, 'c') ? p->parts : 1;
    uint32_t start = 0, starts[3];
    for (uint32_t i = 0; i < 3; i++) {
        starts[i] = start;
        if (i < p->parts) start += p->size[i];
    }
    for (uint32_t i = 0; i < p->parts; i++) {
        lws_matmul_args r = part_args(p, i);
        if (i < d.na) d.a[i] = r.a, d.a_elems[i] = (uint64_t)r.m * r.k;
        if (i < d.nb) d.b[i] = r.b, d.b_elems[i] = (uint64_t)r.n * r.k;
        if (i < d.nc) d.c[i] = r.c, d.c_elems[i] = (uint64_t)r.m * r.n;
    }
    d.push = (cat_push){.m = p->m,
                        .n = p->n,
                        .k = p->k,
                        .accumulate = p->accumulate ? 1u : 0u,
                        .start1 = starts[1],
                        .start2 = starts[2]};
    d.tile_cols = p->n;
    return dispatch(cmd, &d);
}

lws_status lws_op_matmul_cat(lws_cmd *cmd, const lws_mm_cat *p) {
    LWS_TRY(check_cat(cmd, p));
    if (!record_parts(cmd, p)) return dispatch_cat(cmd, p);
    for (uint32_t i = 0; i < p->parts; i++) {
        lws_matmul_args r = part_args(p, i);
        if (i && p->layout == LWS_MM_NN) lws_cmd_barrier(cmd); /* they add into one C */
        LWS_TRY(lws_op_matmul(cmd, r.layout, r.c, r.a, r.b, r.m, r.n, r.k, r.accumulate));
    }
    return LWS_OK;
}

lws_status lws_op_matmul_swiglu(lws_cmd *cmd, lws_buffer gate, lws_buffer up, lws_buffer act,
                                lws_buffer a, lws_buffer w1, lws_buffer w3, uint32_t m, uint32_t f,
                                uint32_t k) {
    /* The W1|W3 product's shapes, types and overlaps are the concatenation's;
     * act must not overlap anything either. */
    lws_mm_cat p = {LWS_MM_NT, 2, {f, f}, {gate, up}, {a}, {w1, w3}, m, 2 * f, k, 0};
    LWS_OP_REQUIRE(cmd, f >= 1 && f <= UINT32_MAX / 2, "matmul_swiglu: F = %u; give 1 .. 2^31-1",
                   f);
    LWS_TRY(check_cat(cmd, &p));
    LWS_OP_REQUIRE(cmd, (uint64_t)m * f <= UINT32_MAX,
                   "matmul_swiglu: M*F = %llu elements; at most 2^32-1", (unsigned long long)m * f);
    uint64_t bytes = lws_dtype_bytes(a.dtype) * (uint64_t)m * f;
    LWS_OP_REQUIRE(cmd, act.dtype == a.dtype && gate.dtype == a.dtype && act.size >= bytes,
                   "matmul_swiglu: gate %s and act %s (%llu bytes) must be of the operands' type "
                   "%s and act hold M*F = %llu bytes",
                   lws_dtype_name(gate.dtype), lws_dtype_name(act.dtype),
                   (unsigned long long)act.size, lws_dtype_name(a.dtype),
                   (unsigned long long)bytes);
    uint64_t wbytes = lws_dtype_bytes(a.dtype) * (uint64_t)f * k;
    const lws_buffer others[] = {gate, up, a, w1, w3};
    const uint64_t spans_of[] = {bytes, bytes, lws_dtype_bytes(a.dtype) * (uint64_t)m * k, wbytes,
                                 wbytes};
    for (int i = 0; i < 5; i++)
        LWS_OP_REQUIRE(cmd, !lws_buffers_overlap(act, bytes, others[i], spans_of[i]),
                       "matmul_swiglu: act overlaps another operand; it must be a separate "
                       "buffer range");
    if (record_parts(cmd, &p)) {
        LWS_TRY(lws_op_matmul(cmd, LWS_MM_NT, gate, a, w1, m, f, k, 0));
        LWS_TRY(lws_op_matmul(cmd, LWS_MM_NT, up, a, w3, m, f, k, 0));
        lws_cmd_barrier(cmd);
        return lws_op_swiglu_fwd(cmd, act, gate, up, m * f);
    }
    cat_dispatch d = {.a = {a},
                      .b = {w1, w3},
                      .c = {gate, up, act},
                      .a_elems = {(uint64_t)m * k},
                      .b_elems = {(uint64_t)f * k, (uint64_t)f * k},
                      .c_elems = {(uint64_t)m * f, (uint64_t)m * f, (uint64_t)m * f},
                      .na = 1,
                      .nb = 2,
                      .nc = 3,
                      .tile_cols = 2 * f,
                      .swiglu = 1};
    lws_op_shader(d.shader, sizeof d.shader, "matmul_nt_swiglu", a.dtype);
    d.push = (cat_push){.m = m, .n = f, .k = k, .start1 = f, .start2 = 2 * f};
    return dispatch(cmd, &d);
}

/* dgate and dup must be of dy's type, hold M*F elements and overlap no
 * other operand (check_cat has checked dgate against dy and w2). */
static lws_status check_swiglu_bwd(lws_cmd *cmd, const lws_buffer *t, uint32_t m, uint32_t f,
                                   uint32_t k) {
    enum { DGATE, DUP, DY, W2, GATE, UP };
    static const char *const names[] = {"dgate", "dup", "dy", "w2", "gate", "up"};
    uint32_t e = lws_dtype_bytes(t[DY].dtype);
    uint64_t mf = e * (uint64_t)m * f,
             spans_of[] = {mf, mf, e * (uint64_t)m * k, e * (uint64_t)k * f, mf, mf};
    LWS_OP_REQUIRE(cmd, (uint64_t)m * f <= UINT32_MAX,
                   "matmul_swiglu_bwd: M*F = %llu elements; at most 2^32-1",
                   (unsigned long long)m * f);
    for (int i = DGATE; i <= UP; i++) {
        if (i == DY || i == W2) continue;
        LWS_OP_REQUIRE(cmd, t[i].dtype == t[DY].dtype && t[i].size >= mf,
                       "matmul_swiglu_bwd: %s is %s with %llu bytes; it must be of dy's type %s "
                       "and hold M*F = %llu bytes",
                       names[i], lws_dtype_name(t[i].dtype), (unsigned long long)t[i].size,
                       lws_dtype_name(t[DY].dtype), (unsigned long long)mf);
    }
    for (int out = DGATE; out <= DUP; out++)
        for (int i = 0; i <= UP; i++)
            LWS_OP_REQUIRE(cmd,
                           i == out || (out == DGATE && (i == DY || i == W2)) ||
                               !lws_buffers_overlap(t[out], mf, t[i], spans_of[i]),
                           "matmul_swiglu_bwd: %s overlaps %s; each output must be a separate "
                           "buffer range",
                           names[out], names[i]);
    return LWS_OK;
}

lws_status lws_op_matmul_swiglu_bwd(lws_cmd *cmd, lws_buffer dgate, lws_buffer dup, lws_buffer dy,
                                    lws_buffer w2, lws_buffer gate, lws_buffer up, uint32_t m,
                                    uint32_t f, uint32_t k) {
    /* dact = dy . w2, one NN part written to dgate: the concatenation's
     * checks of shapes, types, sizes and overlaps, then the other operands'. */
    lws_mm_cat p = {LWS_MM_NN, 1, {k}, {dgate}, {dy}, {w2}, m, f, k, 0};
    LWS_TRY(check_cat(cmd, &p));
    const lws_buffer all[] = {dgate, dup, dy, w2, gate, up};
    LWS_TRY(check_swiglu_bwd(cmd, all, m, f, k));
    if (record_parts(cmd, &p)) {
        /* dact in dgate: swiglu_bwd reads each element before writing it. */
        LWS_TRY(lws_op_matmul(cmd, LWS_MM_NN, dgate, dy, w2, m, f, k, 0));
        lws_cmd_barrier(cmd);
        return lws_op_swiglu_bwd(cmd, dgate, dup, dgate, gate, up, m * f);
    }
    uint64_t mf = (uint64_t)m * f;
    cat_dispatch d = {.a = {dy, gate, up},
                      .b = {w2},
                      .c = {dgate, dup},
                      .a_elems = {(uint64_t)m * k, mf, mf},
                      .b_elems = {(uint64_t)k * f},
                      .c_elems = {mf, mf},
                      .na = 3,
                      .nb = 1,
                      .nc = 2,
                      .tile_cols = f};
    lws_op_shader(d.shader, sizeof d.shader, "matmul_nn_swiglu_bwd", dy.dtype);
    /* One part: K ends it (shaders/matmul.comp's SWIGLU_BWD). */
    d.push = (cat_push){.m = m, .n = f, .k = k, .start1 = k, .start2 = k};
    return dispatch(cmd, &d);
}
