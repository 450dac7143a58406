/* Writing lws token files (layout in include/lws/data.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lws/data.h"

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void header_bytes(const lws_token_writer *w, uint8_t h[LWS_TOKENS_HEADER_BYTES]) {
    memset(h, 0, LWS_TOKENS_HEADER_BYTES);
    memcpy(h, LWS_TOKENS_MAGIC, 8);
    put_u32(h + 8, LWS_TOKENS_VERSION);
    put_u32(h + 12, w->token_bytes);
    put_u32(h + 16, w->vocab_size);
    put_u32(h + 20, LWS_TOKENS_HEADER_BYTES);
    put_u64(h + 24, w->count);
    memcpy(h + 32, w->tokenizer, LWS_TOKENIZER_NAME_MAX);
    memcpy(h + 96, w->tokenizer_hash, LWS_TOKENIZER_NAME_MAX);
}

static void writer_free(lws_token_writer *w) {
    if (w->file) fclose(w->file);
    free(w->path);
    free(w->tmp_path);
    memset(w, 0, sizeof *w);
}

lws_status lws_token_writer_open(lws_token_writer *w, const char *path, uint32_t vocab_size,
                                 const char *tokenizer, const char *hash) {
    memset(w, 0, sizeof *w);
    if (!hash) hash = "";
    if (vocab_size == 0)
        return lws_fail(LWS_ERR_INVALID, "file %s: vocab_size 0 is not allowed; use >= 1", path);
    if (!tokenizer || !tokenizer[0] || strlen(tokenizer) >= LWS_TOKENIZER_NAME_MAX)
        return lws_fail(LWS_ERR_INVALID,
                        "file %s: tokenizer name '%s' is not allowed; use 1 to %d characters", path,
                        tokenizer ? tokenizer : "(null)", LWS_TOKENIZER_NAME_MAX - 1);
    if (strlen(hash) >= LWS_TOKENIZER_NAME_MAX)
        return lws_fail(LWS_ERR_INVALID,
                        "file %s: tokenizer hash of %zu characters is too long; use at most %d",
                        path, strlen(hash), LWS_TOKENIZER_NAME_MAX - 1);
    w->vocab_size = vocab_size;
    w->token_bytes = vocab_size <= 65536 ? 2 : 4;
    strcpy(w->tokenizer, tokenizer);
    strcpy(w->tokenizer_hash, hash);
    size_t n = strlen(path);
    w->path = strdup(path);
    w->tmp_path = malloc(n + 5);
    if (!w->path || !w->tmp_path) {
        writer_free(w);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "file %s: out of memory", path);
    }
    memcpy(w->tmp_path, path, n);
    memcpy(w->tmp_path + n, ".tmp", 5);
    w->file = fopen(w->tmp_path, "wb");
    if (!w->file) {
        lws_status s =
            lws_fail(LWS_ERR_IO, "file %s: cannot create: %s", w->tmp_path, strerror(errno));
        writer_free(w);
        return s;
    }
    /* The header with count 0 for now: close writes the real count. */
    uint8_t h[LWS_TOKENS_HEADER_BYTES];
    header_bytes(w, h);
    if (fwrite(h, 1, sizeof h, w->file) != sizeof h) {
        lws_status s =
            lws_fail(LWS_ERR_IO, "file %s: write failed: %s", w->tmp_path, strerror(errno));
        lws_token_writer_abort(w);
        return s;
    }
    return LWS_OK;
}

lws_status lws_token_writer_append(lws_token_writer *w, const uint32_t *tokens, size_t n) {
    enum { CHUNK = 16384 };
    uint8_t buf[CHUNK * 4];
    for (size_t done = 0; done < n;) {
        size_t m = n - done < CHUNK ? n - done : CHUNK;
        for (size_t i = 0; i < m; i++) {
            uint32_t v = tokens[done + i];
            if (v >= w->vocab_size)
                return lws_fail(LWS_ERR_INVALID,
                                "file %s: token at position %" PRIu64 " is %" PRIu32
                                ", not below vocab_size %" PRIu32,
                                w->path, w->count + done + i, v, w->vocab_size);
            uint8_t *p = buf + i * w->token_bytes;
            p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
            if (w->token_bytes == 4) p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
        }
        if (fwrite(buf, w->token_bytes, m, w->file) != m)
            return lws_fail(LWS_ERR_IO, "file %s: write failed: %s (is the disk full?)",
                            w->tmp_path, strerror(errno));
        done += m;
    }
    w->count += n;
    return LWS_OK;
}

lws_status lws_token_writer_close(lws_token_writer *w) {
    uint8_t h[LWS_TOKENS_HEADER_BYTES];
    header_bytes(w, h);
    if (fseek(w->file, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->file) != sizeof h ||
        fflush(w->file) != 0) {
        lws_status s = lws_fail(LWS_ERR_IO, "file %s: write failed: %s (is the disk full?)",
                                w->tmp_path, strerror(errno));
        lws_token_writer_abort(w);
        return s;
    }
    int closed = fclose(w->file);
    w->file = NULL;
    if (closed != 0) {
        lws_status s =
            lws_fail(LWS_ERR_IO, "file %s: close failed: %s", w->tmp_path, strerror(errno));
        lws_token_writer_abort(w);
        return s;
    }
    lws_status s = lws_file_commit(w->tmp_path, w->path);
    if (s != LWS_OK)
        lws_token_writer_abort(w);
    else
        writer_free(w);
    return s;
}

void lws_token_writer_abort(lws_token_writer *w) {
    if (w->file) fclose(w->file), w->file = NULL;
    if (w->tmp_path) unlink(w->tmp_path);
    writer_free(w);
}

lws_status lws_tokens_write(const char *path, const uint32_t *tokens, uint64_t n,
                            uint32_t vocab_size, const char *tokenizer, const char *hash) {
    lws_token_writer w;
    LWS_TRY(lws_token_writer_open(&w, path, vocab_size, tokenizer, hash));
    lws_status s = lws_token_writer_append(&w, tokens, (size_t)n);
    if (s != LWS_OK) {
        lws_token_writer_abort(&w);
        return s;
    }
    return lws_token_writer_close(&w);
}
