// lws-test: plain
/* A checkpoint's state.json read field by field: a valid one (also padded
 * past 4 KB, and without elapsed_s), and each bad one refused naming the file
 * and the field: negative, huge, infinite and fractional steps, a step that
 * disagrees with its directory, counters that are not decimal strings of 64
 * bits, a negative tokens_seen, unknown keys, text after the object, a NUL,
 * and a file that is not JSON or too large. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "train/checkpoint.h"

#define FIELDS "\"tokens_seen\": 448, \"sampler_seed\": \"42\", \"sampler_counter\": \"14\""

static void write_state(const char *dir, const char *text, size_t n) {
    char path[1024];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/state.json", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(text, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

/* Expects the state in dir (written from text) refused, the message naming
 * the file and holding each fragment. */
static void refused(const char *what, const char *dir, const char *text, ...) {
    write_state(dir, text, strlen(text));
    lws_train_state st;
    lws_error_clear();
    lws_status s = lws_checkpoint_read_state(dir, &st);
    const char *m = lws_error_message();
    CHECK(s == LWS_ERR_DATA, "%s: expected a data error, got %s", what, lws_status_name(s));
    CHECK(test_contains(m, dir) && test_contains(m, "state.json"), "%s: file not named: %s", what,
          m);
    va_list ap;
    va_start(ap, text);
    for (const char *f; (f = va_arg(ap, const char *));)
        CHECK(test_contains(m, f), "%s: message lacks '%s': %s", what, f, m);
    va_end(ap);
}

int main(void) {
    test_dir("test_checkpoint_state");
    char step7[1024], other[1024];
    snprintf(step7, sizeof step7, "%s", test_path("step-00000007"));
    snprintf(other, sizeof other, "%s", test_path("copy"));

    lws_train_state st;
    const char *good = "{\"step\": 7, " FIELDS ", \"elapsed_s\": 1.5}";
    write_state(step7, good, strlen(good));
    CHECK_OK(lws_checkpoint_read_state(step7, &st));
    CHECK(st.step == 7 && st.tokens_seen == 448 && st.sampler_seed == 42 &&
              st.sampler_counter == 14 && st.elapsed_s == 1.5,
          "fields read: step %llu", (unsigned long long)st.step);
    /* Padded far past 4 KB, without elapsed_s, counters at 64 bits, in a
     * directory whose name gives no step. */
    size_t n = 0;
    char *big = test_malloc(20000);
    n += (size_t)snprintf(big, 20000,
                          "{\"step\": 4294967295, \"tokens_seen\": 9007199254740992, "
                          "\"sampler_seed\": \"18446744073709551615\", \"sampler_counter\": "
                          "\"0\"}");
    memset(big + n, ' ', 10000);
    write_state(other, big, n + 10000);
    CHECK_OK(lws_checkpoint_read_state(other, &st));
    CHECK(st.step == 4294967295u && st.sampler_seed == UINT64_MAX && st.elapsed_s == 0,
          "largest values read");
    free(big);

    refused("step -5", step7, "{\"step\": -5, " FIELDS "}", "step", "-5", NULL);
    refused("step 0", step7, "{\"step\": 0, " FIELDS "}", "step", "from 1", NULL);
    refused("step 1e30", step7, "{\"step\": 1e30, " FIELDS "}", "step", "1e+30", NULL);
    refused("step 1e309", step7, "{\"step\": 1e309, " FIELDS "}", "step", "inf", NULL);
    refused("step 2.5", step7, "{\"step\": 2.5, " FIELDS "}", "step", "2.5", NULL);
    refused("step a string", step7, "{\"step\": \"7\", " FIELDS "}", "step", "not a number", NULL);
    refused("step missing", step7, "{" FIELDS "}", "step", "missing", NULL);
    refused("step 5 in step-00000007", step7, "{\"step\": 5, " FIELDS "}", "step",
            "disagrees with its directory", "step 7", NULL);
    refused("sampler_counter abc", step7,
            "{\"step\": 7, \"tokens_seen\": 1, \"sampler_seed\": \"1\", \"sampler_counter\": "
            "\"abc\"}",
            "sampler_counter", NULL);
    refused("sampler_counter -1", step7,
            "{\"step\": 7, \"tokens_seen\": 1, \"sampler_seed\": \"1\", \"sampler_counter\": "
            "\"-1\"}",
            "sampler_counter", NULL);
    refused("sampler_seed past 64 bits", step7,
            "{\"step\": 7, \"tokens_seen\": 1, \"sampler_seed\": \"18446744073709551616\", "
            "\"sampler_counter\": \"1\"}",
            "sampler_seed", NULL);
    refused("sampler_seed a number", step7,
            "{\"step\": 7, \"tokens_seen\": 1, \"sampler_seed\": 1, \"sampler_counter\": \"1\"}",
            "sampler_seed", "not a string", NULL);
    refused("tokens_seen -1", step7,
            "{\"step\": 7, \"tokens_seen\": -1, \"sampler_seed\": \"1\", \"sampler_counter\": "
            "\"1\"}",
            "tokens_seen", NULL);
    refused("elapsed_s -1", step7, "{\"step\": 7, " FIELDS ", \"elapsed_s\": -1}", "elapsed_s",
            NULL);
    refused("an unknown key", step7, "{\"step\": 7, \"stepp\": 8, " FIELDS "}", "stepp",
            "unknown key", NULL);
    refused("text after the object", step7, "{\"step\": 7, " FIELDS "} x", "not valid JSON", NULL);
    refused("not an object", step7, "[7]", "not a JSON object", NULL);
    char nul[] = "{\"step\": 7, " FIELDS "}\0{}";
    write_state(step7, nul, sizeof nul - 1);
    CHECK(lws_checkpoint_read_state(step7, &st) == LWS_ERR_DATA, "a NUL byte refused");
    big = test_malloc(70000);
    memset(big, ' ', 70000);
    memcpy(big, good, strlen(good));
    write_state(step7, big, 70000);
    lws_error_clear();
    CHECK(lws_checkpoint_read_state(step7, &st) == LWS_ERR_IO &&
              test_contains(lws_error_message(), "allowed"),
          "70000 bytes refused by size: %s", lws_error_message());
    free(big);
    return test_finish(NULL);
}
