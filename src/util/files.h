/* File helpers shared by every part of lws. */
#ifndef LWS_UTIL_FILES_H
#define LWS_UTIL_FILES_H

#include <stddef.h>

#include "lws/status.h"

lws_status lws_mkdir_p(const char *path);
lws_status lws_read_file(const char *path, size_t max_bytes, char **out, size_t *len);
lws_status lws_write_file_atomic(const char *path, const void *data, size_t n);

#endif
