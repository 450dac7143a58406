/* RMSNorm forward and backward (shaders/rmsnorm.comp, shaders/rmsnorm_bwd.comp). */
#include "ops/common.h"

typedef struct rmsnorm_push {
    uint64_t y, rstd, x, w;
    uint32_t rows, cols;
    float eps;
} rmsnorm_push;

typedef struct rmsnorm_bwd_push {
    uint64_t dx, dw, dy, x, w, rstd, scratch;
    uint32_t rows, cols, rows_per_block, blocks, accumulate_dx;
} rmsnorm_bwd_push;

/* The backward's dw is summed in two fixed-order passes: row blocks into
 * scratch (blocks, cols), then over the blocks. At most this many blocks keeps
 * the second pass (a serial sum per column) short, while rows up to 256 still
 * give one workgroup per row in the first pass. */
#define RMSNORM_MAX_BLOCKS 256u

static uint32_t rmsnorm_rows_per_block(uint32_t rows) {
    uint32_t per = lws_div_up(rows, RMSNORM_MAX_BLOCKS);
    return per ? per : 1;
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

lws_status lws_op_rmsnorm_fwd(lws_cmd *cmd, lws_buffer y, lws_buffer rstd, lws_buffer x,
                              lws_buffer w, uint32_t rows, uint32_t cols, float eps) {
    lws_tuning t = lws_tuning_get(lws_cmd_context(cmd));
    LWS_TRY(rmsnorm_check_shape(cmd, "rmsnorm_fwd", rows, cols, t.row_wg));
    uint64_t n = (uint64_t)rows * cols;
    LWS_OP_REQUIRE(cmd, x.size >= 4 * n && y.size >= 4 * n,
                   "rmsnorm_fwd: x or y holds fewer than rows * cols = %llu floats",
                   (unsigned long long)n);
    LWS_OP_REQUIRE(cmd, w.size >= 4ull * cols, "rmsnorm_fwd: w holds fewer than cols = %u floats",
                   cols);
    LWS_OP_REQUIRE(cmd, rstd.size >= 4ull * rows,
                   "rmsnorm_fwd: rstd holds fewer than rows = %u floats", rows);
    LWS_OP_REQUIRE(cmd, eps >= 0.0f, "rmsnorm_fwd: eps = %g; it must be >= 0", (double)eps);
    uint32_t spec[1] = {t.row_wg};
    lws_pipeline *pipe;
    LWS_OP_PIPELINE(cmd, "rmsnorm", spec, 1, &pipe);
    rmsnorm_push push = {y.addr, rstd.addr, x.addr, w.addr, rows, cols, eps};
    lws_cmd_dispatch(cmd, pipe, &push, sizeof push, rows, 1, 1);
    return LWS_OK;
}

uint32_t lws_rmsnorm_scratch_floats(lws_context *ctx, uint32_t rows, uint32_t cols) {
    (void)ctx;
    uint32_t blocks = lws_div_up(rows, rmsnorm_rows_per_block(rows));
    uint64_t n = (uint64_t)(blocks ? blocks : 1) * (cols ? cols : 1);
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

lws_status lws_op_rmsnorm_bwd(lws_cmd *cmd, lws_buffer dx, lws_buffer dw, lws_buffer dy,
                              lws_buffer x, lws_buffer w, lws_buffer rstd, lws_buffer scratch,
                              uint32_t rows, uint32_t cols, int accumulate_dx) {
    lws_context *ctx = lws_cmd_context(cmd);
    lws_tuning t = lws_tuning_get(ctx);
    LWS_TRY(rmsnorm_check_shape(cmd, "rmsnorm_bwd", rows, cols, t.row_wg));
    uint64_t n = (uint64_t)rows * cols;
    LWS_OP_REQUIRE(cmd, dx.size >= 4 * n && dy.size >= 4 * n && x.size >= 4 * n,
                   "rmsnorm_bwd: dx, dy or x holds fewer than rows * cols = %llu floats",
                   (unsigned long long)n);
    LWS_OP_REQUIRE(cmd, w.size >= 4ull * cols && dw.size >= 4ull * cols,
                   "rmsnorm_bwd: w or dw holds fewer than cols = %u floats", cols);
    LWS_OP_REQUIRE(cmd, rstd.size >= 4ull * rows,
                   "rmsnorm_bwd: rstd holds fewer than rows = %u floats", rows);
    uint32_t per = rmsnorm_rows_per_block(rows), blocks = lws_div_up(rows, per);
    uint32_t need = lws_rmsnorm_scratch_floats(ctx, rows, cols);
    LWS_OP_REQUIRE(cmd, scratch.size >= 4ull * need,
                   "rmsnorm_bwd: scratch holds %llu bytes; lws_rmsnorm_scratch_floats gives %u "
                   "floats for rows = %u, cols = %u",
                   (unsigned long long)scratch.size, need, rows, cols);
    uint32_t spec0[2] = {t.row_wg, 0}, spec1[2] = {t.elementwise_wg, 1};
    lws_pipeline *rows_pass, *dw_pass;
    LWS_OP_PIPELINE(cmd, "rmsnorm_bwd", spec0, 2, &rows_pass);
    LWS_OP_PIPELINE(cmd, "rmsnorm_bwd", spec1, 2, &dw_pass);
    rmsnorm_bwd_push push = {dx.addr, dw.addr,   dy.addr,      x.addr,
                             w.addr,  rstd.addr, scratch.addr, rows,
                             cols,    per,       blocks,       accumulate_dx ? 1u : 0u};
    lws_cmd_dispatch(cmd, rows_pass, &push, sizeof push, blocks, 1, 1);
    lws_cmd_barrier(cmd);
    lws_cmd_dispatch(cmd, dw_pass, &push, sizeof push, lws_div_up(cols, t.elementwise_wg), 1, 1);
    return LWS_OK;
}
