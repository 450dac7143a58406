/* lws — safetensors files (checkpoints and exported weights).
 *
 * Layout: u64 little-endian N, then N bytes of JSON header
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "string value", ...}}
 * padded with spaces to a multiple of 8, then the data. Offsets are relative
 * to the start of the data; the tensors tile it exactly (no gap, no overlap).
 *
 *   lws_st_writer *w;  lws_st_writer_create(&w);
 *   lws_st_add(w, "wte", LWS_ST_F32, (uint64_t[]){50304, 768}, 2, wte);
 *   lws_st_add_metadata(w, "step", "1000");
 *   lws_st_write(w, "ckpt.safetensors");   // temp file, fsync, rename
 *   lws_st_writer_destroy(w);
 *
 *   lws_st_file *f;  lws_st_open("ckpt.safetensors", &f);
 *   const lws_st_tensor *t;
 *   lws_st_get(f, "wte", LWS_ST_F32, (uint64_t[]){50304, 768}, 2, &t);  // t->data
 *   lws_st_close(f); */
#ifndef LWS_SAFETENSORS_H
#define LWS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "lws/status.h"

#define LWS_ST_MAX_DIMS 8

typedef enum lws_st_dtype {
    LWS_ST_BOOL,
    LWS_ST_U8,
    LWS_ST_I8,
    LWS_ST_U16,
    LWS_ST_I16,
    LWS_ST_F16,
    LWS_ST_BF16,
    LWS_ST_U32,
    LWS_ST_I32,
    LWS_ST_F32,
    LWS_ST_U64,
    LWS_ST_I64,
    LWS_ST_F64,
    LWS_ST_DTYPE_COUNT
} lws_st_dtype;

/* "F32", "I64", ... and the element size in bytes. */
const char *lws_st_dtype_name(lws_st_dtype d);
size_t lws_st_dtype_size(lws_st_dtype d);

typedef struct lws_st_tensor {
    const char *name;
    lws_st_dtype dtype;
    uint32_t ndim;
    uint64_t shape[LWS_ST_MAX_DIMS];
    const void *data; /* aligned to the element size when the writer was lws's */
    uint64_t offset;  /* of data from the start of the data section */
    uint64_t bytes;
} lws_st_tensor;

/* ---- writing ----------------------------------------------------------- */

typedef struct lws_st_writer lws_st_writer;

lws_status lws_st_writer_create(lws_st_writer **out);
void lws_st_writer_destroy(lws_st_writer *w);
/* Adds a tensor. data is NOT copied: it must stay valid until lws_st_write.
 * Names are unique and not "__metadata__". */
lws_status lws_st_add(lws_st_writer *w, const char *name, lws_st_dtype dtype, const uint64_t *shape,
                      uint32_t ndim, const void *data);
/* Adds (or replaces) a string in "__metadata__"; both strings are copied. */
lws_status lws_st_add_metadata(lws_st_writer *w, const char *key, const char *value);
/* Writes path.tmp, fsyncs, renames to path. Tensors are stored largest
 * element size first (then in the order added), so each is aligned. */
lws_status lws_st_write(const lws_st_writer *w, const char *path);

/* ---- reading ----------------------------------------------------------- */

typedef struct lws_st_file lws_st_file;

/* Maps and validates the whole file: header JSON, dtypes, shapes against
 * byte lengths, offsets inside the data and tiling it exactly. */
lws_status lws_st_open(const char *path, lws_st_file **out);
void lws_st_close(lws_st_file *f);

uint32_t lws_st_count(const lws_st_file *f);
const lws_st_tensor *lws_st_at(const lws_st_file *f, uint32_t i); /* in header order */
/* NULL when absent. */
const lws_st_tensor *lws_st_find(const lws_st_file *f, const char *name);
/* Looks up a tensor that must exist with this dtype and shape; the error
 * names the file, the tensor, and what differs. */
lws_status lws_st_get(const lws_st_file *f, const char *name, lws_st_dtype dtype,
                      const uint64_t *shape, uint32_t ndim, const lws_st_tensor **out);
/* A "__metadata__" string; NULL when absent. */
const char *lws_st_metadata(const lws_st_file *f, const char *key);
const char *lws_st_path(const lws_st_file *f);

#endif
