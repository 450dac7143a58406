/* lws tokenizer: train a byte-level BPE vocabulary on text, and encode or
 * decode with any tokenizer (for debugging and for other tools). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lws/bpe.h"
#include "lws/data.h"
#include "util/files.h"

static const char *usage =
    "lws tokenizer train --vocab N [--special TEXT]... FILE... -o TOK.json\n"
    "       lws tokenizer encode --tokenizer T [--stats] [FILE]\n"
    "       lws tokenizer decode --tokenizer T [FILE]\n"
    "       lws tokenizer info --tokenizer T\n"
    "       lws tokenizer split [FILE]\n"
    "  train      learn a byte-level BPE vocabulary of N tokens (the 256 bytes, merges,\n"
    "             then the special tokens) from the text of the FILEs; deterministic\n"
    "  encode     print the token ids of FILE's bytes on one line, space-separated\n"
    "  decode     read token ids (whitespace-separated) and write their bytes\n"
    "  info       print the tokenizer's name (for data.tokenizer in a config), hash and\n"
    "             vocabulary size\n"
    "  split      print the byte lengths of GPT-2's pre-tokenizer pieces of FILE\n"
    "  T          bytes | TOK.json (from train) | gpt2:DIR (DIR/encoder.json + DIR/vocab.bpe)\n"
    "  FILE       a file, or - (the default) for standard input\n"
    "  --special  a special token (repeatable): it gets an id but is never produced from\n"
    "             text, e.g. --special '<|endoftext|>'\n"
    "  --stats    print bytes, tokens and encoding speed to standard error";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Inputs are held whole in memory; larger text is for `lws prepare`, which streams. */
#define INPUT_MAX_BYTES ((size_t)1 << 30)

/* The whole of path ("-": standard input). */
static lws_status read_all(const char *path, uint8_t **data, size_t *len) {
    char *text;
    lws_status s = strcmp(path, "-") == 0
                       ? lws_read_fd("standard input", 0, INPUT_MAX_BYTES, &text, len)
                       : lws_read_file(path, INPUT_MAX_BYTES, &text, len);
    *data = (uint8_t *)text;
    return s;
}

/* Either a BPE vocabulary or the byte-level tokenizer. */
typedef struct chosen {
    lws_bpe *bpe;
    lws_tokenizer bytes;
} chosen;

static lws_status choose(const char *spec, chosen *c) {
    memset(c, 0, sizeof *c);
    if (lws_bpe_is_spec(spec)) return lws_bpe_open(spec, &c->bpe);
    return lws_tokenizer_create(spec, &c->bytes);
}

static void release(chosen *c) {
    lws_bpe_free(c->bpe);
    if (c->bytes.name) lws_tokenizer_destroy(&c->bytes);
}

static int write_out(const void *p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) {
        lws_fail(LWS_ERR_IO, "standard output: write failed: %s", strerror(errno));
        return 0;
    }
    return 1;
}

/* ---- train ------------------------------------------------------------------ */

static lws_status train(uint32_t vocab, const char **specials, size_t n_specials,
                        const char **inputs, size_t n_inputs, const char *out_path) {
    lws_bpe_trainer *t;
    LWS_TRY(lws_bpe_trainer_create(&t));
    double t0 = now();
    lws_status s = LWS_OK;
    for (size_t i = 0; i < n_inputs && s == LWS_OK; i++) {
        uint8_t *data;
        size_t len;
        s = read_all(inputs[i], &data, &len);
        if (s == LWS_OK) s = lws_bpe_trainer_add(t, data, len);
        free(data);
    }
    lws_bpe *b = NULL;
    if (s == LWS_OK) s = lws_bpe_train(t, vocab, specials, n_specials, &b);
    uint64_t bytes = lws_bpe_trainer_bytes(t);
    lws_bpe_trainer_free(t);
    if (s == LWS_OK) s = lws_bpe_save(b, out_path);
    if (s == LWS_OK) {
        uint32_t got = lws_bpe_vocab_size(b);
        printf("lws tokenizer train: %" PRIu64 " bytes in %zu file%s -> %" PRIu32
               " tokens (%" PRIu32 " merges, %zu special) in %.2f s; tokenizer %s in %s\n",
               bytes, n_inputs, n_inputs == 1 ? "" : "s", got, lws_bpe_merge_count(b), n_specials,
               now() - t0, lws_bpe_name(b), out_path);
        if (got < vocab)
            printf("lws tokenizer train: %" PRIu32 " tokens, not %" PRIu32
                   ": the text has no more pairs to merge\n",
                   got, vocab);
    }
    lws_bpe_free(b);
    return s;
}

/* ---- encode, decode, split ---------------------------------------------------- */

static lws_status encode(const char *spec, const char *path, int stats) {
    chosen c;
    LWS_TRY(choose(spec, &c));
    uint8_t *text = NULL;
    size_t len = 0, count = 0, capacity = 0;
    uint32_t *tokens = NULL;
    lws_status s = read_all(path, &text, &len);
    double t0 = now();
    if (s == LWS_OK)
        s = c.bpe ? lws_bpe_encode(c.bpe, text, len, &tokens, &count, &capacity)
                  : c.bytes.encode(&c.bytes, text, len, &tokens, &count, &capacity);
    double seconds = now() - t0;
    if (s == LWS_OK) {
        char buf[1 << 16];
        size_t used = 0;
        for (size_t i = 0; i < count && s == LWS_OK; i++) {
            used += (size_t)snprintf(buf + used, sizeof buf - used, i ? " %" PRIu32 : "%" PRIu32,
                                     tokens[i]);
            if (used > sizeof buf - 16) {
                if (!write_out(buf, used))
                    s = lws_fail(LWS_ERR_IO, "standard output: write failed");
                used = 0;
            }
        }
        buf[used++] = '\n';
        if (s == LWS_OK && (!write_out(buf, used) || fflush(stdout) != 0))
            s = lws_fail(LWS_ERR_IO, "standard output: write failed");
    }
    if (s == LWS_OK && stats)
        fprintf(stderr,
                "lws tokenizer encode: %zu bytes -> %zu tokens (%.3f bytes/token) in %.3f s, "
                "%.2f MB/s, tokenizer %s\n",
                len, count, count ? (double)len / (double)count : 0.0, seconds,
                seconds > 0 ? (double)len / seconds / 1e6 : 0.0,
                c.bpe ? lws_bpe_name(c.bpe) : c.bytes.name);
    free(text), free(tokens);
    release(&c);
    return s;
}

static lws_status decode(const char *spec, const char *path) {
    chosen c;
    LWS_TRY(choose(spec, &c));
    uint8_t *text = NULL, *bytes = NULL;
    size_t len = 0, n_bytes = 0, capacity = 0, n_ids = 0, ids_capacity = 0;
    uint32_t *ids = NULL;
    lws_status s = read_all(path, &text, &len);
    uint32_t vocab = c.bpe ? lws_bpe_vocab_size(c.bpe) : c.bytes.vocab_size;
    for (size_t i = 0; i < len && s == LWS_OK;) {
        if (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r') {
            i++;
            continue;
        }
        size_t start = i;
        uint64_t v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9' && v <= UINT32_MAX)
            v = v * 10 + (text[i++] - '0');
        int ok = i > start && (i == len || text[i] == ' ' || text[i] == '\n' || text[i] == '\t' ||
                               text[i] == '\r');
        if (!ok || v >= vocab) {
            while (i < len &&
                   !(text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r'))
                i++;
            s = lws_fail(LWS_ERR_INVALID,
                         "input %s: token %zu '%.*s' is not a token id; ids are integers in "
                         "[0, %" PRIu32 ") for tokenizer %s",
                         path, n_ids, (int)(i - start > 24 ? 24 : i - start),
                         (const char *)text + start, vocab, spec);
            break;
        }
        if (n_ids == ids_capacity) {
            size_t cap = ids_capacity ? 2 * ids_capacity : 4096;
            uint32_t *p = realloc(ids, cap * sizeof *p);
            if (!p) {
                s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory for %zu token ids", cap);
                break;
            }
            ids = p, ids_capacity = cap;
        }
        ids[n_ids++] = (uint32_t)v;
    }
    if (s == LWS_OK && c.bpe) {
        s = lws_bpe_decode(c.bpe, ids, n_ids, &bytes, &n_bytes, &capacity);
    } else if (s == LWS_OK) {
        if (!(bytes = malloc(n_ids ? n_ids : 1)))
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t i = 0; s == LWS_OK && i < n_ids; i++) bytes[i] = (uint8_t)ids[i];
        n_bytes = n_ids;
    }
    if (s == LWS_OK && (!write_out(bytes, n_bytes) || fflush(stdout) != 0))
        s = lws_fail(LWS_ERR_IO, "standard output: write failed");
    free(text), free(ids), free(bytes);
    release(&c);
    return s;
}

static lws_status info(const char *spec) {
    chosen c;
    LWS_TRY(choose(spec, &c));
    if (c.bpe)
        printf("name %s\nhash %s\nvocab_size %" PRIu32 "\nmerges %" PRIu32 "\n",
               lws_bpe_name(c.bpe), lws_bpe_hash(c.bpe), lws_bpe_vocab_size(c.bpe),
               lws_bpe_merge_count(c.bpe));
    else
        printf("name %s\nhash %s\nvocab_size %" PRIu32 "\n", c.bytes.name, c.bytes.hash,
               c.bytes.vocab_size);
    release(&c);
    return LWS_OK;
}

static lws_status split(const char *path) {
    uint8_t *text;
    size_t len;
    LWS_TRY(read_all(path, &text, &len));
    lws_status s = LWS_OK;
    for (size_t pos = 0; pos < len && s == LWS_OK;) {
        size_t end = lws_pretokenize_next(text, len, pos);
        if (printf(pos ? " %zu" : "%zu", end - pos) < 0) s = LWS_ERR_IO;
        pos = end;
    }
    if (s != LWS_OK || printf("\n") < 0 || fflush(stdout) != 0)
        s = lws_fail(LWS_ERR_IO, "standard output: write failed");
    free(text);
    return s;
}

/* ---- arguments ---------------------------------------------------------------- */

int lws_cli_tokenizer(int argc, char **argv) {
    if (argc < 1)
        return lws_cli_usage(usage, "missing a command: train, encode, decode, info or split");
    const char *cmd = argv[0];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        printf("usage: %s\n", usage);
        return 0;
    }
    int is_train = strcmp(cmd, "train") == 0, is_encode = strcmp(cmd, "encode") == 0,
        is_decode = strcmp(cmd, "decode") == 0, is_info = strcmp(cmd, "info") == 0,
        is_split = strcmp(cmd, "split") == 0;
    if (!is_train && !is_encode && !is_decode && !is_info && !is_split)
        return lws_cli_usage(usage,
                             "unknown command '%s'; use train, encode, decode, info or split", cmd);
    const char *spec = NULL, *out = NULL;
    const char **specials = calloc((size_t)argc, sizeof *specials);
    const char **files = calloc((size_t)argc, sizeof *files);
    size_t n_specials = 0, n_files = 0;
    long long vocab = -1;
    int stats = 0, rc = 0;
    if (!specials || !files) rc = lws_cli_usage(usage, "out of memory");
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        int takes_value = strcmp(a, "--vocab") == 0 || strcmp(a, "--special") == 0 ||
                          strcmp(a, "--tokenizer") == 0 || strcmp(a, "-o") == 0 ||
                          strcmp(a, "--output") == 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: %s\n", usage);
            free(specials), free(files);
            return 0;
        }
        if (takes_value && i + 1 >= argc) {
            rc = lws_cli_usage(usage, "%s needs a value", a);
        } else if (is_train && strcmp(a, "--vocab") == 0) {
            uint64_t n = 0;
            if (!(rc = lws_parse_u64(usage, a, argv[++i], 1, UINT32_MAX,
                                     "tokens: the 256 bytes, merges and the special tokens", &n)))
                vocab = (long long)n;
        } else if (is_train && strcmp(a, "--special") == 0) {
            specials[n_specials++] = argv[++i];
        } else if (is_train && (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)) {
            out = argv[++i];
        } else if (!is_train && !is_split && strcmp(a, "--tokenizer") == 0) {
            spec = argv[++i];
        } else if (is_encode && strcmp(a, "--stats") == 0) {
            stats = 1;
        } else if (a[0] == '-' && a[1]) {
            rc = lws_cli_usage(usage, "%s: unknown option '%s'", cmd, a);
        } else {
            files[n_files++] = a;
        }
    }
    if (rc == 0 && is_train) {
        if (vocab < 0)
            rc = lws_cli_usage(usage, "train: missing --vocab N");
        else if (!out)
            rc = lws_cli_usage(usage, "train: missing -o TOK.json");
        else if (!n_files)
            rc = lws_cli_usage(usage, "train: no input FILE");
    } else if (rc == 0) {
        if (!is_split && !spec)
            rc = lws_cli_usage(usage, "%s: missing --tokenizer T", cmd);
        else if (n_files > (is_info ? 0u : 1u))
            rc = lws_cli_usage(usage, "%s: %s", cmd,
                               is_info ? "takes no FILE" : "takes one FILE (or - for stdin)");
    }
    lws_status s = LWS_OK;
    const char *path = n_files ? files[0] : "-";
    if (rc == 0) {
        if (is_train)
            s = train((uint32_t)vocab, specials, n_specials, files, n_files, out);
        else if (is_encode)
            s = encode(spec, path, stats);
        else if (is_decode)
            s = decode(spec, path);
        else if (is_info)
            s = info(spec);
        else
            s = split(path);
        if (s != LWS_OK) rc = lws_cli_error();
    }
    free(specials), free(files);
    return rc;
}
