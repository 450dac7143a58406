/* lws — status codes and the one error path.
 *
 * A library function returns an lws_status. On failure it has recorded a
 * message with lws_fail(); each caller may prepend context with
 * lws_error_context(), and the CLI prints lws_error_message() once. */
#ifndef LWS_STATUS_H
#define LWS_STATUS_H

typedef enum lws_status {
    LWS_OK = 0,
    LWS_ERR_VULKAN,        /* a Vulkan call failed */
    LWS_ERR_NO_DRIVER,     /* no Vulkan loader or no driver (ICD) */
    LWS_ERR_OUT_OF_MEMORY, /* host or device memory exhausted */
    LWS_ERR_INVALID,       /* an argument or shape is not allowed */
    LWS_ERR_CONFIG,        /* a configuration file is wrong */
    LWS_ERR_IO,            /* a file could not be read or written */
    LWS_ERR_DATA,          /* a data or checkpoint file is malformed */
    LWS_ERR_NUMERIC,       /* NaN or Inf where a finite value is needed */
    LWS_ERR_INTERRUPTED,   /* stopped by a signal */
} lws_status;

#if defined(__GNUC__)
#define LWS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LWS_PRINTF(a, b)
#endif

/* Records the message (replacing any earlier one) and returns s. */
lws_status lws_fail(lws_status s, const char *fmt, ...) LWS_PRINTF(2, 3);
/* Prepends "context: " to the recorded message. */
void lws_error_context(const char *fmt, ...) LWS_PRINTF(1, 2);
const char *lws_error_message(void);
void lws_error_clear(void);
const char *lws_status_name(lws_status s);

/* Propagates a failing status to the caller. */
#define LWS_TRY(expr)                                                                              \
    do {                                                                                           \
        lws_status lws_try_s_ = (expr);                                                            \
        if (lws_try_s_ != LWS_OK) return lws_try_s_;                                               \
    } while (0)

#endif
