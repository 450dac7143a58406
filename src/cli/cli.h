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

/* --dry-run of lws train and lws bench: the config's schedule and the memory
 * plan for the device at micro-batch (batch, seq), whether it fits and which
 * limit it breaks; allocates nothing. Returns the exit status: 0 if it fits,
 * 1 if not (or on an error). */
struct lws_config;
int lws_cli_dry_run(const struct lws_config *cfg, const char *device, uint32_t batch,
                    uint32_t seq);

/* Prints "lws: <message>" for a failed status and returns 1 (or 2 for usage). */
int lws_cli_error(void);
int lws_cli_usage(const char *usage, const char *fmt, ...);

#endif
