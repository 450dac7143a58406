// The row reduction shared by rmsnorm.comp and rmsnorm_bwd.comp. Include it
// after the local_size layout: it sizes its shared array by the workgroup.
//
// A workgroup holds gl_WorkGroupSize.x / ROW_THREADS rows at once, each row
// handled by ROW_THREADS consecutive invocations (a power of two dividing the
// workgroup; the host picks it from the row width: one invocation per row
// suits a CPU's SIMD lanes, many per row a GPU's wide rows). The sum over a
// row's invocations is a fixed halving tree in shared memory, not subgroup
// operations, so it is the same bits on every run and for any subgroup size.

layout(constant_id = 1) const uint ROW_THREADS = 1;

shared float rmsnorm_partial[gl_WorkGroupSize.x];

// Sum of v over this row's invocations (`threads` of them, a power of two,
// uniform over the workgroup), returned to each of them. Every invocation of
// the workgroup must call it (it has barriers).
float rmsnorm_row_sum_over(float v, uint threads) {
    uint lid = gl_LocalInvocationID.x;
    uint lane = lid % threads;
    rmsnorm_partial[lid] = v;
    barrier();
    for (uint s = threads / 2; s > 0; s >>= 1) {
        if (lane < s) rmsnorm_partial[lid] += rmsnorm_partial[lid + s];
        barrier();
    }
    float total = rmsnorm_partial[lid - lane];
    barrier(); // every invocation has read its total before the array is reused
    return total;
}

// The same over ROW_THREADS invocations.
float rmsnorm_row_sum(float v) {
    return rmsnorm_row_sum_over(v, ROW_THREADS);
}
