/* Shared by src/model/config*.c and schedule.c: the merged JSON document of a
 * config (a file and the files it extends) and where each value came from. */
#ifndef LWS_MODEL_CONFIG_INTERNAL_H
#define LWS_MODEL_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lws/config.h"

/* Which file wrote a node: every parsed node is recorded, so an error about a
 * value names the file the value is in, even after merging over a base. */
typedef struct cfg_origin {
    const cJSON *node;
    uint32_t file;
} cfg_origin;

typedef struct cfg_doc {
    cJSON *root;      /* the merged tree */
    cJSON *discarded; /* nodes the merge replaced, freed with the doc (so no
                         address in origins is reused while the doc lives) */
    cfg_origin *origins;
    size_t n_origins, cap_origins;
    char **files; /* files[0] is the file loaded (the leaf of the extends chain) */
    uint32_t n_files;
    uint32_t set_file; /* the index of "--set" in files (0 until an override is applied) */
} cfg_doc;

/* Reads path (text == NULL) or parses text under the name path, then merges
 * it over the files it extends; resolved: the text is a resolved config,
 * which extends nothing (an "extends" is refused). On failure the doc is
 * freed. */
lws_status cfg_doc_load(cfg_doc *doc, const char *path, const char *text, int resolved);
void cfg_doc_free(cfg_doc *doc);
/* Places value at a dotted path of the merged tree (creating the objects on
 * the way), replacing what is there, as written by "--set"; value NULL
 * removes the key. value is consumed. */
lws_status cfg_doc_set(cfg_doc *doc, const char *path, cJSON *value);
/* Applies one "PATH=VALUE" override: the path must be in the schema, the
 * value is typed by it (config_schema.c). */
lws_status cfg_doc_apply_set(cfg_doc *doc, const char *set);
/* The file a node came from (the leaf when unknown). */
const char *cfg_doc_file_of(const cfg_doc *doc, const cJSON *node);

/* "file: path: message" as an LWS_ERR_CONFIG failure. */
lws_status cfg_error(const cfg_doc *doc, const cJSON *node, const char *path, const char *fmt, ...)
    LWS_PRINTF(4, 5);
/* The value as compact JSON, cut to fit n (with "..."). */
void cfg_value_text(const cJSON *node, char *out, size_t n);
const char *cfg_type_name(const cJSON *node);

/* text (named path in messages) as a JSON object; malformed JSON is an
 * error naming the line and column. */
lws_status cfg_parse_json(const char *path, const char *text, cJSON **out);

/* A path relative to the directory of the file `from` (absolute paths stay). */
void cfg_relative_path(const char *from, const char *path, char *out, size_t n);

/* Computes cfg->layers from cfg->lws. On failure the message starts with the
 * JSON path it is about and *blame names the lws key responsible (for
 * example "ffn_points"), so the caller can prefix the file that wrote it. */
lws_status cfg_resolve_layers(lws_config *cfg, const char **blame);

/* ---- the schema (config_schema.c) ----------------------------------------- */

#define CFG_COUNT(a) (sizeof(a) / sizeof *(a))

typedef enum cfg_type {
    CFG_OBJECT,
    CFG_INTEGER,
    CFG_NUMBER,
    CFG_BOOL,
    CFG_STRING,
    CFG_ARRAY
} cfg_type;

/* One key a config may hold: "train.lr", "lws.gqa.group_size"; sections and
 * nested objects are keys of type CFG_OBJECT. */
typedef struct cfg_key {
    const char *path;
    cfg_type type;
    const char *const *names; /* a CFG_STRING's allowed values, NULL-terminated; NULL = any */
} cfg_key;

/* The variant presets' names, in the order of their table (config_lws.c). */
extern const char *const cfg_variant_names[];

const cfg_key *cfg_schema_find(const char *path);
/* names[index] of an enumerated string key. */
const char *cfg_enum_name(const char *path, int index);
/* "an integer", "a JSON array [...]", ... */
const char *cfg_type_expected(cfg_type type);
/* Refuses any key of obj (the object at path section, "" for the top level)
 * that the schema lacks, naming the nearest allowed key and listing them. */
lws_status cfg_check_keys(const cfg_doc *doc, const cJSON *obj, const char *section);

/* ---- strict field access (config_fields.c) ----------------------------- */

/* The largest integer a JSON number (a double) holds exactly. */
#define CFG_EXACT_MAX 9007199254740992ull

/* A number in the interval lo..hi; open ends exclude the bound, an infinite
 * hi leaves the top unbounded. */
typedef struct cfg_interval {
    double lo, hi;
    int lo_open, hi_open;
} cfg_interval;

/* A key's node; an explicit null counts as absent (it removes a base's key). */
const cJSON *cfg_item(const cJSON *obj, const char *key);
/* "section.key" (or "key" at the top level). */
void cfg_join(char *out, size_t n, const char *section, const char *key);
lws_status cfg_check_object(const cfg_doc *doc, const cJSON *node, const char *path);
/* A required key absent from the file and its bases (reported on the leaf). */
lws_status cfg_missing(const cfg_doc *doc, const char *path, const char *what);
/* obj[key] (NULL when absent; *given, which may be NULL, says which) and its
 * path "section.key", after checking that the schema declares the key with
 * the type the caller reads: a read the schema does not know is a bug in the
 * reader, not in the config. */
lws_status cfg_field(const cJSON *obj, const char *section, const char *key, cfg_type type,
                     char *path, size_t n, const cJSON **c, int *given);
/* Typed reads. The node variants check a value at a path; the get variants
 * read obj[key], leave *out untouched when absent and set *given (may be
 * NULL), and fail when the schema does not declare section.key with the type
 * read. */
lws_status cfg_node_uint(const cfg_doc *doc, const cJSON *c, const char *path, uint64_t min,
                         uint64_t max, uint64_t *out);
lws_status cfg_node_number(const cfg_doc *doc, const cJSON *c, const char *path, cfg_interval r,
                           double *out);
lws_status cfg_get_u64(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                       uint64_t min, uint64_t max, uint64_t *out, int *given);
lws_status cfg_get_u32(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                       uint32_t min, uint32_t max, uint32_t *out, int *given);
lws_status cfg_get_number(const cfg_doc *doc, const cJSON *obj, const char *section,
                          const char *key, cfg_interval r, double *out, int *given);
lws_status cfg_get_bool(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                        int *out, int *given);
lws_status cfg_get_string(const cfg_doc *doc, const cJSON *obj, const char *section,
                          const char *key, char *out, size_t cap, int *given);
/* A string that must be one of the schema's names for it; *out is its index. */
lws_status cfg_get_enum(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                        int *out, int *given);

/* The lws section into cfg->lws (explicit lists into cfg->layers); needs
 * cfg->model read first. */
lws_status cfg_read_lws(const cfg_doc *doc, const cJSON *root, lws_config *cfg);

#endif
