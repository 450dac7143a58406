#include "ref/matmul.h"

#include <stddef.h>

void ref_matmul(lws_mm_layout layout, double *c, const double *a, const double *b, uint32_t m,
                uint32_t n, uint32_t k, int accumulate) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++) {
                double av = layout == LWS_MM_TN ? a[p * m + i] : a[i * k + p];
                double bv = layout == LWS_MM_NT ? b[j * k + p] : b[p * n + j];
                s += av * bv;
            }
            c[i * n + j] = accumulate ? c[i * n + j] + s : s;
        }
}

void ref_matmul_batched(lws_mm_layout layout, double *c, const double *a, const double *b,
                        uint32_t m, uint32_t n, uint32_t k, int accumulate, uint32_t batch,
                        uint64_t stride_c, uint64_t stride_a, uint64_t stride_b) {
    for (uint64_t z = 0; z < batch; z++)
        ref_matmul(layout, c + z * stride_c, a + z * stride_a, b + z * stride_b, m, n, k,
                   accumulate);
}
