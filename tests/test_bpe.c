// lws-test: plain timeout=60
/* Byte-level BPE: the pre-tokenizer on cases worked out from GPT-2's pattern
 * (and checked against JavaScript's), UTF-8 decoding, training against a
 * plain O(n^2) re-implementation on seeded random corpora, encoding against
 * GPT-2's rescanning merge loop, round trips of arbitrary bytes, save/load
 * and determinism, every refusal, and the tokenizer name in token files. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "lws/bpe.h"
#include "lws/data.h"

static const char *dir; /* the scratch directory (test_dir) */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = test_malloc((size_t)n + 1);
    t[fread(t, 1, (size_t)n, f)] = 0;
    fclose(f);
    return t;
}

/* ---- pre-tokenizer ------------------------------------------------------- */

/* Pieces joined by '|' (no case contains '|'). */
static void check_split(const char *text, const char *want) {
    size_t n = strlen(text);
    char got[256] = "";
    for (size_t pos = 0; pos < n;) {
        size_t end = lws_pretokenize_next((const uint8_t *)text, n, pos);
        if (end <= pos || end > n) {
            CHECK(0, "split \"%s\": piece at %zu ends at %zu", text, pos, end);
            return;
        }
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", pos ? "|" : "",
                 (int)(end - pos), text + pos);
        pos = end;
    }
    CHECK(strcmp(got, want) == 0, "split \"%s\": got \"%s\", want \"%s\"", text, got, want);
}

static void test_pretokenizer(void) {
    check_split("Hello world", "Hello| world");
    check_split("it's", "it|'s");
    check_split("IT'S", "IT|'|S"); /* contractions are lowercase only */
    check_split("we'll've", "we|'ll|'ve");
    check_split("she'd've'", "she|'d|'ve|'");
    check_split(" 's", " '|s"); /* no contraction after the optional space */
    check_split("''s", "''|s");
    check_split("a  b", "a| | b");
    check_split("a   \n  b", "a|   \n | b");
    check_split("a\n\nb", "a|\n|\n|b");
    check_split("a \tb", "a| |\t|b");
    check_split("x  ", "x|  ");
    check_split("\r\n\r\nx", "\r\n\r|\n|x");
    check_split("3.14", "3|.|14");
    check_split(" 2024!", " 2024|!");
    check_split("abc123def", "abc|123|def");
    check_split("\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9");               /* é: a letter */
    check_split("e\xcc\x81", "e|\xcc\x81");                              /* combining mark: other */
    check_split("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"); /* CJK letters */
    check_split(" ?!...", " ?!...");
    check_split("\xf0\x9f\x8e\x89\xf0\x9f\x8e\x89 ok", "\xf0\x9f\x8e\x89\xf0\x9f\x8e\x89| ok");
    check_split("a\302\240b", "a|\302\240|b"); /* NBSP is space, but not ' ' */
    check_split("a\302\205b", "a|\302\205|b"); /* U+0085: not in JS's \s */
    check_split("\343\200\200\343\200\200a", "\343\200\200|\343\200\200|a");     /* U+3000 */
    check_split("\xc2\xbd\xc2\xb2\xe2\x85\xab", "\xc2\xbd\xc2\xb2\xe2\x85\xab"); /* No, No, Nl */
    check_split(" ", " ");
    /* Invalid UTF-8: each byte is one "other" character. */
    check_split("a\377b", "a|\377|b");
    check_split(" \xff\xfe!", " \xff\xfe!");
    check_split("x\xe2\x82", "x|\xe2\x82");
    check_split("\xed\xa0\x80z", "\xed\xa0\x80|z"); /* an encoded surrogate */

    static const struct {
        uint32_t cp;
        lws_char_class cls;
    } points[] = {
        {'A', LWS_CHAR_LETTER},    {'z', LWS_CHAR_LETTER},     {'5', LWS_CHAR_NUMBER},
        {' ', LWS_CHAR_SPACE},     {'_', LWS_CHAR_OTHER},      {0x00AA, LWS_CHAR_LETTER},
        {0x0301, LWS_CHAR_OTHER},  {0x0663, LWS_CHAR_NUMBER},  {0x2167, LWS_CHAR_NUMBER},
        {0x3000, LWS_CHAR_SPACE},  {0xFEFF, LWS_CHAR_SPACE},   {0x0085, LWS_CHAR_OTHER},
        {0x1F389, LWS_CHAR_OTHER}, {0x30000, LWS_CHAR_LETTER}, {0x10FFFF, LWS_CHAR_OTHER},
        {0x4E00, LWS_CHAR_LETTER}, {0x200B, LWS_CHAR_OTHER},   {0x2029, LWS_CHAR_SPACE},
    };
    for (size_t i = 0; i < sizeof points / sizeof *points; i++)
        CHECK(lws_char_class_of(points[i].cp) == points[i].cls, "class of U+%04X: %d, want %d",
              points[i].cp, lws_char_class_of(points[i].cp), points[i].cls);

    /* Ill-formed sequences (overlong, surrogate, > U+10FFFF, truncated,
     * stray continuation) are one byte of class other. */
    static const char *const invalid[] = {
        "\xc0\x80",         "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80", "\xf0\x80\x80\x80",
        "\xf4\x90\x80\x80", "\xf5",     "\xe2\x82",     "\x80",         "\xbf"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        lws_char_class cls = LWS_CHAR_LETTER;
        size_t len = lws_utf8_char((const uint8_t *)invalid[i], strlen(invalid[i]), &cls);
        CHECK(len == 1 && cls == LWS_CHAR_OTHER, "invalid UTF-8 %zu: length %zu, class %d", i, len,
              cls);
    }
    lws_char_class cls;
    CHECK(lws_utf8_char((const uint8_t *)"\xf4\x8f\xbf\xbf", 4, &cls) == 4, "U+10FFFF is 4 bytes");
    CHECK(lws_utf8_char((const uint8_t *)"\xef\xbf\xbd", 3, &cls) == 3, "U+FFFD is 3 bytes");
}

/* ---- a plain BPE trainer and encoder: the definitions, slowly ---------------- */

#define REF_MAX_WORDS 2048
#define REF_MAX_LEN   256

typedef struct ref_word {
    uint32_t sym[REF_MAX_LEN];
    uint32_t len;
    uint64_t count;
} ref_word;

typedef struct ref_vocab {
    uint8_t tok[4096][REF_MAX_LEN];
    uint32_t tok_len[4096];
    uint32_t n_tokens;
    uint32_t merge[4096][3];
    uint32_t n_merges;
} ref_vocab;

/* Words (distinct pieces with counts) of text. */
static ref_word *ref_words(const uint8_t *text, size_t n, size_t *n_words) {
    ref_word *w = test_malloc(REF_MAX_WORDS * sizeof *w);
    size_t count = 0;
    for (size_t pos = 0; pos < n;) {
        size_t end = lws_pretokenize_next(text, n, pos), i;
        for (i = 0; i < count; i++)
            if (w[i].len == end - pos) {
                uint32_t k = 0;
                while (k < w[i].len && w[i].sym[k] == text[pos + k]) k++;
                if (k == w[i].len) break;
            }
        if (i == count) {
            if (count == REF_MAX_WORDS || end - pos > REF_MAX_LEN) {
                fprintf(stderr, "ref_words: corpus too varied for the plain trainer\n");
                exit(1);
            }
            w[count].len = (uint32_t)(end - pos), w[count].count = 0;
            for (uint32_t k = 0; k < w[count].len; k++) w[count].sym[k] = text[pos + k];
            count++;
        }
        w[i].count++;
        pos = end;
    }
    *n_words = count;
    return w;
}

/* Each step: count every adjacent pair over all words, take the most frequent
 * (ties: lowest (left, right)), make its token, rewrite every word left to
 * right. Also checks what the fast trainer relies on: a new token's bytes
 * are never already a token, and a merged pair never occurs again. */
static int ref_train(ref_word *w, size_t n_words, uint32_t n_ordinary, ref_vocab *v) {
    int violations = 0;
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) v->tok[b][0] = (uint8_t)b, v->tok_len[b] = 1;
    v->n_tokens = 256;
    static uint32_t left[1 << 16], right[1 << 16];
    static uint64_t count[1 << 16];
    while (v->n_tokens < n_ordinary) {
        size_t n_pairs = 0;
        for (size_t i = 0; i < n_words; i++)
            for (uint32_t k = 0; k + 1 < w[i].len; k++) {
                size_t p = 0;
                while (p < n_pairs && !(left[p] == w[i].sym[k] && right[p] == w[i].sym[k + 1])) p++;
                if (p == n_pairs)
                    left[p] = w[i].sym[k], right[p] = w[i].sym[k + 1], count[p] = 0, n_pairs++;
                count[p] += w[i].count;
            }
        if (!n_pairs) break;
        size_t best = 0;
        for (size_t p = 1; p < n_pairs; p++)
            if (count[p] > count[best] ||
                (count[p] == count[best] &&
                 (left[p] < left[best] || (left[p] == left[best] && right[p] < right[best]))))
                best = p;
        uint32_t l = left[best], r = right[best], merged = v->n_tokens;
        uint32_t len = v->tok_len[l] + v->tok_len[r];
        if (len > REF_MAX_LEN) break; /* the corpora here never get there */
        memcpy(v->tok[merged], v->tok[l], v->tok_len[l]);
        memcpy(v->tok[merged] + v->tok_len[l], v->tok[r], v->tok_len[r]);
        v->tok_len[merged] = len;
        for (uint32_t t = 0; t < v->n_tokens; t++)
            violations += v->tok_len[t] == len && memcmp(v->tok[t], v->tok[merged], len) == 0;
        for (uint32_t k = 0; k < v->n_merges; k++)
            violations += v->merge[k][0] == l && v->merge[k][1] == r;
        v->n_tokens++;
        v->merge[v->n_merges][0] = l, v->merge[v->n_merges][1] = r;
        v->merge[v->n_merges++][2] = merged;
        for (size_t i = 0; i < n_words; i++) {
            uint32_t out = 0;
            for (uint32_t k = 0; k < w[i].len;) {
                if (k + 1 < w[i].len && w[i].sym[k] == l && w[i].sym[k + 1] == r)
                    w[i].sym[out++] = merged, k += 2;
                else
                    w[i].sym[out++] = w[i].sym[k++];
            }
            w[i].len = out;
        }
    }
    return violations;
}

/* GPT-2's bpe(): find the lowest-ranked adjacent pair, merge all its
 * occurrences left to right in one scan of the old word, rescan. A pair
 * listed twice keeps its last rank. */
typedef struct ref_rank {
    uint32_t left, right, rank, result;
} ref_rank;

static int ref_rank_order(const void *a, const void *b) {
    const ref_rank *x = a, *y = b;
    if (x->left != y->left) return x->left < y->left ? -1 : 1;
    if (x->right != y->right) return x->right < y->right ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

typedef struct ref_encoder {
    ref_rank *ranks;
    size_t n;
    uint32_t byte_token[256];
} ref_encoder;

static void ref_encoder_init(ref_encoder *e, const lws_bpe *b) {
    e->n = lws_bpe_merge_count(b);
    e->ranks = test_malloc((e->n + 1) * sizeof *e->ranks);
    for (uint32_t k = 0; k < e->n; k++) {
        e->ranks[k].rank = k;
        lws_bpe_merge(b, k, &e->ranks[k].left, &e->ranks[k].right, &e->ranks[k].result);
    }
    qsort(e->ranks, e->n, sizeof *e->ranks, ref_rank_order);
    for (uint32_t id = lws_bpe_vocab_size(b) - lws_bpe_special_count(b); id-- > 0;) {
        uint32_t len;
        const uint8_t *t = lws_bpe_token(b, id, &len);
        if (len == 1) e->byte_token[t[0]] = id;
    }
}

static const ref_rank *ref_find(const ref_encoder *e, uint32_t left, uint32_t right) {
    const ref_rank *found = NULL;
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        ref_rank key = {left, right, 0, 0};
        if (ref_rank_order(&e->ranks[mid], &key) < 0 &&
            !(e->ranks[mid].left == left && e->ranks[mid].right == right))
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < e->n && e->ranks[lo].left == left && e->ranks[lo].right == right; lo++)
        found = &e->ranks[lo]; /* the last rank of a repeated pair */
    return found;
}

static size_t ref_encode_piece(const ref_encoder *e, const uint8_t *p, size_t n, uint32_t *out) {
    uint32_t *word = test_malloc(n * sizeof *word), len = (uint32_t)n;
    for (size_t i = 0; i < n; i++) word[i] = e->byte_token[p[i]];
    for (;;) {
        const ref_rank *best = NULL;
        for (uint32_t i = 0; i + 1 < len; i++) {
            const ref_rank *r = ref_find(e, word[i], word[i + 1]);
            if (r && (!best || r->rank < best->rank)) best = r;
        }
        if (!best) break;
        uint32_t o = 0;
        for (uint32_t i = 0; i < len;) {
            if (i + 1 < len && word[i] == best->left && word[i + 1] == best->right)
                word[o++] = best->result, i += 2;
            else
                word[o++] = word[i++];
        }
        len = o;
    }
    memcpy(out, word, len * sizeof *out);
    free(word);
    return len;
}

/* ---- corpora ---------------------------------------------------------------- */

/* Words from a small alphabet (so pairs repeat and ties happen), spaces,
 * digits, punctuation, some non-ASCII letters, and a few raw bytes. */
static uint8_t *random_corpus(test_rng *rng, size_t n, int alphabet) {
    static const char *const extra[] = {" ",
                                        " ",
                                        "  ",
                                        "\n",
                                        ", ",
                                        ". ",
                                        "'s",
                                        "42",
                                        "\xc3\xa9",
                                        "\xe6\x97\xa5",
                                        "\xf0\x9f\x8e\x89",
                                        "\xff",
                                        "!?"};
    uint8_t *t = test_malloc(n + 8);
    size_t len = 0;
    while (len < n) {
        if (test_rng_next(rng) % 3 == 0) {
            const char *x = extra[test_rng_next(rng) % (sizeof extra / sizeof *extra)];
            for (size_t i = 0; x[i] && len < n; i++) t[len++] = (uint8_t)x[i];
        } else {
            size_t wl = 1 + test_rng_next(rng) % 6;
            for (size_t i = 0; i < wl && len < n; i++)
                t[len++] = (uint8_t)('a' + test_rng_next(rng) % (uint64_t)alphabet);
        }
    }
    return t;
}

static lws_bpe *train_text(const uint8_t *text, size_t n, uint32_t vocab,
                           const char *const *specials, size_t n_specials) {
    lws_bpe_trainer *t = NULL;
    lws_bpe *b = NULL;
    CHECK_OK(lws_bpe_trainer_create(&t));
    CHECK_OK(lws_bpe_trainer_add(t, text, n));
    CHECK_OK(lws_bpe_train(t, vocab, specials, n_specials, &b));
    lws_bpe_trainer_free(t);
    if (!b) {
        fprintf(stderr, "training failed; stopping\n");
        exit(1);
    }
    return b;
}

/* ---- training --------------------------------------------------------------- */

static void test_train_small(void) {
    /* Words "ab" x1, " ab" x2, " cd" x1. Pair counts: (a,b) 3, (' ',a) 2,
     * (' ',c) 1, (c,d) 1: merge ab=256, then ' '+ab=257; the tie at 1 goes to
     * (' ',c) (lower ids) = 258, then (258,d) = 259; then no pairs are left
     * and training stops short of 300, before the special tokens. */
    const char *text = "ab ab ab cd";
    const char *const specials[] = {"<|endoftext|>"};
    lws_bpe *b = train_text((const uint8_t *)text, strlen(text), 300, specials, 1);
    static const uint32_t want[4][3] = {
        {'a', 'b', 256}, {' ', 256, 257}, {' ', 'c', 258}, {258, 'd', 259}};
    CHECK(lws_bpe_merge_count(b) == 4 && lws_bpe_vocab_size(b) == 261 &&
              lws_bpe_special_count(b) == 1,
          "small corpus: %u merges, %u tokens", lws_bpe_merge_count(b), lws_bpe_vocab_size(b));
    for (uint32_t k = 0; k < 4 && k < lws_bpe_merge_count(b); k++) {
        uint32_t l, r, m;
        lws_bpe_merge(b, k, &l, &r, &m);
        CHECK(l == want[k][0] && r == want[k][1] && m == want[k][2],
              "merge %u: (%u, %u) -> %u, want (%u, %u) -> %u", k, l, r, m, want[k][0], want[k][1],
              want[k][2]);
    }
    uint32_t len;
    const uint8_t *t = lws_bpe_token(b, 260, &len);
    CHECK(len == 13 && memcmp(t, "<|endoftext|>", 13) == 0, "the special token is id 260");
    t = lws_bpe_token(b, 259, &len);
    CHECK(len == 3 && memcmp(t, " cd", 3) == 0, "token 259 is ' cd'");
    /* Specials are never produced from text, even text that spells one. */
    uint32_t *ids = NULL;
    size_t count = 0, cap = 0;
    CHECK_OK(lws_bpe_encode(b, (const uint8_t *)"<|endoftext|> ab", 16, &ids, &count, &cap));
    int has_special = 0;
    for (size_t i = 0; i < count; i++) has_special |= ids[i] == 260;
    CHECK(count == 14 && !has_special && ids[13] == 257,
          "text spelling a special token: %zu tokens", count);
    free(ids);
    CHECK(strncmp(lws_bpe_name(b), "bpe:", 4) == 0 && strlen(lws_bpe_name(b)) == 20 &&
              strcmp(lws_bpe_name(b) + 4, lws_bpe_hash(b)) == 0,
          "name %s, hash %s", lws_bpe_name(b), lws_bpe_hash(b));
    lws_bpe_free(b);
}

static void test_train_vs_reference(test_rng *rng) {
    for (int trial = 0; trial < 8; trial++) {
        int alphabet = 2 + trial % 4;
        size_t n = 2000 + (size_t)(test_rng_next(rng) % 3000);
        uint8_t *text = random_corpus(rng, n, alphabet);
        /* Some trials ask for more tokens than the text allows. */
        uint32_t vocab = trial % 3 == 2 ? 2000 : 256 + 40 + (uint32_t)(test_rng_next(rng) % 200);
        lws_bpe *b = train_text(text, n, vocab, NULL, 0);
        size_t n_words;
        ref_word *w = ref_words(text, n, &n_words);
        static ref_vocab v;
        int violations = ref_train(w, n_words, vocab, &v);
        CHECK(violations == 0, "trial %d: %d merges spell an existing token or come back", trial,
              violations);
        int same = lws_bpe_vocab_size(b) == v.n_tokens && lws_bpe_merge_count(b) == v.n_merges;
        for (uint32_t id = 0; same && id < v.n_tokens; id++) {
            uint32_t len;
            const uint8_t *t = lws_bpe_token(b, id, &len);
            same = len == v.tok_len[id] && memcmp(t, v.tok[id], len) == 0;
        }
        for (uint32_t k = 0; same && k < v.n_merges; k++) {
            uint32_t l, r, m;
            lws_bpe_merge(b, k, &l, &r, &m);
            same = l == v.merge[k][0] && r == v.merge[k][1] && m == v.merge[k][2];
        }
        CHECK(same,
              "trial %d (alphabet %d, %zu bytes, vocab %u): %u tokens / %u merges, the "
              "plain trainer %u / %u",
              trial, alphabet, n, vocab, lws_bpe_vocab_size(b), lws_bpe_merge_count(b), v.n_tokens,
              v.n_merges);
        free(w), free(text);
        lws_bpe_free(b);
    }
    printf("training: 8 corpora match the plain trainer\n");
}

/* ---- encoding ------------------------------------------------------------- */

static void test_encode_vs_reference(test_rng *rng) {
    size_t n = 40000;
    uint8_t *corpus = random_corpus(rng, n, 4);
    lws_bpe *b = train_text(corpus, n, 700, NULL, 0);
    ref_encoder e;
    ref_encoder_init(&e, b);
    /* Fresh text from the same distribution, a long word (more than the
     * cached length, and through many merges), and random bytes. */
    size_t m = 30000;
    uint8_t *text = random_corpus(rng, m + 6000, 4);
    for (size_t i = m; i < m + 3000; i++) text[i] = (uint8_t)('a' + test_rng_next(rng) % 3);
    for (size_t i = m + 3000; i < m + 6000; i++) text[i] = (uint8_t)test_rng_next(rng);
    m += 6000;
    uint32_t *got = NULL, *want = test_malloc(m * sizeof *want);
    size_t count = 0, cap = 0, n_want = 0;
    CHECK_OK(lws_bpe_encode(b, text, m, &got, &count, &cap));
    for (size_t pos = 0; pos < m;) {
        size_t end = lws_pretokenize_next(text, m, pos);
        n_want += ref_encode_piece(&e, text + pos, end - pos, want + n_want);
        pos = end;
    }
    size_t first = 0;
    while (first < count && first < n_want && got[first] == want[first]) first++;
    CHECK(count == n_want && first == count,
          "encode: %zu tokens, GPT-2's loop %zu; first difference at token %zu", count, n_want,
          first);
    /* Encoding twice (the second time from the cache) gives the same ids. */
    uint32_t *again = NULL;
    size_t count2 = 0, cap2 = 0;
    CHECK_OK(lws_bpe_encode(b, text, m, &again, &count2, &cap2));
    CHECK(count2 == count && memcmp(again, got, count * sizeof *got) == 0, "cached encode differs");
    printf("encoding: %zu bytes -> %zu tokens, same as GPT-2's merge loop\n", m, count);
    free(again), free(got), free(want), free(text), free(corpus), free(e.ranks);
    lws_bpe_free(b);
}

static void test_round_trip(test_rng *rng) {
    size_t n = 30000;
    uint8_t *corpus = random_corpus(rng, n, 5);
    const char *const specials[] = {"<|endoftext|>", "<|pad|>"};
    lws_bpe *b = train_text(corpus, n, 600, specials, 2);
    for (int trial = 0; trial < 4; trial++) {
        size_t m = 1 + (size_t)(test_rng_next(rng) % 20000);
        uint8_t *text = trial % 2 ? random_corpus(rng, m, 5) : test_malloc(m);
        if (trial % 2 == 0) /* arbitrary bytes: mostly invalid UTF-8 */
            for (size_t i = 0; i < m; i++) text[i] = (uint8_t)test_rng_next(rng);
        uint32_t *ids = NULL;
        uint8_t *back = NULL;
        size_t count = 0, cap = 0, len = 0, bcap = 0;
        CHECK_OK(lws_bpe_encode(b, text, m, &ids, &count, &cap));
        int in_range = 1;
        for (size_t i = 0; i < count; i++) in_range &= ids[i] < lws_bpe_vocab_size(b) - 2;
        CHECK_OK(lws_bpe_decode(b, ids, count, &back, &len, &bcap));
        CHECK(in_range && len == m && memcmp(back, text, m) == 0,
              "round trip %d of %zu bytes: %zu bytes back", trial, m, len);
        free(ids), free(back), free(text);
    }
    uint32_t bad[2] = {5, lws_bpe_vocab_size(b)};
    uint8_t *back = NULL;
    size_t len = 0, bcap = 0;
    char want[64];
    snprintf(want, sizeof want, "token 1: id %u is not below", lws_bpe_vocab_size(b));
    CHECK(lws_bpe_decode(b, bad, 2, &back, &len, &bcap) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), want),
          "decode of an id out of range: %s", lws_error_message());
    uint32_t special = lws_bpe_vocab_size(b) - 1;
    len = 0;
    CHECK_OK(lws_bpe_decode(b, &special, 1, &back, &len, &bcap));
    CHECK(len == 7 && memcmp(back, "<|pad|>", 7) == 0, "a special token decodes to its text");
    free(back), free(corpus);
    lws_bpe_free(b);
}

/* ---- files and determinism ----------------------------------------------------- */

static void test_save_load(test_rng *rng) {
    size_t n = 20000;
    uint8_t *text = random_corpus(rng, n, 3);
    const char *const specials[] = {"<|endoftext|>", "quote \" back\\slash \x01"};
    lws_bpe *a = train_text(text, n, 500, specials, 2);
    lws_bpe *b = train_text(text, n, 500, specials, 2);
    CHECK(strcmp(lws_bpe_hash(a), lws_bpe_hash(b)) == 0, "training twice: hashes differ");
    CHECK_OK(lws_bpe_save(a, test_path("a.json")));
    CHECK_OK(lws_bpe_save(b, test_path("b.json")));
    char *fa = read_text(test_path("a.json")), *fb = read_text(test_path("b.json"));
    CHECK(fa && fb && strcmp(fa, fb) == 0, "training twice: files differ");
    lws_bpe *c = NULL;
    CHECK_OK(lws_bpe_load(test_path("a.json"), &c));
    if (c) {
        int same = lws_bpe_vocab_size(c) == lws_bpe_vocab_size(a) &&
                   lws_bpe_merge_count(c) == lws_bpe_merge_count(a) &&
                   lws_bpe_special_count(c) == 2 && strcmp(lws_bpe_name(c), lws_bpe_name(a)) == 0;
        for (uint32_t k = 0; same && k < lws_bpe_merge_count(a); k++) {
            uint32_t x[3], y[3];
            lws_bpe_merge(a, k, &x[0], &x[1], &x[2]);
            lws_bpe_merge(c, k, &y[0], &y[1], &y[2]);
            same = memcmp(x, y, sizeof x) == 0;
        }
        CHECK(same, "saved and loaded vocabulary differs");
        CHECK_OK(lws_bpe_save(c, test_path("c.json")));
        char *fc = read_text(test_path("c.json"));
        CHECK(fc && strcmp(fa, fc) == 0, "load then save changes the file");
        free(fc);
        lws_bpe_free(c);
    }
    /* The same bytes in other files give the same vocabulary: only pieces
     * count, and a file boundary ends a piece ("ab"+"c" is not "abc"). */
    lws_bpe_trainer *t;
    CHECK_OK(lws_bpe_trainer_create(&t));
    CHECK_OK(lws_bpe_trainer_add(t, text, n / 2));
    CHECK_OK(lws_bpe_trainer_add(t, text + n / 2, n - n / 2));
    CHECK(lws_bpe_trainer_bytes(t) == n, "trainer bytes");
    lws_bpe_trainer_free(t);
    free(fa), free(fb), free(text);
    lws_bpe_free(a), lws_bpe_free(b);
}

/* The small vocabulary of "ab ab ab cd" as a file, for the refusals. */
static char *small_file(void) {
    const char *text = "ab ab ab cd";
    lws_bpe *b = train_text((const uint8_t *)text, strlen(text), 300, NULL, 0);
    CHECK_OK(lws_bpe_save(b, test_path("small.json")));
    lws_bpe_free(b);
    return read_text(test_path("small.json"));
}

/* Writes original with `from` replaced by `to` (once) and loads it. */
static void check_refused(const char *original, const char *from, const char *to,
                          const char *fragment) {
    const char *at = strstr(original, from);
    if (!at) {
        CHECK(0, "test setup: '%s' is not in the file", from);
        return;
    }
    size_t n = strlen(original) + strlen(to) + 1;
    char *mutated = test_malloc(n);
    snprintf(mutated, n, "%.*s%s%s", (int)(at - original), original, to, at + strlen(from));
    write_text(test_path("bad.json"), mutated);
    lws_bpe *b = (lws_bpe *)&b; /* must come back NULL */
    lws_status s = lws_bpe_load(test_path("bad.json"), &b);
    CHECK(s == LWS_ERR_DATA && b == NULL && test_contains(lws_error_message(), fragment) &&
              test_contains(lws_error_message(), "bad.json"),
          "'%s' -> '%s': status %d, message '%s', want '%s'", from, to, s, lws_error_message(),
          fragment);
    if (s == LWS_OK) lws_bpe_free(b);
    free(mutated);
}

static void test_refusals(void) {
    char *good = small_file();
    lws_bpe *b = NULL;
    CHECK_OK(lws_bpe_load(test_path("small.json"), &b));
    lws_bpe_free(b);
    check_refused(good, "{", "[", "not valid JSON");
    check_refused(good, "\"lws-bpe\"", "\"hf\"", "\"format\" is not \"lws-bpe\"");
    check_refused(good, "\"version\": 1", "\"version\": 2", "\"version\" must be 1");
    check_refused(good, "\"pretokenizer\": \"gpt2\"", "\"pretokenizer\": \"llama\"",
                  "\"pretokenizer\"");
    check_refused(good, "\"merges\"", "\"mergez\"", "\"merges\" is missing");
    check_refused(good, "\"vocab_size\": 260", "\"vocab_size\": 300", "\"vocab_size\" must be 260");
    check_refused(good, "\"\xc4\x80\"", "7", "vocab[0]: not a string");
    check_refused(good, "\"\xc4\x81\"", "\"\xc4\x80\"",
                  "vocab[1] \"\xc4\x80\": the same token as id 0");
    check_refused(good, "\"\xc4\x81\"", "\"\xe2\x82\xac\"",
                  "vocab[1] \"\xe2\x82\xac\": the character U+20AC");
    check_refused(good, "\"\xc4\x81\",", "\"\xc4\x80\xc4\x80\",", "no token for the byte 0x01");
    check_refused(good, "\"a b\"", "\"a  b\"", "merges[0]: \"a  b\" is not a merge");
    check_refused(good,
                  "\"\xc4\xa0"
                  "ab\"",
                  "\"\xc4\xa0"
                  "ab\", \"zz\"",
                  "vocab_size");
    check_refused(good, "\"a b\"", "\"a z\"", "merges[0] \"a z\": \"az\" is not a token");
    check_refused(good, "\"a b\"", "\"a xyz\"", "merges[0] \"a xyz\": \"xyz\" is not a token");
    check_refused(good, "\"hash\": \"", "\"hash\": \"0", "\"hash\" is");
    check_refused(good, "\"special_tokens\": []", "\"special_tokens\": [\"\"]",
                  "\"vocab_size\" must be 261");
    lws_bpe *none = NULL;
    CHECK(lws_bpe_load(test_path("missing.json"), &none) == LWS_ERR_IO &&
              test_contains(lws_error_message(), "missing.json"),
          "a missing file: %s", lws_error_message());
    CHECK(lws_bpe_open("gpt2:", &none) == LWS_ERR_INVALID, "gpt2: without a directory");
    CHECK(lws_bpe_open("bytes", &none) == LWS_ERR_INVALID, "bytes is not a BPE file");
    free(good);

    /* Training refusals. */
    lws_bpe_trainer *t;
    CHECK_OK(lws_bpe_trainer_create(&t));
    CHECK(lws_bpe_train(t, 4096, NULL, 0, &b) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "no text to train on"),
          "empty input: %s", lws_error_message());
    CHECK_OK(lws_bpe_trainer_add(t, (const uint8_t *)"some text", 9));
    const char *const two[] = {"<a>", "<b>"};
    CHECK(lws_bpe_train(t, 257, two, 2, &b) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "vocabulary size 257 is too small") &&
              test_contains(lws_error_message(), "at least 258"),
          "too small: %s", lws_error_message());
    const char *const same[] = {"<a>", "<a>"};
    CHECK(lws_bpe_train(t, 300, same, 2, &b) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "'<a>' is given twice"),
          "repeated special: %s", lws_error_message());
    const char *const raw[] = {"<\xff>"};
    CHECK(lws_bpe_train(t, 300, raw, 1, &b) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "not UTF-8"),
          "special not UTF-8: %s", lws_error_message());
    const char *const empty[] = {""};
    CHECK(lws_bpe_train(t, 300, empty, 1, &b) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "special token 1 is empty"),
          "empty special: %s", lws_error_message());
    CHECK_OK(lws_bpe_train(t, 256, NULL, 0, &b)); /* the bytes alone: no merges */
    if (b) CHECK(lws_bpe_merge_count(b) == 0 && lws_bpe_vocab_size(b) == 256, "vocab 256");
    lws_bpe_free(b);
    lws_bpe_trainer_free(t);
}

/* A GPT-2-format directory: the 256 byte characters, then extra_tokens
 * (JSON members), and vocab.bpe's merge lines. */
static void write_gpt2_dir(const char *d, const char *extra_tokens, const char *merge_lines) {
    mkdir(d, 0777);
    size_t cap = 16384, len = 0;
    char *json = test_malloc(cap);
    len += (size_t)snprintf(json, cap, "{");
    for (int b = 0; b < 256; b++) {
        /* GPT-2's map: printable bytes as themselves, others from U+0100. */
        uint32_t cp = b <= 0x20                ? 0x100 + (uint32_t)b
                      : b >= 0x7F && b <= 0xA0 ? 0x100 + 33 + (uint32_t)(b - 0x7F)
                      : b == 0xAD              ? 0x100 + 67
                                               : (uint32_t)b;
        char ch[8];
        if (cp == '"' || cp == '\\')
            snprintf(ch, sizeof ch, "\\%c", (char)cp);
        else if (cp < 0x80)
            snprintf(ch, sizeof ch, "%c", (char)cp);
        else
            snprintf(ch, sizeof ch, "%c%c", (char)(0xC0 | (cp >> 6)), (char)(0x80 | (cp & 0x3F)));
        len += (size_t)snprintf(json + len, cap - len, "\"%s\": %d, ", ch, b);
    }
    snprintf(json + len, cap - len, "%s}", extra_tokens);
    char path[768];
    snprintf(path, sizeof path, "%s/encoder.json", d);
    write_text(path, json);
    snprintf(path, sizeof path, "%s/vocab.bpe", d);
    char merges[256];
    snprintf(merges, sizeof merges, "#version: 0.2\n%s", merge_lines);
    write_text(path, merges);
    free(json);
}

static void test_gpt2_format(void) {
    char d[640], spec[700];
    snprintf(d, sizeof d, "%s/gpt2", dir);
    snprintf(spec, sizeof spec, "gpt2:%s", d);
    const char *tokens = "\"ab\": 256, \"abc\": 257";
    write_gpt2_dir(d, tokens, "a b\nab c\n");
    lws_bpe *b = NULL;
    uint32_t *ids = NULL;
    size_t count = 0, cap = 0;
    CHECK_OK(lws_bpe_open(spec, &b));
    if (b) {
        CHECK_OK(lws_bpe_encode(b, (const uint8_t *)"abc abx", 7, &ids, &count, &cap));
        CHECK(count == 4 && ids[0] == 257 && ids[1] == ' ' && ids[2] == 256 && ids[3] == 'x',
              "encode with a GPT-2-format vocabulary: %zu tokens", count);
        CHECK(lws_bpe_vocab_size(b) == 258 && lws_bpe_merge_count(b) == 2 &&
                  strncmp(lws_bpe_name(b), "bpe:", 4) == 0,
              "a GPT-2-format vocabulary other than GPT-2's is named by its hash: %s",
              lws_bpe_name(b));
        lws_bpe_free(b);
    }
    /* A merge list where a merge makes a pair of lower rank ("ab a" is rank
     * 0, "a b" rank 1): GPT-2's loop merges both (a, b) of "abab" before it
     * looks again, giving ab ab, not aba b. */
    write_gpt2_dir(d, "\"ab\": 256, \"aba\": 257", "ab a\na b\n");
    CHECK_OK(lws_bpe_open(spec, &b));
    if (b) {
        count = 0;
        CHECK_OK(lws_bpe_encode(b, (const uint8_t *)"abab", 4, &ids, &count, &cap));
        CHECK(count == 2 && ids[0] == 256 && ids[1] == 256,
              "a lower-ranked pair made by a merge waits for the rank in hand: %zu tokens", count);
        lws_bpe_free(b);
    }
    free(ids);
    struct {
        const char *tokens, *merges, *fragment;
    } bad[] = {
        {"\"ab\": 256, \"abc\": 5", "a b\n", "id 5 is also the id of"},
        {tokens, "a b\nab c\na\n", "vocab.bpe: line 4: \"a\" is not a merge"},
        {tokens, "a b\nab c\na b c\n", "line 4: \"a b c\" is not a merge"},
        {tokens, "a b\nb c\n", "vocab.bpe: line 3 \"b c\": \"bc\" is not a token"},
        {"\"ab\": 256, \"abc\": 258", "a b\n", "the id must be an integer in [0, 258)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_gpt2_dir(d, bad[i].tokens, bad[i].merges);
        lws_status s = lws_bpe_open(spec, &b);
        CHECK(s == LWS_ERR_DATA && !b && test_contains(lws_error_message(), bad[i].fragment),
              "GPT-2 files %zu: status %d, '%s', want '%s'", i, s, lws_error_message(),
              bad[i].fragment);
        if (b) lws_bpe_free(b);
    }
    snprintf(spec, sizeof spec, "gpt2:%s/nowhere", dir);
    CHECK(lws_bpe_open(spec, &b) == LWS_ERR_IO &&
              test_contains(lws_error_message(), "nowhere/encoder.json: cannot open"),
          "missing GPT-2 files: %s", lws_error_message());
}

/* The tokenizer registry and the token-file header. */
static void test_token_file_name(void) {
    lws_tokenizer tok;
    CHECK_OK(lws_tokenizer_create(test_path("small.json"), &tok));
    if (!tok.name) return;
    CHECK(strncmp(tok.name, "bpe:", 4) == 0 && strcmp(tok.name + 4, tok.hash) == 0 &&
              tok.vocab_size == 260,
          "registry: name %s hash %s vocab %u", tok.name, tok.hash, tok.vocab_size);
    uint32_t *ids = NULL;
    size_t count = 0, cap = 0;
    CHECK_OK(tok.encode(&tok, (const uint8_t *)"ab cd ab", 8, &ids, &count, &cap));
    CHECK(count == 3 && ids[0] == 256 && ids[1] == 259 && ids[2] == 257, "registry encode");
    CHECK_OK(lws_tokens_write(test_path("t.tok"), ids, count, tok.vocab_size, tok.name, tok.hash));
    lws_tokens f;
    CHECK_OK(lws_tokens_open(test_path("t.tok"), 260, tok.name, &f));
    CHECK(strcmp(f.tokenizer, tok.name) == 0 && strcmp(f.tokenizer_hash, tok.hash) == 0,
          "header carries name and hash");
    lws_tokens_close(&f);
    CHECK(lws_tokens_open(test_path("t.tok"), 260, "bytes", &f) != LWS_OK &&
              test_contains(lws_error_message(), tok.name),
          "a token file from another tokenizer is refused: %s", lws_error_message());
    free(ids);
    lws_tokenizer_destroy(&tok);
    lws_error_clear();
    CHECK(lws_tokenizer_create("gpt2", &tok) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "gpt2:DIR"),
          "'gpt2' without a directory: %s", lws_error_message());
}

int main(void) {
    dir = test_dir("test_bpe");
    test_rng rng;
    test_rng_seed(&rng, 17);
    test_pretokenizer();
    test_train_small();
    test_train_vs_reference(&rng);
    test_encode_vs_reference(&rng);
    test_round_trip(&rng);
    test_save_load(&rng);
    test_refusals();
    test_gpt2_format();
    test_token_file_name();
    return test_finish(NULL);
}
