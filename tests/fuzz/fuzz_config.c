/* Config parsing under libFuzzer: part 0 of the input is a config file,
 * part 1 a base it may extend ("extends": "base.json"), parts 2.. --set
 * overrides (PATH=VALUE). Every config that loads must be written by
 * lws_config_to_json and read back as a resolved config to the same shapes
 * (a checkpoint lws writes always loads); part 0 is also read as a resolved
 * config, as a checkpoint's metadata would be. */
#include "fuzz.h"
#include "lws/config.h"

static lws_config cfg, back; /* large: off the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[8];
    size_t len[8];
    size_t n = fuzz_split(data, size, part, len, 8);
    const char *child = fuzz_write("child.json", part[0], len[0]);
    fuzz_write("base.json", n > 1 ? part[1] : (const uint8_t *)"{}", n > 1 ? len[1] : 2);
    char *sets[6];
    uint32_t n_sets = 0;
    for (size_t k = 2; k < n; k++) sets[n_sets++] = fuzz_text(part[k], len[k]);
    if (lws_config_load_with(child, (const char *const *)sets, n_sets, &cfg) == LWS_OK) {
        char *json = lws_config_to_json(&cfg);
        if (!json) abort();
        if (lws_config_parse_resolved(json, "resolved.json", &back) != LWS_OK) {
            fprintf(stderr, "a loaded config does not read back: %s\n%s\n", lws_error_message(),
                    json);
            abort();
        }
        int same = lws_config_params(&back) == lws_config_params(&cfg) &&
                   back.model.n_layers == cfg.model.n_layers;
        for (uint32_t i = 0; same && i < cfg.model.n_layers; i++)
            same = back.layers[i].q_heads == cfg.layers[i].q_heads &&
                   back.layers[i].kv_heads == cfg.layers[i].kv_heads &&
                   back.layers[i].ffn_dim == cfg.layers[i].ffn_dim;
        if (!same) {
            fprintf(stderr, "a config read back has other shapes:\n%s\n", json);
            abort();
        }
        free(json);
    }
    for (uint32_t k = 0; k < n_sets; k++) free(sets[k]);
    char *text = fuzz_text(part[0], len[0]);
    (void)lws_config_parse_resolved(text, "stored.json", &back);
    free(text);
    return 0;
}
