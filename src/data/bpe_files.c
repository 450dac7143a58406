/* Byte-level BPE files: reading lws-bpe files and GPT-2's encoder.json +
 * vocab.bpe, writing lws-bpe files (the formats are in include/lws/bpe.h).
 * Every refusal names the file and the JSON path or line of the problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "data/bpe_internal.h"
#include "util/files.h"

/* GPT-2's encoder.json is 1 MiB; a vocabulary file far beyond this is not one. */
#define BPE_FILE_MAX_BYTES ((size_t)256 << 20)

/* One code point of well-formed UTF-8 at s (n bytes left): its length, or 0. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    lws_char_class cls;
    size_t len = lws_utf8_char(s, n, &cls);
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (len == 1) return 0;
    static const uint8_t lead_mask[5] = {0, 0, 0x1F, 0x0F, 0x07};
    uint32_t c = s[0] & lead_mask[len];
    for (size_t i = 1; i < len; i++) c = c << 6 | (s[i] & 0x3F);
    *cp = c;
    return len;
}

static int valid_utf8(const char *s) {
    size_t n = strlen(s);
    return lws_utf8_check((const uint8_t *)s, n) == n;
}

/* A token for messages: at most 40 bytes of it, cut at a character. */
static const char *shown(const char *s, char buf[48]) {
    size_t n = strlen(s);
    if (n <= 40) return s;
    size_t cut = 40;
    while (cut > 0 && ((uint8_t)s[cut] & 0xC0) == 0x80) cut--;
    snprintf(buf, 48, "%.*s...", (int)cut, s);
    return buf;
}

/* Token text (n bytes) in GPT-2's byte-to-character map -> bytes; out holds
 * at least n bytes. Returns 0 and the offending character when one stands
 * for no byte. */
static int unmap_token(const char *s, size_t n, uint8_t *out, size_t *len, uint32_t *bad) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_decode((const uint8_t *)s + i, n - i, &cp);
        int b = l ? bpe_char_byte(cp) : -1;
        if (b < 0) {
            *bad = l ? cp : (uint8_t)s[i];
            return 0;
        }
        out[k++] = (uint8_t)b;
        i += l;
    }
    *len = k;
    return 1;
}

/* Adds a token given as mapped text; also to the map from bytes to ids.
 * scratch holds at least strlen(text) bytes. */
static lws_status add_mapped_token(bpe_vocab *v, bpe_map *ids, const char *text, uint8_t *scratch,
                                   const char *what) {
    size_t len;
    uint32_t bad;
    char buf[48];
    if (!unmap_token(text, strlen(text), scratch, &len, &bad))
        return lws_fail(LWS_ERR_DATA,
                        "%s \"%s\": the character U+%04X stands for no byte in GPT-2's "
                        "byte-to-character map",
                        what, shown(text, buf), bad);
    if (len == 0) return lws_fail(LWS_ERR_DATA, "%s: an empty token is not allowed", what);
    uint64_t h = bpe_hash_bytes(scratch, len);
    const bpe_map_entry *e = bpe_map_find(ids, scratch, len, h);
    if (e)
        return lws_fail(LWS_ERR_DATA, "%s \"%s\": the same token as id %u; tokens must differ",
                        what, shown(text, buf), (unsigned)e->value);
    LWS_TRY(bpe_map_insert(ids, scratch, len, h, v->n_tokens, NULL));
    return bpe_vocab_add_token(v, scratch, len);
}

/* The merge "A B" (a, b: mapped text of a_len, b_len bytes): A, B and AB
 * must be tokens. scratch holds at least a_len + b_len bytes. */
static lws_status add_mapped_merge(bpe_vocab *v, const bpe_map *ids, const char *a, size_t a_len,
                                   const char *b, size_t b_len, uint8_t *scratch,
                                   const char *what) {
    size_t la = 0, lb = 0;
    uint32_t bad;
    int ok =
        unmap_token(a, a_len, scratch, &la, &bad) && unmap_token(b, b_len, scratch + la, &lb, &bad);
    /* A is scratch[0, la), B follows it, and AB is both. */
    const uint8_t *part[3] = {scratch, scratch + la, scratch};
    size_t part_len[3] = {la, lb, la + lb};
    uint32_t id[3];
    for (int i = 0; i < 3; i++) {
        const bpe_map_entry *e =
            ok ? bpe_map_find(ids, part[i], part_len[i], bpe_hash_bytes(part[i], part_len[i]))
               : NULL;
        if (!e) {
            char text[96], buf[48];
            snprintf(text, sizeof text, "%.*s%.*s", i == 1 ? 0 : (int)a_len, a,
                     i == 0 ? 0 : (int)b_len, b);
            return lws_fail(LWS_ERR_DATA, "%s: \"%s\" is not a token of the vocabulary", what,
                            shown(text, buf));
        }
        id[i] = (uint32_t)e->value;
    }
    return bpe_vocab_add_merge(v, id[0], id[1], id[2]);
}

/* A scratch buffer of at least n bytes. */
static lws_status scratch_for(uint8_t **scratch, size_t *capacity, size_t n) {
    if (n <= *capacity) return LWS_OK;
    uint8_t *p = realloc(*scratch, n);
    if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory");
    *scratch = p, *capacity = n;
    return LWS_OK;
}

/* ---- lws-bpe files ------------------------------------------------------- */

static const cJSON *member(const cJSON *root, const char *key, const char *want, const char *path,
                           lws_status *s) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (*s == LWS_OK && !item)
        *s = lws_fail(LWS_ERR_DATA, "file %s: \"%s\" is missing; it must be %s", path, key, want);
    return item;
}

static lws_status need(int ok, const char *path, const char *key, const char *want) {
    if (ok) return LWS_OK;
    return lws_fail(LWS_ERR_DATA, "file %s: \"%s\" must be %s", path, key, want);
}

static lws_status read_vocab(const char *path, const cJSON *vocab, bpe_vocab *v, bpe_map *ids) {
    uint8_t *scratch = NULL;
    size_t capacity = 0;
    lws_status s = LWS_OK;
    char what[1024];
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, vocab) {
        snprintf(what, sizeof what, "file %s: vocab[%d]", path, i++);
        if (!cJSON_IsString(item)) {
            s = lws_fail(LWS_ERR_DATA, "%s: not a string", what);
            break;
        }
        if ((s = scratch_for(&scratch, &capacity, strlen(item->valuestring) + 1)) != LWS_OK ||
            (s = add_mapped_token(v, ids, item->valuestring, scratch, what)) != LWS_OK)
            break;
    }
    free(scratch);
    return s;
}

static lws_status read_merges(const char *path, const cJSON *merges, bpe_vocab *v,
                              const bpe_map *ids) {
    uint8_t *scratch = NULL;
    size_t capacity = 0;
    lws_status s = LWS_OK;
    char what[1024], buf[48];
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, merges) {
        const char *text = cJSON_IsString(item) ? item->valuestring : NULL;
        const char *space = text ? strchr(text, ' ') : NULL;
        snprintf(what, sizeof what, "file %s: merges[%d]", path, i++);
        if (!space || space == text || !space[1] || strchr(space + 1, ' ')) {
            s = lws_fail(LWS_ERR_DATA, "%s: %s%s%s is not a merge \"A B\" (two tokens, one space)",
                         what, text ? "\"" : "", text ? shown(text, buf) : "not a string",
                         text ? "\"" : "");
            break;
        }
        snprintf(what + strlen(what), sizeof what - strlen(what), " \"%s\"", shown(text, buf));
        if ((s = scratch_for(&scratch, &capacity, strlen(text))) != LWS_OK ||
            (s = add_mapped_merge(v, ids, text, (size_t)(space - text), space + 1,
                                  strlen(space + 1), scratch, what)) != LWS_OK)
            break;
    }
    free(scratch);
    return s;
}

static lws_status read_specials(const char *path, const cJSON *specials, bpe_vocab *v) {
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, specials) {
        const char *t = cJSON_IsString(item) ? item->valuestring : NULL;
        if (!t || !t[0] || !valid_utf8(t))
            return lws_fail(LWS_ERR_DATA,
                            "file %s: special_tokens[%d]: must be non-empty UTF-8 text", path, i);
        for (const cJSON *o = specials->child; o != item; o = o->next)
            if (strcmp(o->valuestring, t) == 0)
                return lws_fail(LWS_ERR_DATA, "file %s: special_tokens[%d]: \"%s\" is listed twice",
                                path, i, t);
        LWS_TRY(bpe_vocab_add_token(v, (const uint8_t *)t, strlen(t)));
        v->n_specials++, i++;
    }
    return LWS_OK;
}

static lws_status load_lws_bpe(const char *path, const cJSON *root, bpe_vocab *v,
                               const char **hash) {
    lws_status s = LWS_OK;
    LWS_TRY(need(cJSON_IsObject(root), path, "(top level)",
                 "an object; an lws-bpe file is made by `lws tokenizer train`"));
    const cJSON *format = member(root, "format", "\"lws-bpe\"", path, &s);
    const cJSON *version = member(root, "version", "1", path, &s);
    const cJSON *pre = member(root, "pretokenizer", "\"gpt2\"", path, &s);
    const cJSON *size = member(root, "vocab_size", "the number of tokens", path, &s);
    const cJSON *h = member(root, "hash", "the vocabulary's hash", path, &s);
    const cJSON *specials = member(root, "special_tokens", "an array of strings", path, &s);
    const cJSON *vocab = member(root, "vocab", "an array of token strings", path, &s);
    const cJSON *merges = member(root, "merges", "an array of \"A B\" strings", path, &s);
    LWS_TRY(s);
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "lws-bpe") != 0)
        return lws_fail(LWS_ERR_DATA,
                        "file %s: \"format\" is not \"lws-bpe\"; this reader knows "
                        "lws-bpe files (`lws tokenizer train`) and gpt2:DIR",
                        path);
    LWS_TRY(need(cJSON_IsNumber(version) && version->valuedouble == 1, path, "version",
                 "1 (the only version this build reads)"));
    LWS_TRY(need(cJSON_IsString(pre) && strcmp(pre->valuestring, "gpt2") == 0, path, "pretokenizer",
                 "\"gpt2\" (the only pre-tokenizer)"));
    LWS_TRY(need(cJSON_IsString(h), path, "hash", "a string"));
    LWS_TRY(need(cJSON_IsArray(specials), path, "special_tokens", "an array of strings"));
    LWS_TRY(need(cJSON_IsArray(vocab), path, "vocab", "an array of token strings"));
    LWS_TRY(need(cJSON_IsArray(merges), path, "merges", "an array of \"A B\" strings"));
    *hash = h->valuestring;
    int n_vocab = cJSON_GetArraySize(vocab), n_specials = cJSON_GetArraySize(specials);
    if (!cJSON_IsNumber(size) || size->valuedouble != (double)(n_vocab + n_specials))
        return lws_fail(LWS_ERR_DATA,
                        "file %s: \"vocab_size\" must be %d, the %d tokens of \"vocab\" plus "
                        "the %d of \"special_tokens\"",
                        path, n_vocab + n_specials, n_vocab, n_specials);
    bpe_map ids = {0};
    s = read_vocab(path, vocab, v, &ids);
    if (s == LWS_OK) s = read_merges(path, merges, v, &ids);
    if (s == LWS_OK) s = read_specials(path, specials, v);
    bpe_map_free(&ids);
    return s;
}

lws_status lws_bpe_load(const char *path, lws_bpe **out) {
    *out = NULL;
    char *text;
    size_t len;
    LWS_TRY(lws_read_file(path, BPE_FILE_MAX_BYTES, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t offset = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        free(text);
        return lws_fail(LWS_ERR_DATA, "file %s: not valid JSON (near byte %zu)", path, offset);
    }
    free(text);
    bpe_vocab v = {0};
    const char *hash = NULL;
    lws_status s = load_lws_bpe(path, root, &v, &hash);
    char want[LWS_TOKENIZER_NAME_MAX] = "";
    if (hash) snprintf(want, sizeof want, "%s", hash);
    cJSON_Delete(root);
    if (s != LWS_OK) {
        bpe_vocab_free(&v);
        return s;
    }
    lws_bpe *b;
    s = bpe_create(&v, &b);
    if (s != LWS_OK) {
        lws_error_context("file %s", path);
        return s;
    }
    if (strcmp(b->hash, want) != 0) {
        s = lws_fail(LWS_ERR_DATA,
                     "file %s: \"hash\" is \"%s\" but the vocabulary's hash is \"%s\": the file "
                     "was changed after it was written; train it again (or, if the change is "
                     "meant, set \"hash\" to \"%s\")",
                     path, want, b->hash, b->hash);
        lws_bpe_free(b);
        return s;
    }
    *out = b;
    return LWS_OK;
}

/* ---- GPT-2's encoder.json + vocab.bpe -------------------------------------- */

static lws_status load_encoder(const char *path, const cJSON *root, bpe_vocab *v, bpe_map *ids) {
    if (!cJSON_IsObject(root))
        return lws_fail(LWS_ERR_DATA, "file %s: the top level must be an object {token: id}", path);
    int n = cJSON_GetArraySize(root);
    const cJSON **by_id = calloc(n ? (size_t)n : 1, sizeof *by_id);
    if (!by_id) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory");
    lws_status s = LWS_OK;
    const cJSON *item;
    char buf[48];
    cJSON_ArrayForEach(item, root) {
        double id = cJSON_IsNumber(item) ? item->valuedouble : -1;
        if (!(id >= 0 && id < n && id == (double)(int)id)) {
            s = lws_fail(LWS_ERR_DATA,
                         "file %s: \"%s\": the id must be an integer in [0, %d), one per token",
                         path, shown(item->string, buf), n);
            break;
        }
        if (by_id[(int)id]) {
            s = lws_fail(LWS_ERR_DATA, "file %s: \"%s\": id %d is also the id of \"%s\"", path,
                         shown(item->string, buf), (int)id, by_id[(int)id]->string);
            break;
        }
        by_id[(int)id] = item;
    }
    uint8_t *scratch = NULL;
    size_t capacity = 0;
    for (int id = 0; id < n && s == LWS_OK; id++) {
        if ((s = scratch_for(&scratch, &capacity, strlen(by_id[id]->string) + 1)) != LWS_OK) break;
        char what[1024];
        snprintf(what, sizeof what, "file %s: token", path);
        s = add_mapped_token(v, ids, by_id[id]->string, scratch, what);
    }
    free(scratch);
    free(by_id);
    return s;
}

/* One merge "A B" a line; a first line starting with '#' ("#version: 0.2")
 * and empty lines are skipped. Fields are split at whitespace, which the
 * byte-to-character map never produces. */
static lws_status load_merges(const char *path, char *text, size_t len, bpe_vocab *v,
                              const bpe_map *ids) {
    uint8_t *scratch = malloc(len + 1);
    if (!scratch) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory");
    lws_status s = LWS_OK;
    size_t line_no = 0;
    for (char *line = text; line < text + len && s == LWS_OK;) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end) end = text + len;
        *end = 0;
        line_no++;
        char *field[3] = {0};
        int n_fields = 0;
        size_t field_len[3] = {0};
        for (char *c = line; *c && n_fields < 3;) {
            while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\v' || *c == '\f') c++;
            if (!*c) break;
            field[n_fields] = c;
            while (*c && !(*c == ' ' || *c == '\t' || *c == '\r' || *c == '\v' || *c == '\f')) c++;
            field_len[n_fields] = (size_t)(c - field[n_fields]);
            n_fields++;
        }
        int skip = n_fields == 0 || (line_no == 1 && line[0] == '#');
        if (!skip && n_fields != 2) {
            char buf[48];
            s = lws_fail(LWS_ERR_DATA, "file %s: line %zu: \"%s\" is not a merge \"A B\"", path,
                         line_no, shown(line, buf));
        } else if (!skip) {
            char what[128];
            int a = field_len[0] > 40 ? 40 : (int)field_len[0];
            int b = field_len[1] > 40 ? 40 : (int)field_len[1];
            snprintf(what, sizeof what, "line %zu \"%.*s %.*s\"", line_no, a, field[0], b,
                     field[1]);
            s = add_mapped_merge(v, ids, field[0], field_len[0], field[1], field_len[1], scratch,
                                 what);
            if (s != LWS_OK) lws_error_context("file %s", path);
        }
        line = end + 1;
    }
    free(scratch);
    return s;
}

lws_status lws_bpe_load_gpt2(const char *dir, lws_bpe **out) {
    *out = NULL;
    size_t n = strlen(dir) + 16;
    char *encoder_path = malloc(n), *merges_path = malloc(n);
    char *text = NULL;
    size_t len;
    bpe_vocab v = {0};
    bpe_map ids = {0};
    lws_status s = LWS_OK;
    if (!encoder_path || !merges_path) {
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "bpe: out of memory");
        goto done;
    }
    snprintf(encoder_path, n, "%s/encoder.json", dir);
    snprintf(merges_path, n, "%s/vocab.bpe", dir);
    if ((s = lws_read_file(encoder_path, BPE_FILE_MAX_BYTES, &text, &len)) != LWS_OK) goto done;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        s = lws_fail(LWS_ERR_DATA, "file %s: not valid JSON (near byte %zu)", encoder_path,
                     at && at >= text && at <= text + len ? (size_t)(at - text) : (size_t)0);
        goto done;
    }
    s = load_encoder(encoder_path, root, &v, &ids);
    cJSON_Delete(root);
    free(text);
    text = NULL;
    if (s == LWS_OK) s = lws_read_file(merges_path, BPE_FILE_MAX_BYTES, &text, &len);
    if (s == LWS_OK) s = load_merges(merges_path, text, len, &v, &ids);
    if (s == LWS_OK) {
        s = bpe_create(&v, out);
        if (s != LWS_OK) lws_error_context("file %s", encoder_path);
    }
done:
    bpe_vocab_free(&v);
    bpe_map_free(&ids);
    free(text), free(encoder_path), free(merges_path);
    return s;
}

/* ---- writing lws-bpe files -------------------------------------------------- */

/* A token's characters in GPT-2's byte-to-character map, escaped for a JSON
 * string. */
static void put_mapped(FILE *f, const uint8_t *t, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) {
        uint32_t cp = bpe_byte_char(t[i]);
        if (cp == '"' || cp == '\\')
            fprintf(f, "\\%c", (char)cp);
        else if (cp < 0x80)
            fputc((int)cp, f);
        else
            fputc(0xC0 | (int)(cp >> 6), f), fputc(0x80 | (int)(cp & 0x3F), f);
    }
}

static void put_text(FILE *f, const uint8_t *t, uint32_t len) {
    fputc('"', f);
    for (uint32_t i = 0; i < len; i++) {
        if (t[i] == '"' || t[i] == '\\')
            fprintf(f, "\\%c", t[i]);
        else if (t[i] < 0x20)
            fprintf(f, "\\u%04x", t[i]);
        else
            fputc(t[i], f);
    }
    fputc('"', f);
}

lws_status lws_bpe_save(const lws_bpe *b, const char *path) {
    /* Printed to memory, then written in one piece (atomically). */
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    if (!f) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory printing it", path);
    const bpe_vocab *v = &b->vocab;
    uint32_t n_ordinary = v->n_tokens - v->n_specials, len;
    fprintf(f,
            "{\n  \"format\": \"lws-bpe\",\n  \"version\": 1,\n  \"pretokenizer\": \"gpt2\",\n"
            "  \"vocab_size\": %u,\n  \"hash\": \"%s\",\n  \"special_tokens\": [",
            v->n_tokens, b->hash);
    for (uint32_t i = n_ordinary; i < v->n_tokens; i++) {
        const uint8_t *t = lws_bpe_token(b, i, &len);
        fputs(i > n_ordinary ? ", " : "", f);
        put_text(f, t, len);
    }
    fputs("],\n  \"vocab\": [", f);
    for (uint32_t i = 0; i < n_ordinary; i++) {
        const uint8_t *t = lws_bpe_token(b, i, &len);
        fputs(i ? ",\n    \"" : "\n    \"", f);
        put_mapped(f, t, len);
        fputc('"', f);
    }
    fputs("\n  ],\n  \"merges\": [", f);
    for (uint32_t k = 0; k < v->n_merges; k++) {
        const uint32_t *m = v->merges + 3 * (size_t)k;
        uint32_t ll, rl;
        const uint8_t *l = lws_bpe_token(b, m[0], &ll), *r = lws_bpe_token(b, m[1], &rl);
        fputs(k ? ",\n    \"" : "\n    \"", f);
        put_mapped(f, l, ll);
        fputc(' ', f);
        put_mapped(f, r, rl);
        fputc('"', f);
    }
    fputs(v->n_merges ? "\n  ]\n}\n" : "]\n}\n", f);
    int ok = !ferror(f);
    if (fclose(f) != 0) ok = 0;
    lws_status s = ok ? lws_write_file_atomic(path, text, text_len)
                      : lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory printing it", path);
    free(text);
    return s;
}
