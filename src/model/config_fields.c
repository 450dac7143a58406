/* Strict typed access to config values: every read checks the type and the
 * range and names the file, the JSON path, the value and what is allowed. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/config_internal.h"

const cJSON *cfg_item(const cJSON *obj, const char *key) {
    const cJSON *c = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsNull(c) ? NULL : c;
}

void cfg_join(char *out, size_t n, const char *section, const char *key) {
    snprintf(out, n, "%s%s%s", section, section[0] ? "." : "", key);
}

lws_status cfg_field(const cJSON *obj, const char *section, const char *key, cfg_type type,
                     char *path, size_t n, const cJSON **c, int *given) {
    cfg_join(path, n, section, key);
    const cfg_key *k = cfg_schema_find(path);
    if (!k || k->type != type)
        return lws_fail(LWS_ERR_INVALID, "config schema: %s is read as %s but declared %s%s", path,
                        cfg_type_expected(type), k ? "as " : "nowhere",
                        k ? cfg_type_expected(k->type) : "");
    *c = cfg_item(obj, key);
    if (given) *given = *c != NULL;
    return LWS_OK;
}

lws_status cfg_check_object(const cfg_doc *doc, const cJSON *node, const char *path) {
    if (cJSON_IsObject(node)) return LWS_OK;
    char v[96];
    cfg_value_text(node, v, sizeof v);
    return cfg_error(doc, node, path, "value %s is %s; expected an object {...}", v,
                     cfg_type_name(node));
}

lws_status cfg_missing(const cfg_doc *doc, const char *path, const char *what) {
    return lws_fail(LWS_ERR_CONFIG,
                    "%s: %s: required key is missing (%s); neither this file%s "
                    "the files it extends%s give it",
                    doc->files[0], path, what, doc->set_file ? "," : " nor",
                    doc->set_file ? " nor --set" : "");
}

static void cfg_int_range(char *out, size_t n, uint64_t min, uint64_t max) {
    if (max >= 0xffffffffull && min <= 1)
        snprintf(out, n, "%s", min == 1 ? "a positive integer" : "an integer >= 0");
    else if (max >= 0xffffffffull)
        snprintf(out, n, "an integer >= %llu", (unsigned long long)min);
    else
        snprintf(out, n, "an integer from %llu to %llu", (unsigned long long)min,
                 (unsigned long long)max);
}

/* Reads an integer in [min, max] from a node at path. */
lws_status cfg_node_uint(const cfg_doc *doc, const cJSON *c, const char *path, uint64_t min,
                         uint64_t max, uint64_t *out) {
    char range[96], v[96];
    cfg_int_range(range, sizeof range, min, max);
    cfg_value_text(c, v, sizeof v);
    if (!cJSON_IsNumber(c))
        return cfg_error(doc, c, path, "value %s is %s; expected %s", v, cfg_type_name(c), range);
    double x = c->valuedouble;
    if (!isfinite(x) || x != floor(x))
        return cfg_error(doc, c, path, "value %s is not a whole number; expected %s", v, range);
    if (x < (double)min || x > (double)max)
        return cfg_error(doc, c, path, "value %s is not allowed; expected %s", v, range);
    *out = (uint64_t)x;
    return LWS_OK;
}

lws_status cfg_get_u64(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                       uint64_t min, uint64_t max, uint64_t *out, int *given) {
    const cJSON *c = NULL;
    char path[256];
    LWS_TRY(cfg_field(obj, section, key, CFG_INTEGER, path, sizeof path, &c, given));
    return c ? cfg_node_uint(doc, c, path, min, max, out) : LWS_OK;
}

lws_status cfg_get_u32(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                       uint32_t min, uint32_t max, uint32_t *out, int *given) {
    uint64_t v = *out;
    LWS_TRY(cfg_get_u64(doc, obj, section, key, min, max, &v, given));
    *out = (uint32_t)v;
    return LWS_OK;
}

lws_status cfg_node_number(const cfg_doc *doc, const cJSON *c, const char *path, cfg_interval r,
                           double *out) {
    char range[128], v[96];
    if (isinf(r.hi))
        snprintf(range, sizeof range, "a number %s %g", r.lo_open ? ">" : ">=", r.lo);
    else
        snprintf(range, sizeof range, "a number %s %g and %s %g", r.lo_open ? ">" : ">=", r.lo,
                 r.hi_open ? "<" : "<=", r.hi);
    cfg_value_text(c, v, sizeof v);
    if (!cJSON_IsNumber(c))
        return cfg_error(doc, c, path, "value %s is %s; expected %s", v, cfg_type_name(c), range);
    double x = c->valuedouble;
    if (!isfinite(x) || x < r.lo || (r.lo_open && x == r.lo) || x > r.hi ||
        (r.hi_open && x == r.hi))
        return cfg_error(doc, c, path, "value %s is not allowed; expected %s", v, range);
    /* The device computes in fp32: a value must keep its meaning there, not
     * overflow to infinity, flush to 0 or round onto an excluded bound. */
    float f = (float)x;
    if (fabs(x) > FLT_MAX || (x != 0 && fabs(x) < FLT_MIN))
        return cfg_error(doc, c, path,
                         "value %s is beyond fp32's range, in which the device computes "
                         "(magnitudes from %g to %g, or 0); expected %s",
                         v, FLT_MIN, FLT_MAX, range);
    if ((r.lo_open && f <= r.lo) || (r.hi_open && f >= r.hi))
        return cfg_error(doc, c, path, "value %s rounds to %.9g in fp32; expected %s", v, f, range);
    *out = x;
    return LWS_OK;
}

lws_status cfg_get_number(const cfg_doc *doc, const cJSON *obj, const char *section,
                          const char *key, cfg_interval r, double *out, int *given) {
    const cJSON *c = NULL;
    char path[256];
    LWS_TRY(cfg_field(obj, section, key, CFG_NUMBER, path, sizeof path, &c, given));
    return c ? cfg_node_number(doc, c, path, r, out) : LWS_OK;
}

lws_status cfg_get_bool(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                        int *out, int *given) {
    const cJSON *c = NULL;
    char path[256], v[96];
    LWS_TRY(cfg_field(obj, section, key, CFG_BOOL, path, sizeof path, &c, given));
    if (!c) return LWS_OK;
    cfg_value_text(c, v, sizeof v);
    if (!cJSON_IsBool(c))
        return cfg_error(doc, c, path, "value %s is %s; expected true or false", v,
                         cfg_type_name(c));
    *out = cJSON_IsTrue(c);
    return LWS_OK;
}

lws_status cfg_get_string(const cfg_doc *doc, const cJSON *obj, const char *section,
                          const char *key, char *out, size_t cap, int *given) {
    const cJSON *c = NULL;
    char path[256], v[96];
    LWS_TRY(cfg_field(obj, section, key, CFG_STRING, path, sizeof path, &c, given));
    if (!c) return LWS_OK;
    cfg_value_text(c, v, sizeof v);
    if (!cJSON_IsString(c))
        return cfg_error(doc, c, path, "value %s is %s; expected a string", v, cfg_type_name(c));
    if (!c->valuestring[0])
        return cfg_error(doc, c, path, "value \"\" is not allowed; expected a non-empty string");
    if (strlen(c->valuestring) >= cap)
        return cfg_error(doc, c, path, "value %s is longer than %zu characters", v, cap - 1);
    snprintf(out, cap, "%s", c->valuestring);
    return LWS_OK;
}

lws_status cfg_get_enum(const cfg_doc *doc, const cJSON *obj, const char *section, const char *key,
                        int *out, int *given) {
    char value[64] = "";
    const cJSON *c = cfg_item(obj, key);
    int present = 0;
    LWS_TRY(cfg_get_string(doc, obj, section, key, value, sizeof value, &present));
    if (given) *given = present;
    if (!present) return LWS_OK;
    char path[256], list[256] = "";
    cfg_join(path, sizeof path, section, key);
    const char *const *names = cfg_schema_find(path)->names;
    if (!names)
        return lws_fail(LWS_ERR_INVALID, "config schema: %s is read as a name but declares none",
                        path);
    for (size_t k = 0; names[k]; k++)
        if (strcmp(value, names[k]) == 0) {
            *out = (int)k;
            return LWS_OK;
        }
    for (size_t k = 0; names[k]; k++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "%s\"%s\"", k ? ", " : "", names[k]);
        strncat(list, quoted, sizeof list - strlen(list) - 1);
    }
    return cfg_error(doc, c, path, "value \"%s\" is not allowed; allowed: %s", value, list);
}
