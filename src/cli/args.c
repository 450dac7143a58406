/* Option values of the command line (see cli.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int refuse(const char *usage, const char *option, const char *text, const char *allowed,
                  const char *note) {
    return lws_cli_usage(usage, "%s '%s' is not allowed; use %s%s%s%s", option, text, allowed,
                         note ? " (" : "", note ? note : "", note ? ")" : "");
}

int lws_parse_u64(const char *usage, const char *option, const char *text, uint64_t min,
                  uint64_t max, const char *note, uint64_t *out) {
    char *end = (char *)text;
    errno = 0;
    /* strtoull alone would take " 7", "+7" and "-1" (as 2^64 - 1). */
    int digits = text[0] >= '0' && text[0] <= '9';
    unsigned long long v = digits ? strtoull(text, &end, 10) : 0;
    if (!digits || errno || *end || v < min || v > max) {
        char allowed[96];
        snprintf(allowed, sizeof allowed, "a whole number from %llu to %llu",
                 (unsigned long long)min, (unsigned long long)max);
        return refuse(usage, option, text, allowed, note);
    }
    *out = v;
    return 0;
}

int lws_parse_u32(const char *usage, const char *option, const char *text, uint32_t min,
                  uint32_t max, uint32_t *out) {
    uint64_t v = 0;
    int rc = lws_parse_u64(usage, option, text, min, max, NULL, &v);
    if (rc == 0) *out = (uint32_t)v;
    return rc;
}

int lws_parse_real(const char *usage, const char *option, const char *text, double lo, double hi,
                   int open, const char *note, double *out) {
    char *end = (char *)text;
    /* The first character decides what strtod may not take: spaces, "nan", "inf". */
    int starts_well =
        (text[0] >= '0' && text[0] <= '9') || text[0] == '-' || text[0] == '+' || text[0] == '.';
    double v = starts_well ? strtod(text, &end) : NAN;
    int in_lo = open & LWS_LO_OPEN ? v > lo : v >= lo;
    int in_hi = open & LWS_HI_OPEN ? v < hi : v <= hi;
    if (!starts_well || *end || !isfinite(v) || !in_lo || !in_hi) {
        char allowed[96];
        if (isinf(hi))
            snprintf(allowed, sizeof allowed, "a number %s %g",
                     open & LWS_LO_OPEN ? ">" : ">=", lo);
        else
            snprintf(allowed, sizeof allowed, "a number in %c%g, %g%c",
                     open & LWS_LO_OPEN ? '(' : '[', lo, hi, open & LWS_HI_OPEN ? ')' : ']');
        return refuse(usage, option, text, allowed, note);
    }
    *out = v;
    return 0;
}

int lws_parse_positive(const char *usage, const char *option, const char *text, double *out) {
    return lws_parse_real(usage, option, text, 0, INFINITY, LWS_LO_OPEN | LWS_HI_OPEN, NULL, out);
}

static const lws_cli_option *find_option(const lws_cli_command *c, const char *name) {
    for (uint32_t i = 0; i < c->n_options; i++)
        if (strcmp(c->options[i].name, name) == 0) return &c->options[i];
    return NULL;
}

/* One option's value into its destination. */
static int take_value(const lws_cli_command *c, const lws_cli_option *o, const char *v) {
    uint64_t n = 0;
    int rc = 0;
    switch (o->kind) {
    case LWS_OPT_TEXT:
        *(const char **)o->out = v;
        return 0;
    case LWS_OPT_U32:
    case LWS_OPT_U64:
        rc = lws_parse_u64(c->usage, o->name, v, (uint64_t)o->min, (uint64_t)o->max, o->note, &n);
        if (rc == 0 && o->kind == LWS_OPT_U32) *(uint32_t *)o->out = (uint32_t)n;
        if (rc == 0 && o->kind == LWS_OPT_U64) *(uint64_t *)o->out = n;
        return rc;
    case LWS_OPT_REAL:
        return lws_parse_real(c->usage, o->name, v, o->min, o->max, o->open, o->note,
                              (double *)o->out);
    case LWS_OPT_SET:
        if (o->max > 0)
            rc = lws_parse_u64(c->usage, o->name, v, (uint64_t)o->min, (uint64_t)o->max, o->note,
                               &n);
        if (rc == 0 && o->also) rc = lws_cli_add_set(c->sets, c->usage, "%s", o->also);
        if (rc == 0) rc = lws_cli_add_set(c->sets, c->usage, "%s=%s", o->set, v);
        return rc;
    default:
        return 0;
    }
}

int lws_cli_parse(const lws_cli_command *c, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help();
            return -1;
        }
        if (c->sets) {
            int took = lws_cli_take_set(&i, argc, argv, c->usage, c->sets);
            if (took == 2) return 2;
            if (took) continue;
        }
        const lws_cli_option *o = a[0] == '-' && a[1] ? find_option(c, a) : NULL;
        if (a[0] == '-' && a[1] && !o) return lws_cli_usage(c->usage, "unknown option '%s'", a);
        if (o && o->kind == LWS_OPT_FLAG) {
            *(int *)o->out = 1;
        } else if (o) {
            if (i + 1 >= argc) return lws_cli_usage(c->usage, "%s needs a value", a);
            int rc = take_value(c, o, argv[++i]);
            if (rc) return rc;
        } else if (!c->positional) {
            return lws_cli_usage(c->usage, "unexpected argument '%s'", a);
        } else if (*c->positional_out) {
            return lws_cli_usage(c->usage, "one %s only (got '%s' and '%s')", c->positional,
                                 *c->positional_out, a);
        } else {
            *c->positional_out = a;
        }
    }
    if (c->positional && !*c->positional_out)
        return lws_cli_usage(c->usage, "no %s given", c->positional);
    return 0;
}

lws_config *lws_cli_config(const char *path, const lws_cli_sets *sets) {
    lws_config *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        fprintf(stderr, "lws: out of memory loading %s\n", path);
        return NULL;
    }
    if (lws_cli_load_config(path, sets, cfg) != LWS_OK) {
        free(cfg);
        lws_cli_error();
        return NULL;
    }
    return cfg;
}

/* 12345.6 -> "12,346"; values under 100 keep a decimal or two. */
const char *lws_cli_number(double v, char *out, size_t cap) {
    if (!isfinite(v)) {
        snprintf(out, cap, "-");
        return out;
    }
    if (v < 100) {
        snprintf(out, cap, v < 10 ? "%.2f" : "%.1f", v);
        return out;
    }
    char digits[64];
    int len = snprintf(digits, sizeof digits, "%.0f", v), k = 0;
    for (int i = 0; i < len && k + 2 < (int)cap; i++) {
        if (i && (len - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = 0;
    return out;
}
