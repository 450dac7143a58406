/* fp64 CPU reference of the matmul kernels, in the three layouts of
 * lws_mm_layout (row-major operands, shapes in elements). */
#ifndef LWS_REF_MATMUL_H
#define LWS_REF_MATMUL_H
#include <stdint.h>

#include "ops/ops.h"

/* C[M,N] (+)= op(A) . op(B):
 *   NT: A[M,K], B[N,K]    NN: A[M,K], B[K,N]    TN: A[K,M], B[K,N] */
void ref_matmul(lws_mm_layout layout, double *c, const double *a, const double *b, uint32_t m,
                uint32_t n, uint32_t k, int accumulate);
/* The same over `batch` problems whose operands start every stride_* elements. */
void ref_matmul_batched(lws_mm_layout layout, double *c, const double *a, const double *b,
                        uint32_t m, uint32_t n, uint32_t k, int accumulate, uint32_t batch,
                        uint64_t stride_c, uint64_t stride_a, uint64_t stride_b);

#endif
