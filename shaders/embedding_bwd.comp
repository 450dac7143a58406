#version 460
#extension GL_GOOGLE_include_directive : require
// Token embedding backward, a deterministic scatter-add without atomics:
//   dtable[v, :] += sum over t with tokens[t] == v of dout[t, :]
// tokens (n_tokens) uint32, dout (n_tokens, dim), dtable (vocab, dim).
//
// Workgroup (x, y) owns ROWS vocabulary rows v0 = x * ROWS .. and WG columns
// c0 = y * WG ..; invocation i owns column c0 + i. Its partial sums live in
// shared memory, acc[row][i], so many tokens of one row (a frequent word) add
// at shared-memory speed. The workgroup walks the tokens in order, in chunks of
// WG * PER_THREAD:
//   1. each invocation reads PER_THREAD consecutive tokens and counts those in
//      its rows;
//   2. a prefix sum over the counts gives each match its place, so the
//      chunk's matches are listed in token order (a Hillis-Steele scan in
//      shared memory; 16 tokens per invocation keep its barriers few);
//   3. every invocation adds dout[t, c] of the listed tokens, in that order,
//      into acc[row][i] (only it touches that element);
// and at the end adds acc into dtable for the rows that some token hit.
// Each element of dtable therefore receives its tokens' sum in token order,
// added once: bit-identical between runs, for any subgroup size. Tokens >=
// vocab fall in no workgroup's rows and are ignored.
//
// Cost: every workgroup reads all n_tokens ids (cheap, cached), the dout rows
// of its matches, and writes only the rows that were hit. dtable is fp32 (a
// gradient); dout in fp32, or bf16 / fp16 storage.
// variants: embedding_bwd embedding_bwd_bf16=ELEM_BF16 embedding_bwd_f16=ELEM_F16
#include "lws.glsl"

#define PER_THREAD 16

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 64;

const uint WG = gl_WorkGroupSize.x;

layout(push_constant, scalar) uniform Push {
    Floats dtable;
    Elems dout;
    Uints tokens;
    uint n_tokens;
    uint dim;
    uint vocab;
} pc;

shared float acc[ROWS * WG];             // (ROWS, WG) partial sums
shared uint counts[WG];                  // matches per invocation, then their inclusive prefix
shared uint list_token[WG * PER_THREAD]; // this chunk's matches in token order: position
shared uint list_row[WG * PER_THREAD];   // and row - v0
shared uint hit[(ROWS + 31) / 32];       // rows that some token hit (bit mask)

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint v0 = gl_WorkGroupID.x * ROWS;
    uint rows = min(ROWS, pc.vocab - v0); // rows of this workgroup inside the table
    uint c = gl_WorkGroupID.y * WG + lid;
    bool has_column = c < pc.dim;

    for (uint r = 0; r < ROWS; r++) acc[r * WG + lid] = 0.0;
    for (uint k = lid; k < (ROWS + 31) / 32; k += WG) hit[k] = 0u;
    barrier();

    for (uint chunk = 0; chunk < pc.n_tokens; chunk += WG * PER_THREAD) {
        // 1. Classify this invocation's tokens. r = token - v0 wraps to a large
        // number below v0, and is >= rows at or beyond the table's end.
        uint first = chunk + lid * PER_THREAD;
        uint row_of[PER_THREAD];
        uint count = 0;
        for (uint k = 0; k < PER_THREAD; k++) {
            uint t = first + k;
            uint r = t < pc.n_tokens ? pc.tokens.v[t] - v0 : 0xFFFFFFFFu;
            row_of[k] = r;
            if (r < rows) count++;
        }
        // 2. Inclusive prefix sum of the counts (Hillis-Steele, fixed order).
        counts[lid] = count;
        barrier();
        for (uint offset = 1; offset < WG; offset <<= 1) {
            uint add = lid >= offset ? counts[lid - offset] : 0u;
            barrier();
            counts[lid] += add;
            barrier();
        }
        uint total = counts[WG - 1];
        uint slot = counts[lid] - count;
        for (uint k = 0; k < PER_THREAD; k++) {
            uint r = row_of[k];
            if (r < rows) {
                list_token[slot] = first + k;
                list_row[slot] = r;
                slot++;
                atomicOr(hit[r / 32], 1u << (r % 32)); // integer: order does not matter
            }
        }
        barrier();
        // 3. Add the matched rows of dout, in token order.
        if (has_column)
            for (uint m = 0; m < total; m++)
                acc[list_row[m] * WG + lid] += ELEM_LOAD(pc.dout, list_token[m] * pc.dim + c);
        barrier(); // the list and counts are rewritten by the next chunk
    }

    if (!has_column) return;
    for (uint r = 0; r < rows; r++)
        if ((hit[r / 32] & (1u << (r % 32))) != 0)
            pc.dtable.v[(v0 + r) * pc.dim + c] += acc[r * WG + lid];
}
