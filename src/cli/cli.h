/* Subcommands of the lws command line: one file each in src/cli/. Each takes
 * the arguments after its name and returns the process exit status. */
#ifndef LWS_CLI_H
#define LWS_CLI_H

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

#endif
