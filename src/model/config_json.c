/* Config documents: reading a file, JSON errors with line and column,
 * duplicate keys, and "extends" merging that remembers which file wrote each
 * value. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config_internal.h"
#include "util/files.h"

#define CFG_MAX_EXTENDS 16
/* A config is a few KiB of JSON; a file far beyond that is not one. */
#define CFG_MAX_FILE_BYTES ((size_t)16 << 20)

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

static lws_status parse_json(const char *path, const char *text, cJSON **out) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        if (!end) end = text;
        int line = 1, column = 1;
        for (const char *p = text; p < end && *p; p++) {
            if (*p == '\n')
                line++, column = 1;
            else
                column++;
        }
        char near[32];
        size_t k = 0;
        for (const char *p = end; *p && *p != '\n' && k < 20; p++) near[k++] = *p;
        near[k] = 0;
        if (!*text || strspn(text, " \t\r\n") == strlen(text))
            return lws_fail(LWS_ERR_CONFIG,
                            "%s: line %d, column %d: malformed JSON: the text is "
                            "empty; a config is a JSON object {...}",
                            path, line, column);
        return lws_fail(LWS_ERR_CONFIG,
                        "%s: line %d, column %d: malformed JSON near '%s' (check for a missing "
                        "comma, quote or brace, a trailing comma, or a comment: JSON has none)",
                        path, line, column, k ? near : "end of text");
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

/* Records every node of a freshly parsed tree as written by `file`, and
 * refuses a key given twice in one object (cJSON would keep the first). */
static lws_status mark(cfg_doc *doc, const cJSON *node, uint32_t file, const char *path) {
    LWS_TRY(add_origin(doc, node, file));
    uint32_t index = 0;
    for (const cJSON *c = node->child; c; c = c->next, index++) {
        char sub[512];
        if (cJSON_IsObject(node)) {
            snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", c->string);
            for (const cJSON *d = c->next; d; d = d->next)
                if (strcmp(c->string, d->string) == 0)
                    return lws_fail(LWS_ERR_CONFIG,
                                    "%s: %s: the key is given twice in one "
                                    "object; keep one",
                                    doc->files[file], sub);
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
} chain;

static lws_status load_tree(cfg_doc *doc, const char *path, const char *text, chain *ch,
                            cJSON **out) {
    char *owned = NULL;
    if (!text) {
        size_t len;
        LWS_TRY(lws_read_file(path, CFG_MAX_FILE_BYTES, &owned, &len));
        text = owned;
    }
    cJSON *root = NULL;
    lws_status s = parse_json(path, text, &root);
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

lws_status cfg_doc_load(cfg_doc *doc, const char *path, const char *text) {
    memset(doc, 0, sizeof *doc);
    chain *ch = calloc(1, sizeof *ch);
    if (!ch) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "config: out of memory");
    canonical(path, ch->canonical[0]);
    snprintf(ch->shown[0], sizeof ch->shown[0], "%s", path);
    ch->n = 1;
    lws_status s = load_tree(doc, path, text, ch, &doc->root);
    free(ch);
    if (s != LWS_OK) cfg_doc_free(doc);
    return s;
}

lws_status cfg_parse_json(const char *path, const char *text, cJSON **out) {
    return parse_json(path, text, out);
}
