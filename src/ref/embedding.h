/* fp64 CPU reference of the token embedding gather and its scatter-add. */
#ifndef LWS_REF_EMBEDDING_H
#define LWS_REF_EMBEDDING_H
#include <stddef.h>
#include <stdint.h>

/* out[t, :] = table[tokens[t], :]; table (vocab, dim), out (n_tokens, dim).
 * A token >= vocab gives a zero row (the kernel's rule). */
void ref_embedding_fwd(double *out, const double *table, const uint32_t *tokens, size_t n_tokens,
                       size_t dim, size_t vocab);
/* dtable[v, :] += sum over t with tokens[t] == v of dout[t, :]; tokens >= vocab
 * are ignored. */
void ref_embedding_bwd(double *dtable, const double *dout, const uint32_t *tokens, size_t n_tokens,
                       size_t dim, size_t vocab);

#endif
