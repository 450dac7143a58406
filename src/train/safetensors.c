/* safetensors reader and writer (layout in include/lws/safetensors.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lws/data.h" /* lws_file_commit */
#include "lws/safetensors.h"
#include "util/files.h"

/* The safetensors reference implementation refuses headers above 100 MB. */
#define MAX_HEADER_BYTES (100u << 20)
/* A large model has a few thousand tensors; a header listing more than
 * this is not a model's. */
#define MAX_TENSORS  (1u << 16)
#define METADATA_KEY "__metadata__"

static const struct {
    const char *name;
    size_t size;
} dtypes[LWS_ST_DTYPE_COUNT] = {
    [LWS_ST_BOOL] = {"BOOL", 1}, [LWS_ST_U8] = {"U8", 1},   [LWS_ST_I8] = {"I8", 1},
    [LWS_ST_U16] = {"U16", 2},   [LWS_ST_I16] = {"I16", 2}, [LWS_ST_F16] = {"F16", 2},
    [LWS_ST_BF16] = {"BF16", 2}, [LWS_ST_U32] = {"U32", 4}, [LWS_ST_I32] = {"I32", 4},
    [LWS_ST_F32] = {"F32", 4},   [LWS_ST_U64] = {"U64", 8}, [LWS_ST_I64] = {"I64", 8},
    [LWS_ST_F64] = {"F64", 8},
};

const char *lws_st_dtype_name(lws_st_dtype d) {
    return (unsigned)d < LWS_ST_DTYPE_COUNT ? dtypes[d].name : "unknown";
}

size_t lws_st_dtype_size(lws_st_dtype d) {
    return (unsigned)d < LWS_ST_DTYPE_COUNT ? dtypes[d].size : 0;
}

/* elements * element size, or 0 with *overflow set. */
static uint64_t tensor_bytes(lws_st_dtype d, const uint64_t *shape, uint32_t ndim, int *overflow) {
    uint64_t n = lws_st_dtype_size(d);
    *overflow = 0;
    for (uint32_t i = 0; i < ndim; i++) {
        if (shape[i] && n > UINT64_MAX / shape[i]) {
            *overflow = 1;
            return 0;
        }
        n *= shape[i];
    }
    return n;
}

static void shape_string(const uint64_t *shape, uint32_t ndim, char *out, size_t cap) {
    size_t used = (size_t)snprintf(out, cap, "[");
    for (uint32_t i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%" PRIu64, i ? ", " : "", shape[i]);
    if (used < cap) snprintf(out + used, cap - used, "]");
}

/* ---- writer ------------------------------------------------------------ */

typedef struct st_entry {
    char *name;
    lws_st_dtype dtype;
    uint32_t ndim;
    uint64_t shape[LWS_ST_MAX_DIMS];
    const void *data;
    uint64_t bytes;
} st_entry;

struct lws_st_writer {
    st_entry *tensors;
    uint32_t count, capacity;
    char **keys, **values;
    uint32_t meta_count, meta_capacity;
};

lws_status lws_st_writer_create(lws_st_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
}

void lws_st_writer_destroy(lws_st_writer *w) {
    if (!w) return;
    for (uint32_t i = 0; i < w->count; i++) free(w->tensors[i].name);
    for (uint32_t i = 0; i < w->meta_count; i++) free(w->keys[i]), free(w->values[i]);
    free(w->tensors), free(w->keys), free(w->values), free(w);
}

lws_status lws_st_add(lws_st_writer *w, const char *name, lws_st_dtype dtype, const uint64_t *shape,
                      uint32_t ndim, const void *data) {
    if (!name || !name[0] || strcmp(name, METADATA_KEY) == 0)
        return lws_fail(LWS_ERR_INVALID, "safetensors: tensor name '%s' is not allowed",
                        name ? name : "(null)");
    if ((unsigned)dtype >= LWS_ST_DTYPE_COUNT)
        return lws_fail(LWS_ERR_INVALID, "safetensors: tensor '%s': dtype %d is not known", name,
                        (int)dtype);
    if (ndim > LWS_ST_MAX_DIMS)
        return lws_fail(LWS_ERR_INVALID,
                        "safetensors: tensor '%s': %u dimensions; at most %d are supported", name,
                        ndim, LWS_ST_MAX_DIMS);
    for (uint32_t i = 0; i < w->count; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return lws_fail(LWS_ERR_INVALID, "safetensors: tensor '%s' is added twice", name);
    int overflow;
    uint64_t bytes = tensor_bytes(dtype, shape, ndim, &overflow);
    if (overflow)
        return lws_fail(LWS_ERR_INVALID, "safetensors: tensor '%s': size overflows 64 bits", name);
    if (bytes && !data)
        return lws_fail(LWS_ERR_INVALID, "safetensors: tensor '%s': data is NULL", name);
    if (w->count == w->capacity) {
        uint32_t cap = w->capacity ? 2 * w->capacity : 64;
        st_entry *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        w->tensors = p, w->capacity = cap;
    }
    st_entry *e = &w->tensors[w->count];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    e->dtype = dtype, e->ndim = ndim, e->data = data, e->bytes = bytes;
    if (ndim) memcpy(e->shape, shape, ndim * sizeof *shape);
    w->count++;
    return LWS_OK;
}

lws_status lws_st_add_metadata(lws_st_writer *w, const char *key, const char *value) {
    if (!key || !value)
        return lws_fail(LWS_ERR_INVALID, "safetensors: metadata key and value must not be NULL");
    char *v = strdup(value);
    if (!v) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    for (uint32_t i = 0; i < w->meta_count; i++)
        if (strcmp(w->keys[i], key) == 0) {
            free(w->values[i]);
            w->values[i] = v;
            return LWS_OK;
        }
    if (w->meta_count == w->meta_capacity) {
        uint32_t cap = w->meta_capacity ? 2 * w->meta_capacity : 16;
        char **k = realloc(w->keys, cap * sizeof *k);
        if (k) w->keys = k;
        char **vs = k ? realloc(w->values, cap * sizeof *vs) : NULL;
        if (vs) w->values = vs;
        if (!k || !vs) {
            free(v);
            return lws_fail(LWS_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        }
        w->meta_capacity = cap;
    }
    w->keys[w->meta_count] = strdup(key);
    if (!w->keys[w->meta_count]) {
        free(v);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
    }
    w->values[w->meta_count++] = v;
    return LWS_OK;
}

static cJSON *json_u64(uint64_t v) {
    /* Raw text: cJSON's doubles would print large offsets in exponent form. */
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

/* The header JSON, padded with spaces to a multiple of 8. order[i]: the
 * tensor stored i-th. */
static char *header_json(const lws_st_writer *w, const uint32_t *order, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && w->meta_count) {
        cJSON *meta = cJSON_AddObjectToObject(root, METADATA_KEY);
        ok = meta != NULL;
        for (uint32_t i = 0; ok && i < w->meta_count; i++)
            ok = cJSON_AddStringToObject(meta, w->keys[i], w->values[i]) != NULL;
    }
    uint64_t offset = 0;
    for (uint32_t k = 0; ok && k < w->count; k++) {
        const st_entry *e = &w->tensors[order[k]];
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        ok = t && cJSON_AddStringToObject(t, "dtype", dtypes[e->dtype].name);
        cJSON *shape = ok ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *offsets = shape ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        ok = offsets != NULL;
        for (uint32_t d = 0; ok && d < e->ndim; d++)
            ok = cJSON_AddItemToArray(shape, json_u64(e->shape[d]));
        ok = ok && cJSON_AddItemToArray(offsets, json_u64(offset)) &&
             cJSON_AddItemToArray(offsets, json_u64(offset + e->bytes));
        offset += e->bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    char *out = realloc(text, padded + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    *len = padded;
    return out;
}

static lws_status write_all(FILE *f, const void *p, uint64_t n, const char *path) {
    if (n && fwrite(p, 1, (size_t)n, f) != n)
        return lws_fail(LWS_ERR_IO, "file %s: write failed: %s (is the disk full?)", path,
                        strerror(errno));
    return LWS_OK;
}

lws_status lws_st_write(const lws_st_writer *w, const char *path) {
    /* Largest element size first keeps every tensor aligned to its element. */
    uint32_t *order = malloc((w->count + 1) * sizeof *order);
    if (!order) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    uint32_t n = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (uint32_t i = 0; i < w->count; i++)
            if (dtypes[w->tensors[i].dtype].size == size) order[n++] = i;
    size_t header_len = 0;
    char *header = header_json(w, order, &header_len);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!header || !tmp) {
        free(order), free(header), free(tmp);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory for the header", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    lws_status s = LWS_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s = lws_fail(LWS_ERR_IO, "file %s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    uint8_t len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (uint8_t)((uint64_t)header_len >> (8 * i));
    s = write_all(f, len_le, 8, tmp);
    if (s == LWS_OK) s = write_all(f, header, header_len, tmp);
    for (uint32_t k = 0; s == LWS_OK && k < n; k++)
        s = write_all(f, w->tensors[order[k]].data, w->tensors[order[k]].bytes, tmp);
    if (fclose(f) != 0 && s == LWS_OK)
        s = lws_fail(LWS_ERR_IO, "file %s: close failed: %s", tmp, strerror(errno));
    if (s == LWS_OK) s = lws_file_commit(tmp, path);
    if (s != LWS_OK) unlink(tmp);
done:
    free(order), free(header), free(tmp);
    return s;
}

/* ---- reader ------------------------------------------------------------ */

struct lws_st_file {
    char *path;
    void *map;
    size_t map_bytes;
    cJSON *root; /* tensor names point into it */
    const cJSON *metadata;
    lws_st_tensor *tensors;
    uint32_t *by_name; /* tensor indices sorted by name */
    uint32_t count;
};

static lws_status bad_header(const lws_st_file *f, const char *tensor, const char *problem) {
    if (tensor) return lws_fail(LWS_ERR_DATA, "file %s: tensor '%s': %s", f->path, tensor, problem);
    return lws_fail(LWS_ERR_DATA, "file %s: %s", f->path, problem);
}

/* A JSON number that is an exact non-negative integer (doubles are exact
 * up to 2^53, far beyond any file offset in practice). */
static int json_u64_value(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static lws_status parse_tensor(lws_st_file *f, const cJSON *j, lws_st_tensor *t) {
    const char *name = j->string;
    t->name = name;
    if (!cJSON_IsObject(j)) return bad_header(f, name, "entry is not a JSON object");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets))
        return bad_header(f, name,
                          "entry needs \"dtype\" (string), \"shape\" (array) and "
                          "\"data_offsets\" (array)");
    int found = 0;
    for (int d = 0; d < LWS_ST_DTYPE_COUNT; d++)
        if (strcmp(dt->valuestring, dtypes[d].name) == 0) t->dtype = (lws_st_dtype)d, found = 1;
    if (!found)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tensor '%s': dtype \"%s\" is not known; known: BOOL, U8, I8, "
                        "U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64",
                        f->path, name, dt->valuestring);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > LWS_ST_MAX_DIMS)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tensor '%s': %d dimensions; at most %d are supported", f->path,
                        name, ndim, LWS_ST_MAX_DIMS);
    t->ndim = (uint32_t)ndim;
    for (int d = 0; d < ndim; d++)
        if (!json_u64_value(cJSON_GetArrayItem(shape, d), &t->shape[d]))
            return bad_header(f, name, "shape holds a value that is not a non-negative integer");
    uint64_t begin, end;
    if (cJSON_GetArraySize(offsets) != 2 ||
        !json_u64_value(cJSON_GetArrayItem(offsets, 0), &begin) ||
        !json_u64_value(cJSON_GetArrayItem(offsets, 1), &end) || end < begin)
        return bad_header(f, name, "data_offsets must be [begin, end] with 0 <= begin <= end");
    int overflow;
    uint64_t want = tensor_bytes(t->dtype, t->shape, t->ndim, &overflow);
    if (overflow) return bad_header(f, name, "shape overflows 64 bits");
    if (want != end - begin) {
        char s[256];
        shape_string(t->shape, t->ndim, s, sizeof s);
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tensor '%s': dtype %s shape %s needs %" PRIu64
                        " bytes but data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64,
                        f->path, name, dtypes[t->dtype].name, s, want, begin, end, end - begin);
    }
    t->offset = begin;
    t->bytes = want;
    return LWS_OK;
}

typedef struct extent {
    uint64_t begin, end;
    uint32_t tensor;
} extent;

static int by_begin(const void *a, const void *b) {
    const extent *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The tensors must tile [0, data_bytes) exactly: no gap, no overlap. */
static lws_status check_tiling(lws_st_file *f, uint64_t data_bytes) {
    uint64_t max_end = 0;
    const char *last = NULL;
    for (uint32_t i = 0; i < f->count; i++) {
        uint64_t end = f->tensors[i].offset + f->tensors[i].bytes;
        if (end > max_end) max_end = end, last = f->tensors[i].name;
    }
    if (max_end > data_bytes)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: truncated: the header says %" PRIu64
                        " bytes of tensor data (tensor '%s' ends there), the file has %" PRIu64,
                        f->path, max_end, last, data_bytes);
    if (max_end < data_bytes)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: %" PRIu64
                        " bytes after the last tensor: the header describes %" PRIu64
                        " bytes of data, the file has %" PRIu64,
                        f->path, data_bytes - max_end, max_end, data_bytes);
    extent *e = malloc((f->count + 1) * sizeof *e);
    if (!e) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", f->path);
    for (uint32_t i = 0; i < f->count; i++)
        e[i] = (extent){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].bytes, i};
    qsort(e, f->count, sizeof *e, by_begin);
    lws_status s = LWS_OK;
    for (uint32_t k = 1; k <= f->count && s == LWS_OK; k++) {
        uint64_t covered = k > 1 ? e[k - 2].end : 0;
        const extent *t = &e[k - 1];
        if (t->begin < covered)
            s = lws_fail(LWS_ERR_DATA,
                         "file %s: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64
                         ", %" PRIu64 ") overlap",
                         f->path, f->tensors[e[k - 2].tensor].name, e[k - 2].begin, covered,
                         f->tensors[t->tensor].name, t->begin, t->end);
        else if (t->begin > covered)
            s = lws_fail(LWS_ERR_DATA,
                         "file %s: no tensor covers data bytes [%" PRIu64 ", %" PRIu64
                         ") (before tensor '%s')",
                         f->path, covered, t->begin, f->tensors[t->tensor].name);
    }
    free(e);
    return s;
}

/* qsort has no context argument: the tensors being sorted. */
static _Thread_local const lws_st_tensor *sorting;

static int by_name(const void *a, const void *b) {
    return strcmp(sorting[*(const uint32_t *)a].name, sorting[*(const uint32_t *)b].name);
}

/* Sorts f->by_name (lws_st_find's binary search) and refuses a name given
 * twice, in O(n log n) whatever the header holds. */
static lws_status index_names(lws_st_file *f) {
    sorting = f->tensors;
    qsort(f->by_name, f->count, sizeof *f->by_name, by_name);
    sorting = NULL;
    for (uint32_t k = 1; k < f->count; k++) {
        const char *name = f->tensors[f->by_name[k]].name;
        if (strcmp(f->tensors[f->by_name[k - 1]].name, name) == 0)
            return bad_header(f, name, "appears twice in the header");
    }
    return LWS_OK;
}

static lws_status parse_header(lws_st_file *f, const char *text, size_t len, uint64_t data_bytes,
                               const uint8_t *data) {
    const char *end = NULL;
    f->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!f->root || !cJSON_IsObject(f->root)) {
        size_t at = f->root ? 0 : (size_t)(cJSON_GetErrorPtr() - text);
        return lws_fail(LWS_ERR_DATA,
                        "file %s: header is not valid JSON: not a JSON object (parse error "
                        "near byte %zu of %zu); the file is corrupt or not safetensors",
                        f->path, at, len);
    }
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != 0)
            return lws_fail(LWS_ERR_DATA,
                            "file %s: header is not valid JSON: text after its JSON object "
                            "at byte %td; the file is corrupt or not safetensors",
                            f->path, p - text);
    int n = cJSON_GetArraySize(f->root);
    if (n > (int)MAX_TENSORS + 1) /* + 1: __metadata__ */
        return lws_fail(LWS_ERR_DATA,
                        "file %s: the header lists %d entries; lws reads at most %u tensors",
                        f->path, n, MAX_TENSORS);
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    f->by_name = calloc((size_t)n + 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", f->path);
    for (const cJSON *j = f->root->child; j; j = j->next) {
        if (strcmp(j->string, METADATA_KEY) == 0) {
            if (f->metadata) return bad_header(f, NULL, "\"__metadata__\" appears twice");
            if (!cJSON_IsObject(j)) return bad_header(f, NULL, "\"__metadata__\" is not an object");
            for (const cJSON *m = j->child; m; m = m->next)
                if (!cJSON_IsString(m))
                    return lws_fail(LWS_ERR_DATA,
                                    "file %s: metadata '%s' is not a string; safetensors "
                                    "metadata values are strings",
                                    f->path, m->string);
            f->metadata = j;
            continue;
        }
        LWS_TRY(parse_tensor(f, j, &f->tensors[f->count]));
        f->by_name[f->count] = f->count;
        f->count++;
    }
    LWS_TRY(index_names(f));
    LWS_TRY(check_tiling(f, data_bytes));
    for (uint32_t i = 0; i < f->count; i++) f->tensors[i].data = data + f->tensors[i].offset;
    return LWS_OK;
}

lws_status lws_st_open(const char *path, lws_st_file **out) {
    *out = NULL;
    lws_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    }
    int fd;
    size_t size = 0;
    lws_status s = lws_open_regular(path, O_RDONLY, &fd, &size);
    if (s != LWS_OK) goto fail;
    if (size < 8) {
        close(fd);
        s = lws_fail(LWS_ERR_DATA,
                     "file %s: truncated: %zu bytes, a safetensors file starts with an 8-byte "
                     "header length",
                     path, size);
        goto fail;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        s = lws_fail(LWS_ERR_IO, "file %s: mmap of %zu bytes failed: %s", path, size,
                     strerror(errno));
        goto fail;
    }
    f->map = map, f->map_bytes = size;
    const uint8_t *m = map;
    uint64_t header_len = 0;
    for (int i = 0; i < 8; i++) header_len |= (uint64_t)m[i] << (8 * i);
    if (header_len > MAX_HEADER_BYTES || header_len > size - 8) {
        s = lws_fail(LWS_ERR_DATA,
                     "file %s: header length %" PRIu64
                     " is impossible: the file has %zu bytes after the length (limit %u); the "
                     "file is truncated or not safetensors",
                     path, header_len, size - 8, MAX_HEADER_BYTES);
        goto fail;
    }
    s = parse_header(f, (const char *)m + 8, (size_t)header_len, size - 8 - header_len,
                     m + 8 + header_len);
    if (s != LWS_OK) goto fail;
    *out = f;
    return LWS_OK;
fail:
    lws_st_close(f);
    return s;
}

void lws_st_close(lws_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_bytes);
    cJSON_Delete(f->root);
    free(f->tensors), free(f->by_name), free(f->path), free(f);
}

uint32_t lws_st_count(const lws_st_file *f) {
    return f->count;
}

const lws_st_tensor *lws_st_at(const lws_st_file *f, uint32_t i) {
    return i < f->count ? &f->tensors[i] : NULL;
}

const lws_st_tensor *lws_st_find(const lws_st_file *f, const char *name) {
    uint32_t lo = 0, hi = f->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const lws_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

lws_status lws_st_get(const lws_st_file *f, const char *name, lws_st_dtype dtype,
                      const uint64_t *shape, uint32_t ndim, const lws_st_tensor **out) {
    *out = NULL;
    const lws_st_tensor *t = lws_st_find(f, name);
    if (!t) return lws_fail(LWS_ERR_DATA, "file %s: tensor '%s' is missing", f->path, name);
    int same = t->dtype == dtype && t->ndim == ndim;
    for (uint32_t d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[256], have[256];
        shape_string(shape, ndim, want, sizeof want);
        shape_string(t->shape, t->ndim, have, sizeof have);
        return lws_fail(LWS_ERR_DATA,
                        "file %s: tensor '%s' is %s %s but %s %s is expected (was the file "
                        "written for another model configuration?)",
                        f->path, name, dtypes[t->dtype].name, have, lws_st_dtype_name(dtype), want);
    }
    *out = t;
    return LWS_OK;
}

const char *lws_st_metadata(const lws_st_file *f, const char *key) {
    const cJSON *v = f->metadata ? cJSON_GetObjectItemCaseSensitive(f->metadata, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *lws_st_path(const lws_st_file *f) {
    return f->path;
}
