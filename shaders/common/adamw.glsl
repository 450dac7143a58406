// Device structures of the optimizer, shared by grad_norm.comp and adamw.comp.
// Their layouts mirror src/ops/ops.h byte for byte (every member is naturally
// aligned, so scalar and std430 agree): lws_optim_hyper (16 floats) and
// lws_optim_entry (48 bytes).

// Hyperparameters the host writes before each step; grad_norm.comp writes
// grad_norm and clip_scale, which adamw.comp then reads.
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer OptimHyper {
    float lr;
    float beta1;
    float beta2;
    float eps;
    float weight_decay;
    float bias_correction1; // 1 - beta1^step
    float bias_correction2; // 1 - beta2^step
    float max_grad_norm;    // <= 0: no clipping
    float grad_norm;
    float clip_scale;
    float loss_scale;       // the gradients are scaled by it (fp16 training); 0 reads as 1
    float nonfinite;        // parameters NaN or infinite after the update (nonfinite.comp)
    float pad[4];
};

// The loss scale the gradients carry (0, in a table that never set it, is 1).
float optim_loss_scale(OptimHyper h) { return h.loss_scale > 0.0 ? h.loss_scale : 1.0; }

// A gradient norm that is not finite (an overflow of fp16 gradients, or any
// NaN): the step is skipped. `<=` is false for NaN as for infinity.
bool optim_norm_finite(float norm) { return norm <= 3.402823466e38; }

// One tensor: its four buffers, its size, and where its chunks start in the
// running count of chunks over the whole table.
struct OptimEntry {
    uint64_t param;
    uint64_t grad;
    uint64_t m;
    uint64_t v;
    uint n;
    uint decay;
    uint first_chunk;
    uint pad;
};
layout(buffer_reference, scalar, buffer_reference_align = 8) buffer OptimTable {
    OptimEntry e[];
};

// The row whose chunks [first_chunk, first_chunk + ceil(n / chunk)) contain
// `chunk`: the last row with first_chunk <= chunk. A tensor of zero elements
// shares its first_chunk with the row after it, and taking the last such row
// steps over it. Row 0 has first_chunk 0, so the answer is always in range.
uint optim_find_entry(OptimTable table, uint n_tensors, uint chunk) {
    uint lo = 0, hi = n_tensors;
    while (hi - lo > 1) {
        uint mid = (lo + hi) / 2;
        if (table.e[mid].first_chunk <= chunk) lo = mid;
        else hi = mid;
    }
    return lo;
}
