/* fp64 CPU reference of rotary position embedding (rotate-half pairing). */
#ifndef LWS_REF_ROPE_H
#define LWS_REF_ROPE_H
#include <stddef.h>

/* x, y (n_tokens, heads, head_dim); token t has position t % seq_len; element j
 * rotates with j + head_dim/2 by pos * theta^(-2j/head_dim) (by minus that
 * angle when inverse). y may alias x. */
void ref_rope(double *y, const double *x, size_t n_tokens, size_t seq_len, size_t heads,
              size_t head_dim, double theta, int inverse);

#endif
