#include "ref/embedding.h"

void ref_embedding_fwd(double *out, const double *table, const uint32_t *tokens, size_t n_tokens,
                       size_t dim, size_t vocab) {
    for (size_t t = 0; t < n_tokens; t++)
        for (size_t c = 0; c < dim; c++)
            out[t * dim + c] = tokens[t] < vocab ? table[(size_t)tokens[t] * dim + c] : 0.0;
}

void ref_embedding_bwd(double *dtable, const double *dout, const uint32_t *tokens, size_t n_tokens,
                       size_t dim, size_t vocab) {
    for (size_t t = 0; t < n_tokens; t++)
        if (tokens[t] < vocab)
            for (size_t c = 0; c < dim; c++)
                dtable[(size_t)tokens[t] * dim + c] += dout[t * dim + c];
}
