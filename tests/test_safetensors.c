// lws-test: plain timeout=60
/* safetensors: round trip of every shape kind (scalar, empty, odd sizes,
 * mixed dtypes), metadata, alignment, byte-identical rewrites, and the
 * refusals: truncated file, corrupt header, overlapping offsets, gaps,
 * shape/offset disagreement, unknown dtype, non-string metadata. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lws/safetensors.h"

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = test_malloc(*n + 1);
    if (fread(p, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return p;
}

/* A hand-made file: 8-byte length, the header text as given, then `data`
 * zero bytes. */
static void write_raw(const char *path, const char *header, size_t data) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data; i++) fputc(0, f);
    fclose(f);
}

static void expect_refused(const char *what, const char *path, const char *frag1,
                           const char *frag2) {
    lws_st_file *f = (lws_st_file *)1;
    lws_error_clear();
    lws_status s = lws_st_open(path, &f);
    const char *m = lws_error_message();
    CHECK(s == LWS_ERR_DATA && f == NULL, "%s: expected a data error, got %s", what,
          lws_status_name(s));
    CHECK(test_contains(m, path), "%s: message does not name the file: %s", what, m);
    CHECK(!frag1 || test_contains(m, frag1), "%s: message lacks '%s': %s", what, frag1, m);
    CHECK(!frag2 || test_contains(m, frag2), "%s: message lacks '%s': %s", what, frag2, m);
    printf("refused (%s): %s\n", what, m);
}

typedef struct fixture {
    float *w;     /* (3, 5) */
    int32_t *ids; /* (7) */
    int64_t *big; /* (2, 2) */
    uint8_t *raw; /* (13): odd, so alignment depends on the writer's order */
    float scalar; /* () */
} fixture;

static lws_status write_fixture(const fixture *x, const char *path) {
    lws_st_writer *w;
    LWS_TRY(lws_st_writer_create(&w));
    lws_status s = LWS_OK;
    /* U8 first: the writer must still place the wider tensors aligned. */
    if (s == LWS_OK) s = lws_st_add(w, "raw", LWS_ST_U8, (uint64_t[]){13}, 1, x->raw);
    if (s == LWS_OK) s = lws_st_add(w, "layers.0.w", LWS_ST_F32, (uint64_t[]){3, 5}, 2, x->w);
    if (s == LWS_OK) s = lws_st_add(w, "ids", LWS_ST_I32, (uint64_t[]){7}, 1, x->ids);
    if (s == LWS_OK) s = lws_st_add(w, "big", LWS_ST_I64, (uint64_t[]){2, 2}, 2, x->big);
    if (s == LWS_OK) s = lws_st_add(w, "scalar", LWS_ST_F32, NULL, 0, &x->scalar);
    if (s == LWS_OK) s = lws_st_add(w, "empty", LWS_ST_F32, (uint64_t[]){0, 4}, 2, NULL);
    if (s == LWS_OK) s = lws_st_add_metadata(w, "step", "999");
    if (s == LWS_OK) s = lws_st_add_metadata(w, "step", "1000"); /* replaces */
    if (s == LWS_OK)
        s = lws_st_add_metadata(w, "config", "{\"name\": \"crown-18l\", \"quote\": \"\\\"\"}");
    if (s == LWS_OK) s = lws_st_add_metadata(w, "unicode", "\xce\xb2 = 4.0\n");
    if (s == LWS_OK) s = lws_st_write(w, path);
    lws_st_writer_destroy(w);
    return s;
}

static void test_round_trip(test_rng *rng) {
    fixture x;
    x.w = test_random_floats(rng, 15, 1.0);
    x.ids = test_malloc(7 * sizeof *x.ids);
    x.big = test_malloc(4 * sizeof *x.big);
    x.raw = test_malloc(13);
    for (int i = 0; i < 7; i++) x.ids[i] = (int32_t)(test_rng_next(rng) >> 33) - (1 << 29);
    for (int i = 0; i < 4; i++) x.big[i] = (int64_t)test_rng_next(rng);
    for (int i = 0; i < 13; i++) x.raw[i] = (uint8_t)test_rng_next(rng);
    x.scalar = -3.25f;
    const char *p = test_path("a.safetensors");
    CHECK_OK(write_fixture(&x, p));
    CHECK(access(test_path("a.safetensors.tmp"), F_OK) != 0, "temporary file left behind");

    size_t n;
    uint8_t *bytes = read_file(p, &n);
    uint64_t header = 0;
    for (int i = 0; i < 8; i++) header |= (uint64_t)bytes[i] << (8 * i);
    CHECK(header % 8 == 0 && 8 + header <= n && bytes[8] == '{' && bytes[8 + header - 1] == ' ',
          "header length %llu: not padded with spaces to a multiple of 8",
          (unsigned long long)header);
    /* Data: 60 + 28 + 32 + 13 + 4 bytes. */
    CHECK(n == 8 + header + 60 + 28 + 32 + 13 + 4, "file size %zu", n);

    lws_st_file *f;
    CHECK_OK(lws_st_open(p, &f));
    if (!f) return;
    CHECK(lws_st_count(f) == 6, "count %u", lws_st_count(f));
    const lws_st_tensor *t;
    CHECK_OK(lws_st_get(f, "layers.0.w", LWS_ST_F32, (uint64_t[]){3, 5}, 2, &t));
    CHECK(t && t->bytes == 60 && memcmp(t->data, x.w, 60) == 0, "F32 (3, 5) differs");
    CHECK(t && (uintptr_t)t->data % 4 == 0, "F32 data not 4-byte aligned");
    CHECK_OK(lws_st_get(f, "ids", LWS_ST_I32, (uint64_t[]){7}, 1, &t));
    CHECK(t && memcmp(t->data, x.ids, 28) == 0, "I32 (7) differs");
    CHECK_OK(lws_st_get(f, "big", LWS_ST_I64, (uint64_t[]){2, 2}, 2, &t));
    CHECK(t && memcmp(t->data, x.big, 32) == 0 && (uintptr_t)t->data % 8 == 0,
          "I64 (2, 2) differs or is not 8-byte aligned");
    CHECK_OK(lws_st_get(f, "raw", LWS_ST_U8, (uint64_t[]){13}, 1, &t));
    CHECK(t && memcmp(t->data, x.raw, 13) == 0, "U8 (13) differs");
    CHECK_OK(lws_st_get(f, "scalar", LWS_ST_F32, NULL, 0, &t));
    CHECK(t && t->ndim == 0 && t->bytes == 4 && *(const float *)t->data == -3.25f, "scalar");
    CHECK_OK(lws_st_get(f, "empty", LWS_ST_F32, (uint64_t[]){0, 4}, 2, &t));
    CHECK(t && t->bytes == 0, "empty tensor has %llu bytes", t ? (unsigned long long)t->bytes : 0);
    for (uint32_t i = 0; i < lws_st_count(f); i++)
        CHECK(lws_st_find(f, lws_st_at(f, i)->name) == lws_st_at(f, i), "lookup of tensor %u", i);
    CHECK(lws_st_at(f, 6) == NULL && lws_st_find(f, "nope") == NULL, "absent tensors found");
    const char *step = lws_st_metadata(f, "step"), *cfg = lws_st_metadata(f, "config");
    const char *uni = lws_st_metadata(f, "unicode");
    CHECK(step && strcmp(step, "1000") == 0, "metadata step '%s'", step ? step : "(null)");
    CHECK(cfg && strcmp(cfg, "{\"name\": \"crown-18l\", \"quote\": \"\\\"\"}") == 0,
          "metadata config '%s'", cfg ? cfg : "(null)");
    CHECK(uni && strcmp(uni, "\xce\xb2 = 4.0\n") == 0, "metadata unicode");
    CHECK(lws_st_metadata(f, "absent") == NULL, "absent metadata found");

    /* Checked lookups name the file, the tensor and the difference. */
    lws_error_clear();
    CHECK(lws_st_get(f, "layers.0.w", LWS_ST_F32, (uint64_t[]){3, 6}, 2, &t) == LWS_ERR_DATA &&
              t == NULL && test_contains(lws_error_message(), "'layers.0.w' is F32 [3, 5]") &&
              test_contains(lws_error_message(), "F32 [3, 6] is expected") &&
              test_contains(lws_error_message(), p),
          "shape mismatch message: %s", lws_error_message());
    CHECK(lws_st_get(f, "ids", LWS_ST_U32, (uint64_t[]){7}, 1, &t) == LWS_ERR_DATA &&
              test_contains(lws_error_message(), "I32 [7]"),
          "dtype mismatch message: %s", lws_error_message());
    CHECK(lws_st_get(f, "wte", LWS_ST_F32, (uint64_t[]){1}, 1, &t) == LWS_ERR_DATA &&
              test_contains(lws_error_message(), "'wte' is missing"),
          "missing tensor message: %s", lws_error_message());
    lws_st_close(f);

    /* Rewriting over the file gives the same bytes. */
    CHECK_OK(write_fixture(&x, p));
    size_t n2;
    uint8_t *again = read_file(p, &n2);
    CHECK(n2 == n && memcmp(bytes, again, n) == 0, "rewrite is not byte-identical");
    free(again);

    /* Truncated: the data is cut short by 3 bytes. */
    CHECK(truncate(p, (off_t)n - 3) == 0, "truncate failed");
    char want[96];
    snprintf(want, sizeof want, "header says %zu bytes", n - 8 - (size_t)header);
    char have[64];
    snprintf(have, sizeof have, "the file has %zu", n - 8 - (size_t)header - 3);
    expect_refused("truncated data", p, want, have);
    CHECK(truncate(p, 4) == 0, "truncate failed");
    expect_refused("4-byte file", p, "truncated", NULL);
    CHECK(truncate(p, 8 + header / 2) == 0, "truncate failed");
    expect_refused("truncated header", p, "header length", "impossible");

    /* Corrupt header: eight bytes in the middle of the JSON zeroed. */
    memset(bytes + 8 + header / 2, 0, 8);
    FILE *out = fopen(p, "wb");
    fwrite(bytes, 1, n, out);
    fclose(out);
    expect_refused("corrupt header", p, "not valid JSON", "corrupt");
    free(bytes);
    free(x.w), free(x.ids), free(x.big), free(x.raw);
}

static void test_writer_refusals(void) {
    lws_st_writer *w;
    float v[2] = {1, 2};
    CHECK_OK(lws_st_writer_create(&w));
    CHECK_OK(lws_st_add(w, "a", LWS_ST_F32, (uint64_t[]){2}, 1, v));
    lws_error_clear();
    CHECK(lws_st_add(w, "a", LWS_ST_F32, (uint64_t[]){2}, 1, v) == LWS_ERR_INVALID &&
              test_contains(lws_error_message(), "'a' is added twice"),
          "duplicate name: %s", lws_error_message());
    CHECK(lws_st_add(w, "__metadata__", LWS_ST_F32, (uint64_t[]){2}, 1, v) == LWS_ERR_INVALID,
          "tensor named __metadata__ accepted");
    CHECK(lws_st_add(w, "b", LWS_ST_F32, (uint64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 9, v) ==
              LWS_ERR_INVALID,
          "9 dimensions accepted");
    CHECK(lws_st_add(w, "c", LWS_ST_F32, (uint64_t[]){2}, 1, NULL) == LWS_ERR_INVALID,
          "NULL data accepted");
    lws_error_clear();
    CHECK(lws_st_write(w, test_path("no/such/dir/x.safetensors")) == LWS_ERR_IO &&
              test_contains(lws_error_message(), "no/such/dir"),
          "write into a missing directory: %s", lws_error_message());
    lws_st_writer_destroy(w);
}

static void test_reader_refusals(void) {
    const char *p = test_path("bad.safetensors");
    /* Two F32[2] tensors: a [0, 8) and b [4, 12) share bytes 4..8. */
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
              12);
    expect_refused("overlap", p, "'a' [0, 8) and 'b' [4, 12) overlap", NULL);
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
              20);
    expect_refused("gap", p, "no tensor covers data bytes [8, 12)", "'a'");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_refused("shape vs offsets", p, "'a'", "shape [3] needs 12 bytes");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12);
    expect_refused("trailing bytes", p, "4 bytes after the last tensor", NULL);
    write_raw(p, "{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    expect_refused("unknown dtype", p, "dtype \"F8\" is not known", "F32");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
    expect_refused("negative shape", p, "'a'", "non-negative integer");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8);
    expect_refused("reversed offsets", p, "'a'", "begin <= end");
    write_raw(p,
              "{\"__metadata__\":{\"step\":12},\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
              "\"data_offsets\":[0,1]}}",
              1);
    expect_refused("non-string metadata", p, "metadata 'step' is not a string", NULL);
    write_raw(p,
              "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
              "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
              2);
    expect_refused("duplicate name", p, "'a'", "twice");
    write_raw(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}} x", 1);
    expect_refused("text after the JSON", p, "text after its JSON object at byte 54", NULL);
    write_raw(p, "[1, 2]", 0);
    expect_refused("header not an object", p, "not a JSON object", NULL);
    /* A hand-made file without padding and a metadata-only file are valid. */
    write_raw(p,
              "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"U8\",\"shape\":[3],"
              "\"data_offsets\":[0,3]}}",
              3);
    lws_st_file *f;
    CHECK_OK(lws_st_open(p, &f));
    if (f) {
        CHECK(lws_st_count(f) == 1 && strcmp(lws_st_metadata(f, "k"), "v") == 0,
              "unpadded header read wrongly");
        lws_st_close(f);
    }
    write_raw(p, "{}", 0);
    CHECK_OK(lws_st_open(p, &f));
    if (f) {
        CHECK(lws_st_count(f) == 0, "empty file has tensors");
        lws_st_close(f);
    }
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A header of n zero-size tensors t0, t1, ...; dup_last: the last is named t0. */
static void write_many(const char *path, uint32_t n, int dup_last) {
    size_t cap = (size_t)n * 72 + 16, len = 0;
    char *h = test_malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (uint32_t i = 0; i < n; i++)
        len +=
            (size_t)snprintf(h + len, cap - len,
                             "%s\"t%u\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                             i ? "," : "", dup_last && i == n - 1 ? 0 : i);
    snprintf(h + len, cap - len, "}");
    write_raw(path, h, 0);
    free(h);
}

/* Headers of many tensors are read, refused and searched in O(n log n): a
 * duplicate among 60000, more tensors than any model has, and a lookup of
 * every name. */
static void test_many_tensors(void) {
    const char *p = test_path("many.safetensors");
    write_many(p, 100000, 0);
    double t0 = seconds();
    expect_refused("100000 tensors", p, "100000 entries", "at most 65536");
    /* Seconds against minutes: pairwise name checks took over a minute here. */
    CHECK(seconds() - t0 < 20.0, "100000 tensors refused in %.2f s", seconds() - t0);
    write_many(p, 60000, 1);
    t0 = seconds();
    expect_refused("a duplicate among 60000 tensors", p, "'t0'", "twice");
    CHECK(seconds() - t0 < 20.0, "duplicate found in %.2f s", seconds() - t0);
    write_many(p, 60000, 0);
    t0 = seconds();
    lws_st_file *f;
    CHECK_OK(lws_st_open(p, &f));
    if (!f) return;
    uint32_t found = 0;
    char name[32];
    for (uint32_t i = 0; i < 60000; i++) {
        snprintf(name, sizeof name, "t%u", i);
        const lws_st_tensor *t = lws_st_find(f, name);
        found += t && strcmp(t->name, name) == 0;
    }
    CHECK(found == 60000 && !lws_st_find(f, "t60000") && !lws_st_find(f, ""),
          "every name found by lws_st_find (%u of 60000)", found);
    CHECK(seconds() - t0 < 20.0, "60000 tensors opened and looked up in %.2f s", seconds() - t0);
    lws_st_close(f);
}

int main(void) {
    test_dir("test_safetensors");
    test_rng rng;
    test_rng_seed(&rng, 5);
    test_round_trip(&rng);
    test_writer_refusals();
    test_reader_refusals();
    test_many_tensors();
    return test_finish(NULL);
}
