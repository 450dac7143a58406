/* Token files under libFuzzer: the input is a file (lws, llm.c .bin or
 * .npy, told apart by their first bytes), opened for a GPT-2-sized and a
 * byte-level model. A file that opens must read: its first tokens, and
 * training and validation windows, every token below the vocabulary. */
#include "fuzz.h"
#include "lws/data.h"

static void exercise(const char *path, uint32_t vocab, const char *tokenizer) {
    lws_tokens t;
    if (lws_tokens_open(path, vocab, tokenizer, &t) != LWS_OK) return;
    uint32_t in[2 * 8], tg[2 * 8];
    uint64_t n = t.count < 16 ? t.count : 16;
    if (lws_tokens_read(&t, 0, n, in) != LWS_OK) abort();
    for (uint64_t i = 0; i < n; i++)
        if (in[i] >= vocab || in[i] > t.max_token) abort();
    if (t.count >= 9) {
        lws_sampler s;
        if (lws_sampler_init(&s, lws_tokens_all(&t), 1) != LWS_OK) abort();
        if (lws_sampler_next(&s, &t, 2, 8, in, tg) != LWS_OK) abort();
        uint64_t cursor = 0;
        uint32_t rows = 0;
        if (lws_eval_windows(&t, lws_tokens_all(&t), 8, 2, &cursor, in, tg, &rows) != LWS_OK ||
            rows == 0)
            abort();
        for (uint32_t i = 0; i < 16; i++)
            if (in[i] >= vocab || tg[i] >= vocab) abort();
    }
    lws_tokens_close(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("tokens.bin", data, size);
    exercise(path, 50304, NULL);
    exercise(path, 256, "bytes");
    return 0;
}
