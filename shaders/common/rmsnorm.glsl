// The row reduction shared by rmsnorm.comp and rmsnorm_bwd.comp. Include it
// after the local_size layout: it sizes its shared array by the workgroup.
//
// A fixed halving tree in shared memory (not subgroup operations), so the sum
// is the same bits on every run and for any subgroup size. The workgroup size
// must be a power of two (the launchers check it).

shared float rmsnorm_partial[gl_WorkGroupSize.x];

// Sum of v over the workgroup, returned to every invocation.
float rmsnorm_workgroup_sum(float v) {
    uint lid = gl_LocalInvocationID.x;
    rmsnorm_partial[lid] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s) rmsnorm_partial[lid] += rmsnorm_partial[lid + s];
        barrier();
    }
    float total = rmsnorm_partial[0];
    barrier(); // every invocation has read the total before the array is reused
    return total;
}
