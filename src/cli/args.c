/* Option values of the command line (see cli.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
