/* fp64 CPU reference of the SwiGLU gate. */
#ifndef LWS_REF_SWIGLU_H
#define LWS_REF_SWIGLU_H
#include <stddef.h>

/* h = silu(a) * b, silu(a) = a * sigmoid(a). */
void ref_swiglu_fwd(double *h, const double *a, const double *b, size_t n);
/* da = dh * b * silu'(a), db = dh * silu(a). */
void ref_swiglu_bwd(double *da, double *db, const double *dh, const double *a, const double *b,
                    size_t n);

#endif
