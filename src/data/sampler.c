/* Training windows drawn by a counter-based RNG, and deterministic validation
 * windows. Both read the file through lws_tokens_read and stay inside
 * their range. */
#include <inttypes.h>
#include <string.h>

#include "lws/data.h"

lws_status lws_tokens_split(const lws_tokens *t, uint64_t held_out, lws_token_range *train,
                            lws_token_range *val) {
    if (held_out >= t->count)
        return lws_fail(LWS_ERR_INVALID,
                        "file %s: cannot hold out the last %" PRIu64
                        " tokens for validation: the file has only %" PRIu64
                        "; hold out fewer or use a separate validation file",
                        t->path, held_out, t->count);
    *train = (lws_token_range){0, t->count - held_out};
    *val = (lws_token_range){t->count - held_out, t->count};
    return LWS_OK;
}

/* Uniform in [0, n) without modulo bias: reject the lowest 2^64 mod n raw
 * values (at most one in two draws for any n, usually none). */
static uint64_t uniform_below(lws_sampler *s, uint64_t n) {
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = lws_splitmix64_at(s->seed, ++s->counter);
        if (x >= threshold) return x % n;
    }
}

static lws_status check_range(const lws_tokens *t, lws_token_range r, uint64_t need,
                              const char *what) {
    if (r.begin > r.end || r.end > t->count)
        return lws_fail(LWS_ERR_INVALID,
                        "file %s: %s range [%" PRIu64 ", %" PRIu64
                        ") is not inside the file's %" PRIu64 " tokens",
                        t->path, what, r.begin, r.end, t->count);
    if (r.end - r.begin < need)
        return lws_fail(LWS_ERR_INVALID,
                        "file %s: %s range has %" PRIu64 " tokens; a window needs %" PRIu64
                        " (seq_len + 1); use a shorter sequence or more data",
                        t->path, what, r.end - r.begin, need);
    return LWS_OK;
}

lws_status lws_sampler_init(lws_sampler *s, lws_token_range range, uint64_t seed) {
    if (range.begin > range.end)
        return lws_fail(LWS_ERR_INVALID,
                        "sampler range [%" PRIu64 ", %" PRIu64 ") ends before it begins",
                        range.begin, range.end);
    *s = (lws_sampler){seed, 0, range};
    return LWS_OK;
}

/* Tokens start .. start + seq_len: inputs the first seq_len, targets the
 * last seq_len. */
static lws_status copy_window(const lws_tokens *t, uint64_t start, uint32_t seq_len,
                              uint32_t *inputs, uint32_t *targets) {
    LWS_TRY(lws_tokens_read(t, start, seq_len, inputs));
    memcpy(targets, inputs + 1, (seq_len - 1) * sizeof *targets);
    return lws_tokens_read(t, start + seq_len, 1, targets + seq_len - 1);
}

lws_status lws_sampler_next(lws_sampler *s, const lws_tokens *t, uint32_t batch, uint32_t seq_len,
                            uint32_t *inputs, uint32_t *targets) {
    if (batch == 0 || seq_len == 0)
        return lws_fail(LWS_ERR_INVALID,
                        "sampler: batch %" PRIu32 " and seq_len %" PRIu32 " must both be >= 1",
                        batch, seq_len);
    LWS_TRY(check_range(t, s->range, (uint64_t)seq_len + 1, "training"));
    /* Windows start at range.begin + [0, starts) and end (inclusive) at
     * start + seq_len < range.end. */
    uint64_t starts = s->range.end - s->range.begin - seq_len;
    for (uint32_t b = 0; b < batch; b++) {
        uint64_t start = s->range.begin + uniform_below(s, starts);
        if (!inputs) continue;
        LWS_TRY(copy_window(t, start, seq_len, inputs + (size_t)b * seq_len,
                            targets + (size_t)b * seq_len));
    }
    return LWS_OK;
}

uint64_t lws_eval_window_count(lws_token_range range, uint32_t seq_len) {
    if (seq_len == 0 || range.end <= range.begin) return 0;
    return (range.end - range.begin - 1) / seq_len;
}

lws_status lws_eval_windows(const lws_tokens *t, lws_token_range range, uint32_t seq_len,
                            uint32_t batch, uint64_t *cursor, uint32_t *inputs, uint32_t *targets,
                            uint32_t *rows) {
    *rows = 0;
    if (range.begin > range.end || range.end > t->count) return LWS_OK;
    uint64_t windows = lws_eval_window_count(range, seq_len);
    while (*rows < batch && *cursor < windows) {
        uint64_t start = range.begin + *cursor * seq_len;
        LWS_TRY(copy_window(t, start, seq_len, inputs + (size_t)*rows * seq_len,
                            targets + (size_t)*rows * seq_len));
        ++*rows, ++*cursor;
    }
    return LWS_OK;
}
