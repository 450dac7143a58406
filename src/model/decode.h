/* Decoding with a key/value cache: the model's forward for one new token at
 * a time (batch 1), so generating a token costs one position, not the whole
 * prefix.
 *
 * Each layer keeps its keys (after the QK-norm and RoPE) and values for every
 * position so far, (max_seq, kv_heads * head_dim). A step embeds the token,
 * runs every layer on that one row — projections, QK-norm, RoPE at position
 * p, the key and value written to row p of the caches, attention of the new
 * query against rows 0..p — and the head. The position and the token live in
 * a small device buffer, so the per-layer command buffers are recorded once
 * and replayed at every position, like the training step's.
 *
 * The decoder reads the parameters of an lws_model (which must outlive it);
 * that model's own forward (batch row 0) also serves as the prefill: it runs
 * a prompt of up to m->seq tokens in one pass and its keys and values are
 * copied into the caches. */
#ifndef LWS_MODEL_DECODE_H
#define LWS_MODEL_DECODE_H

#include "model/block.h"
#include "model/model.h"

struct lws_decoder {
    lws_model *m;     /* the parameters (and the prefill forward); not owned */
    uint32_t max_seq; /* cache rows: positions 0 .. max_seq - 1 */

    lws_buffer io;                   /* uint32 [2]: the token and its position */
    lws_buffer token, pos;           /* views of io */
    /* One token through a block (model/block.h) at the widest layer's
     * widths: x is the residual stream, read and rewritten layer by layer
     * (out == x); post_norm's attn_out and ffn_out share one (d) buffer, as
     * do the two block norms' rstd: nothing is kept for a backward. RoPE
     * writes k into the cache. */
    lws_block_io blk;
    lws_buffer final_xn;             /* (d) */
    lws_buffer logits;               /* (V) */
    lws_buffer *k_cache, *v_cache;   /* [n_layers] (max_seq, kv_heads(i) * head_dim) */

    /* Recorded once: embedding, each layer, head; and the copy of the
     * prefill forward's keys and values into the caches. */
    lws_cmd *cmd_embed, **cmd_layer, *cmd_head, *cmd_prefill_kv;
    lws_cmd **step_cmds; /* embed, layers, head */
    uint32_t n_step_cmds;
    lws_mem_table mem; /* the decoder's device buffers, described once */
};

/* The public functions are declared in lws/model.h. */

#endif
