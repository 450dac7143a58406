/* --set PATH=VALUE and --print-config, the options of every command that
 * takes a config. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

const char lws_cli_sets_help[] =
    "  --set PATH=VALUE   override a config value after extends (repeatable, later wins);\n"
    "                     PATH like train.lr or lws.gqa.group_size, VALUE typed by the\n"
    "                     config's schema: 3e-4, true, crown, [0.5, 4.0], {\"kv_heads\": 2},\n"
    "                     null removes the key\n"
    "  --print-config     print the resolved config (after extends and --set) as JSON and\n"
    "                     exit\n";

int lws_cli_take_set(int *i, int argc, char **argv, const char *usage, lws_cli_sets *sets) {
    const char *a = argv[*i], *value = NULL;
    if (strcmp(a, "--print-config") == 0) {
        sets->print_config = 1;
        return 1;
    }
    if (strncmp(a, "--set=", 6) == 0)
        value = a + 6;
    else if (strcmp(a, "--set") == 0) {
        if (*i + 1 >= argc) return lws_cli_usage(usage, "--set needs PATH=VALUE");
        value = argv[++*i];
    } else
        return 0;
    if (sets->n == LWS_CLI_MAX_SETS)
        return lws_cli_usage(usage, "more than %d --set options", LWS_CLI_MAX_SETS);
    sets->items[sets->n++] = value;
    return 1;
}

int lws_cli_add_set(lws_cli_sets *sets, const char *usage, const char *fmt, ...) {
    if (sets->n == LWS_CLI_MAX_SETS || sets->n_owned == sizeof sets->owned / sizeof *sets->owned)
        return lws_cli_usage(usage, "too many config overrides");
    char *item = sets->owned[sets->n_owned++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof sets->owned[0], fmt, ap);
    va_end(ap);
    sets->items[sets->n++] = item;
    return 0;
}

lws_status lws_cli_load_config(const char *path, const lws_cli_sets *sets, lws_config *out) {
    return lws_config_load_with(path, sets ? sets->items : NULL, sets ? sets->n : 0, out);
}

int lws_cli_print_config(const lws_config *cfg) {
    char *text = lws_config_to_json(cfg);
    if (!text) {
        fprintf(stderr, "lws: out of memory printing the config\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}
