/* C (+)= op(A) . op(B) in the NT, NN and TN layouts (shaders/matmul.comp),
 * split into pieces that the shader's 32-bit indexing reaches. A and B are
 * f32, or both bf16 or f16; C is like them, or f32 (a 16-bit product into
 * fp32: weight gradients, logits). */
#include <stdio.h>
#include <stdlib.h>

#include "ops/common.h"

typedef lws_matmul_push matmul_push;

static const char *const layout_names[] = {"NT", "NN", "TN"};
static const char *const shader_names[] = {"matmul_nt", "matmul_nn", "matmul_tn"};

int lws_buffers_overlap(lws_buffer x, uint64_t x_bytes, lws_buffer y, uint64_t y_bytes) {
    return x.buffer == y.buffer && x.offset < y.offset + y_bytes && y.offset < x.offset + x_bytes;
}

/* The shader indexes each matrix with 32-bit element offsets, which the
 * drivers sign-extend: every matrix it sees must have fewer than 2^31
 * elements. LWS_MATMUL_MAX_ELEMS=n lowers the limit, so the tests split small
 * problems the way large ones are split. */
#define SHADER_MAX_ELEMS ((1ull << 31) - 1)

int lws_mm_max_elements_env(uint64_t *out) {
    const char *env = getenv("LWS_MATMUL_MAX_ELEMS");
    *out = SHADER_MAX_ELEMS;
    if (!env || !*env) return 1;
    char *end = NULL;
    unsigned long long n = strtoull(env, &end, 10);
    if (*end || env[0] == '-' || n < 1 || n > SHADER_MAX_ELEMS) return 0;
    *out = n;
    return 1;
}

uint64_t lws_matmul_max_elements(void) {
    uint64_t n;
    lws_mm_max_elements_env(&n);
    return n;
}

/* One dispatch: `batch` problems of m x n x k whose operands start *_at
 * elements into the launcher's buffers and every stride_* elements after
 * (0: one matrix shared by the batch). */
typedef struct mm_piece {
    uint64_t c_at, a_at, b_at;
    uint32_t m, n, k, batch;
    uint64_t stride_c, stride_a, stride_b;
    int accumulate;
} mm_piece;

typedef struct mm_problem {
    lws_mm_layout layout;
    lws_buffer c, a, b;
    uint32_t ec, eab; /* bytes of an element of C, of A and B */
    char shader[32];  /* the variant for those types */
    lws_tuning t;
    uint32_t tile_k; /* the tuning's, or smaller where shared memory is short */
    uint64_t limit;  /* elements one matrix of a piece may have */
} mm_problem;

/* Declares the bytes of one operand over the batch: matrices of `elems`
 * elements of `esize` bytes, `stride` elements apart. */
static void declare(lws_cmd *cmd, lws_buffer x, uint32_t esize, uint64_t at, uint64_t elems,
                    uint64_t stride, uint32_t batch, int write) {
    lws_buffer first = lws_buffer_slice(x, esize * at, esize * elems);
    if (write)
        lws_cmd_writes_strided(cmd, first, esize * stride, batch);
    else
        lws_cmd_reads_strided(cmd, first, esize * stride, batch);
}

void lws_mm_tile(const lws_tuning *t, uint32_t m, uint32_t n, uint32_t batch, uint32_t *tile_m_out,
                 uint32_t *tile_n_out) {
    /* The tuning's tile is the largest; small outputs get smaller tiles (same
     * workgroup, smaller register blocks). A tile far wider than the matrix
     * computes padding (d_model 64 under a 128-wide tile wastes half), and too
     * few workgroups leave cores idle: a weight gradient dW[64, 64] summed
     * over 2048 tokens is one 128x128 workgroup, so one core of many. */
    uint32_t tile_m = t->mm_tile_m, tile_n = t->mm_tile_n;
    uint32_t min_m = 4 * t->mm_wg_y, min_n = 4 * t->mm_wg_x;
    while (tile_m > min_m && m <= tile_m / 2) tile_m /= 2;
    while (tile_n > min_n && n <= tile_n / 2) tile_n /= 2;
    while ((uint64_t)lws_div_up(m, tile_m) * lws_div_up(n, tile_n) * batch < t->mm_min_groups) {
        if (tile_m >= tile_n && tile_m > min_m)
            tile_m /= 2;
        else if (tile_n > min_n)
            tile_n /= 2;
        else if (tile_m > min_m)
            tile_m /= 2;
        else
            break;
    }
    *tile_m_out = tile_m, *tile_n_out = tile_n;
}

static lws_status dispatch_piece(lws_cmd *cmd, const mm_problem *p, mm_piece q) {
    const lws_tuning *t = &p->t;
    uint32_t ec = p->ec, eab = p->eab;
    lws_buffer c = lws_buffer_slice(p->c, ec * q.c_at, 0),
               a = lws_buffer_slice(p->a, eab * q.a_at, 0),
               b = lws_buffer_slice(p->b, eab * q.b_at, 0);
    /* The four-wide path: groups of 4 elements never straddle a matrix edge
     * and every access is aligned to 4 elements. */
    uint32_t vec4 = q.m % 4 == 0 && q.n % 4 == 0 && q.k % 4 == 0 && c.addr % (4 * ec) == 0 &&
                    (a.addr | b.addr) % (4 * eab) == 0 &&
                    (q.batch == 1 || (q.stride_c | q.stride_a | q.stride_b) % 4 == 0);
    uint32_t tile_m, tile_n;
    lws_mm_tile(t, q.m, q.n, q.batch, &tile_m, &tile_n);
    uint32_t spec[7] = {t->mm_wg_x, t->mm_wg_y, 1, tile_m, tile_n, p->tile_k, vec4};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, p->shader, spec, 7, &pipe);
    matmul_push push = {
        c.addr, a.addr, b.addr, ec * q.stride_c,       eab * q.stride_a, eab * q.stride_b,
        q.m,    q.n,    q.k,    q.accumulate ? 1u : 0u};
    uint64_t a_elems = (uint64_t)q.m * q.k, b_elems = (uint64_t)q.n * q.k;
    declare(cmd, p->a, eab, q.a_at, a_elems, q.stride_a, q.batch, 0);
    declare(cmd, p->b, eab, q.b_at, b_elems, q.stride_b, q.batch, 0);
    if (q.accumulate) declare(cmd, p->c, ec, q.c_at, (uint64_t)q.m * q.n, q.stride_c, q.batch, 0);
    declare(cmd, p->c, ec, q.c_at, (uint64_t)q.m * q.n, q.stride_c, q.batch, 1);
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, lws_div_up(q.n, tile_n),
                     lws_div_up(q.m, tile_m), q.batch);
    return LWS_OK;
}

static uint64_t min_u64(uint64_t a, uint64_t b) {
    return a < b ? a : b;
}

/* The variant for the operands' types: A and B alike (f32, bf16 or f16), C
 * like them or f32. */
static lws_status choose_variant(lws_cmd *cmd, mm_problem *p) {
    const char *layout = layout_names[p->layout];
    lws_dtype ab = p->a.dtype, c = p->c.dtype;
    LWS_OP_REQUIRE(cmd, ab == p->b.dtype && ab != LWS_U32 && (c == ab || c == LWS_F32),
                   "matmul %s: A is %s, B %s and C %s; A and B must share f32, bf16 or f16, and "
                   "C be of their type or f32",
                   layout, lws_dtype_name(ab), lws_dtype_name(p->b.dtype), lws_dtype_name(c));
    char base[24];
    lws_op_shader(base, sizeof base, shader_names[p->layout], ab);
    snprintf(p->shader, sizeof p->shader, "%s%s", base, c != ab ? "_c32" : "");
    p->eab = lws_dtype_bytes(ab);
    p->ec = lws_dtype_bytes(c);
    return LWS_OK;
}

/* NT or NN with B within the limit: pieces of mp rows of A and C. */
static lws_status split_rows(lws_cmd *cmd, const mm_problem *p, mm_piece q) {
    uint32_t m = q.m, mp = (uint32_t)min_u64(min_u64(p->limit / q.k, p->limit / q.n), m);
    for (uint32_t m0 = 0; m0 < m; m0 += mp) {
        mm_piece r = q;
        r.m = m - m0 < mp ? m - m0 : mp;
        r.c_at += (uint64_t)m0 * q.n;
        r.a_at += (uint64_t)m0 * q.k;
        LWS_TRY(dispatch_piece(cmd, p, r));
    }
    return LWS_OK;
}

/* NT or NN with B over the limit: pieces of rows of B (N of NT, K of NN).
 * The matching column block of C (NT) or of A (NN) is no matrix the shader
 * can index (its row stride is its own width), so each piece is a batch of
 * one-row problems, one per row of A and C. NN's pieces add into the same C
 * in turn. */
static lws_status split_b_rows(lws_cmd *cmd, const mm_problem *p, mm_piece q) {
    int nt = p->layout == LWS_MM_NT;
    uint32_t total = nt ? q.n : q.k, width = nt ? q.k : q.n;
    uint32_t step = (uint32_t)min_u64(p->limit / width, total);
    for (uint32_t i = 0; i < total; i += step) {
        uint32_t size = total - i < step ? total - i : step;
        if (i && !nt) lws_cmd_barrier(cmd);
        mm_piece r = q;
        r.m = 1, r.batch = q.m;
        r.stride_c = q.n, r.stride_a = q.k, r.stride_b = 0;
        r.b_at += (uint64_t)i * width;
        if (nt) {
            r.n = size;
            r.c_at += i;
        } else {
            r.k = size;
            r.a_at += i;
            r.accumulate = q.accumulate || i > 0;
        }
        LWS_TRY(dispatch_piece(cmd, p, r));
    }
    return LWS_OK;
}

/* TN (A [K, M], B [K, N]). With C within the limit: pieces of kp rows of A
 * and B, added into C in turn. With C over it: one k at a time (the rows of
 * C need columns of A, and a single row of A is contiguous), C in pieces of
 * mp rows. */
static lws_status split_tn(lws_cmd *cmd, const mm_problem *p, mm_piece q) {
    uint64_t c_elems = (uint64_t)q.m * q.n;
    uint32_t k = q.k, kp = c_elems <= p->limit
                               ? (uint32_t)min_u64(min_u64(p->limit / q.m, p->limit / q.n), k)
                               : 1;
    uint32_t m = q.m, mp = (uint32_t)min_u64(p->limit / q.n, m);
    for (uint32_t k0 = 0; k0 < k; k0 += kp) {
        if (k0) lws_cmd_barrier(cmd); /* the pieces add into the same C */
        for (uint32_t m0 = 0; m0 < m; m0 += mp) {
            mm_piece r = q;
            r.k = k - k0 < kp ? k - k0 : kp;
            r.m = m - m0 < mp ? m - m0 : mp;
            r.a_at += (uint64_t)k0 * q.m + m0;
            r.b_at += (uint64_t)k0 * q.n;
            r.c_at += (uint64_t)m0 * q.n;
            r.accumulate = q.accumulate || k0 > 0;
            LWS_TRY(dispatch_piece(cmd, p, r));
        }
    }
    return LWS_OK;
}

/* One problem (batch 1) of any size. */
static lws_status split(lws_cmd *cmd, const mm_problem *p, mm_piece q) {
    uint64_t L = p->limit, c = (uint64_t)q.m * q.n, a = (uint64_t)q.m * q.k,
             b = (uint64_t)q.n * q.k;
    if (c <= L && a <= L && b <= L) return dispatch_piece(cmd, p, q);
    /* The row length that each split keeps whole must fit. */
    uint32_t row = p->layout == LWS_MM_TN   ? (c > L ? q.n : 0)
                   : b <= L                 ? 0
                   : p->layout == LWS_MM_NT ? q.k
                                            : q.n;
    LWS_OP_REQUIRE(cmd, row <= L,
                   "matmul %s: M=%u N=%u K=%u needs pieces with rows of %u elements; one matrix "
                   "of a piece may have at most %llu",
                   layout_names[p->layout], q.m, q.n, q.k, row, (unsigned long long)L);
    if (p->layout == LWS_MM_TN) return split_tn(cmd, p, q);
    return b <= L ? split_rows(cmd, p, q) : split_b_rows(cmd, p, q);
}

/* Halves the tuning's tiles until their shared memory fits the device. */
static lws_status fit_tiles(lws_cmd *cmd, lws_tuning *t, uint32_t *tile_k) {
    lws_context *ctx = lws_cmd_context(cmd);
    uint32_t have = lws_context_caps(ctx)->max_shared_memory;
    uint32_t m = t->mm_tile_m, n = t->mm_tile_n, k = t->mm_tile_k;
    while (4ull * k * (m + 4 + n + 4) > have) {
        if (m >= n && m % (8 * t->mm_wg_y) == 0)
            m /= 2;
        else if (n % (8 * t->mm_wg_x) == 0)
            n /= 2;
        else if (k % 8 == 0)
            k /= 2;
        else
            return lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID,
                                              "matmul: tiles %ux%ux%u need %u bytes of shared "
                                              "memory; the device has %u",
                                              m, n, k, 4 * k * (m + 4 + n + 4), have));
    }
    if (m != t->mm_tile_m || n != t->mm_tile_n || k != t->mm_tile_k)
        lws_tuning_note(ctx, "matmul tiles",
                        "matmul tiles %ux%ux%u need %u KiB shared memory, device has %u KiB; "
                        "using %ux%ux%u",
                        t->mm_tile_m, t->mm_tile_n, t->mm_tile_k,
                        (4 * t->mm_tile_k * (t->mm_tile_m + t->mm_tile_n + 8) + 1023) / 1024,
                        have / 1024, m, n, k);
    t->mm_tile_m = m, t->mm_tile_n = n;
    *tile_k = k;
    return LWS_OK;
}

lws_status lws_mm_tuning(lws_cmd *cmd, lws_tuning *out, uint32_t *tile_k) {
    *out = lws_tuning_get(lws_cmd_context(cmd));
    /* Invariants of the tuning table that the shader relies on: whole
     * register blocks, and tile sides in whole vec4s. */
    const lws_tuning *t = out;
    LWS_OP_REQUIRE(cmd,
                   t->mm_wg_x && t->mm_wg_y && t->mm_tile_m % (4 * t->mm_wg_y) == 0 &&
                       t->mm_tile_n % (4 * t->mm_wg_x) == 0 && t->mm_tile_k % 4 == 0 &&
                       t->mm_tile_m && t->mm_tile_n && t->mm_tile_k,
                   "matmul: tuning tile %ux%ux%u with workgroup %ux%u: tile_m must be a multiple "
                   "of 4*wg_y, tile_n of 4*wg_x, tile_k of 4",
                   t->mm_tile_m, t->mm_tile_n, t->mm_tile_k, t->mm_wg_x, t->mm_wg_y);
    LWS_TRY(fit_tiles(cmd, out, tile_k));
    return LWS_OK;
}

lws_status lws_op_matmul_batched(lws_cmd *cmd, lws_mm_layout layout, lws_buffer c, lws_buffer a,
                                 lws_buffer b, uint32_t m, uint32_t n, uint32_t k, int accumulate,
                                 uint32_t batch, uint64_t stride_c, uint64_t stride_a,
                                 uint64_t stride_b) {
    lws_matmul_args args = {layout, c,          a,     b,        m,        n,
                            k,      accumulate, batch, stride_c, stride_a, stride_b};
    /* A weight gradient with few tiles, in slices of k (ops/matmul_split.c). */
    int handled = 0;
    lws_status split = lws_matmul_split_k(cmd, &args, &handled);
    if (handled || split != LWS_OK) return split;
    return lws_matmul_whole(cmd, &args);
}

lws_status lws_matmul_whole(lws_cmd *cmd, const lws_matmul_args *p) {
    int handled = 0;
    lws_status fast = lws_matmul_fast(cmd, p, &handled);
    if (handled || fast != LWS_OK) return fast;
    return lws_matmul_portable(cmd, p);
}

/* The problem's arguments (layout, shape, strides, types, sizes, overlap,
 * LWS_MATMUL_MAX_ELEMS) checked, and p filled for them. */
static lws_status check_problem(lws_cmd *cmd, const lws_matmul_args *args, mm_problem *out) {
    lws_mm_layout layout = args->layout;
    lws_buffer c = args->c, a = args->a, b = args->b;
    uint32_t m = args->m, n = args->n, k = args->k, batch = args->batch;
    uint64_t stride_c = args->stride_c, stride_a = args->stride_a, stride_b = args->stride_b;
    LWS_OP_REQUIRE(cmd, (unsigned)layout <= LWS_MM_TN,
                   "matmul: layout %d is not one of LWS_MM_NT, LWS_MM_NN, LWS_MM_TN", (int)layout);
    const char *name = layout_names[layout];
    LWS_OP_REQUIRE(cmd, m >= 1 && n >= 1 && k >= 1 && batch >= 1,
                   "matmul %s: shape M=%u N=%u K=%u batch=%u has a zero; every size must be >= 1",
                   name, m, n, k, batch);
    uint64_t c_elems = (uint64_t)m * n, a_elems = (uint64_t)m * k, b_elems = (uint64_t)n * k;
    LWS_OP_REQUIRE(cmd, batch == 1 || stride_c >= c_elems,
                   "matmul %s: stride_c %llu is smaller than one C matrix (M*N = %llu), so batch "
                   "entries would overwrite each other",
                   name, (unsigned long long)stride_c, (unsigned long long)c_elems);
    mm_problem p = {.layout = layout, .c = c, .a = a, .b = b};
    LWS_TRY(choose_variant(cmd, &p));
    /* Bytes each operand spans, from its first matrix to the end of its last. */
    uint64_t c_bytes = p.ec * ((uint64_t)(batch - 1) * stride_c + c_elems);
    uint64_t a_bytes = p.eab * ((uint64_t)(batch - 1) * stride_a + a_elems);
    uint64_t b_bytes = p.eab * ((uint64_t)(batch - 1) * stride_b + b_elems);
    LWS_OP_REQUIRE(cmd, c.size >= c_bytes && a.size >= a_bytes && b.size >= b_bytes,
                   "matmul %s M=%u N=%u K=%u batch=%u: buffers of %llu, %llu, %llu bytes (C, A, "
                   "B) are smaller than the %llu, %llu, %llu the shape and strides need",
                   name, m, n, k, batch, (unsigned long long)c.size, (unsigned long long)a.size,
                   (unsigned long long)b.size, (unsigned long long)c_bytes,
                   (unsigned long long)a_bytes, (unsigned long long)b_bytes);
    LWS_OP_REQUIRE(cmd,
                   !lws_buffers_overlap(c, c_bytes, a, a_bytes) &&
                       !lws_buffers_overlap(c, c_bytes, b, b_bytes),
                   "matmul %s: C overlaps A or B; the output must be a separate buffer range",
                   name);
    LWS_OP_REQUIRE(cmd, lws_mm_max_elements_env(&p.limit),
                   "LWS_MATMUL_MAX_ELEMS = '%s' is not a matrix size: give 1 .. %llu elements",
                   getenv("LWS_MATMUL_MAX_ELEMS"), (unsigned long long)SHADER_MAX_ELEMS);
    *out = p;
    return LWS_OK;
}

lws_status lws_matmul_check_args(lws_cmd *cmd, const lws_matmul_args *args) {
    mm_problem p;
    return check_problem(cmd, args, &p);
}

lws_status lws_matmul_portable(lws_cmd *cmd, const lws_matmul_args *args) {
    mm_problem p;
    LWS_TRY(check_problem(cmd, args, &p));
    uint32_t m = args->m, n = args->n, k = args->k, batch = args->batch;
    uint64_t c_elems = (uint64_t)m * n, a_elems = (uint64_t)m * k, b_elems = (uint64_t)n * k;
    LWS_TRY(lws_mm_tuning(cmd, &p.t, &p.tile_k));

    uint64_t stride_c = args->stride_c, stride_a = args->stride_a, stride_b = args->stride_b;
    mm_piece whole = {0, 0, 0, m, n, k, batch, stride_c, stride_a, stride_b, args->accumulate};
    if (c_elems <= p.limit && a_elems <= p.limit && b_elems <= p.limit)
        return dispatch_piece(cmd, &p, whole);
    /* Some matrix is over the limit: each batch entry on its own, in pieces. */
    for (uint32_t z = 0; z < batch; z++) {
        mm_piece q = whole;
        q.batch = 1;
        q.c_at = z * stride_c, q.a_at = z * stride_a, q.b_at = z * stride_b;
        LWS_TRY(split(cmd, &p, q));
    }
    return LWS_OK;
}

lws_status lws_op_matmul(lws_cmd *cmd, lws_mm_layout layout, lws_buffer c, lws_buffer a,
                         lws_buffer b, uint32_t m, uint32_t n, uint32_t k, int accumulate) {
    return lws_op_matmul_batched(cmd, layout, c, a, b, m, n, k, accumulate, 1, 0, 0, 0);
}
