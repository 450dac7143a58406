/* lws prepare: tokenizes text files into DIR/train.tok, DIR/val.tok and
 * DIR/manifest.json. Directories are walked in sorted order, and the
 * tokens do not depend on the number of threads, so the same inputs always
 * give the same files. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "data/prepare_encode.h"
#include "lws/data.h"
#include "util/files.h"

static const char *usage =
    "lws prepare --tokenizer NAME INPUT... -o DIR [--val-fraction F] [--jobs N] [--progress]\n"
    "  INPUT           text files or directories (walked recursively in sorted order,\n"
    "                  skipping names that start with '.')\n"
    "  --tokenizer     bytes, TOK.json (from `lws tokenizer train`) or gpt2:DIR\n"
    "                  (GPT-2's DIR/encoder.json + DIR/vocab.bpe)\n"
    "  -o, --output    output directory: train.tok, val.tok, manifest.json\n"
    "  --val-fraction  fraction of the tokens, taken from the end, held out for\n"
    "                  validation in val.tok (default 0.01)\n"
    "  -j, --jobs      threads that tokenize (default: the online CPUs); the files are\n"
    "                  the same for any number\n"
    "  --progress      draw a progress bar on stderr even when it is not a terminal\n"
    "                  (on a terminal it appears by itself for inputs that take a while)\n"
    "  --no-progress   never draw it\n"
    "  --chunk-bytes   text per piece of work (default 262144); the files are the same\n"
    "                  for any size";

typedef struct input_file {
    char *path;
    uint64_t bytes, tokens;
} input_file;

typedef struct input_list {
    input_file *files;
    size_t count, capacity;
} input_list;

static lws_status add_file(input_list *l, const char *path, uint64_t bytes) {
    if (l->count == l->capacity) {
        size_t cap = l->capacity ? 2 * l->capacity : 64;
        input_file *p = realloc(l->files, cap * sizeof *p);
        if (!p) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory listing inputs");
        l->files = p, l->capacity = cap;
    }
    l->files[l->count] = (input_file){strdup(path), bytes, 0};
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
    if (S_ISREG(st.st_mode)) return add_file(l, path, (uint64_t)st.st_size);
    if (!S_ISDIR(st.st_mode))
        return lws_fail(LWS_ERR_IO, "input %s: is %s, not a regular file or a directory", path,
                        lws_file_kind(st.st_mode));
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

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
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
    char *path = join(dir, "manifest.json");
    lws_status s = path ? lws_write_json_atomic(path, root)
                        : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory writing the manifest");
    cJSON_Delete(root);
    free(path);
    return s;
}

/* ---- progress bar ------------------------------------------------------------ */

/* One line on stderr, redrawn in place at most ten times a second: bytes
 * tokenized of the total, percent, speed and time left. On a terminal it
 * appears only once the work has taken half a second; --progress draws it
 * from the start wherever stderr goes. stdout keeps only the summary. */
typedef struct progress {
    int on, forced, drawn;
    uint64_t total, done;
    double start, last_draw;
    size_t width; /* of the last line drawn, to blank what a shorter one leaves */
} progress;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void format_duration(char *buf, size_t n, double seconds) {
    unsigned long s = (unsigned long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%lu:%02lu", s / 60, s % 60);
}

static void progress_draw(progress *p, int final) {
    if (!p->on) return;
    double t = now_seconds(), elapsed = t - p->start;
    if (!final && (t - p->last_draw < 0.1 || (!p->forced && elapsed < 0.5))) return;
    if (final && !p->drawn && !p->forced) return;
    enum { BAR = 30 };
    double fraction = p->total ? (double)p->done / (double)p->total : 1.0;
    if (fraction > 1) fraction = 1;
    char bar[BAR + 1];
    size_t filled = (size_t)(fraction * BAR);
    for (size_t i = 0; i < BAR; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR] = 0;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0; /* bytes/s */
    char when[32] = "ETA --:--";
    if (final) {
        snprintf(when, sizeof when, "in %.1f s", elapsed);
    } else if (rate > 0) {
        uint64_t left = p->total > p->done ? p->total - p->done : 0; /* a file may grow */
        format_duration(when + 4, sizeof when - 4, (double)left / rate);
    }
    char line[160];
    int len = snprintf(line, sizeof line, "tokenizing [%s] %3d%%  %.1f/%.1f MB  %.1f MB/s  %s", bar,
                       (int)(100 * fraction), (double)p->done / 1e6, (double)p->total / 1e6,
                       rate / 1e6, when);
    size_t width = len > 0 ? (size_t)len : 0;
    fprintf(stderr, "\r%s%*s%s", line, p->width > width ? (int)(p->width - width) : 0, "",
            final ? "\n" : "");
    fflush(stderr);
    p->width = width, p->drawn = 1, p->last_draw = t;
}

/* Ends a bar cut short by a failure, so the message starts on its own line. */
static void progress_abandon(progress *p) {
    if (p->on && p->drawn) fputc('\n', stderr);
    p->on = 0;
}

/* ---- tokens in input order ----------------------------------------------------- */

/* The tokens wait in a scratch file in DIR, at the token files' width,
 * until the total (and with it the train/val split) is known; the file is
 * removed as soon as it is open, so nothing is left behind. Every input is
 * read and tokenized once. */
typedef struct scratch {
    FILE *file;
    uint32_t token_bytes;
    uint64_t count;
} scratch;

typedef struct encode_state {
    input_list *in;
    scratch *scratch;
    progress *progress;
} encode_state;

enum { BLOCK_TOKENS = 16384 };

static lws_status emit_chunk(void *user, size_t file, const uint32_t *tokens, size_t count,
                             size_t text_bytes) {
    encode_state *st = user;
    scratch *sc = st->scratch;
    st->in->files[file].tokens += count;
    st->in->files[file].bytes += text_bytes;
    uint8_t buf[BLOCK_TOKENS * 4];
    for (size_t done = 0; done < count;) {
        size_t m = count - done < BLOCK_TOKENS ? count - done : BLOCK_TOKENS;
        for (size_t i = 0; i < m; i++) {
            uint32_t v = tokens[done + i];
            uint8_t *q = buf + i * sc->token_bytes;
            q[0] = (uint8_t)v, q[1] = (uint8_t)(v >> 8);
            if (sc->token_bytes == 4) q[2] = (uint8_t)(v >> 16), q[3] = (uint8_t)(v >> 24);
        }
        if (fwrite(buf, sc->token_bytes, m, sc->file) != m)
            return lws_fail(LWS_ERR_IO,
                            "scratch file for tokens: write failed: %s (is the disk full?)",
                            strerror(errno));
        done += m;
    }
    sc->count += count;
    st->progress->done += text_bytes;
    progress_draw(st->progress, 0);
    return LWS_OK;
}

/* Copies the scratch tokens to train.tok (the first train_count) and
 * val.tok (the rest). */
static lws_status split_tokens(scratch *sc, uint64_t train_count, lws_token_writer *train,
                               lws_token_writer *val) {
    if (fflush(sc->file) != 0 || fseek(sc->file, 0, SEEK_SET) != 0)
        return lws_fail(LWS_ERR_IO, "scratch file for tokens: cannot rewind: %s", strerror(errno));
    uint8_t buf[BLOCK_TOKENS * 4];
    uint32_t tokens[BLOCK_TOKENS];
    for (uint64_t done = 0; done < sc->count;) {
        size_t m = sc->count - done < BLOCK_TOKENS ? (size_t)(sc->count - done) : BLOCK_TOKENS;
        if (fread(buf, sc->token_bytes, m, sc->file) != m)
            return lws_fail(LWS_ERR_IO,
                            "scratch file for tokens: read failed at token %" PRIu64 ": %s", done,
                            ferror(sc->file) ? strerror(errno) : "file is short");
        for (size_t i = 0; i < m; i++) {
            const uint8_t *q = buf + i * sc->token_bytes;
            tokens[i] = (uint32_t)q[0] | (uint32_t)q[1] << 8;
            if (sc->token_bytes == 4) tokens[i] |= (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        }
        size_t to_train =
            done < train_count ? (size_t)(train_count - done < m ? train_count - done : m) : 0;
        LWS_TRY(lws_token_writer_append(train, tokens, to_train));
        LWS_TRY(lws_token_writer_append(val, tokens + to_train, m - to_train));
        done += m;
    }
    return LWS_OK;
}

typedef struct prepare_options {
    const char *spec; /* --tokenizer */
    const char *dir;
    double val_fraction;
    unsigned jobs;
    size_t chunk_bytes;
    int progress; /* 1: --progress, 0: --no-progress, -1: when stderr is a terminal */
} prepare_options;

/* Tokenizes the inputs once, in chunks over opt->jobs threads (the tokens
 * do not depend on the number), then splits them into train.tok and
 * val.tok. tok (made from opt->spec) is used by the first thread. */
static lws_status prepare(lws_tokenizer *tok, input_list *in, const prepare_options *opt) {
    const char *dir = opt->dir;
    uint64_t total_bytes = 0;
    for (size_t i = 0; i < in->count; i++)
        total_bytes += in->files[i].bytes, in->files[i].bytes = 0;
    struct stat dir_st;
    int made_dir = stat(dir, &dir_st) != 0;
    LWS_TRY(lws_mkdir_p(dir));
    lws_status s = LWS_OK;
    char *train_path = join(dir, "train.tok"), *val_path = join(dir, "val.tok");
    char *scratch_path = join(dir, "tokens.scratch.tmp");
    lws_token_writer train = {0}, val = {0};
    scratch sc = {.token_bytes = tok->vocab_size <= 65536 ? 2 : 4};
    progress bar = {.on = opt->progress == 1 || (opt->progress < 0 && isatty(STDERR_FILENO)),
                    .forced = opt->progress == 1,
                    .total = total_bytes,
                    .start = now_seconds()};
    if (!train_path || !val_path || !scratch_path) {
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (!(sc.file = fopen(scratch_path, "w+b"))) {
        s = lws_fail(LWS_ERR_IO, "file %s: cannot create: %s", scratch_path, strerror(errno));
        goto done;
    }
    unlink(scratch_path);

    const char **paths = malloc(in->count * sizeof *paths);
    if (!paths) {
        s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory listing inputs");
        goto done;
    }
    for (size_t i = 0; i < in->count; i++) paths[i] = in->files[i].path;
    encode_state st = {in, &sc, &bar};
    prepare_encoder enc = {.spec = opt->spec,
                           .tokenizer = tok,
                           .jobs = opt->jobs,
                           .chunk_bytes = opt->chunk_bytes,
                           .emit = emit_chunk,
                           .user = &st};
    progress_draw(&bar, 0);
    s = prepare_encode_files(&enc, paths, in->count);
    free(paths);
    if (s != LWS_OK) goto done;
    progress_draw(&bar, 1);

    uint64_t total = sc.count, read_bytes = 0;
    for (size_t i = 0; i < in->count; i++) read_bytes += in->files[i].bytes;
    uint64_t val_count = (uint64_t)floor((double)total * opt->val_fraction + 0.5);
    if (val_count >= total) {
        s = lws_fail(LWS_ERR_INVALID,
                     "the inputs hold %" PRIu64 " tokens, %" PRIu64
                     " of them for validation: nothing is left for training; add text or lower "
                     "--val-fraction",
                     total, val_count);
        goto done;
    }
    uint64_t train_count = total - val_count;
    s = lws_token_writer_open(&train, train_path, tok->vocab_size, tok->name, tok->hash);
    if (s == LWS_OK)
        s = lws_token_writer_open(&val, val_path, tok->vocab_size, tok->name, tok->hash);
    if (s == LWS_OK) s = split_tokens(&sc, train_count, &train, &val);
    output_file outs[2] = {{"train.tok", train.count, train.token_bytes},
                           {"val.tok", val.count, val.token_bytes}};
    if (s == LWS_OK) s = lws_token_writer_close(&train);
    if (s == LWS_OK) s = lws_token_writer_close(&val);
    if (s == LWS_OK) s = write_manifest(dir, tok, opt->val_fraction, in, outs, 2);
    if (s == LWS_OK)
        printf("lws prepare: %zu file%s, %" PRIu64 " bytes -> %" PRIu64 " train + %" PRIu64
               " val tokens (tokenizer %s, vocab %" PRIu32 ") in %s\n",
               in->count, in->count == 1 ? "" : "s", read_bytes, train_count, val_count, tok->name,
               tok->vocab_size, dir);
done:
    if (s != LWS_OK) progress_abandon(&bar);
    if (train.file) lws_token_writer_abort(&train);
    if (val.file) lws_token_writer_abort(&val);
    if (sc.file) fclose(sc.file);
    /* A directory made for a failed run goes again (rmdir leaves a non-empty one). */
    if (s != LWS_OK && made_dir) rmdir(dir);
    free(train_path), free(val_path), free(scratch_path);
    return s;
}

#define MAX_JOBS        1024
#define MAX_CHUNK_BYTES (1ull << 30)

int lws_cli_prepare(int argc, char **argv) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    prepare_options opt = {.val_fraction = 0.01,
                           .jobs = online < 1          ? 1
                                   : online > MAX_JOBS ? MAX_JOBS
                                                       : (unsigned)online,
                           .chunk_bytes = 256 * 1024,
                           .progress = -1};
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
                          strcmp(a, "--output") == 0 || strcmp(a, "--val-fraction") == 0 ||
                          strcmp(a, "--jobs") == 0 || strcmp(a, "-j") == 0 ||
                          strcmp(a, "--chunk-bytes") == 0;
        uint64_t n = 0;
        if (takes_value && i + 1 >= argc) {
            rc = lws_cli_usage(usage, "%s needs a value", a);
        } else if (strcmp(a, "--tokenizer") == 0) {
            opt.spec = argv[++i];
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            opt.dir = argv[++i];
        } else if (strcmp(a, "--val-fraction") == 0) {
            rc = lws_parse_real(usage, a, argv[++i], 0, 1, LWS_HI_OPEN, NULL, &opt.val_fraction);
        } else if (strcmp(a, "--jobs") == 0 || strcmp(a, "-j") == 0) {
            char note[64];
            snprintf(note, sizeof note, "threads; default: the %ld online CPUs", online);
            if (!(rc = lws_parse_u64(usage, a, argv[++i], 1, MAX_JOBS, note, &n)))
                opt.jobs = (unsigned)n;
        } else if (strcmp(a, "--chunk-bytes") == 0) {
            if (!(rc = lws_parse_u64(usage, a, argv[++i], 1, MAX_CHUNK_BYTES, NULL, &n)))
                opt.chunk_bytes = (size_t)n;
        } else if (strcmp(a, "--progress") == 0) {
            opt.progress = 1;
        } else if (strcmp(a, "--no-progress") == 0) {
            opt.progress = 0;
        } else if (a[0] == '-' && a[1]) {
            rc = lws_cli_usage(usage, "unknown option '%s'", a);
        } else {
            args[n_args++] = a;
        }
    }
    if (rc == 0 && !opt.spec)
        rc = lws_cli_usage(usage, "missing --tokenizer NAME (known: %s)", lws_tokenizer_names());
    if (rc == 0 && !opt.dir) rc = lws_cli_usage(usage, "missing -o DIR");
    if (rc == 0 && n_args == 0) rc = lws_cli_usage(usage, "no INPUT files or directories");
    lws_tokenizer tok = {0};
    /* Refuse an unknown tokenizer before reading any input. */
    if (rc == 0 && lws_tokenizer_create(opt.spec, &tok) != LWS_OK) rc = lws_cli_error();
    lws_status s = LWS_OK;
    for (size_t i = 0; rc == 0 && s == LWS_OK && i < n_args; i++) s = walk(&inputs, args[i], 0);
    if (rc == 0 && s == LWS_OK && inputs.count == 0)
        s = lws_fail(LWS_ERR_IO, "no input files found (hidden files are skipped)");
    if (rc == 0 && s == LWS_OK) s = prepare(&tok, &inputs, &opt);
    if (rc == 0 && s != LWS_OK) rc = lws_cli_error();
    lws_tokenizer_destroy(&tok);
    for (size_t i = 0; i < inputs.count; i++) free(inputs.files[i].path);
    free(inputs.files);
    free(args);
    return rc;
}
