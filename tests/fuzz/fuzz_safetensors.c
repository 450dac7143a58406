/* safetensors under libFuzzer: the input is a file. One that opens must
 * find each of its tensors by name, and its tensors' bytes must lie inside
 * it; a stored config in its metadata is read as a checkpoint's would be. */
#include "fuzz.h"
#include "lws/config.h"
#include "lws/safetensors.h"

static lws_config cfg;
static volatile uint8_t sink; /* the tensors' bytes are read, not optimised away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("model.safetensors", data, size);
    lws_st_file *f;
    if (lws_st_open(path, &f) != LWS_OK) return 0;
    uint8_t sum = 0;
    for (uint32_t i = 0; i < lws_st_count(f); i++) {
        const lws_st_tensor *t = lws_st_at(f, i);
        if (lws_st_find(f, t->name) != t) abort();
        const uint8_t *p = t->data;
        for (uint64_t k = 0; k < t->bytes && k < 4096; k++) sum += p[k];
    }
    const char *stored = lws_st_metadata(f, "lws_config");
    if (stored) (void)lws_config_parse_resolved(stored, path, &cfg);
    lws_st_close(f);
    sink = sum;
    return 0;
}
