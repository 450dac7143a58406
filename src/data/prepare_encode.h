/* Tokenizing files on several threads with exactly the tokens of one
 * thread (the engine of `lws prepare`).
 *
 * Each file is read in chunks of about chunk_bytes, cut only where the
 * tokenizer gives the same tokens for the two sides on their own as for the
 * whole (prepare_cut); workers tokenize chunks, each with its own tokenizer
 * (a BPE tokenizer caches pieces and is not thread-safe), and the calling
 * thread receives the chunks' tokens in input order. The chunks depend only
 * on the text and chunk_bytes, and no chunk changes a token, so the tokens
 * are the same whatever jobs and chunk_bytes are, and the same as
 * tokenizing each file in one call. Memory is bounded by a ring of
 * 2 * jobs + 2 chunks, whatever the size of the inputs (a file with no cut
 * at all is one chunk). */
#ifndef LWS_PREPARE_ENCODE_H
#define LWS_PREPARE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "lws/data.h"

/* Where text may be cut. */
typedef enum prepare_cuts {
    PREPARE_CUT_NONE,        /* nowhere: each file is one chunk */
    PREPARE_CUT_ANY,         /* between any two bytes (the bytes tokenizer) */
    PREPARE_CUT_PRETOKENIZER /* where GPT-2's pre-tokenizer ends a piece (lws/bpe.h) */
} prepare_cuts;

/* The cuts that are safe for a tokenizer spec of lws_tokenizer_create. */
prepare_cuts prepare_cuts_for(const char *spec);

/* The last position p in [1, n] where text[0, n) may be cut into text[0, p)
 * and the rest, knowing only text[0, n) (the text may go on after n); 0 when
 * there is none. */
size_t prepare_cut(prepare_cuts cuts, const uint8_t *text, size_t n);

typedef struct prepare_encoder {
    const char *spec;         /* for each further worker's own tokenizer */
    lws_tokenizer *tokenizer; /* made from spec; the first worker uses it */
    unsigned jobs;            /* worker threads, >= 1 */
    size_t chunk_bytes;       /* >= 1 */
    /* Called on the calling thread for each chunk in input order: its file,
     * its tokens and the bytes of text they came from. A failure stops the
     * work and is returned. */
    lws_status (*emit)(void *user, size_t file, const uint32_t *tokens, size_t count,
                       size_t text_bytes);
    void *user;
} prepare_encoder;

/* Tokenizes paths[0..n_files) in order. A failure names the file. */
lws_status prepare_encode_files(const prepare_encoder *e, const char *const *paths, size_t n_files);

#endif
