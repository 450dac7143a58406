/* lws prepare: tokenizes text files into DIR/train.tok, DIR/val.tok and
 * DIR/manifest.json. Directories are walked in sorted order, so the same
 * inputs always give the same files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "lws/data.h"

static const char *usage =
    "lws prepare --tokenizer NAME INPUT... -o DIR [--val-fraction F]\n"
    "  INPUT           text files or directories (walked recursively in sorted order,\n"
    "                  skipping names that start with '.')\n"
    "  --tokenizer     bytes, TOK.json (from `lws tokenizer train`) or gpt2:DIR\n"
    "                  (GPT-2's DIR/encoder.json + DIR/vocab.bpe)\n"
    "  -o, --output    output directory: train.tok, val.tok, manifest.json\n"
    "  --val-fraction  fraction of the tokens, taken from the end, held out for\n"
    "                  validation in val.tok (default 0.01)";

typedef struct input_file {
    char *path;
    uint64_t bytes, tokens;
} input_file;

typedef struct input_list {
    input_file *files;
    size_t count, capacity;
} input_list;

static lws_status add_file(input_list *l, const char *path) {
    if (l->count == l->capacity) {
        size_t cap = l->capacity ? 2 * l->capacity : 64;
        input_file *p = realloc(l->files, cap * sizeof *p);
        if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory listing inputs");
        l->files = p, l->capacity = cap;
    }
    l->files[l->count] = (input_file){strdup(path), 0, 0};
    if (!l->files[l->count].path)
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory listing inputs");
    l->count++;
    return LWS_OK;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path (a file) or every regular file under it (a directory). */
static lws_status walk(input_list *l, const char *path, int depth) {
    struct stat st;
    if (stat(path, &st) != 0) return lws_fail(LWS_ERR_IO, "input %s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) return add_file(l, path);
    if (!S_ISDIR(st.st_mode))
        return lws_fail(LWS_ERR_IO, "input %s: not a regular file or a directory", path);
    if (depth > 64)
        return lws_fail(LWS_ERR_IO, "input %s: directories nested deeper than 64 (a link loop?)",
                        path);
    DIR *d = opendir(path);
    if (!d) return lws_fail(LWS_ERR_IO, "input %s: cannot list: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    lws_status s = LWS_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue; /* ".", "..", and hidden files like .git */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory listing %s", path);
                break;
            }
            names = p;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory listing %s", path);
            break;
        }
        int slash = path[strlen(path) - 1] != '/';
        snprintf(names[n++], len, "%s%s%s", path, slash ? "/" : "", e->d_name);
    }
    closedir(d);
    if (s == LWS_OK && n) qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        if (s == LWS_OK) s = walk(l, names[i], depth + 1);
        free(names[i]);
    }
    free(names);
    return s;
}

/* Encodes one input file into *tokens (replacing its contents). */
static lws_status encode_file(const lws_tokenizer *tok, input_file *in, uint32_t **tokens,
                              size_t *count, size_t *capacity) {
    *count = 0;
    int fd = open(in->path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        lws_status s = lws_fail(LWS_ERR_IO, "input %s: cannot read: %s", in->path, strerror(errno));
        if (fd >= 0) close(fd);
        return s;
    }
    in->bytes = (uint64_t)st.st_size;
    if (st.st_size == 0) {
        close(fd);
        return LWS_OK;
    }
    void *text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (text == MAP_FAILED)
        return lws_fail(LWS_ERR_IO, "input %s: mmap failed: %s", in->path, strerror(errno));
    lws_status s = tok->encode(tok, text, (size_t)st.st_size, tokens, count, capacity);
    munmap(text, (size_t)st.st_size);
    if (s != LWS_OK) lws_error_context("input %s", in->path);
    return s;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static lws_status make_dir(const char *dir) {
    char *p = strdup(dir);
    if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
    /* mkdir -p: each prefix, then the whole path. */
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != 0) continue;
        char saved = *c;
        *c = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            lws_status s = lws_fail(LWS_ERR_IO, "output directory %s: cannot create %s: %s", dir, p,
                                    strerror(errno));
            free(p);
            return s;
        }
        *c = saved;
        if (!saved) break;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return lws_fail(LWS_ERR_IO, "output %s: not a directory", dir);
    return LWS_OK;
}

static cJSON *json_u64(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

typedef struct output_file {
    const char *name;
    uint64_t tokens;
    uint32_t token_bytes;
} output_file;

static lws_status write_manifest(const char *dir, const lws_tokenizer *tok, double val_fraction,
                                 const input_list *in, const output_file *out, size_t n_out) {
    cJSON *root = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(root, "tokenizer");
    cJSON_AddStringToObject(t, "name", tok->name);
    cJSON_AddStringToObject(t, "hash", tok->hash);
    cJSON_AddItemToObject(t, "vocab_size", json_u64(tok->vocab_size));
    cJSON_AddNumberToObject(root, "val_fraction", val_fraction);
    cJSON *inputs = cJSON_AddArrayToObject(root, "inputs");
    for (size_t i = 0; i < in->count; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", in->files[i].path);
        cJSON_AddItemToObject(f, "bytes", json_u64(in->files[i].bytes));
        cJSON_AddItemToObject(f, "tokens", json_u64(in->files[i].tokens));
        cJSON_AddItemToArray(inputs, f);
    }
    cJSON *outputs = cJSON_AddArrayToObject(root, "outputs");
    for (size_t i = 0; i < n_out; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", out[i].name);
        cJSON_AddStringToObject(f, "format", "lws token file");
        cJSON_AddItemToObject(f, "tokens", json_u64(out[i].tokens));
        cJSON_AddItemToObject(
            f, "bytes", json_u64(LWS_TOKENS_HEADER_BYTES + out[i].tokens * out[i].token_bytes));
        cJSON_AddItemToArray(outputs, f);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char *path = join(dir, "manifest.json"), *tmp = join(dir, "manifest.json.tmp");
    lws_status s = LWS_OK;
    if (!text || !path || !tmp) {
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory writing the manifest");
        goto done;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s = lws_fail(LWS_ERR_IO, "file %s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        s = lws_fail(LWS_ERR_IO, "file %s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    s = lws_file_commit(tmp, path);
done:
    free(text), free(path), free(tmp);
    return s;
}

/* Pass 1 counts tokens per file (the split point needs the total); pass 2
 * encodes again and streams the tokens to train.tok, then val.tok. Only
 * one file's tokens are in memory at a time. */
static lws_status prepare(const char *tokenizer, const input_list *in, const char *dir,
                          double val_fraction) {
    lws_tokenizer tok;
    LWS_TRY(lws_tokenizer_create(tokenizer, &tok));
    uint32_t *tokens = NULL;
    size_t count = 0, capacity = 0;
    uint64_t total = 0, total_bytes = 0;
    lws_status s = LWS_OK;
    char *train_path = join(dir, "train.tok"), *val_path = join(dir, "val.tok");
    lws_token_writer train = {0}, val = {0};
    if (!train_path || !val_path) {
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < in->count && s == LWS_OK; i++) {
        s = encode_file(&tok, &in->files[i], &tokens, &count, &capacity);
        in->files[i].tokens = count;
        total += count, total_bytes += in->files[i].bytes;
    }
    if (s != LWS_OK) goto done;
    uint64_t val_count = (uint64_t)floor((double)total * val_fraction + 0.5);
    if (val_count >= total) {
        s = lws_fail(LWS_ERR_INVALID,
                     "the inputs hold %" PRIu64 " tokens, %" PRIu64
                     " of them for validation: nothing is left for training; add text or lower "
                     "--val-fraction",
                     total, val_count);
        goto done;
    }
    uint64_t train_count = total - val_count;
    s = make_dir(dir);
    if (s == LWS_OK)
        s = lws_token_writer_open(&train, train_path, tok.vocab_size, tok.name, tok.hash);
    if (s == LWS_OK) s = lws_token_writer_open(&val, val_path, tok.vocab_size, tok.name, tok.hash);
    uint64_t written = 0;
    for (size_t i = 0; i < in->count && s == LWS_OK; i++) {
        uint64_t counted = in->files[i].tokens;
        s = encode_file(&tok, &in->files[i], &tokens, &count, &capacity);
        if (s == LWS_OK && count != counted)
            s = lws_fail(LWS_ERR_IO,
                         "input %s: changed while being prepared (%" PRIu64 " tokens, then %zu)",
                         in->files[i].path, counted, count);
        uint64_t to_train = written < train_count ? train_count - written : 0;
        if (to_train > count) to_train = count;
        if (s == LWS_OK) s = lws_token_writer_append(&train, tokens, (size_t)to_train);
        if (s == LWS_OK)
            s = lws_token_writer_append(&val, tokens + to_train, (size_t)(count - to_train));
        written += count;
    }
    output_file outs[2] = {{"train.tok", train.count, train.token_bytes},
                           {"val.tok", val.count, val.token_bytes}};
    if (s == LWS_OK) s = lws_token_writer_close(&train);
    if (s == LWS_OK) s = lws_token_writer_close(&val);
    if (s == LWS_OK) s = write_manifest(dir, &tok, val_fraction, in, outs, 2);
    if (s == LWS_OK)
        printf("lws prepare: %zu file%s, %" PRIu64 " bytes -> %" PRIu64 " train + %" PRIu64
               " val tokens (tokenizer %s, vocab %" PRIu32 ") in %s\n",
               in->count, in->count == 1 ? "" : "s", total_bytes, train_count, val_count, tok.name,
               tok.vocab_size, dir);
done:
    if (train.file) lws_token_writer_abort(&train);
    if (val.file) lws_token_writer_abort(&val);
    free(tokens), free(train_path), free(val_path);
    lws_tokenizer_destroy(&tok);
    return s;
}

int lws_cli_prepare(int argc, char **argv) {
    const char *tokenizer = NULL, *dir = NULL;
    double val_fraction = 0.01;
    input_list inputs = {0};
    const char **args = calloc((size_t)argc + 1, sizeof *args);
    size_t n_args = 0;
    int rc = 0;
    if (!args) return lws_cli_usage(usage, "out of memory");
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", usage);
            free(args);
            return 0;
        }
        int takes_value = strcmp(a, "--tokenizer") == 0 || strcmp(a, "-o") == 0 ||
                          strcmp(a, "--output") == 0 || strcmp(a, "--val-fraction") == 0;
        if (takes_value && i + 1 >= argc) {
            rc = lws_cli_usage(usage, "%s needs a value", a);
        } else if (strcmp(a, "--tokenizer") == 0) {
            tokenizer = argv[++i];
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            dir = argv[++i];
        } else if (strcmp(a, "--val-fraction") == 0) {
            char *end;
            const char *v = argv[++i];
            errno = 0;
            val_fraction = strtod(v, &end);
            if (errno || end == v || *end || !(val_fraction >= 0 && val_fraction < 1))
                rc = lws_cli_usage(usage,
                                   "--val-fraction '%s' is not allowed; use a number in "
                                   "[0, 1)",
                                   v);
        } else if (a[0] == '-' && a[1]) {
            rc = lws_cli_usage(usage, "unknown option '%s'", a);
        } else {
            args[n_args++] = a;
        }
    }
    if (rc == 0 && !tokenizer)
        rc = lws_cli_usage(usage, "missing --tokenizer NAME (known: %s)", lws_tokenizer_names());
    if (rc == 0 && !dir) rc = lws_cli_usage(usage, "missing -o DIR");
    if (rc == 0 && n_args == 0) rc = lws_cli_usage(usage, "no INPUT files or directories");
    if (rc == 0) {
        lws_tokenizer probe;
        /* Refuse an unknown tokenizer before reading any input. */
        if (lws_tokenizer_create(tokenizer, &probe) != LWS_OK)
            rc = lws_cli_error();
        else
            lws_tokenizer_destroy(&probe);
    }
    lws_status s = LWS_OK;
    for (size_t i = 0; rc == 0 && s == LWS_OK && i < n_args; i++) s = walk(&inputs, args[i], 0);
    if (rc == 0 && s == LWS_OK && inputs.count == 0)
        s = lws_fail(LWS_ERR_IO, "no input files found (hidden files are skipped)");
    if (rc == 0 && s == LWS_OK) s = prepare(tokenizer, &inputs, dir, val_fraction);
    if (rc == 0 && s != LWS_OK) rc = lws_cli_error();
    for (size_t i = 0; i < inputs.count; i++) free(inputs.files[i].path);
    free(inputs.files);
    free(args);
    return rc;
}
