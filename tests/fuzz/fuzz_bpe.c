/* BPE vocabularies and the encoder under libFuzzer. The first byte picks
 * the format: even, part 0 is an lws-bpe file; odd, part 0 is GPT-2's
 * encoder.json and part 1 its vocab.bpe. The last part is text: a
 * vocabulary that loads must encode it to ids below its size that decode
 * back to the same bytes. */
#include <sys/stat.h>

#include "fuzz.h"
#include "lws/bpe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const uint8_t *part[4];
    size_t len[4];
    size_t n = fuzz_split(data + 1, size - 1, part, len, 4);
    char spec[160];
    if (data[0] % 2 == 0) {
        snprintf(spec, sizeof spec, "%s", fuzz_write("vocab.json", part[0], len[0]));
    } else {
        char sub[128];
        snprintf(sub, sizeof sub, "%s/gpt2", fuzz_dir());
        mkdir(sub, 0700);
        fuzz_write("gpt2/encoder.json", part[0], len[0]);
        fuzz_write("gpt2/vocab.bpe", n > 1 ? part[1] : (const uint8_t *)"", n > 1 ? len[1] : 0);
        snprintf(spec, sizeof spec, "gpt2:%s", sub);
    }
    lws_bpe *b = NULL;
    if (lws_bpe_open(spec, &b) != LWS_OK) return 0;
    const uint8_t *text = part[n - 1];
    size_t text_len = n > 1 ? len[n - 1] : 0;
    uint32_t *ids = NULL;
    size_t count = 0, cap = 0, out_len = 0, out_cap = 0;
    uint8_t *out = NULL;
    if (lws_bpe_encode(b, text, text_len, &ids, &count, &cap) != LWS_OK) abort();
    for (size_t i = 0; i < count; i++)
        if (ids[i] >= lws_bpe_vocab_size(b)) abort();
    if (lws_bpe_decode(b, ids, count, &out, &out_len, &out_cap) != LWS_OK) abort();
    if (out_len != text_len || (text_len && memcmp(out, text, text_len) != 0)) {
        fprintf(stderr, "decode(encode(text)) differs from the text (%zu bytes, %zu back)\n",
                text_len, out_len);
        abort();
    }
    free(ids), free(out);
    lws_bpe_free(b);
    return 0;
}
