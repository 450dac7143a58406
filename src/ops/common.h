/* Helpers shared by the launchers in src/ops/. */
#ifndef LWS_OPS_COMMON_H
#define LWS_OPS_COMMON_H

#include "ops/ops.h"

/* Gets a pipeline or marks the command buffer failed and returns. */
#define LWS_OP_PIPELINE(cmd, name, spec, count, out)                                               \
    do {                                                                                           \
        lws_status lws_op_s_ = lws_pipeline_get(lws_cmd_context(cmd), name, spec, count, out);     \
        if (lws_op_s_ != LWS_OK) return lws_cmd_fail(cmd, lws_op_s_);                              \
    } while (0)

/* Fails the command buffer when a condition on the arguments does not hold. */
#define LWS_OP_REQUIRE(cmd, cond, ...)                                                             \
    do {                                                                                           \
        if (!(cond)) return lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID, __VA_ARGS__));             \
    } while (0)

/* The push constants of both matmul shaders (matmul.comp, matmul_coopmat.comp). */
typedef struct lws_matmul_push {
    uint64_t c, a, b;
    uint64_t stride_c, stride_a, stride_b; /* bytes */
    uint32_t m, n, k;
    uint32_t accumulate;
} lws_matmul_push;

static inline uint32_t lws_div_up(uint64_t a, uint64_t b) {
    return (uint32_t)((a + b - 1) / b);
}

/* ---- the portable matmul's tiles (ops/matmul.c, ops/matmul_cat.c) ---- */
/* The context's tuning, its matmul tiles checked against the shader's
 * invariants and halved until their shared memory fits the device; tile_k
 * the depth to use. */
lws_status lws_mm_tuning(lws_cmd *cmd, lws_tuning *out, uint32_t *tile_k);
/* The tile for `batch` outputs of M x N: the tuning's, smaller for small
 * outputs or too few workgroups. */
void lws_mm_tile(const lws_tuning *t, uint32_t m, uint32_t n, uint32_t batch, uint32_t *tile_m,
                 uint32_t *tile_n);
/* The most elements one matrix of a dispatch may have (as
 * lws_matmul_max_elements); 0 when LWS_MATMUL_MAX_ELEMS is not a size. */
int lws_mm_max_elements_env(uint64_t *out);
/* Fails the command buffer unless a matmul problem's arguments hold (the
 * checks and messages of lws_matmul_portable): for launchers that record it
 * another way (in slices of k, ops/matmul_split.c). */
lws_status lws_matmul_check_args(lws_cmd *cmd, const lws_matmul_args *args);
/* Whether the first x_bytes of x and the first y_bytes of y share memory. */
int lws_buffers_overlap(lws_buffer x, uint64_t x_bytes, lws_buffer y, uint64_t y_bytes);

/* ---- element types ----------------------------------------------------------
 * Activations are fp32, bf16 or fp16 (lws_buffer.dtype); a kernel has one
 * shader variant per type (the `// variants:` line), and its launcher picks
 * it from its operands. Statistics, weights a kernel reads directly (norm
 * weights, the embedding table), gradients of weights and scratch stay f32. */

/* The type shared by an op's activation operands b[0..n) (their names in
 * `names`, "x, y", for the message); fails the command buffer when they
 * differ or one holds u32. */
lws_status lws_op_elem_type(lws_cmd *cmd, const char *op, const char *names, const lws_buffer *b,
                            uint32_t n, lws_dtype *out);
/* Fails the command buffer unless every b[i] is f32. */
lws_status lws_op_require_f32(lws_cmd *cmd, const char *op, const char *names, const lws_buffer *b,
                              uint32_t n);
/* The shader of `name` for type t: name, name_bf16 or name_f16. */
const char *lws_op_shader(char *buf, size_t size, const char *name, lws_dtype t);
/* An element-wise kernel's pipeline (the shader of `name` for type t, as
 * lws_op_shader names it; workgroups of the tuning's elementwise_wg) and its
 * grid for n elements: one invocation each, capped at max_groups_1d (the
 * shaders loop over the rest), at least 1. */
lws_status lws_op_elementwise(lws_cmd *cmd, const char *name, lws_dtype t, uint64_t n,
                              lws_pipeline **pipe, uint32_t *groups);

/* n N(0,1) floats from a splitmix64 stream (Box-Muller), malloc'd; NULL when out of
 * memory. The random operands of the checks at first use (ops/matmul_coopmat.c,
 * ops/attention_coopmat.c). */
float *lws_random_normals(uint64_t seed, size_t n);

/* The first steps of choosing a matrix-unit form (ops/matmul_coopmat.c,
 * ops/attention_coopmat.c): the mode from the environment variable `var` (an
 * error naming it, its value and the words allowed when it is none of auto,
 * portable and coopmat: `kind` says what it chooses), and *go = 1 where the
 * fast form may run: not for portable, after a failed check (verdict < 0) or
 * on a device without one (an error in coopmat mode; `what` names the form). */
lws_status lws_fast_mode(lws_cmd *cmd, const char *var, const char *kind, const char *what,
                         int verdict, int has_fast, lws_matmul_mode *mode, int *go);

/* The push-constant block of every attention kernel (shaders/common/attention.glsl). */
typedef struct lws_attention_push {
    uint64_t q, k, v, o, lse, dout, delta, dq, dk, dv;
    uint32_t batch, seq, q_heads, kv_heads, head_dim;
    float scale;
} lws_attention_push;

/* The forward's push constants (ops/attention.c). */
lws_attention_push lws_attention_fwd_push(const lws_attention_fwd_args *p);
/* What the attention forward reads (q, k, v) and writes (o, lse), whichever form runs it
 * (ops/attention.c). */
void lws_attention_fwd_declare(lws_cmd *cmd, const lws_attention_fwd_args *p);

#define LWS_OP_BUFS(...)                                                                           \
    (lws_buffer[]){__VA_ARGS__},                                                                   \
        (uint32_t)(sizeof((lws_buffer[]){__VA_ARGS__}) / sizeof(lws_buffer))
/* LWS_OP_ELEM(cmd, "rmsnorm_fwd", &t, "x, y", x, y) */
#define LWS_OP_ELEM(cmd, op, out, names, ...)                                                      \
    LWS_TRY(lws_op_elem_type(cmd, op, names, LWS_OP_BUFS(__VA_ARGS__), out))
#define LWS_OP_F32(cmd, op, names, ...)                                                            \
    LWS_TRY(lws_op_require_f32(cmd, op, names, LWS_OP_BUFS(__VA_ARGS__)))

/* ---- RoPE (ops/rope.c), shared with the fused QK-norm (ops/rmsnorm.c) ---- */
/* Fails the command buffer unless n_tokens rows of r's shape can be rotated. */
lws_status lws_rope_check(lws_cmd *cmd, const char *op, uint32_t n_tokens, lws_rope_shape r);
/* r = theta^(-2/head_dim) from fp64 as a float pair hi + lo: the shaders raise
 * it to the j-th power in double-float arithmetic (rope.glsl). */
void lws_rope_ratio(float theta, uint32_t head_dim, float *hi, float *lo);

/* Declare bytes [offset, offset + bytes) of b as read or written by the next
 * dispatch (lws_cmd_reads, lws_cmd_writes); nothing when checking is off.
 * Launchers declare exactly what the shader touches, from the shapes. */
static inline void lws_op_reads(lws_cmd *cmd, lws_buffer b, uint64_t offset, uint64_t bytes) {
    lws_cmd_reads(cmd, lws_buffer_slice(b, offset, bytes));
}
static inline void lws_op_writes(lws_cmd *cmd, lws_buffer b, uint64_t offset, uint64_t bytes) {
    lws_cmd_writes(cmd, lws_buffer_slice(b, offset, bytes));
}
/* Reads and writes: an op that updates b in place (accumulation). */
static inline void lws_op_updates(lws_cmd *cmd, lws_buffer b, uint64_t offset, uint64_t bytes) {
    lws_op_reads(cmd, b, offset, bytes);
    lws_op_writes(cmd, b, offset, bytes);
}

/* The first pass of a reduction over the optimizer table's tensors
 * (grad_norm.comp, nonfinite.comp: one push layout): checks the operands,
 * records pass 0 (one partial per chunk of LWS_OPTIM_CHUNK elements into
 * scratch, reaching the tensors through the table's device addresses, so it
 * declares a read of the whole arena, `what`), the barrier, and pass 1's
 * read of the partials. The caller declares pass 1's other accesses and
 * dispatches *pass1 with *push over one workgroup. out: the address pass 1
 * writes (push's first field). */
typedef struct lws_table_reduce_push {
    uint64_t out, table, partials;
    uint32_t n_tensors, total_chunks, chunk;
} lws_table_reduce_push;
lws_status lws_op_table_reduce(lws_cmd *cmd, const char *shader, const char *what, uint64_t out,
                               lws_buffer table, uint32_t n_tensors, uint32_t total_chunks,
                               lws_buffer scratch, lws_pipeline **pass1,
                               lws_table_reduce_push *push);

#endif
