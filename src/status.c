/* The error message store behind lws_fail / lws_error_context. */
#include "lws/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char error_message[8192];

lws_status lws_fail(lws_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return s;
}

void lws_error_context(const char *fmt, ...) {
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the message right and put "prefix: " in front (truncating the end). */
    size_t plen = strlen(prefix), mlen = strlen(error_message), cap = sizeof error_message - 1;
    if (plen + 2 > cap) plen = cap - 2;
    if (plen + 2 + mlen > cap) mlen = cap - plen - 2;
    memmove(error_message + plen + 2, error_message, mlen);
    memcpy(error_message, prefix, plen);
    error_message[plen] = ':';
    error_message[plen + 1] = ' ';
    error_message[plen + 2 + mlen] = 0;
}

const char *lws_error_message(void) { return error_message[0] ? error_message : "no error"; }

void lws_error_clear(void) { error_message[0] = 0; }

const char *lws_status_name(lws_status s) {
    switch (s) {
    case LWS_OK: return "ok";
    case LWS_ERR_VULKAN: return "Vulkan error";
    case LWS_ERR_NO_DRIVER: return "no Vulkan driver";
    case LWS_ERR_OUT_OF_MEMORY: return "out of memory";
    case LWS_ERR_INVALID: return "invalid argument";
    case LWS_ERR_CONFIG: return "configuration error";
    case LWS_ERR_IO: return "I/O error";
    case LWS_ERR_DATA: return "data error";
    case LWS_ERR_NUMERIC: return "numeric error";
    case LWS_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}
