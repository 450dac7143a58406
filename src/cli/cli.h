/* Subcommands of the lws command line: one file each in src/cli/. Each takes
 * the arguments after its name and returns the process exit status. */
#ifndef LWS_CLI_H
#define LWS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lws/config.h"
#include "lws/dist.h"

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
int lws_cli_sweep(int argc, char **argv);

/* --dry-run of lws train and lws bench: the config's schedule and the memory
 * plan for the device at micro-batch (batch, seq), whether it fits and which
 * limit it breaks; allocates nothing. Returns the exit status: 0 if it fits,
 * 1 if not (or on an error). */
int lws_cli_dry_run(const lws_config *cfg, const char *device, uint32_t batch, uint32_t seq);

/* The MFU reference of a device: the cached measured peak (lws_peak_get,
 * measured and cached when absent), in a context of its own so that no
 * measurement buffer counts in a run's memory; prints where it came from.
 * NAN when the device gives no timestamps. */
lws_status lws_cli_peak(const char *device, double *peak);

/* Prints "lws: <message>" for a failed status and returns 1 (or 2 for usage). */
int lws_cli_error(void);

/* ---- one rank of several (cli/dist.c) ---- */
/* Joins the run (lws_dist_start); on ranks other than 0 standard output goes
 * to /dev/null. NULL after printing why when it cannot. */
lws_dist *lws_cli_dist_start(void);
/* A failure of this rank alone: prints the error ("rank R of N: " first on
 * several ranks, and then ends every rank with lws_dist_abort); on one rank
 * returns status. */
int lws_cli_dist_fail(lws_dist *d, int status);
/* "built with MPI (Open MPI v4.1.4)..." or "built without MPI...", one line. */
void lws_cli_dist_describe(FILE *out);
/* The device this rank uses, as a --device value ("" = the first): --device
 * "A,B,..." gives local rank i entry i, a single value is every rank's, and
 * without it local rank i takes device i modulo the device count. */
lws_status lws_cli_rank_device(const lws_dist *d, const char *device, char *out, size_t size);
int lws_cli_usage(const char *usage, const char *fmt, ...);

/* ---- the options of every command that takes a config (config_args.c) ---- */

#define LWS_CLI_MAX_SETS 64

/* --set PATH=VALUE overrides in command-line order, and --print-config. */
typedef struct lws_cli_sets {
    const char *items[LWS_CLI_MAX_SETS]; /* "PATH=VALUE", pointing into argv or owned */
    uint32_t n;
    int print_config;
    /* Overrides a command makes from its own options (--steps N is
     * train.steps=N): formatted here, so they go through the same checks. */
    char owned[8][1100];
    uint32_t n_owned;
} lws_cli_sets;

/* The lines of a command's --help that describe --set and --print-config. */
extern const char lws_cli_sets_help[];

/* In an option loop over argv: when argv[*i] is `--set PATH=VALUE` (*i then
 * moves past the value), `--set=PATH=VALUE` or `--print-config`, records it
 * and returns 1; returns 0 for any other argument. When --set lacks its
 * value or there are more than LWS_CLI_MAX_SETS, prints the problem with
 * usage and returns 2, the exit status:
 *
 *   int took = lws_cli_take_set(&i, argc, argv, usage, &sets);
 *   if (took == 2) return 2;
 *   if (took) continue;
 */
int lws_cli_take_set(int *i, int argc, char **argv, const char *usage, lws_cli_sets *sets);
/* Appends an override formatted like printf ("train.steps=%u"); returns 2
 * (after a usage message) when there is no room, else 0. */
int lws_cli_add_set(lws_cli_sets *sets, const char *usage, const char *fmt, ...)
    LWS_PRINTF(3, 4);
/* lws_config_load_with the overrides (sets may be NULL: none). */
lws_status lws_cli_load_config(const char *path, const lws_cli_sets *sets, lws_config *out);
/* The --print-config output: lws_config_to_json of cfg on stdout. Returns the
 * exit status (0, or 1 when out of memory). */
int lws_cli_print_config(const lws_config *cfg);
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
/* 12345.6 -> "12,346" (digits grouped by thousands); values under 100 keep a
 * decimal or two; "-" when not finite. Returns out. */
const char *lws_cli_number(double v, char *out, size_t cap);

/* A number > 0. */
int lws_parse_positive(const char *usage, const char *option, const char *text, double *out);

/* ---- a command's options, described as a table (args.c) ------------------ */

typedef enum lws_opt_kind {
    LWS_OPT_FLAG, /* --x: *(int *)out = 1 */
    LWS_OPT_TEXT, /* --x VALUE: *(const char **)out = VALUE */
    LWS_OPT_U32,  /* --x N: *(uint32_t *)out, a whole number in [min, max] */
    LWS_OPT_U64,  /* --x N: *(uint64_t *)out, a whole number in [min, max] */
    LWS_OPT_REAL, /* --x X: *(double *)out, in min..max (open ends: `open`) */
    LWS_OPT_SET,  /* --x VALUE: the config override `set=VALUE` (checked by the schema);
                     with min/max set, VALUE must be a whole number in [min, max] */
} lws_opt_kind;

typedef struct lws_cli_option {
    const char *name; /* "--device" */
    lws_opt_kind kind;
    void *out;
    double min, max;
    int open;         /* LWS_OPT_REAL: LWS_LO_OPEN | LWS_HI_OPEN */
    const char *note; /* shown with a refused value ("0 is greedy") */
    const char *set;  /* LWS_OPT_SET: the config path, e.g. "train.steps" */
    const char *also; /* LWS_OPT_SET: an override applied first, e.g. "data.val_tokens=null" */
} lws_cli_option;

typedef struct lws_cli_command {
    const char *usage;
    void (*help)(void);
    const lws_cli_option *options;
    uint32_t n_options;
    const char *positional;   /* what the one positional argument is ("CONFIG"); NULL: none */
    const char **positional_out;
    lws_cli_sets *sets; /* takes --set and --print-config when not NULL */
} lws_cli_command;

/* Parses argv by the table. Returns 0 to go on, -1 after printing --help (the
 * command exits 0), or 2 after a usage error (the exit status). The one
 * positional argument is required when `positional` is given. */
int lws_cli_parse(const lws_cli_command *c, int argc, char **argv);
/* The command's exit status from lws_cli_parse's return: 0 for --help. */
#define LWS_CLI_PARSE_EXIT(rc) ((rc) < 0 ? 0 : (rc))

/* A config loaded with the command's overrides into a malloc'd lws_config
 * (NULL after printing the error). */
lws_config *lws_cli_config(const char *path, const lws_cli_sets *sets);

#endif
