/* Tokenizing files in chunks on worker threads, tokens in input order
 * (prepare_encode.h). The calling thread reads the chunks and hands out
 * their tokens; workers only tokenize. */
#include "data/prepare_encode.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lws/bpe.h"
#include "util/files.h"

/* ---- where text may be cut ------------------------------------------------ */

prepare_cuts prepare_cuts_for(const char *spec) {
    if (strcmp(spec, "bytes") == 0) return PREPARE_CUT_ANY;
    if (lws_bpe_is_spec(spec)) return PREPARE_CUT_PRETOKENIZER;
    return PREPARE_CUT_NONE;
}

/* A cut at p between a printable ASCII byte text[p-1] ('!'..'~') and an
 * ASCII whitespace byte text[p] (' ', '\t'..'\r') leaves every piece of
 * GPT-2's pre-tokenizer (pretokenize.c) as it is, for these reasons:
 *  - text[p-1] is a character of its own (no UTF-8 sequence continues with
 *    it), and a sequence that starts before it and would reach p is invalid
 *    in the whole text and in text[0, p) alike;
 *  - text[p-1] is not whitespace, so it ends a run of letters, numbers or
 *    others (perhaps led by one ' ') or a contraction. A run stops at the
 *    whitespace text[p] exactly as it stops at the end of text[0, p), and
 *    no contraction goes on with whitespace ('s 't 're 've 'm 'll 'd), so
 *    the piece that holds text[p-1] ends at p either way, and the pieces
 *    before it never look further;
 *  - a piece is found by looking only forward from its start, so the pieces
 *    from p on are those of the text after p.
 * Merges never cross a piece, so both sides give the tokens of the whole.
 * Such cuts come at nearly every word boundary of ordinary text. */
static int pretokenizer_cut(const uint8_t *text, size_t p) {
    uint8_t before = text[p - 1], after = text[p];
    return before >= '!' && before <= '~' && (after == ' ' || (after >= '\t' && after <= '\r'));
}

size_t prepare_cut(prepare_cuts cuts, const uint8_t *text, size_t n) {
    switch (cuts) {
    case PREPARE_CUT_ANY:
        return n;
    case PREPARE_CUT_PRETOKENIZER:
        /* p < n: the byte after the cut must be known. */
        for (size_t p = n ? n - 1 : 0; p >= 1; p--)
            if (pretokenizer_cut(text, p)) return p;
        return 0;
    case PREPARE_CUT_NONE:
        break;
    }
    return 0;
}

/* ---- reading chunks ----------------------------------------------------- */

typedef struct chunk {
    size_t file;
    uint8_t *text; /* text_len bytes; text_capacity allocated */
    size_t text_len, text_capacity;
    uint32_t *tokens; /* count tokens; capacity allocated */
    size_t count, capacity;
    int done; /* tokenized (guarded by the pipeline's lock) */
} chunk;

/* Reads are at least this big, however small the chunks. */
#define READ_BYTES (64 * 1024)

/* The calling thread's position in the inputs. */
typedef struct reader {
    const char *const *paths;
    size_t n_files, file; /* file: the one being read, or n_files at the end */
    int fd;               /* -1: file not opened yet */
    int eof;              /* the file has no more bytes to read */
    uint8_t *pending;     /* read, not yet in a chunk: pending[start, end) */
    size_t start, end, capacity;
} reader;

static lws_status reserve_bytes(uint8_t **p, size_t *capacity, size_t need) {
    if (need <= *capacity) return LWS_OK;
    size_t cap = *capacity ? *capacity : 4096;
    while (cap < need) cap *= 2;
    uint8_t *q = realloc(*p, cap);
    if (!q) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of text", cap);
    *p = q, *capacity = cap;
    return LWS_OK;
}

/* Reads until more than want bytes are pending or the file ends. */
static lws_status fill(reader *r, size_t want) {
    while (!r->eof && r->end - r->start <= want) {
        if (r->start) { /* the pending bytes to the front, once per read */
            memmove(r->pending, r->pending + r->start, r->end - r->start);
            r->end -= r->start, r->start = 0;
        }
        size_t room = want + 1 - r->end > READ_BYTES ? want + 1 - r->end : READ_BYTES;
        LWS_TRY(reserve_bytes(&r->pending, &r->capacity, r->end + room));
        ssize_t got = read(r->fd, r->pending + r->end, r->capacity - r->end);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0)
            return lws_fail(LWS_ERR_IO, "input %s: read failed: %s", r->paths[r->file],
                            strerror(errno));
        if (got == 0) r->eof = 1;
        r->end += (size_t)got;
    }
    return LWS_OK;
}

/* The next chunk into c (c->text_len 0 when the inputs are exhausted): up
 * to the last cut at most chunk_bytes + 1 in; with no cut there, twice as
 * far, and so on; or the rest of the file when it ends before. */
static lws_status next_chunk(reader *r, prepare_cuts cuts, size_t chunk_bytes, chunk *c) {
    c->text_len = 0;
    for (; r->file < r->n_files; r->file++) {
        if (r->fd < 0) {
            LWS_TRY(lws_open_regular(r->paths[r->file], O_RDONLY, &r->fd, NULL));
            r->eof = 0;
            r->start = r->end = 0;
        }
        size_t take = 0, n = 0;
        for (size_t want = chunk_bytes;; want = want > SIZE_MAX / 4 ? SIZE_MAX / 2 : 2 * want) {
            LWS_TRY(fill(r, want));
            n = r->end - r->start;
            if (r->eof && n <= want) {
                take = n; /* the rest of the file, perhaps nothing */
                break;
            }
            /* n > want: the byte after a cut at want is known. */
            if ((take = prepare_cut(cuts, r->pending + r->start, want + 1)) != 0) break;
        }
        int last = r->eof && take == n; /* the file's last chunk */
        if (last) {
            close(r->fd);
            r->fd = -1;
            if (!take) continue; /* an empty file gives no chunk */
        }
        LWS_TRY(reserve_bytes(&c->text, &c->text_capacity, take));
        memcpy(c->text, r->pending + r->start, take);
        c->text_len = take, c->file = r->file;
        r->start += take;
        if (last) r->file++;
        return LWS_OK;
    }
    return LWS_OK;
}

/* ---- workers -------------------------------------------------------------- */

typedef struct pipeline {
    const prepare_encoder *e;
    pthread_mutex_t lock;
    /* Workers load their vocabularies one at a time: cJSON's parser keeps
     * its error position in a global. */
    pthread_mutex_t load_lock;
    pthread_cond_t ready; /* a chunk was handed out, or stop */
    pthread_cond_t done;  /* a chunk was tokenized, or a worker failed */
    chunk *ring;          /* chunk number k lives in ring[k % n_ring] */
    size_t n_ring;
    uint64_t handed_out, taken; /* chunks given to the workers, and taken by one */
    int stop;
    lws_status failure; /* the first worker failure */
    size_t failed_file;
    char message[1024];
} pipeline;

typedef struct worker {
    pipeline *pl;
    unsigned index;
    pthread_t thread;
    int started;
} worker;

/* Called with the lock held. Worker threads keep their messages in their
 * own thread's store, so the message is copied for the calling thread. */
static void record_failure(pipeline *pl, lws_status s, size_t file) {
    if (pl->failure != LWS_OK) return;
    pl->failure = s;
    pl->failed_file = file;
    snprintf(pl->message, sizeof pl->message, "%s", lws_error_message());
    pthread_cond_broadcast(&pl->done);
}

static void *work(void *arg) {
    worker *w = arg;
    pipeline *pl = w->pl;
    lws_tokenizer own = {0}, *tok = w->index == 0 ? pl->e->tokenizer : NULL;
    pthread_mutex_lock(&pl->lock);
    for (;;) {
        while (!pl->stop && pl->failure == LWS_OK && pl->taken == pl->handed_out)
            pthread_cond_wait(&pl->ready, &pl->lock);
        if (pl->stop || pl->failure != LWS_OK) break;
        chunk *c = &pl->ring[pl->taken++ % pl->n_ring];
        pthread_mutex_unlock(&pl->lock);
        lws_status s = LWS_OK;
        /* Made on the first chunk the worker takes: one that gets none loads
         * no vocabulary. */
        if (!tok) {
            pthread_mutex_lock(&pl->load_lock);
            if ((s = lws_tokenizer_create(pl->e->spec, &own)) == LWS_OK) tok = &own;
            pthread_mutex_unlock(&pl->load_lock);
        }
        c->count = 0;
        if (s == LWS_OK)
            s = tok->encode(tok, c->text, c->text_len, &c->tokens, &c->count, &c->capacity);
        pthread_mutex_lock(&pl->lock);
        if (s != LWS_OK) {
            record_failure(pl, s, c->file);
            break;
        }
        c->done = 1;
        pthread_cond_broadcast(&pl->done);
    }
    pthread_mutex_unlock(&pl->lock);
    if (tok == &own) lws_tokenizer_destroy(&own);
    return NULL;
}

/* Reads chunks ahead into free ring places and emits finished ones in
 * order, until the inputs are done or something fails. */
static lws_status run(pipeline *pl, reader *r) {
    const prepare_encoder *e = pl->e;
    prepare_cuts cuts = prepare_cuts_for(e->spec);
    uint64_t emitted = 0;
    int inputs_done = 0;
    for (;;) {
        /* Chunks handed_out .. emitted + n_ring - 1 are free: the calling
         * thread alone touches them. */
        while (!inputs_done && pl->handed_out - emitted < pl->n_ring) {
            chunk *c = &pl->ring[pl->handed_out % pl->n_ring];
            LWS_TRY(next_chunk(r, cuts, e->chunk_bytes, c));
            if (c->text_len == 0) {
                inputs_done = 1;
                break;
            }
            c->done = 0;
            pthread_mutex_lock(&pl->lock);
            pl->handed_out++;
            pthread_cond_signal(&pl->ready);
            pthread_mutex_unlock(&pl->lock);
        }
        if (emitted == pl->handed_out) return LWS_OK;
        chunk *c = &pl->ring[emitted % pl->n_ring];
        pthread_mutex_lock(&pl->lock);
        while (!c->done && pl->failure == LWS_OK) pthread_cond_wait(&pl->done, &pl->lock);
        lws_status failure = pl->failure;
        pthread_mutex_unlock(&pl->lock);
        if (failure != LWS_OK) {
            lws_fail(failure, "%s", pl->message);
            lws_error_context("input %s", r->paths[pl->failed_file]);
            return failure;
        }
        LWS_TRY(e->emit(e->user, c->file, c->tokens, c->count, c->text_len));
        emitted++;
    }
}

lws_status prepare_encode_files(const prepare_encoder *e, const char *const *paths,
                                size_t n_files) {
    if (e->jobs < 1 || e->chunk_bytes < 1)
        return lws_fail(LWS_ERR_INVALID,
                        "prepare: %u jobs and chunks of %zu bytes are not allowed; use >= 1 each",
                        e->jobs, e->chunk_bytes);
    pipeline pl = {.e = e, .n_ring = 2 * (size_t)e->jobs + 2};
    reader r = {.paths = paths, .n_files = n_files, .fd = -1};
    pl.ring = calloc(pl.n_ring, sizeof *pl.ring);
    worker *workers = calloc(e->jobs, sizeof *workers);
    if (!pl.ring || !workers) {
        free(pl.ring), free(workers);
        return lws_fail(LWS_ERR_OUT_OF_MEMORY, "prepare: out of memory for %u workers", e->jobs);
    }
    pthread_mutex_init(&pl.lock, NULL);
    pthread_mutex_init(&pl.load_lock, NULL);
    pthread_cond_init(&pl.ready, NULL);
    pthread_cond_init(&pl.done, NULL);
    lws_status s = LWS_OK;
    for (unsigned i = 0; i < e->jobs && s == LWS_OK; i++) {
        workers[i] = (worker){.pl = &pl, .index = i};
        int err = pthread_create(&workers[i].thread, NULL, work, &workers[i]);
        if (err)
            s = lws_fail(LWS_ERR_OUT_OF_MEMORY, "prepare: cannot start worker thread %u of %u: %s",
                         i + 1, e->jobs, strerror(err));
        else
            workers[i].started = 1;
    }
    if (s == LWS_OK) s = run(&pl, &r);
    pthread_mutex_lock(&pl.lock);
    pl.stop = 1;
    pthread_cond_broadcast(&pl.ready);
    pthread_mutex_unlock(&pl.lock);
    for (unsigned i = 0; i < e->jobs; i++)
        if (workers[i].started) pthread_join(workers[i].thread, NULL);
    if (r.fd >= 0) close(r.fd);
    for (size_t i = 0; i < pl.n_ring; i++) free(pl.ring[i].text), free(pl.ring[i].tokens);
    free(pl.ring), free(workers), free(r.pending);
    pthread_cond_destroy(&pl.done);
    pthread_cond_destroy(&pl.ready);
    pthread_mutex_destroy(&pl.load_lock);
    pthread_mutex_destroy(&pl.lock);
    return s;
}
