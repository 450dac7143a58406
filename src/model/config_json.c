/* Config documents: reading a file, JSON errors with line and column,
 * duplicate keys, and "extends" merging that remembers which file wrote each
 * value. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lws/bpe.h" /* lws_utf8_check */
#include "model/config_internal.h"
#include "util/files.h"

#define CFG_MAX_EXTENDS 16
/* A config is a few KiB of JSON; a file far beyond that is not one. */
#define CFG_MAX_FILE_BYTES ((size_t)1 << 20)
/* The schema's largest object has a few dozen keys. */
#define CFG_MAX_OBJECT_KEYS 1024

/* ---- origins ----------------------------------------------------------- */

static lws_status add_origin(cfg_doc *doc, const cJSON *node, uint32_t file) {
    if (doc->n_origins == doc->cap_origins) {
        size_t cap = doc->cap_origins ? 2 * doc->cap_origins : 256;
        cfg_origin *o = realloc(doc->origins, cap * sizeof *o);
        if (!o) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
        doc->origins = o;
        doc->cap_origins = cap;
    }
    doc->origins[doc->n_origins++] = (cfg_origin){node, file};
    return LWS_OK;
}

const char *cfg_doc_file_of(const cfg_doc *doc, const cJSON *node) {
    for (size_t i = 0; node && i < doc->n_origins; i++)
        if (doc->origins[i].node == node) return doc->files[doc->origins[i].file];
    return doc->n_files ? doc->files[0] : "config";
}

void cfg_doc_free(cfg_doc *doc) {
    cJSON_Delete(doc->root);
    cJSON_Delete(doc->discarded);
    free(doc->origins);
    for (uint32_t i = 0; i < doc->n_files; i++) free(doc->files[i]);
    free(doc->files);
    memset(doc, 0, sizeof *doc);
}

/* ---- messages ---------------------------------------------------------- */

lws_status cfg_error(const cfg_doc *doc, const cJSON *node, const char *path, const char *fmt,
                     ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lws_fail(LWS_ERR_CONFIG, "%s: %s: %s", cfg_doc_file_of(doc, node), path, msg);
}

void cfg_value_text(const cJSON *node, char *out, size_t n) {
    /* cJSON prints an infinity (a literal such as 1e309) as null. */
    if (cJSON_IsNumber(node) && !isfinite(node->valuedouble)) {
        snprintf(out, n, "%s",
                 node->valuedouble > 0 ? "inf (a number beyond a double's range)"
                                       : "-inf (a number beyond a double's range)");
        return;
    }
    char *s = node ? cJSON_PrintUnformatted(node) : NULL;
    if (!s) {
        snprintf(out, n, "(none)");
        return;
    }
    if (strlen(s) >= n && n > 4)
        snprintf(out, n, "%.*s...", (int)(n - 4), s);
    else
        snprintf(out, n, "%s", s);
    free(s);
}

const char *cfg_type_name(const cJSON *node) {
    if (cJSON_IsString(node)) return "a string";
    if (cJSON_IsNumber(node)) return "a number";
    if (cJSON_IsBool(node)) return "a boolean";
    if (cJSON_IsArray(node)) return "an array";
    if (cJSON_IsObject(node)) return "an object";
    if (cJSON_IsNull(node)) return "null";
    return "not a JSON value";
}

void cfg_relative_path(const char *from, const char *path, char *out, size_t n) {
    const char *slash = strrchr(from, '/');
    if (path[0] == '/' || !slash)
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%.*s%s", (int)(slash - from + 1), from, path);
}

/* ---- reading and parsing ----------------------------------------------- */

/* Line and column (from 1) of text[at]. */
static void position(const char *text, size_t at, int *line, int *column) {
    *line = 1, *column = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n')
            ++*line, *column = 1;
        else
            ++*column;
    }
}

/* JSON text holds no NUL: a NUL byte ends cJSON's reading (what follows
 * would be ignored) and a \u0000 escape ends a string early (the rest of the
 * value would be lost). Both are refused where they are. */
static lws_status check_no_nul(const char *path, const char *text, size_t len) {
    size_t at = len;
    const char *what = NULL;
    const char *nul = memchr(text, 0, len);
    if (nul) at = (size_t)(nul - text), what = "a NUL byte; a config is text";
    for (size_t i = 0; i + 5 < at; i++) {
        if (text[i] != '\\') continue;
        if (memcmp(text + i + 1, "u0000", 5) == 0) {
            at = i, what = "the escape \\u0000 (a NUL character), which no config string holds";
            break;
        }
        i++; /* the escaped character, which may be a backslash */
    }
    if (!what) return LWS_OK;
    int line, column;
    position(text, at, &line, &column);
    return lws_fail(LWS_ERR_CONFIG, "%s: line %d, column %d: %s", path, line, column, what);
}

/* Parses the len bytes of text (NUL-terminated after them). quote: the
 * message may show the text near a syntax error; it does only for the file
 * the caller named, never for a file reached through "extends". */
static lws_status parse_json(const char *path, const char *text, size_t len, int quote,
                             cJSON **out) {
    LWS_TRY(check_no_nul(path, text, len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        if (!end) end = text;
        int line, column;
        position(text, (size_t)(end - text), &line, &column);
        char near[32];
        size_t k = 0;
        for (const char *p = end; *p && *p != '\n' && k < 20; p++) near[k++] = *p;
        near[k] = 0;
        if (strspn(text, " \t\r\n") == len)
            return lws_fail(LWS_ERR_CONFIG,
                            "%s: line %d, column %d: malformed JSON: the text is "
                            "empty; a config is a JSON object {...}",
                            path, line, column);
        char shown[64] = "";
        if (quote) snprintf(shown, sizeof shown, " near '%s'", k ? near : "end of text");
        return lws_fail(LWS_ERR_CONFIG,
                        "%s: line %d, column %d: malformed JSON%s (check for a missing "
                        "comma, quote or brace, a trailing comma, or a comment: JSON has none)",
                        path, line, column, shown);
    }
    if (!cJSON_IsObject(root)) {
        lws_status s = lws_fail(LWS_ERR_CONFIG,
                                "%s: the top level is %s; a config is a JSON "
                                "object {\"model\": ..., \"lws\": ...}",
                                path, cfg_type_name(root));
        cJSON_Delete(root);
        return s;
    }
    *out = root;
    return LWS_OK;
}

static int by_key(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Refuses a key given twice in one object (cJSON would keep the first) and
 * an object with more keys than any config holds; sorting the keys keeps
 * this O(n log n) for any input. */
static lws_status check_object_keys(cfg_doc *doc, const cJSON *node, uint32_t file,
                                    const char *path) {
    size_t n = 0;
    for (const cJSON *c = node->child; c; c = c->next) n++;
    if (n > CFG_MAX_OBJECT_KEYS)
        return lws_fail(LWS_ERR_CONFIG,
                        "%s: %s: an object of %zu keys; a config's objects hold at most %d",
                        doc->files[file], path[0] ? path : "the top level", n, CFG_MAX_OBJECT_KEYS);
    if (n < 2) return LWS_OK;
    const cJSON **keys = malloc(n * sizeof *keys);
    if (!keys) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
    n = 0;
    for (const cJSON *c = node->child; c; c = c->next) keys[n++] = c;
    qsort(keys, n, sizeof *keys, by_key);
    lws_status s = LWS_OK;
    for (size_t i = 1; i < n && s == LWS_OK; i++)
        if (strcmp(keys[i - 1]->string, keys[i]->string) == 0)
            s = lws_fail(LWS_ERR_CONFIG,
                         "%s: %s%s%s: the key is given twice in one object; keep one",
                         doc->files[file], path, path[0] ? "." : "", keys[i]->string);
    free(keys);
    return s;
}

/* Keys and string values are UTF-8 text: they are written back into JSON
 * (config.json, a checkpoint's metadata) that other readers must accept. */
static lws_status check_text(cfg_doc *doc, const char *text, uint32_t file, const char *path,
                             const char *what) {
    size_t n = strlen(text), bad = lws_utf8_check((const uint8_t *)text, n);
    if (bad == n) return LWS_OK;
    return lws_fail(LWS_ERR_CONFIG,
                    "%s: %s: the %s is not UTF-8 text (byte 0x%02x at offset %zu); write it "
                    "as UTF-8",
                    doc->files[file], path[0] ? path : "the top level", what, (uint8_t)text[bad],
                    bad);
}

/* Records every node of a freshly parsed tree as written by `file`, and
 * checks its keys and strings (check_object_keys, check_text). */
static lws_status mark(cfg_doc *doc, const cJSON *node, uint32_t file, const char *path) {
    LWS_TRY(add_origin(doc, node, file));
    if (cJSON_IsString(node)) LWS_TRY(check_text(doc, node->valuestring, file, path, "value"));
    if (cJSON_IsObject(node)) LWS_TRY(check_object_keys(doc, node, file, path));
    uint32_t index = 0;
    for (const cJSON *c = node->child; c; c = c->next, index++) {
        char sub[512];
        if (cJSON_IsObject(node)) {
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", c->string);
            LWS_TRY(check_text(doc, c->string, file, path, "key"));
        } else {
            snprintf(sub, sizeof sub, "%s[%u]", path, index);
        }
        LWS_TRY(mark(doc, c, file, sub));
    }
    return LWS_OK;
}

static void discard(cfg_doc *doc, cJSON *node) {
    if (!doc->discarded) doc->discarded = cJSON_CreateArray();
    if (doc->discarded)
        cJSON_AddItemToArray(doc->discarded, node);
    else
        cJSON_Delete(node);
}

/* Lays `over` onto `base`: objects merge key by key, null removes a key,
 * anything else replaces. `over` is consumed. */
static void merge(cfg_doc *doc, cJSON *base, cJSON *over) {
    while (over->child) {
        cJSON *c = cJSON_DetachItemViaPointer(over, over->child);
        cJSON *b = cJSON_GetObjectItemCaseSensitive(base, c->string);
        if (b && cJSON_IsObject(b) && cJSON_IsObject(c)) {
            merge(doc, b, c);
            discard(doc, c);
            continue;
        }
        if (b) discard(doc, cJSON_DetachItemViaPointer(base, b));
        if (cJSON_IsNull(c)) {
            discard(doc, c);
            continue;
        }
        char *key = c->string;
        c->string = NULL;
        cJSON_AddItemToObject(base, key, c);
        free(key);
    }
}

static lws_status add_file(cfg_doc *doc, const char *path, uint32_t *index) {
    char **files = realloc(doc->files, (doc->n_files + 1) * sizeof *files);
    if (!files) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
    doc->files = files;
    files[doc->n_files] = strdup(path);
    if (!files[doc->n_files]) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
    *index = doc->n_files++;
    return LWS_OK;
}

/* The identity of a file for cycle detection: its real path when it exists. */
static void canonical(const char *path, char *out) {
    char *r = realpath(path, NULL);
    snprintf(out, PATH_MAX, "%s", r ? r : path);
    free(r);
}

typedef struct chain {
    char canonical[CFG_MAX_EXTENDS][PATH_MAX];
    char shown[CFG_MAX_EXTENDS][1024];
    uint32_t n;
    int resolved; /* a resolved config: "extends" is refused */
} chain;

static lws_status load_tree(cfg_doc *doc, const char *path, const char *text, chain *ch,
                            cJSON **out) {
    char *owned = NULL;
    size_t len = text ? strlen(text) : 0;
    if (!text) {
        LWS_TRY(lws_read_file(path, CFG_MAX_FILE_BYTES, &owned, &len));
        text = owned;
    }
    cJSON *root = NULL;
    lws_status s = parse_json(path, text, len, ch->n == 1, &root);
    free(owned);
    LWS_TRY(s);
    uint32_t file = 0;
    s = add_file(doc, path, &file);
    if (s == LWS_OK) s = mark(doc, root, file, "");
    if (s != LWS_OK) {
        cJSON_Delete(root);
        return s;
    }
    cJSON *extends = cJSON_GetObjectItemCaseSensitive(root, "extends");
    if (!extends || cJSON_IsNull(extends)) {
        if (extends) discard(doc, cJSON_DetachItemViaPointer(root, extends));
        *out = root;
        return LWS_OK;
    }
    char shown[1024], value[256];
    cfg_value_text(extends, value, sizeof value);
    if (ch->resolved) {
        /* A resolved config was written with every base merged in; one that
         * names a base was altered, and must not make lws open any file. */
        s = lws_fail(LWS_ERR_CONFIG,
                     "%s: extends: a resolved config (as a checkpoint stores it) has no base "
                     "to extend; the stored config was altered",
                     path);
        cJSON_Delete(root);
        return s;
    }
    if (!cJSON_IsString(extends) || !extends->valuestring[0]) {
        s = lws_fail(LWS_ERR_CONFIG,
                     "%s: extends: value %s is %s; expected the path of a base "
                     "config (relative to this file)",
                     path, value, cfg_type_name(extends));
        cJSON_Delete(root);
        return s;
    }
    cfg_relative_path(path, extends->valuestring, shown, sizeof shown);
    char base_canonical[PATH_MAX];
    canonical(shown, base_canonical);
    for (uint32_t i = 0; i < ch->n; i++) {
        if (strcmp(ch->canonical[i], base_canonical) != 0) continue;
        char cycle[4096] = "";
        for (uint32_t j = i; j < ch->n; j++) {
            strncat(cycle, ch->shown[j], sizeof cycle - strlen(cycle) - 1);
            strncat(cycle, " -> ", sizeof cycle - strlen(cycle) - 1);
        }
        strncat(cycle, shown, sizeof cycle - strlen(cycle) - 1);
        s = lws_fail(LWS_ERR_CONFIG,
                     "%s: extends: value %s makes a cycle (%s); a config may "
                     "not extend itself, directly or through its bases",
                     path, value, cycle);
        cJSON_Delete(root);
        return s;
    }
    if (ch->n == CFG_MAX_EXTENDS) {
        s = lws_fail(LWS_ERR_CONFIG, "%s: extends: more than %d files deep; flatten the chain",
                     path, CFG_MAX_EXTENDS);
        cJSON_Delete(root);
        return s;
    }
    canonical(shown, ch->canonical[ch->n]);
    snprintf(ch->shown[ch->n], sizeof ch->shown[0], "%s", shown);
    ch->n++;
    cJSON *base = NULL;
    s = load_tree(doc, shown, NULL, ch, &base);
    ch->n--;
    if (s != LWS_OK) {
        if (s == LWS_ERR_IO) lws_error_context("%s: extends: %s", path, value);
        cJSON_Delete(root);
        return s;
    }
    /* The name belongs to the file that gives it, never to its children. */
    cJSON *base_name = cJSON_GetObjectItemCaseSensitive(base, "name");
    if (base_name) discard(doc, cJSON_DetachItemViaPointer(base, base_name));
    discard(doc, cJSON_DetachItemViaPointer(root, extends));
    merge(doc, base, root);
    discard(doc, root);
    *out = base;
    return LWS_OK;
}

/* obj[key] as an object: made (replacing a value of another type) when absent. */
static cJSON *object_at(cfg_doc *doc, cJSON *obj, const char *key) {
    cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsObject(child)) return child;
    if (child) discard(doc, cJSON_DetachItemViaPointer(obj, child));
    child = cJSON_AddObjectToObject(obj, key);
    return child && add_origin(doc, child, doc->set_file) == LWS_OK ? child : NULL;
}

lws_status cfg_doc_set(cfg_doc *doc, const char *path, cJSON *value) {
    lws_status s = doc->set_file ? LWS_OK : add_file(doc, "--set", &doc->set_file);
    cJSON *obj = doc->root;
    char key[256];
    for (const char *p = path; s == LWS_OK; p = strchr(p, '.') + 1) {
        const char *dot = strchr(p, '.');
        snprintf(key, sizeof key, "%.*s", dot ? (int)(dot - p) : (int)strlen(p), p);
        if (!dot) break;
        /* Removing a key under an object that is not there removes nothing. */
        if (!value && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(obj, key))) return s;
        obj = object_at(doc, obj, key);
        if (!obj) s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "--set %s: out of memory", path);
    }
    if (s != LWS_OK) {
        cJSON_Delete(value);
        return s;
    }
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (old) discard(doc, cJSON_DetachItemViaPointer(obj, old));
    if (!value) return LWS_OK;
    if (!cJSON_AddItemToObject(obj, key, value)) {
        cJSON_Delete(value);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "--set %s: out of memory", path);
    }
    return mark(doc, value, doc->set_file, path);
}

lws_status cfg_doc_load(cfg_doc *doc, const char *path, const char *text, int resolved) {
    memset(doc, 0, sizeof *doc);
    chain *ch = calloc(1, sizeof *ch);
    if (!ch) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
    canonical(path, ch->canonical[0]);
    snprintf(ch->shown[0], sizeof ch->shown[0], "%s", path);
    ch->n = 1;
    ch->resolved = resolved;
    lws_status s = load_tree(doc, path, text, ch, &doc->root);
    free(ch);
    if (s != LWS_OK) cfg_doc_free(doc);
    return s;
}

lws_status cfg_parse_json(const char *path, const char *text, cJSON **out) {
    return parse_json(path, text, strlen(text), 1, out);
}
