/* lws train CONFIG: trains a model on a Vulkan device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lws/config.h"
#include "lws/train.h"

static const char *usage =
    "lws train CONFIG [--device D] [--steps N] [--resume DIR] [--out DIR] [--data FILE]\n"
    "                 [--val FILE] [--profile] [--peak-tflops X] [--quiet] [--parity-dump DIR]";

static void help(void) {
    printf("usage: %s\n\n"
           "Trains the model CONFIG describes, on the first GPU (or --device).\n"
           "  --device D         device index or name substring (see `lws devices`)\n"
           "  --steps N          train N steps instead of train.steps\n"
           "  --resume DIR       continue from a checkpoint (or the newest in a run directory)\n"
           "  --out DIR          run directory (log.jsonl, checkpoints/) instead of train.out_dir\n"
           "  --data FILE        training token file instead of data.train\n"
           "  --val FILE         validation token file instead of data.val\n"
           "  --profile          print per-layer forward/backward times with each progress line\n"
           "  --peak-tflops X    MFU against X TFLOP/s instead of the measured matmul peak\n"
           "  --quiet            no progress lines\n"
           "  --parity-dump DIR  write the PyTorch parity files (random batch, weights,\n"
           "                     gradients, losses of --steps updates) into DIR and stop\n",
           usage);
}

static int need_value(int i, int argc, char **argv) {
    if (i + 1 >= argc) return lws_cli_usage(usage, "%s needs a value", argv[i]);
    return 0;
}

int lws_cli_train(int argc, char **argv) {
    lws_train_options opt = {0};
    const char *config_path = NULL, *data = NULL, *val = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--profile") == 0) {
            opt.profile = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            opt.quiet = 1;
        } else if (strcmp(a, "--device") == 0 || strcmp(a, "--steps") == 0 ||
                   strcmp(a, "--resume") == 0 || strcmp(a, "--out") == 0 ||
                   strcmp(a, "--data") == 0 || strcmp(a, "--val") == 0 ||
                   strcmp(a, "--peak-tflops") == 0 || strcmp(a, "--parity-dump") == 0) {
            int bad = need_value(i, argc, argv);
            if (bad) return bad;
            const char *v = argv[++i];
            if (strcmp(a, "--device") == 0)
                opt.device = v;
            else if (strcmp(a, "--resume") == 0)
                opt.resume = v;
            else if (strcmp(a, "--out") == 0)
                opt.out_dir = v;
            else if (strcmp(a, "--data") == 0)
                data = v;
            else if (strcmp(a, "--val") == 0)
                val = v;
            else if (strcmp(a, "--parity-dump") == 0)
                opt.parity_dump = v;
            else if (strcmp(a, "--steps") == 0) {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || n <= 0 || n > 0x7FFFFFFF)
                    return lws_cli_usage(usage, "--steps %s: expected a positive integer", v);
                opt.steps = (uint32_t)n;
            } else {
                char *end;
                double x = strtod(v, &end);
                if (*end || !(x > 0))
                    return lws_cli_usage(usage, "--peak-tflops %s: expected a positive number", v);
                opt.peak_tflops = x;
            }
        } else if (a[0] == '-') {
            return lws_cli_usage(usage, "unknown option '%s'", a);
        } else if (!config_path) {
            config_path = a;
        } else {
            return lws_cli_usage(usage, "one CONFIG only (got '%s' and '%s')", config_path, a);
        }
    }
    if (!config_path) return lws_cli_usage(usage, "no CONFIG given");
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) return 1;
    if (lws_config_load(config_path, cfg) != LWS_OK) {
        free(cfg);
        return lws_cli_error();
    }
    if (data) snprintf(cfg->data.train, sizeof cfg->data.train, "%s", data);
    if (val) snprintf(cfg->data.val, sizeof cfg->data.val, "%s", val);
    lws_status s = lws_train(cfg, &opt);
    free(cfg);
    if (s == LWS_ERR_INTERRUPTED) {
        fprintf(stderr, "lws: %s\n", lws_error_message());
        return 130;
    }
    return s == LWS_OK ? 0 : lws_cli_error();
}
