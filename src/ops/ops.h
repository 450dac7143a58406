/* Host launchers: each records one op (one or more dispatches) into a command
 * buffer. Tensors are row-major, addressed as lws_buffer ranges; shapes are
 * in elements. Activations are f32, bf16 or f16 (the buffers' dtype picks the
 * shader variant, and an op's activations share one type); weight gradients,
 * statistics and scratch are f32 (see ops/common.h). A launcher orders its
 * own passes with barriers; the caller puts a barrier (lws_cmd_barrier)
 * between an op and a later op that reads its output. On failure (no
 * pipeline) a launcher returns the status and also marks the command buffer
 * failed, so lws_cmd_end reports it. */
#ifndef LWS_OPS_H
#define LWS_OPS_H

#include "lws/vk.h"
#include "ops/tuning.h"

/* ---- elementwise and reductions (ops/axpby.c, ops/sumsq.c) -------------- */

/* out[i] = alpha * x[i] + beta * y[i], i < n; out may alias x or y. */
lws_status lws_op_axpby(lws_cmd *cmd, lws_buffer out, lws_buffer x, lws_buffer y, float alpha,
                        float beta, uint32_t n);

/* out[slot] (+)= sum of x[i]^2 over i < n, in a fixed order (bit-identical
 * between runs). scratch holds lws_sumsq_scratch_floats(ctx, n) floats. */
uint32_t lws_sumsq_scratch_floats(lws_context *ctx, uint32_t n);
lws_status lws_op_sumsq(lws_cmd *cmd, lws_buffer out, uint32_t slot, lws_buffer x, uint32_t n,
                        lws_buffer scratch, int accumulate);

/* ---- element types (ops/cast.c) ------------------------------------------- */

/* out[i] = in[i] for i < n, converted from in.dtype to out.dtype: f32 to bf16
 * or f16 (round to nearest even, overflow to infinity), or bf16 / f16 to f32
 * (exact). */
lws_status lws_op_cast(lws_cmd *cmd, lws_buffer out, lws_buffer in, uint64_t n);

/* ---- matmul (ops/matmul.c) ------------------------------------------------ */

typedef enum lws_mm_layout {
    LWS_MM_NT, /* C[M,N] = A[M,K] . B[N,K]^T   forward:  y = x . W^T      */
    LWS_MM_NN, /* C[M,N] = A[M,K] . B[K,N]     backward: dx = dy . W      */
    LWS_MM_TN, /* C[M,N] = A[K,M]^T . B[K,N]   backward: dW = dy^T . x    */
} lws_mm_layout;

/* C (+)= op(A) . op(B) for any M, N, K >= 1; accumulate adds into C. The
 * shader indexes a matrix with 32-bit offsets: a problem with a matrix of more
 * than lws_matmul_max_elements() elements is recorded as several dispatches
 * on pieces (rows of A and C for NT and NN, rows of A and B for TN; column
 * blocks through batches of one-row problems where B, or C for TN, is the
 * large one), with barriers where pieces add into the same C. */
lws_status lws_op_matmul(lws_cmd *cmd, lws_mm_layout layout, lws_buffer c, lws_buffer a,
                         lws_buffer b, uint32_t m, uint32_t n, uint32_t k, int accumulate);
/* The same over `batch` independent problems whose operands start every
 * stride_* elements. */
lws_status lws_op_matmul_batched(lws_cmd *cmd, lws_mm_layout layout, lws_buffer c, lws_buffer a,
                                 lws_buffer b, uint32_t m, uint32_t n, uint32_t k, int accumulate,
                                 uint32_t batch, uint64_t stride_c, uint64_t stride_a,
                                 uint64_t stride_b);

/* ---- matmul over a concatenation (ops/matmul_cat.c) ------------------------
 *
 * One product whose n (NT), k (NN) or m (TN) dimension is the concatenation
 * of `parts` (1 to 3) matrices held in buffers of their own, part p being
 * size[p] wide along it (the concatenated dimension is their sum):
 *   NT: c[p] [M, size[p]]    = a[0] [M, K] . b[p] [size[p], K]^T
 *   NN: c[0] [M, N]        (+)= sum over p of a[p] [M, size[p]] . b[p] [size[p], N]
 *   TN: c[p] [size[p], N]  (+)= a[p] [K, size[p]]^T . b[0] [K, N]
 * the fused projections q|k|v = x . [Wq;Wk;Wv]^T, dx = [dq|dk|dv] . [Wq;Wk;Wv]
 * and [dWq;dWk;dWv] += [dq|dk|dv]^T . x, without moving any tensor. Types as
 * lws_op_matmul's (every part of A and B alike, of C alike). One dispatch of
 * the portable matmul; where the fast path (lws_matmul_fast_takes) would take
 * one of the parts' products, or a matrix is over lws_matmul_max_elements(),
 * the parts' products are recorded one by one through lws_op_matmul instead
 * (NN's with barriers between, as they add into the same C). */
typedef struct lws_mm_cat {
    lws_mm_layout layout;
    uint32_t parts;
    uint32_t size[3];
    /* one matrix per part for the operands that span the concatenated
     * dimension (NT: b, c; NN: a, b; TN: a, c), else the matrix in [0] */
    lws_buffer c[3], a[3], b[3];
    uint32_t m, n, k; /* the concatenated one equal to the sum of size[] */
    int accumulate;
} lws_mm_cat;
lws_status lws_op_matmul_cat(lws_cmd *cmd, const lws_mm_cat *p);

/* The W1|W3 product with SwiGLU in its epilogue: gate = a . w1^T,
 * up = a . w3^T, act = silu(gate) * up; a [M, K], w1, w3 [F, K], gate, up,
 * act [M, F], all of one type (f32, bf16 or f16); act is computed from gate
 * and up as stored. One dispatch, else (as lws_op_matmul_cat) two matmuls, a
 * barrier and lws_op_swiglu_fwd. */
lws_status lws_op_matmul_swiglu(lws_cmd *cmd, lws_buffer gate, lws_buffer up, lws_buffer act,
                                lws_buffer a, lws_buffer w1, lws_buffer w3, uint32_t m, uint32_t f,
                                uint32_t k);

/* W2's input gradient with SwiGLU's backward in its epilogue: dact = dy . w2
 * (dy [M, K], w2 [K, F]), rounded to the storage type as a separate kernel
 * would read it back, then dgate = dact * up * silu'(gate) and
 * dup = dact * silu(gate) (gate, up, dgate, dup [M, F]), all of one type
 * (f32, bf16 or f16); dact is never stored. One dispatch, else (as
 * lws_op_matmul_cat) the matmul into dgate, a barrier and lws_op_swiglu_bwd
 * in place there. The outputs overlap no operand and each other. */
lws_status lws_op_matmul_swiglu_bwd(lws_cmd *cmd, lws_buffer dgate, lws_buffer dup, lws_buffer dy,
                                    lws_buffer w2, lws_buffer gate, lws_buffer up, uint32_t m,
                                    uint32_t f, uint32_t k);

/* ---- the matrix-unit matmul (ops/matmul_coopmat.c) -------------------------
 *
 * Where the device has matrix units (lws_context_coopmat), lws_op_matmul*
 * runs them: operands rounded to fp16 (each k step's tiles scaled by powers
 * of two into fp16's range first), fp32 accumulation. LWS_MATMUL chooses:
 *   auto      (default) matrix units once a check at first use has found
 *             them within tolerance of the portable matmul, else portable
 *   portable  the fp32 kernel of ops/matmul.c everywhere
 *   coopmat   matrix units without the check; an error on a device without
 * Problems the kernel does not take (a matrix of 2^31 elements or more,
 * other element types, bad arguments) always go to the portable matmul. */
typedef enum lws_matmul_mode {
    LWS_MATMUL_AUTO,
    LWS_MATMUL_PORTABLE,
    LWS_MATMUL_COOPMAT,
} lws_matmul_mode;
/* "auto" (or NULL, ""), "portable", "coopmat"; 0 for anything else. */
int lws_matmul_mode_parse(const char *text, lws_matmul_mode *out);

/* One problem of lws_op_matmul_batched, as its arguments. */
typedef struct lws_matmul_args {
    lws_mm_layout layout;
    lws_buffer c, a, b;
    uint32_t m, n, k;
    int accumulate;
    uint32_t batch;
    uint64_t stride_c, stride_a, stride_b; /* elements */
} lws_matmul_args;

/* The problem as one product, never split over k: on the fast path where it
 * takes the problem, else the portable kernel. */
lws_status lws_matmul_whole(lws_cmd *cmd, const lws_matmul_args *p);

/* ---- a weight gradient split over k (ops/matmul_split.c) --------------------
 *
 * In a command buffer with scratch (lws_cmd_set_scratch), a TN product of one
 * matrix (batch 1) whose output has fewer workgroups than the tuning's
 * mm_min_groups, even at its smallest tiles (the fast path's, where it takes
 * the problem), is cut into slices of k (the tuning's mm_split_k_max at most,
 * each at least mm_split_k_depth deep): the slices' products write fp32
 * partial sums into scratch, and their sum in slice order (lws_op_sum_slices)
 * is added into C after the caller's next barrier (lws_cmd_defer). The caller
 * leaves C alone until a second barrier; the model's weight gradients are
 * written once per command buffer. lws_op_matmul_batched does this by itself
 * where the scratch has room for the partials (fewer slices where it is short). */
/* out (+)= parts[0] + .. + parts[slices - 1], each [n] in fp32 summed in that
 * order; out f32, bf16 or f16 (rounded once). */
lws_status lws_op_sum_slices(lws_cmd *cmd, lws_buffer out, lws_buffer parts, uint32_t slices,
                             uint32_t n, int accumulate);
/* The slices p would be cut into on the fast path (fast = 1) or the portable
 * one; 1: none. */
uint32_t lws_matmul_split_slices(lws_context *ctx, const lws_matmul_args *p, int fast);
/* Scratch bytes a TN product of M x N over K may take (either path), for
 * memory plans; 0 when it is not split. */
uint64_t lws_matmul_split_bytes(lws_context *ctx, uint32_t m, uint32_t n, uint32_t k);
/* Records p split when the context's choice and the scratch say so
 * (*handled = 1), else records nothing. */
lws_status lws_matmul_split_k(lws_cmd *cmd, const lws_matmul_args *p, int *handled);
/* The same with the number of slices given (tests); the slices are of
 * depth ceil(K / slices) rounded up to 16, so fewer when K is short. */
lws_status lws_matmul_split_with(lws_cmd *cmd, const lws_matmul_args *p, uint32_t slices,
                                 int *handled);

/* The portable fp32 kernel alone (what lws_op_matmul_batched runs when the
 * fast path does not take the problem). */
lws_status lws_matmul_portable(lws_cmd *cmd, const lws_matmul_args *p);

/* Records p on the fast path when the context uses one for it (*handled =
 * 1), else leaves it to the caller's portable matmul (*handled = 0). The
 * first problem in auto mode runs the check (lws_matmul_verify) at its shape
 * first; a failed check prints a warning and keeps the context portable. */
lws_status lws_matmul_fast(lws_cmd *cmd, const lws_matmul_args *p, int *handled);

/* The matrix-unit tiles for an M x N output on a device: TILE_M x TILE_N x
 * TILE_K, WARPS_M x WARPS_N subgroups of `subgroup` invocations (the
 * device's largest subgroup size), and the shared memory they take. Fails
 * when nothing fits the device. Pure (tests pass made-up caps). */
typedef struct lws_coopmat_tiles {
    uint32_t tile_m, tile_n, tile_k, warps_m, warps_n, subgroup;
    uint32_t invocations, shared_bytes;
} lws_coopmat_tiles;
lws_status lws_coopmat_tiles_for(const lws_device_caps *caps, lws_coopmat_shape shape, uint32_t m,
                                 uint32_t n, lws_coopmat_tiles *out);

/* The check: random N(0,1) operands of each shape, the fast path against
 * the portable one. Allowed: max |diff| <= 8 * 2^-11 * sqrt(K) and relative
 * L2 <= 2 * 2^-11 (fp16 rounding of the inputs; derivation in
 * ops/matmul_coopmat.c). A fast path that fails to run fails its shape
 * (error holds the message). */
typedef struct lws_mm_shape {
    lws_mm_layout layout;
    uint32_t m, n, k;
} lws_mm_shape;
typedef struct lws_matmul_check {
    lws_mm_shape shape;
    double max_abs, tol_abs, rel_l2, tol_rel;
    int ok;
    char error[256];
} lws_matmul_check;
/* The context's own fast path; sets the context's verdict (later matmuls in
 * auto mode then skip the check at first use). Fails on a device without one. */
lws_status lws_matmul_verify(lws_context *ctx, const lws_mm_shape *shapes, uint32_t count,
                             lws_matmul_check *out, int *all_ok);
/* A fast path given as a recorder (C = op(A) op(B), no accumulation, batch
 * 1): the same check, the verdict untouched. */
typedef lws_status (*lws_matmul_fn)(lws_cmd *cmd, const lws_matmul_args *p);
lws_status lws_matmul_verify_with(lws_context *ctx, lws_matmul_fn fast, const lws_mm_shape *shapes,
                                  uint32_t count, lws_matmul_check *out, int *all_ok);
/* The comparison itself, on host results of a K-deep product. */
void lws_matmul_compare(const float *fast, const float *portable, uint64_t count, uint32_t k,
                        lws_matmul_check *out);
/* A test hook: with fast set, every context behaves as one with matrix
 * units whose kernel is `fast` (NULL: back to the devices' own). */
void lws_matmul_fast_hook(lws_matmul_fn fast);
/* Whether lws_matmul_fast would record p (or report an error for it) rather
 * than leave it to the portable matmul; in auto mode before the check at
 * first use, 1 for a problem the check would decide. Records nothing. */
int lws_matmul_fast_takes(lws_context *ctx, const lws_matmul_args *p);
/* Whether this context's matmuls may still take the fast path: it has one
 * (or a test's), LWS_MATMUL does not say portable and no check has failed
 * (memory plans: the fused products then run part by part). */
int lws_matmul_fast_possible(lws_context *ctx);
/* One line: the matmul path this context uses now and why. */
void lws_matmul_path(lws_context *ctx, char *out, size_t size);

/* The most elements one matrix of a dispatch may have: 2^31 - 1, or less
 * with LWS_MATMUL_MAX_ELEMS=n (tests split small problems that way). */
uint64_t lws_matmul_max_elements(void);

/* ---- embedding (ops/embedding.c) -------------------------------------------- */

/* out[t, :] = table[tokens[t], :]; tokens are uint32 [n_tokens], table [vocab, dim]. */
lws_status lws_op_embedding_fwd(lws_cmd *cmd, lws_buffer out, lws_buffer table, lws_buffer tokens,
                                uint32_t n_tokens, uint32_t dim, uint32_t vocab);
/* dtable[v, :] += sum over t with tokens[t] == v of dout[t, :], in token
 * order (deterministic, no float atomics). */
lws_status lws_op_embedding_bwd(lws_cmd *cmd, lws_buffer dtable, lws_buffer dout, lws_buffer tokens,
                                uint32_t n_tokens, uint32_t dim, uint32_t vocab);

/* ---- RMSNorm (ops/rmsnorm.c) ---------------------------------------------- */

/* y[r, :] = x[r, :] * rstd[r] * w, rstd[r] = 1 / sqrt(mean(x[r, :]^2) + eps);
 * x, y [rows, cols], w [cols], rstd [rows] (saved for the backward). */
lws_status lws_op_rmsnorm_fwd(lws_cmd *cmd, lws_buffer y, lws_buffer rstd, lws_buffer x,
                              lws_buffer w, uint32_t rows, uint32_t cols, float eps);
/* A residual add fused with the norm, rows as above, rstd [rows] saved for
 * the backward (lws_op_rmsnorm_bwd with the norm's input):
 *   rmsnorm_add (post-norm): out = res + RMSNorm(y) * w; out may alias res or y.
 *   add_rmsnorm (pre-norm):  h = res + y, hn = RMSNorm(h) * w, normalising h
 *   as stored; h may alias res or y, hn neither. */
lws_status lws_op_rmsnorm_add(lws_cmd *cmd, lws_buffer out, lws_buffer rstd, lws_buffer res,
                              lws_buffer y, lws_buffer w, uint32_t rows, uint32_t cols, float eps);
lws_status lws_op_add_rmsnorm(lws_cmd *cmd, lws_buffer h, lws_buffer hn, lws_buffer rstd,
                              lws_buffer res, lws_buffer y, lws_buffer w, uint32_t rows,
                              uint32_t cols, float eps);
/* dx (+)= d/dx, dw += d/dw (dw summed over rows in a fixed order).
 * scratch holds lws_rmsnorm_scratch_floats(ctx, rows, cols) floats. */
uint32_t lws_rmsnorm_scratch_floats(lws_context *ctx, uint32_t rows, uint32_t cols);
lws_status lws_op_rmsnorm_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                              lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                              uint32_t rows, uint32_t cols, int accumulate_dx);

/* ---- RoPE (ops/rope.c) ------------------------------------------------------ */

/* The rotation of rows of (heads, head_dim) at position t % seq_len. */
typedef struct lws_rope_shape {
    uint32_t seq_len, heads, head_dim;
    float theta;
} lws_rope_shape;

/* x, y [n_tokens, heads, head_dim]; token t has position t % seq_len.
 * Rotate-half pairing: element j rotates with j + head_dim/2, angle
 * pos * theta^(-2j/head_dim). inverse = 1 rotates by -angle (the backward).
 * y may alias x. */
lws_status lws_op_rope(lws_cmd *cmd, lws_buffer y, lws_buffer x, uint32_t n_tokens,
                       uint32_t seq_len, uint32_t heads, uint32_t head_dim, float theta,
                       int inverse);

/* QK-norm with RoPE in one kernel (ops/rmsnorm.c): y = RoPE(RMSNorm(x) w) over
 * rows of x (rows, heads, head_dim), the norm over the whole row (heads *
 * head_dim), token t at position t % seq_len; rstd [rows] saved. y may alias
 * x. The backward: dy is the gradient of y; dx (+)= d/dx, dw += d/dw, scratch
 * as lws_op_rmsnorm_bwd's for cols = heads * head_dim. */
lws_status lws_op_rmsnorm_rope_fwd(lws_cmd *cmd, lws_buffer y, lws_buffer rstd, lws_buffer x,
                                   lws_buffer w, uint32_t rows, lws_rope_shape rope, float eps);
/* One problem of lws_op_rmsnorm_rope_fwd_pair: y = RoPE(RMSNorm(x) w). */
typedef struct lws_norm_rope {
    lws_buffer y, rstd, x, w;
    lws_rope_shape rope;
} lws_norm_rope;
/* q's and k's QK-norm with RoPE in one dispatch: each p[i] as
 * lws_op_rmsnorm_rope_fwd(p[i].y, p[i].rstd, p[i].x, p[i].w, rows, p[i].rope,
 * eps), each with its own heads, head_dim and weights; the two share rows,
 * eps, seq_len, theta and the element type, and neither's outputs may
 * overlap the other's operands (y may alias its own x). */
lws_status lws_op_rmsnorm_rope_fwd_pair(lws_cmd *cmd, const lws_norm_rope p[2], uint32_t rows,
                                        float eps);
lws_status lws_op_rmsnorm_rope_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                                   lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                                   uint32_t rows, lws_rope_shape rope, int accumulate_dx);

/* The backward with its weight-gradient sums deferred, so several norms share
 * one sum dispatch (and q's and k's QK-norm one rows dispatch):
 *   lws_op_rmsnorm_bwd_rows: dx (+)= d/dx of n = 1 or 2 problems over the
 *     same rows in one dispatch (one element type, the same RoPE or none);
 *     each leaves its dw partial sums in the next
 *     lws_rmsnorm_scratch_floats(ctx, rows, cols) floats of sums->scratch and
 *     adds an entry to sums (at most LWS_NORM_DW_MAX entries).
 *   lws_op_rmsnorm_dw_sum: after a barrier, dw += the partials of every entry
 *     in one dispatch (the fixed order of lws_op_rmsnorm_bwd: the same bits);
 *     empties sums.
 * lws_op_rmsnorm_bwd and lws_op_rmsnorm_rope_bwd are the two with a barrier
 * between, for one norm. */
#define LWS_NORM_DW_MAX 4
typedef struct lws_norm_bwd {
    lws_buffer dx, dw, dy, x, w, rstd; /* as lws_op_rmsnorm_bwd's */
    uint32_t cols;                     /* with RoPE rope->heads * rope->head_dim */
    int accumulate_dx;
    const lws_rope_shape *rope; /* NULL: no RoPE */
} lws_norm_bwd;
typedef struct lws_norm_dw_sums {
    lws_buffer scratch; /* set by the caller, the rest zero to begin */
    uint64_t used;      /* floats of scratch taken */
    uint32_t n;
    lws_buffer partials[LWS_NORM_DW_MAX], dw[LWS_NORM_DW_MAX];
    uint32_t count[LWS_NORM_DW_MAX], cols[LWS_NORM_DW_MAX]; /* partials (count, cols) */
} lws_norm_dw_sums;
lws_status lws_op_rmsnorm_bwd_rows(lws_cmd *cmd, const lws_norm_bwd *p, uint32_t n, uint32_t rows,
                                   lws_norm_dw_sums *sums);
lws_status lws_op_rmsnorm_dw_sum(lws_cmd *cmd, lws_norm_dw_sums *sums);

/* ---- causal GQA attention (ops/attention.c) -------------------------------------------- */

/* q [batch*seq, q_heads*head_dim], k, v [batch*seq, kv_heads*head_dim] (token-major, as
 * the projections write them); o like q; lse [batch, q_heads, seq] (log-sum-exp of each
 * score row, saved for the backward). Query head h reads KV head h / (q_heads/kv_heads). */
lws_status lws_op_attention_fwd(lws_cmd *cmd, lws_buffer o, lws_buffer lse, lws_buffer q,
                                lws_buffer k, lws_buffer v, uint32_t batch, uint32_t seq,
                                uint32_t q_heads, uint32_t kv_heads, uint32_t head_dim,
                                float scale);
/* dq, dk, dv written (not accumulated); dk, dv sum over the query heads of their group in
 * a fixed order. delta [batch, q_heads, seq] is written too: rowsum(dout * o) per query row
 * (the dq kernel computes it, the dk/dv kernel after it reads it). Two dispatches. */
lws_status lws_op_attention_bwd(lws_cmd *cmd, lws_buffer dq, lws_buffer dk, lws_buffer dv,
                                lws_buffer dout, lws_buffer q, lws_buffer k, lws_buffer v,
                                lws_buffer o, lws_buffer lse, lws_buffer delta, uint32_t batch,
                                uint32_t seq, uint32_t q_heads, uint32_t kv_heads,
                                uint32_t head_dim, float scale);

/* ---- the matrix-unit attention forward (ops/attention_coopmat.c) ---------------------
 *
 * Three forms of the forward: the row form (CPUs), the GPU form (the *_lanes kernels, the
 * vendor tables' choice) and, where the context has matrix units, the matrix-unit form
 * (shaders/attention_fwd_coopmat.comp: Q.K^T and P.V on fp16 matrix units with fp32
 * accumulation, the softmax in fp32). All three write o and lse alike; the backward always
 * runs the tuning's kernels. LWS_ATTENTION chooses the forward:
 *   auto      (default) the matrix-unit form where head_dim is a multiple of the matrix
 *             shape's k and n and its tiles fit shared memory, once a check at first use
 *             has found it within tolerance of the tuning's form; else the tuning's form
 *   portable  the tuning's form (row or GPU form) everywhere
 *   coopmat   the matrix-unit form without the check (where it takes the head_dim); an
 *             error on a device without matrix units */
typedef enum lws_attention_mode {
    LWS_ATTENTION_AUTO,
    LWS_ATTENTION_PORTABLE,
    LWS_ATTENTION_COOPMAT,
} lws_attention_mode;
/* "auto" (or NULL, ""), "portable", "coopmat"; 0 for anything else. */
int lws_attention_mode_parse(const char *text, lws_attention_mode *out);

/* One forward, as the arguments of lws_op_attention_fwd. */
typedef struct lws_attention_fwd_args {
    lws_buffer o, lse, q, k, v;
    uint32_t batch, seq, q_heads, kv_heads, head_dim;
    float scale;
} lws_attention_fwd_args;
typedef lws_status (*lws_attention_fwd_fn)(lws_cmd *cmd, const lws_attention_fwd_args *p);
/* The tuning's form alone (row or GPU form), arguments already checked. */
lws_status lws_attention_fwd_tuned(lws_cmd *cmd, const lws_attention_fwd_args *p);
/* Records p on the matrix-unit form when the context uses it (*handled = 1), else leaves it
 * to the tuning's form; the first forward in auto mode runs the check at first use. */
lws_status lws_attention_fast(lws_cmd *cmd, const lws_attention_fwd_args *p, int *handled);

/* The matrix-unit form's plan at a head_dim: blocks of `block` query and key rows, one
 * subgroup per `shape.m` query rows, and its shared memory. 0 where the form does not take
 * the head_dim on this device (not a multiple of the shape's k and n, or no block fits).
 * Pure (devices.c passes capability records). */
typedef struct lws_attention_cm_plan {
    uint32_t block, invocations, shared_bytes;
} lws_attention_cm_plan;
int lws_attention_cm_plan_for(const lws_device_caps *caps, lws_coopmat_shape shape,
                              uint32_t head_dim, lws_attention_cm_plan *out);

/* The check: random N(0,1) q, k, v of the forward's heads, head_dim and element type, a
 * cut-down sequence (at most 191 tokens, the same remainder modulo 64) and two sequences,
 * through `fast` and the tuning's form; o and lse compared with the tolerances derived in
 * ops/attention_coopmat.c. A fast form that fails to run fails the check (error holds the
 * message). The context's verdict is untouched. */
typedef struct lws_attention_check {
    uint32_t seq, q_heads, kv_heads, head_dim;
    double o_max_abs, o_tol, o_rel_l2, o_tol_rel, lse_max_abs, lse_tol;
    int ok;
    char error[256];
} lws_attention_check;
lws_status lws_attention_verify_with(lws_context *ctx, lws_attention_fwd_fn fast,
                                     const lws_attention_fwd_args *p, lws_attention_check *out);
/* The matrix-unit kernel with its matrix operations emulated on the SIMT lanes
 * (attention_fwd_cm_emu, shape 16x16x16: fp16 operands, fp32 sums): the kernel's data
 * flow on any device, slowly, for the tests (as a stand-in through the hook below). */
lws_status lws_attention_fwd_emulated(lws_cmd *cmd, const lws_attention_fwd_args *p);
/* A test hook: with fast set, every context behaves as one with matrix units whose
 * attention forward is `fast` (NULL: back to the devices' own). */
void lws_attention_fast_hook(lws_attention_fwd_fn fast);
/* One line: the attention forward this context uses at head_dim now, and why. */
void lws_attention_path(lws_context *ctx, uint32_t head_dim, char *out, size_t size);

/* ---- SwiGLU (ops/swiglu.c) ------------------------------------------------- */

/* h = silu(a) * b elementwise over n. */
lws_status lws_op_swiglu_fwd(lws_cmd *cmd, lws_buffer h, lws_buffer a, lws_buffer b, uint32_t n);
/* da = dh * b * silu'(a), db = dh * silu(a). */
lws_status lws_op_swiglu_bwd(lws_cmd *cmd, lws_buffer da, lws_buffer db, lws_buffer dh,
                             lws_buffer a, lws_buffer b, uint32_t n);

/* ---- softmax cross-entropy (ops/cross_entropy.c) ------------------------------------ */

/* logits [rows, vocab], targets uint32 [rows]. Writes losses[r] = lse - logit[target]
 * (+ z_loss * lse^2), 0 where targets[r] == ignore_index, and
 * dlogits = (softmax - onehot + 2 z_loss lse softmax) * grad_scale / n_valid, with n_valid
 * the count of non-ignored rows, counted on the device; zero rows where ignored.
 * dlogits may alias logits. scratch: lws_cross_entropy_scratch_floats(ctx, rows, vocab). */
uint32_t lws_cross_entropy_scratch_floats(lws_context *ctx, uint32_t rows, uint32_t vocab);
lws_status lws_op_cross_entropy(lws_cmd *cmd, lws_buffer losses, lws_buffer dlogits,
                                lws_buffer logits, lws_buffer targets, lws_buffer scratch,
                                uint32_t rows, uint32_t vocab, uint32_t ignore_index, float z_loss,
                                float grad_scale);

/* The same in two parts, for a caller that runs the loss over chunks of rows
 * (the output head): _count writes n_valid over all `rows` targets into the
 * scratch header; _rows then runs on a chunk (its rows of losses and targets,
 * the chunk's logits) against that count, with the same scratch. There the
 * logits are f32; dlogits f32 (may be the logits), bf16 or f16 (a buffer of its
 * own), or none (addr 0: losses only); scale none, or one f32 that multiplies
 * grad_scale (the fp16 loss scale, changed between steps by the host). */
typedef struct lws_ce_args {
    lws_buffer losses, dlogits, logits, targets, scratch, scale;
    uint32_t rows, vocab, ignore_index;
    float z_loss, grad_scale;
} lws_ce_args;
lws_status lws_op_cross_entropy_count(lws_cmd *cmd, lws_buffer targets, lws_buffer scratch,
                                      uint32_t rows, uint32_t ignore_index);
lws_status lws_op_cross_entropy_rows(lws_cmd *cmd, const lws_ce_args *args);

/* ---- the output head with its loss (ops/head_loss.c) ------------------------------- */

/* logits = x . W^T, the loss of each row (as lws_op_cross_entropy, z-loss
 * included) and, with the backward, dx = dlogits . W and dW += dlogits^T . x,
 * over chunks of chunk_rows tokens: each chunk's logits live in a scratch of
 * chunk_rows x vocab floats, so the (rows, vocab) logits never exist. The
 * chunks' dW terms are added in chunk order (deterministic). Shapes:
 *   x, dx (rows, d) of one type (f32, bf16 or f16); w (vocab, d) of that type;
 *   losses (rows) f32, written; targets (rows) u32; dw (vocab, d) f32, added;
 *   logits (chunk_rows, vocab) f32 scratch; dlogits (chunk_rows, vocab) of
 *   x's type (the logits themselves when f32); ce_scratch
 *   lws_cross_entropy_scratch_floats(ctx, chunk_rows, vocab) floats;
 *   scale none or one f32 loss scale (see lws_ce_args).
 * dx and dw both none (addr 0): the loss only (evaluation). The loss is
 * normalised over the valid targets of all `rows`, as one call over the
 * whole logits would be. */
typedef struct lws_head_loss_args {
    lws_buffer losses, dx, dw, x, w, targets, logits, dlogits, ce_scratch, scale;
    uint32_t rows, d, vocab, chunk_rows, ignore_index;
    float z_loss, grad_scale;
} lws_head_loss_args;
/* Tokens per chunk for `rows` tokens and a vocabulary: as many as 64 MiB of
 * fp32 logits hold (a multiple of 64 when above it), at most rows;
 * LWS_HEAD_CHUNK_ROWS=n sets it (a bad value is an error). */
lws_status lws_head_loss_chunk_rows(uint32_t rows, uint32_t vocab, uint32_t *out);
lws_status lws_op_head_loss(lws_cmd *cmd, const lws_head_loss_args *args);

/* ---- optimizer (ops/adamw.c) ---------------------------------------------------- */

/* Device-side hyperparameters, read by the kernels at run time so a schedule
 * changes them without re-recording (std430, 16 floats). */
typedef struct lws_optim_hyper {
    float lr;
    float beta1, beta2, eps;
    float weight_decay;
    float bias_correction1; /* 1 - beta1^step */
    float bias_correction2; /* 1 - beta2^step */
    float max_grad_norm;    /* <= 0: no clipping */
    float grad_norm;        /* written by lws_op_grad_norm */
    float clip_scale;       /* written by lws_op_grad_norm: min(1, max / (norm + 1e-6)),
                               divided by loss_scale */
    float loss_scale;       /* the gradients carry this factor (fp16; a power of two); 0 = 1 */
    float nonfinite;        /* written after AdamW: parameters that are NaN or infinite */
    float pad[4];
} lws_optim_hyper;

/* One row of the device table that the multi-tensor ops walk. Each tensor is
 * cut into chunks of LWS_OPTIM_CHUNK elements; first_chunk is the running sum. */
#define LWS_OPTIM_CHUNK 4096u
typedef struct lws_optim_entry {
    uint64_t param, grad, m, v; /* buffer device addresses */
    uint32_t n;                 /* elements */
    uint32_t decay;             /* 1: apply weight decay */
    uint32_t first_chunk;
    uint32_t pad;
} lws_optim_entry;

/* Sum of squares of all gradients (table order, fixed tree: deterministic),
 * then hyper.grad_norm (divided by hyper.loss_scale) and hyper.clip_scale.
 * scratch: total_chunks floats. */
lws_status lws_op_grad_norm(lws_cmd *cmd, lws_buffer hyper, lws_buffer table, uint32_t n_tensors,
                            uint32_t total_chunks, lws_buffer scratch);
/* AdamW on every tensor of the table (PyTorch's formulation: p *= 1 - lr*wd
 * where decay, then the Adam step with bias correction), gradients scaled by
 * hyper.clip_scale first; the gradients are zeroed for the next accumulation.
 * A non-finite hyper.grad_norm skips the update (only the zeroing runs). */
lws_status lws_op_adamw(lws_cmd *cmd, lws_buffer hyper, lws_buffer table, uint32_t n_tensors,
                        uint32_t total_chunks);

#endif
