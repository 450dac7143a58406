/* The kernel-test harness (see harness.h). */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int test_failures, test_checks;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void test_rng_seed(test_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t test_rng_next(test_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double test_rng_uniform(test_rng *r) {
    return (double)(test_rng_next(r) >> 11) * 0x1.0p-53;
}

double test_rng_normal(test_rng *r) {
    double u1 = test_rng_uniform(r), u2 = test_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void *test_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test: out of host memory (%zu bytes)\n", bytes);
        abort();
    }
    return p;
}

float *test_random_floats(test_rng *r, size_t n, double std) {
    float *x = test_malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * test_rng_normal(r));
    return x;
}

float *test_random_rows(test_rng *r, uint32_t rows, uint32_t cols, double lo, double hi,
                        lws_dtype t) {
    float *x = test_malloc((size_t)rows * cols * sizeof *x);
    for (uint32_t i = 0; i < rows; i++) {
        double scale = pow(10.0, lo + (hi - lo) * test_rng_uniform(r));
        for (uint32_t c = 0; c < cols; c++)
            x[(size_t)i * cols + c] = test_round((float)(scale * test_rng_normal(r)), t);
    }
    return x;
}

double *test_to_double(const float *x, size_t n) {
    double *d = test_malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static char scratch_dir[512];

const char *test_dir(const char *name) {
    const char *base = getenv("LWS_TEST_DIR");
    if (base && *base) mkdir(base, 0777);
    snprintf(scratch_dir, sizeof scratch_dir, "%s/%s", base && *base ? base : "/tmp", name);
    mkdir(scratch_dir, 0777);
    return scratch_dir;
}

const char *test_path(const char *file) {
    static char paths[4][768];
    static int k;
    k = (k + 1) % 4;
    snprintf(paths[k], sizeof paths[k], "%s/%s", scratch_dir, file);
    return paths[k];
}

int test_contains(const char *s, const char *part) {
    return s && strstr(s, part) != NULL;
}

lws_context *test_context(void) {
    lws_context *ctx = NULL;
    lws_context_options opt = {.device = NULL, .validation = -1, .pipeline_cache = -1};
    if (lws_context_create(&opt, &ctx) != LWS_OK) {
        fprintf(stderr, "FAIL: cannot create a Vulkan context: %s\n", lws_error_message());
        exit(1);
    }
    const char *v = getenv("LWS_VALIDATION");
    if (v && strcmp(v, "1") == 0 && !lws_context_validation(ctx)) {
        fprintf(stderr, "FAIL: LWS_VALIDATION=1 but the validation messenger is not active\n");
        exit(1);
    }
    const lws_device_caps *c = lws_context_caps(ctx);
    printf("device: %s (subgroup %u, validation %s)\n", c->name, c->subgroup_size,
           lws_context_validation(ctx) ? "on" : "off");
    return ctx;
}

static void die_on(lws_status s, const char *what) {
    if (s != LWS_OK) {
        fprintf(stderr, "FAIL: %s: %s\n", what, lws_error_message());
        exit(1);
    }
}

lws_buffer test_upload(lws_context *ctx, const void *data, size_t bytes) {
    lws_buffer b;
    die_on(lws_alloc(ctx, bytes, &b), "lws_alloc");
    die_on(lws_upload(ctx, b, data, bytes), "lws_upload");
    return b;
}

lws_buffer test_upload_floats(lws_context *ctx, const float *data, size_t n) {
    return test_upload(ctx, data, n * sizeof(float));
}

lws_buffer test_output(lws_context *ctx, size_t n) {
    lws_buffer b;
    die_on(lws_alloc(ctx, n * sizeof(float), &b), "lws_alloc");
    die_on(lws_fill(ctx, b, 0x7FC00000u), "lws_fill"); /* quiet NaN */
    return b;
}

void test_download(lws_context *ctx, lws_buffer b, float *out, size_t n) {
    die_on(lws_download(ctx, b, out, n * sizeof(float)), "lws_download");
}

static uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_float(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t test_to16(float x, lws_dtype t) {
    uint32_t u = float_bits(x), sign = (u >> 16) & 0x8000u, ax = u & 0x7FFFFFFFu;
    if (t == LWS_BF16) {
        if (ax > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
        return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);
    if (ax < 0x38800000u) return (uint16_t)(sign | (uint32_t)rint(bits_float(ax) * 16777216.0));
    uint32_t r = ax - 0x38000000u;
    return (uint16_t)(sign | ((r + 0x0FFFu + ((r >> 13) & 1u)) >> 13));
}

float test_from16(uint16_t h, lws_dtype t) {
    if (t == LWS_BF16) return bits_float((uint32_t)h << 16);
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1F) return bits_float(sign | 0x7F800000u | (m << 13));
    float v = e == 0 ? (float)ldexp((double)m, -24) : (float)ldexp(1024.0 + m, (int)e - 25);
    return sign ? -v : v;
}

float test_round(float x, lws_dtype t) {
    return t == LWS_BF16 || t == LWS_F16 ? test_from16(test_to16(x, t), t) : x;
}

double test_unit_roundoff(lws_dtype t) {
    return t == LWS_BF16 ? ldexp(1.0, -8) : t == LWS_F16 ? ldexp(1.0, -11) : 0.0;
}

lws_buffer test_upload_as(lws_context *ctx, const float *x, size_t n, lws_dtype t) {
    if (t != LWS_BF16 && t != LWS_F16) return test_upload_floats(ctx, x, n);
    uint16_t *h = test_malloc(n * sizeof *h + 2);
    for (size_t i = 0; i < n; i++) h[i] = test_to16(x[i], t);
    lws_buffer b = test_upload(ctx, h, n * sizeof *h);
    b.dtype = t;
    free(h);
    return b;
}

lws_buffer test_output_as(lws_context *ctx, size_t n, lws_dtype t) {
    if (t != LWS_BF16 && t != LWS_F16) return test_output(ctx, n);
    lws_buffer b;
    die_on(lws_alloc(ctx, n * 2, &b), "lws_alloc");
    die_on(lws_fill(ctx, b, 0x7FC07FC0u), "lws_fill"); /* a quiet NaN in both types */
    b.dtype = t;
    return b;
}

void test_download_as(lws_context *ctx, lws_buffer b, float *out, size_t n) {
    if (b.dtype != LWS_BF16 && b.dtype != LWS_F16) {
        test_download(ctx, b, out, n);
        return;
    }
    uint16_t *h = test_malloc(n * sizeof *h + 2);
    die_on(lws_download(ctx, b, h, n * sizeof *h), "lws_download");
    for (size_t i = 0; i < n; i++) out[i] = test_from16(h[i], b.dtype);
    free(h);
}

void test_run(lws_context *ctx, void (*record)(lws_cmd *cmd, void *arg), void *arg) {
    lws_cmd *cmd;
    die_on(lws_cmd_begin(ctx, 0, &cmd), "lws_cmd_begin");
    record(cmd, arg);
    die_on(lws_cmd_end(cmd), "recording");
    die_on(lws_submit(ctx, &cmd, 1), "lws_submit");
    lws_cmd_destroy(cmd);
}

void test_expect_refused(lws_context *ctx, const char *what,
                         void (*record)(lws_cmd *cmd, void *arg), void *arg, const char *needle) {
    lws_cmd *cmd;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    lws_status s = LWS_OK;
    if (cmd) {
        record(cmd, arg);
        s = lws_cmd_end(cmd);
        lws_cmd_destroy(cmd);
    }
    const char *msg = lws_error_message();
    CHECK(s == LWS_ERR_INVALID && strstr(msg, needle), "%s: status %d, message '%s'", what, s, msg);
    printf("%s %s refused: %s\n", s == LWS_ERR_INVALID ? "ok  " : "FAIL", what, msg);
}

test_error test_compare(const float *got, const double *want, size_t n) {
    test_error e = {0, 0, 0, 0};
    double diff2 = 0, ref2 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            e.nonfinite++;
            continue;
        }
        double d = fabs((double)got[i] - want[i]);
        if (d > e.max_abs) e.max_abs = d, e.worst = i;
        diff2 += d * d;
        ref2 += want[i] * want[i];
    }
    e.rel_l2 = ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2);
    return e;
}

int test_close(const char *what, const float *got, const double *want, size_t n, double tol_abs,
               double tol_rel) {
    test_error e = test_compare(got, want, n);
    int ok = e.nonfinite == 0 && e.max_abs <= tol_abs && e.rel_l2 <= tol_rel;
    printf("%s %s: n=%zu max_abs=%.3g (tol %.1g) rel_l2=%.3g (tol %.1g)", ok ? "ok  " : "FAIL",
           what, n, e.max_abs, tol_abs, e.rel_l2, tol_rel);
    if (e.nonfinite) printf(" non-finite=%zu", e.nonfinite);
    if (!ok && n) printf(" worst[%zu]: got %.9g want %.9g", e.worst, got[e.worst], want[e.worst]);
    printf("\n");
    return ok;
}

int test_bitwise_equal(const char *what, const float *a, const float *b, size_t n) {
    int ok = memcmp(a, b, n * sizeof *a) == 0;
    printf("%s %s: bit-identical over %zu values\n", ok ? "ok  " : "FAIL", what, n);
    return ok;
}

double test_finite_difference(double (*f)(void *arg), void *arg, double *x, size_t i, double h) {
    double keep = x[i];
    x[i] = keep + h;
    double up = f(arg);
    x[i] = keep - h;
    double down = f(arg);
    x[i] = keep;
    return (up - down) / (2 * h);
}

int test_finish(lws_context *ctx) {
    lws_context_destroy(ctx);
    uint32_t messages = lws_validation_message_count();
    test_checks++;
    if (messages) {
        test_failures++;
        fprintf(stderr, "FAIL: %u Vulkan validation message(s) (printed above)\n", messages);
    }
    printf("%d checks: %d passed, %d failed\n", test_checks, test_checks - test_failures,
           test_failures);
    return test_failures ? 1 : 0;
}
