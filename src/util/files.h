/* File helpers: directory trees, whole-file reads, atomic whole-file writes.
 *
 * Every failure is an lws_status whose message names the path and the
 * reason (strerror, or what the path is when it is not what was expected);
 * messages never quote a file's contents. lws_file_commit, which makes a
 * finished temporary file the real one, is defined with these and declared
 * in lws/data.h (it is public). */
#ifndef LWS_UTIL_FILES_H
#define LWS_UTIL_FILES_H

#include <stddef.h>
#include <sys/types.h>

#include "lws/status.h"

/* mkdir -p: creates every missing directory of path with mode 0755 (less
 * the umask). Succeeds when path already is a directory; fails naming the
 * first component that cannot be made (exists but is not a directory,
 * permission denied, name too long, ...). */
lws_status lws_mkdir_p(const char *path);

/* Opens path (open(2) flags, O_CLOEXEC added) for a caller that mmaps or
 * streams it, refusing anything that is not a regular file: the open is
 * non-blocking so a FIFO cannot hang it, fstat of the open descriptor
 * decides (no race with a rename), then O_NONBLOCK is cleared again.
 * *size (when size is not NULL): the size fstat reports. On failure *fd is
 * -1. */
lws_status lws_open_regular(const char *path, int flags, int *fd, size_t *size);

/* The whole regular file path in a malloc'd buffer with a NUL after the
 * last byte (*len bytes, not counting it). Refuses a file over max_bytes,
 * naming its size and the limit; the read stops at max_bytes + 1 bytes
 * whatever the size fstat reports (files in /proc say 0). On failure *out is
 * NULL and *len 0. */
lws_status lws_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* The same for an open descriptor (standard input, a pipe), read to its
 * end; name is for the messages. */
lws_status lws_read_fd(const char *name, int fd, size_t max_bytes, char **out, size_t *len);

/* Replaces path with n bytes of data, durably: writes a temporary file next
 * to it (path.tmp-<pid>-<k>, unique, so concurrent writers never share
 * one), fsyncs it, renames it over path and fsyncs the directory. A crash
 * leaves the old file or the new one; on failure the temporary file is
 * removed. */
lws_status lws_write_file_atomic(const char *path, const void *data, size_t n);

/* json pretty-printed and a newline, written with lws_write_file_atomic. */
struct cJSON;
lws_status lws_write_json_atomic(const char *path, const struct cJSON *json);

/* Why a stat'ed path is not a regular file, e.g. "a directory", "a FIFO". */
const char *lws_file_kind(mode_t mode);

/* Removes a file, or a directory and everything below it (links are
 * removed, never followed). A path that does not exist is not an error. */
lws_status lws_remove_tree(const char *path);

/* lws's cache directory, $XDG_CACHE_HOME/lws or else ~/.cache/lws, into out
 * (not created). Returns 0 (out "") when neither variable is set. */
int lws_cache_dir(char *out, size_t n);

#endif
