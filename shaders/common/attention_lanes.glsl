// The GPU form of the attention kernels (attention_fwd_lanes.comp,
// attention_bwd_dq_lanes.comp, attention_bwd_dkdv_lanes.comp): several lanes
// per row, as in FlashAttention-2 without matrix units.
//
// A workgroup of WG invocations is WG / LANES row groups of LANES lanes. Row
// group g owns rows g, g + GROUPS, ... of its block (OWNED of them: query
// rows in the forward and dq kernels, key rows in dk/dv); lane t of a group
// takes the rows of the other block c = t, t + LANES, ... for the dot
// products (each over the whole head_dim), and columns (vec4s) j = t,
// t + LANES, ... of its rows' accumulators, which stay in registers. The
// probabilities (or dS) cross from the first split to the second through a
// shared tile. Reductions across the lanes of a row go through shared memory
// in a fixed order, so results do not depend on the subgroup size.
// Included after attention.glsl (or attention_bwd.glsl).

layout(constant_id = 4) const uint LANES = 4; // invocations per row (a power of two)

const uint GROUPS = WG / LANES; // row groups per workgroup
// vec4 columns of an accumulator row per lane (head_dim up to HEAD_DIM_MAX)
const uint ACC = (HEAD_DIM_MAX / 4 + LANES - 1) / LANES;
