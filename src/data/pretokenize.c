/* GPT-2's pre-tokenizer, by hand: the pattern
 *
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * matched at each position in turn. Its alternatives reduce to:
 *  - at an apostrophe, a contraction ('s 't 're 've 'm 'll 'd, lowercase);
 *  - otherwise a run of letters, of numbers, or of "others" (neither
 *    letters, numbers nor whitespace), led by at most one ' ' (U+0020);
 *  - a whitespace run W followed by the end of the text is one piece; one
 *    followed by a non-space character gives W minus its last character
 *    (\s+(?!\S) backtracks by one), and that last character then leads the
 *    next run when it is ' ' (every non-space character starts one of the
 *    three runs) or is a piece of its own (\s+) when it is not. */
#include "lws/bpe.h"

/* ASCII, the hot path of English text. */
static inline lws_char_class ascii_class(uint8_t b) {
    if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') return LWS_CHAR_LETTER;
    if (b >= '0' && b <= '9') return LWS_CHAR_NUMBER;
    if (b == ' ' || (b >= '\t' && b <= '\r')) return LWS_CHAR_SPACE;
    return LWS_CHAR_OTHER;
}

static inline int continuation(uint8_t b) {
    return (b & 0xC0) == 0x80;
}

size_t lws_utf8_char(const uint8_t *s, size_t n, lws_char_class *cls) {
    uint8_t b = s[0];
    if (b < 0x80) {
        *cls = ascii_class(b);
        return 1;
    }
    /* Well-formed sequences (Unicode table 3-7): no overlongs, no
     * surrogates, nothing above U+10FFFF. */
    uint32_t cp = 0;
    size_t len = 0;
    if (b >= 0xC2 && b <= 0xDF) {
        if (n >= 2 && continuation(s[1])) cp = (uint32_t)(b & 0x1F) << 6 | (s[1] & 0x3F), len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        uint8_t lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
        if (n >= 3 && s[1] >= lo && s[1] <= hi && continuation(s[2]))
            cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F), len = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
        uint8_t lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
        if (n >= 4 && s[1] >= lo && s[1] <= hi && continuation(s[2]) && continuation(s[3]))
            cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
                 (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F),
            len = 4;
    }
    if (!len) { /* an invalid byte: one character of class other */
        *cls = LWS_CHAR_OTHER;
        return 1;
    }
    *cls = lws_char_class_of(cp);
    return len;
}

size_t lws_utf8_check(const uint8_t *text, size_t n) {
    lws_char_class cls;
    for (size_t i = 0; i < n;) {
        size_t len = lws_utf8_char(text + i, n - i, &cls);
        if (len == 1 && text[i] >= 0x80) return i;
        i += len;
    }
    return n;
}

/* The end of the run of class cls that starts at pos with a character of
 * that class. A run of others stops at any letter, number or whitespace. */
static size_t run_end(const uint8_t *text, size_t n, size_t pos, lws_char_class cls) {
    lws_char_class c;
    pos += lws_utf8_char(text + pos, n - pos, &c);
    while (pos < n) {
        size_t len = lws_utf8_char(text + pos, n - pos, &c);
        if (c != cls) break;
        pos += len;
    }
    return pos;
}

static size_t contraction(const uint8_t *s, size_t n) {
    if (n >= 2 && (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd')) return 2;
    if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') ||
                   (s[1] == 'l' && s[2] == 'l')))
        return 3;
    return 0;
}

size_t lws_pretokenize_next(const uint8_t *text, size_t n, size_t pos) {
    lws_char_class cls;
    size_t len = lws_utf8_char(text + pos, n - pos, &cls);
    size_t start = pos; /* where the run proper starts (after a leading ' ') */
    if (cls == LWS_CHAR_SPACE) {
        size_t last = pos, end = pos + len;
        while (end < n) {
            lws_char_class c;
            size_t l = lws_utf8_char(text + end, n - end, &c);
            if (c != LWS_CHAR_SPACE) break;
            last = end, end += l;
        }
        if (end == n) return n;      /* \s+ up to the end of the text */
        if (last > pos) return last; /* \s+(?!\S): all but the last one */
        if (text[pos] != ' ') return end;
        start = end; /* ' ' leads the run that follows */
        lws_utf8_char(text + start, n - start, &cls);
    } else if (text[pos] == '\'') {
        size_t c = contraction(text + pos, n - pos);
        if (c) return pos + c;
    }
    return run_end(text, n, start, cls);
}
