/* The kernel-test harness: seeded random inputs, fp64 references, stated
 * tolerances, poisoned outputs, and a validation-message check.
 *
 *   lws_context *ctx = test_context();       // validation from LWS_VALIDATION
 *   lws_buffer x = test_upload(ctx, xs, n);  // fp32 from host floats
 *   lws_buffer y = test_output(ctx, n);      // poisoned with NaN
 *   ... record, submit ...
 *   test_download(ctx, y, got, n);
 *   CHECK_CLOSE("axpby n=7", got, want, n, 1e-6, 1e-6);
 *   return test_finish(ctx);                 // fails on any validation message
 */
#ifndef LWS_TEST_HARNESS_H
#define LWS_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lws/vk.h"

/* ---- random inputs: xoshiro256** seeded by splitmix64 ---- */
typedef struct test_rng {
    uint64_t s[4];
} test_rng;
void test_rng_seed(test_rng *r, uint64_t seed);
uint64_t test_rng_next(test_rng *r);
double test_rng_uniform(test_rng *r); /* [0, 1) */
double test_rng_normal(test_rng *r);
/* n floats, normal with the given std (malloc'd; abort on OOM: tests only). */
float *test_random_floats(test_rng *r, size_t n, double std);
double *test_to_double(const float *x, size_t n);
void *test_malloc(size_t bytes);

/* ---- files ---- */
/* Creates and returns the test's scratch directory, $LWS_TEST_DIR/name (or
 * /tmp/name); test_path(file) is then "<that dir>/file" (four rotating
 * buffers, so a call can take a few paths at once). */
const char *test_dir(const char *name);
const char *test_path(const char *file);
int test_contains(const char *s, const char *part);

/* ---- device side ---- */
lws_context *test_context(void);
lws_buffer test_upload(lws_context *ctx, const void *data, size_t bytes);
lws_buffer test_upload_floats(lws_context *ctx, const float *data, size_t n);
/* An output buffer of n floats filled with NaN, so an unwritten element fails. */
lws_buffer test_output(lws_context *ctx, size_t n);
void test_download(lws_context *ctx, lws_buffer b, float *out, size_t n);
/* Records with fn, submits, waits; a failure fails the test. */
void test_run(lws_context *ctx, void (*record)(lws_cmd *cmd, void *arg), void *arg);

/* ---- 16-bit element types (bf16, f16), converted on the host the way the
 * shaders do (shaders/common/lws.glsl): round to nearest even, overflow to
 * infinity, NaN kept ---- */
uint16_t test_to16(float x, lws_dtype t);
float test_from16(uint16_t bits, lws_dtype t);
/* x rounded to type t (x itself for LWS_F32). */
float test_round(float x, lws_dtype t);
/* The largest relative rounding error of type t: 2^-8 (bf16), 2^-11 (f16), 0. */
double test_unit_roundoff(lws_dtype t);
/* rows x cols normal values, row r scaled by 10^(lo + (hi - lo) u_r) with u_r
 * uniform in [0, 1) (so rstd varies across rows), rounded to type t. */
float *test_random_rows(test_rng *r, uint32_t rows, uint32_t cols, double lo, double hi,
                        lws_dtype t);
/* Uploads n floats as type t (rounded), the buffer's dtype set to t. */
lws_buffer test_upload_as(lws_context *ctx, const float *x, size_t n, lws_dtype t);
/* An output of n elements of type t poisoned with NaN. */
lws_buffer test_output_as(lws_context *ctx, size_t n, lws_dtype t);
/* Downloads n elements of b (its dtype) as floats. */
void test_download_as(lws_context *ctx, lws_buffer b, float *out, size_t n);

/* Records with fn alone and expects the recording refused: LWS_ERR_INVALID
 * with a message containing needle (a failed check otherwise). */
void test_expect_refused(lws_context *ctx, const char *what,
                         void (*record)(lws_cmd *cmd, void *arg), void *arg, const char *needle);

/* ---- comparisons ---- */
typedef struct test_error {
    double max_abs, rel_l2;
    size_t worst, nonfinite;
} test_error;
test_error test_compare(const float *got, const double *want, size_t n);
/* Passes when max |got - want| <= tol_abs + and relative L2 <= tol_rel, and
 * every value is finite. Prints one line either way. */
int test_close(const char *what, const float *got, const double *want, size_t n, double tol_abs,
               double tol_rel);
int test_bitwise_equal(const char *what, const float *a, const float *b, size_t n);

/* Central finite difference of f at x[i] with step h (x is modified and restored). */
double test_finite_difference(double (*f)(void *arg), void *arg, double *x, size_t i, double h);

/* ---- bookkeeping ---- */
extern int test_failures, test_checks;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)
#define CHECK_CLOSE(what, got, want, n, tol_abs, tol_rel)                                          \
    do {                                                                                           \
        test_checks++;                                                                             \
        if (!test_close(what, got, want, n, tol_abs, tol_rel)) test_failures++;                    \
    } while (0)
/* Fails the test on an lws error (prints the message). */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        lws_status check_s_ = (expr);                                                              \
        test_checks++;                                                                             \
        if (check_s_ != LWS_OK) {                                                                  \
            test_failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                     \
                    lws_error_message());                                                          \
        }                                                                                          \
    } while (0)

/* Destroys ctx (may be NULL), checks validation messages, prints the summary
 * line, and returns the process exit status. */
int test_finish(lws_context *ctx);

#endif
