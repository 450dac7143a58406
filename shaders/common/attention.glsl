// Shared declarations of the causal GQA attention kernels
// (attention_fwd.comp, attention_bwd_dq.comp, attention_bwd_dkdv.comp and
// their *_lanes forms).
//
// Layouts (token-major, as the projections write them):
//   q, o, dout, dq   [batch*seq, q_heads*head_dim]
//   k, v, dk, dv     [batch*seq, kv_heads*head_dim]
//   lse, delta       [batch, q_heads, seq]
// Query head h reads KV head h / (q_heads / kv_heads). Rows are read as vec4s:
// head_dim is a multiple of 4 and every tensor starts 16-byte aligned (8 in
// the 16-bit variants). The head-row tensors are in fp32, or bf16 / fp16
// storage (ELEM4, lws.glsl); lse, delta, the tiles and all sums are fp32.
//
// Work split: an invocation owns OWNED rows of its block (query rows, or key
// rows in the dk/dv kernel; the host picks 1 on GPUs, more on CPUs). The
// owned rows live in shared memory, touched only by their owner; the rows
// they are paired with are tiles that every invocation reads at the same
// address (a broadcast on GPUs). A step walks the head dimension one vec4 at
// a time and updates the scores of the owned rows against every row of the
// other block, held in small register arrays (OWNED x block floats at any
// head_dim), so each vec4 read from a tile feeds 4 * OWNED FMAs. Every sum
// runs in a fixed order: results do not depend on the subgroup size.
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BLOCK_Q = 32;  // query rows per block
layout(constant_id = 2) const uint BLOCK_KV = 16; // key/value rows per block
// head_dim itself is a push constant, so one pipeline serves every head_dim
// up to HEAD_DIM_MAX (a multiple of 32 chosen by the host): the shared tiles
// are sized for it.
layout(constant_id = 3) const uint HEAD_DIM_MAX = 64;

const uint WG = gl_WorkGroupSize.x;
// Row stride of the shared tiles in vec4s. The pad of one vec4 puts the rows
// that the invocations own in different banks.
const uint ROW = HEAD_DIM_MAX / 4 + 1;
#define DV (pc.head_dim / 4) // vec4s per head row

// Masked scores are never exponentiated: probabilities of masked entries are
// set to 0 explicitly, and the running max starts at this finite value, so no
// -inf - -inf (NaN) can arise in a block whose rows are all masked.
const float MASKED = -1.0e30;

// One push-constant block for every attention kernel (104 bytes).
layout(push_constant, scalar) uniform Push {
    Elem4s q;
    Elem4s k;
    Elem4s v;
    Elem4s o;
    Floats lse;
    Elem4s dout;
    Floats delta;
    Elem4s dq;
    Elem4s dk;
    Elem4s dv;
    uint batch;
    uint seq;
    uint q_heads;
    uint kv_heads;
    uint head_dim;
    float scale;
} pc;

// Index (in vec4s) of elements 4j..4j+3 of head `head` at token t of
// sequence b in a [batch*seq, heads*head_dim] tensor.
uint attn_index(uint b, uint t, uint heads, uint head, uint j) {
    return (b * pc.seq + t) * (heads * DV) + head * DV + j;
}

// Index of row t of head `head` of sequence b in a [batch, q_heads, seq] tensor.
uint attn_row_index(uint b, uint head, uint t) { return (b * pc.q_heads + head) * pc.seq + t; }

// Copies head rows row0 .. row0+rows-1 of sequence b from src into a shared
// tile (stride ROW); rows at or past seq are zero. Every invocation takes part.
#define ATTN_LOAD_TILE(tile, src, heads, head, b, row0, rows)                                     \
    for (uint e_ = gl_LocalInvocationIndex; e_ < (rows) * DV; e_ += WG) {                          \
        uint r_ = e_ / DV, j_ = e_ % DV;                                                           \
        vec4 x_ = vec4(0.0);                                                                       \
        if ((row0) + r_ < pc.seq) x_ = ELEM4_LOAD(src, attn_index(b, (row0) + r_, heads, head, j_)); \
        tile[r_ * ROW + j_] = x_;                                                                  \
    }

// Copies [batch, q_heads, seq] values of rows row0 .. row0+rows-1 into a
// shared array; rows at or past seq are zero.
#define ATTN_LOAD_ROWS(dst, src, b, head, row0, rows)                                              \
    for (uint e_ = gl_LocalInvocationIndex; e_ < (rows); e_ += WG) {                               \
        float x_ = 0.0;                                                                            \
        if ((row0) + e_ < pc.seq) x_ = src.v[attn_row_index(b, head, (row0) + e_)];               \
        dst[e_] = x_;                                                                              \
    }

// Copies head row `row` of sequence b from src into row `slot` of a shared
// tile (zero past seq). Only the calling invocation takes part.
#define ATTN_LOAD_ROW(tile, slot, src, heads, head, b, row)                                       \
    for (uint j_ = 0; j_ < DV; j_++) {                                                             \
        vec4 x_ = vec4(0.0);                                                                       \
        if ((row) < pc.seq) x_ = ELEM4_LOAD(src, attn_index(b, row, heads, head, j_));             \
        tile[(slot) * ROW + j_] = x_;                                                              \
    }

// Zeroes row `slot` of a shared tile (only the calling invocation).
#define ATTN_ZERO_ROW(tile, slot)                                                                  \
    for (uint j_ = 0; j_ < DV; j_++) tile[(slot) * ROW + j_] = vec4(0.0);

// Stores row `slot` of a shared tile, times `factor`, as head row `row` of
// sequence b in dst (only the calling invocation).
#define ATTN_STORE_ROW(dst, tile, slot, heads, head, b, row, factor)                               \
    for (uint j_ = 0; j_ < DV; j_++)                                                               \
        ELEM4_STORE(dst, attn_index(b, row, heads, head, j_), tile[(slot) * ROW + j_] * (factor));
