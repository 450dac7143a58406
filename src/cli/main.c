/* lws — entry point: dispatches to the subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lws/status.h"

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"devices", lws_cli_devices, "list Vulkan devices and their capabilities"},
    {"schedule", lws_cli_schedule, "per-layer widths, parameters and FLOPs of configs"},
    {"train", lws_cli_train, "train a model from a config"},
    {"sample", lws_cli_sample, "generate text from a checkpoint"},
    {"eval", lws_cli_eval, "loss, perplexity and bits per byte of a checkpoint on a token file"},
    {"prepare", lws_cli_prepare, "tokenize text files into train/val token files"},
    {"tokenizer", lws_cli_tokenizer, "train a BPE vocabulary; encode and decode text"},
    {"bench", lws_cli_bench, "training throughput, MFU, per-layer and per-op times; peak; kernels"},
    {"compare", lws_cli_compare, "table and chart of several benchmark reports"},
    {"plot", lws_cli_plot, "SVG of training and validation loss against tokens for runs"},
    {"sweep", lws_cli_sweep, "the LWS ablation: variants x seeds (x a grid), results and charts"},
};

int lws_cli_error(void) {
    fprintf(stderr, "lws: %s\n", lws_error_message());
    return 1;
}

int lws_cli_usage(const char *usage, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lws: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    va_end(ap);
    return 2;
}

static void help(FILE *out) {
    fprintf(out,
            "lws %s — Layer-Wise Scaling transformer training on Vulkan\n\n"
            "usage: lws COMMAND [ARGS]\n\ncommands:\n",
            LWS_VERSION);
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nRun `lws COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lws %s\n", LWS_VERSION);
        lws_cli_dist_describe(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof *subcommands; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "lws: unknown command '%s'\n\n", argv[1]);
    help(stderr);
    return 2;
}
