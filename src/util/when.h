/* The time of day for records (reports, caches, results). */
#ifndef LWS_UTIL_WHEN_H
#define LWS_UTIL_WHEN_H

#include <stddef.h>

/* Now as ISO 8601 UTC, "2026-11-29T15:31:41Z" (n >= 21). */
void lws_utc_now(char *out, size_t n);

#endif
