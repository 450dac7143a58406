/* Subcommands of the lws command line: one file each in src/cli/. Each takes
 * the arguments after its name and returns the process exit status. */
#ifndef LWS_CLI_H
#define LWS_CLI_H

#include <stdint.h>

int lws_cli_devices(int argc, char **argv);
int lws_cli_schedule(int argc, char **argv);
int lws_cli_train(int argc, char **argv);
int lws_cli_sample(int argc, char **argv);
int lws_cli_eval(int argc, char **argv);
int lws_cli_prepare(int argc, char **argv);
int lws_cli_tokenizer(int argc, char **argv);
int lws_cli_bench(int argc, char **argv);
int lws_cli_compare(int argc, char **argv);
int lws_cli_plot(int argc, char **argv);

/* Prints "lws: <message>" for a failed status and returns 1 (or 2 for usage). */
int lws_cli_error(void);
int lws_cli_usage(const char *usage, const char *fmt, ...);

/* Option values. Each parses text, the value given to option, into *out and
 * returns 0; a value that is malformed or out of range leaves *out alone,
 * prints "lws: OPTION 'TEXT' is not allowed; use <what is> (NOTE)" and the
 * usage, and returns 2 (the exit status). note: NULL or what the values
 * mean, e.g. "0: all tokens".
 *
 * Whole numbers are decimal digits only (no sign, no spaces) in [min, max]. */
int lws_parse_u64(const char *usage, const char *option, const char *text, uint64_t min,
                  uint64_t max, const char *note, uint64_t *out);
int lws_parse_u32(const char *usage, const char *option, const char *text, uint32_t min,
                  uint32_t max, uint32_t *out);

/* Real numbers are finite decimals between lo and hi; open: which ends are
 * excluded (hi = INFINITY: no upper end). */
enum { LWS_CLOSED = 0, LWS_LO_OPEN = 1, LWS_HI_OPEN = 2 };
int lws_parse_real(const char *usage, const char *option, const char *text, double lo, double hi,
                   int open, const char *note, double *out);
/* A number > 0. */
int lws_parse_positive(const char *usage, const char *option, const char *text, double *out);

#endif
