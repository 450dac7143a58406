#include "util/when.h"

#include <time.h>

void lws_utc_now(char *out, size_t n) {
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    if (!strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &utc) && n) out[0] = 0;
}
