// lws-test: vulkan
/* The recorder's hazard checker: a consumer recorded after its producer
 * without a barrier is refused (read after write, write after write, write
 * after read) with both ops, shaders, buffer names, overlapping bytes and the
 * label in the message; the same with a barrier runs and gives the right
 * result; in-place ops, strided column blocks, copies and fills; unneeded
 * barriers counted; kernels without declarations refused; LWS_SKIP_BARRIER;
 * and with checking off nothing is refused. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/ops.h"
#include "ref/matmul.h"
#include "ref/rmsnorm.h"

/* A context that checks hazards (1), does not (-1), and leaves out the
 * skip-th barrier (0: none). */
static lws_context *make_context(int check, uint32_t skip) {
    lws_context_options opt = {
        .validation = -1, .pipeline_cache = -1, .check_hazards = check, .skip_barrier = skip};
    lws_context *ctx = NULL;
    if (lws_context_create(&opt, &ctx) != LWS_OK) {
        fprintf(stderr, "FAIL: cannot create a Vulkan context: %s\n", lws_error_message());
        exit(1);
    }
    return ctx;
}

typedef struct recorded {
    lws_status status;
    char message[4096];
    uint32_t barriers, unneeded;
} recorded;

/* Records with fn; on success submits it. Keeps the status and message. */
static recorded record(lws_context *ctx, void (*fn)(lws_cmd *, void *), void *arg) {
    recorded r = {LWS_OK, "", 0, 0};
    lws_cmd *cmd = NULL;
    CHECK_OK(lws_cmd_begin(ctx, 0, &cmd));
    if (!cmd) return r;
    lws_error_clear();
    fn(cmd, arg);
    r.status = lws_cmd_end(cmd);
    snprintf(r.message, sizeof r.message, "%s", r.status ? lws_error_message() : "");
    lws_cmd_barrier_stats(cmd, &r.barriers, &r.unneeded);
    if (r.status == LWS_OK) CHECK_OK(lws_submit(ctx, &cmd, 1));
    lws_cmd_destroy(cmd);
    return r;
}

static void expect_refused(const char *what, recorded r, const char *const *parts) {
    int all = r.status == LWS_ERR_INVALID;
    for (const char *const *p = parts; *p; p++) all &= test_contains(r.message, *p);
    CHECK(all, "%s: status %d, message '%s'", what, r.status, r.message);
    for (const char *const *p = parts; *p && !all; p++)
        if (!test_contains(r.message, *p)) fprintf(stderr, "  missing: '%s'\n", *p);
    printf("%s %s refused: %s\n", all ? "ok  " : "FAIL", what, r.message);
}

static void expect_ok(const char *what, recorded r) {
    CHECK(r.status == LWS_OK, "%s: %s", what, r.message);
    printf("%s %s recorded\n", r.status == LWS_OK ? "ok  " : "FAIL", what);
}

/* ---- (a) matmul writes C, rmsnorm reads C --------------------------------- */

enum { M = 37, N = 24, K = 19 };

typedef struct chain {
    lws_buffer c, a, b, w, y, rstd;
    int barrier;
} chain;

static void record_chain(lws_cmd *cmd, void *arg) {
    chain *ch = arg;
    lws_cmd_label(cmd, "layer 3 forward");
    lws_op_matmul(cmd, LWS_MM_NT, ch->c, ch->a, ch->b, M, N, K, 0);
    if (ch->barrier) lws_cmd_barrier(cmd);
    lws_op_rmsnorm_fwd(cmd, ch->y, ch->rstd, ch->c, ch->w, M, N, 1e-5f);
}

static chain make_chain(lws_context *ctx, test_rng *rng, float **a, float **b, float **w) {
    chain ch;
    *a = test_random_floats(rng, M * K, 1.0);
    *b = test_random_floats(rng, N * K, 1.0);
    *w = test_random_floats(rng, N, 1.0);
    ch.a = test_upload_floats(ctx, *a, M * K);
    ch.b = test_upload_floats(ctx, *b, N * K);
    ch.w = test_upload_floats(ctx, *w, N);
    ch.c = test_output(ctx, M * N);
    ch.y = test_output(ctx, M * N);
    ch.rstd = test_output(ctx, M);
    lws_buffer_name(ctx, ch.a, "layers.3.x");
    lws_buffer_name(ctx, ch.b, "layers.3.wq");
    lws_buffer_name(ctx, ch.c, "layers.3.q");
    lws_buffer_name(ctx, ch.y, "layers.3.q_normed");
    ch.barrier = 0;
    return ch;
}

static void check_producer_consumer(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *a, *b, *w;
    chain ch = make_chain(ctx, rng, &a, &b, &w);
    const char *parts[] = {"read after write", "matmul_nt",         "rmsnorm", "layers.3.q",
                           "layer 3 forward",  "overlapping bytes", "bytes)",  NULL};
    expect_refused("rmsnorm reading matmul's C without a barrier", record(ctx, record_chain, &ch),
                   parts);

    ch.barrier = 1;
    recorded r = record(ctx, record_chain, &ch);
    expect_ok("the same with a barrier", r);
    CHECK(r.barriers == 1 && r.unneeded == 0, "the barrier is needed: %u barriers, %u unneeded",
          r.barriers, r.unneeded);
    /* And it computes rmsnorm(A . B^T). */
    double *ad = test_to_double(a, M * K), *bd = test_to_double(b, N * K);
    double *wd = test_to_double(w, N), *cd = test_malloc(M * N * sizeof *cd);
    double *want = test_malloc(M * N * sizeof *want), *rstd = test_malloc(M * sizeof *rstd);
    ref_matmul(LWS_MM_NT, cd, ad, bd, M, N, K, 0);
    ref_rmsnorm_fwd(want, rstd, cd, wd, M, N, 1e-5);
    float *got = test_malloc(M * N * sizeof *got);
    test_download(ctx, ch.y, got, M * N);
    CHECK_CLOSE("matmul then barrier then rmsnorm", got, want, M * N, 1e-5, 1e-5);
    free(a), free(b), free(w), free(ad), free(bd), free(wd), free(cd), free(want), free(rstd);
    free(got);
    lws_arena_reset(ctx, mark);
}

/* ---- (b) write after write, write after read; (c) in place ---------------- */

typedef struct pair {
    lws_buffer x, y, z;
    int kind; /* 0 WAW, 1 WAR, 2 in place, 3 disjoint halves */
    int barrier;
} pair;

enum { PN = 300 };

static void record_pair(lws_cmd *cmd, void *arg) {
    pair *p = arg;
    lws_cmd_label(cmd, "optimizer step");
    switch (p->kind) {
    case 0: /* two writers of z */
        lws_op_axpby(cmd, p->z, p->x, p->y, 1, 1, PN);
        if (p->barrier) lws_cmd_barrier(cmd);
        lws_op_swiglu_fwd(cmd, p->z, p->x, p->y, PN);
        break;
    case 1: /* z = f(x), then x overwritten */
        lws_op_swiglu_fwd(cmd, p->z, p->x, p->y, PN);
        if (p->barrier) lws_cmd_barrier(cmd);
        lws_op_axpby(cmd, p->x, p->y, p->y, 1, 1, PN);
        break;
    case 2: /* x = x + y in place, twice around a barrier */
        lws_op_axpby(cmd, p->x, p->x, p->y, 1, 1, PN);
        lws_cmd_barrier(cmd);
        lws_op_axpby(cmd, p->x, p->x, p->y, 1, 1, PN);
        break;
    default: /* two ops on disjoint halves of z */
        lws_op_axpby(cmd, lws_buffer_slice(p->z, 0, 4 * PN / 2), p->x, p->y, 1, 1, PN / 2);
        lws_op_axpby(cmd, lws_buffer_slice(p->z, 4 * PN / 2, 4 * PN / 2), p->x, p->y, 1, 1, PN / 2);
        break;
    }
}

static void check_pairs(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *x = test_random_floats(rng, PN, 1.0), *y = test_random_floats(rng, PN, 1.0);
    pair p = {test_upload_floats(ctx, x, PN), test_upload_floats(ctx, y, PN), test_output(ctx, PN),
              0, 0};
    lws_buffer_name(ctx, p.x, "m");
    lws_buffer_name(ctx, p.y, "v");
    lws_buffer_name(ctx, p.z, "update");

    const char *waw[] = {"write after write", "axpby",     "swiglu",       "update",
                         "optimizer step",    "buffer+0x", "(1200 bytes)", NULL};
    expect_refused("two writers of one buffer", record(ctx, record_pair, &p), waw);
    p.barrier = 1;
    expect_ok("two writers with a barrier", record(ctx, record_pair, &p));

    p.kind = 1, p.barrier = 0;
    const char *war[] = {"write after read", "axpby", "swiglu", "writes m", "read m", NULL};
    expect_refused("overwriting an input another op reads", record(ctx, record_pair, &p), war);
    p.barrier = 1;
    expect_ok("overwriting it after a barrier", record(ctx, record_pair, &p));

    p.kind = 2;
    CHECK_OK(lws_upload(ctx, p.x, x, PN * sizeof *x));
    expect_ok("x += y in place, twice", record(ctx, record_pair, &p));
    float *got = test_malloc(PN * sizeof *got);
    double *want = test_malloc(PN * sizeof *want);
    for (int i = 0; i < PN; i++) want[i] = (double)x[i] + 2.0 * y[i];
    test_download(ctx, p.x, got, PN);
    CHECK_CLOSE("in-place axpby twice", got, want, PN, 1e-6, 1e-6);

    p.kind = 3;
    recorded r = record(ctx, record_pair, &p);
    expect_ok("writers of disjoint halves of one buffer", r);
    free(x), free(y), free(got), free(want);
    lws_arena_reset(ctx, mark);
}

/* ---- (d) unneeded barriers ------------------------------------------------ */

typedef struct independent {
    lws_buffer x, y, z, w;
    int depend; /* 1: the second op reads the first's output */
} independent;

static void record_independent(lws_cmd *cmd, void *arg) {
    independent *d = arg;
    lws_op_axpby(cmd, d->z, d->x, d->y, 1, 1, PN);
    lws_cmd_barrier(cmd);
    lws_op_axpby(cmd, d->w, d->depend ? d->z : d->x, d->y, 1, -1, PN);
    lws_cmd_barrier(cmd); /* nothing after it */
}

static void check_unneeded(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *x = test_random_floats(rng, PN, 1.0);
    independent d = {test_upload_floats(ctx, x, PN), test_upload_floats(ctx, x, PN),
                     test_output(ctx, PN), test_output(ctx, PN), 0};
    uint64_t total0, unneeded0, total1, unneeded1;
    lws_context_barrier_stats(ctx, &total0, &unneeded0);
    recorded r = record(ctx, record_independent, &d);
    CHECK(r.status == LWS_OK && r.barriers == 2 && r.unneeded == 2,
          "independent ops: %u barriers, %u unneeded (want 2, 2): %s", r.barriers, r.unneeded,
          r.message);
    d.depend = 1;
    r = record(ctx, record_independent, &d);
    CHECK(r.status == LWS_OK && r.barriers == 2 && r.unneeded == 1,
          "dependent ops: %u barriers, %u unneeded (want 2, 1): %s", r.barriers, r.unneeded,
          r.message);
    lws_context_barrier_stats(ctx, &total1, &unneeded1);
    CHECK(total1 - total0 == 4 && unneeded1 - unneeded0 == 3,
          "context totals grew by %llu barriers, %llu unneeded (want 4, 3)",
          (unsigned long long)(total1 - total0), (unsigned long long)(unneeded1 - unneeded0));
    printf("ok   unneeded barriers counted: independent 2 of 2, dependent 1 of 2\n");
    free(x);
    lws_arena_reset(ctx, mark);
}

/* ---- (e) a kernel without declarations ------------------------------------ */

typedef struct bare {
    lws_pipeline *pipe;
    lws_buffer out;
    int declare; /* 0 nothing, 1 only a read, 2 a write, 3 declarations without a dispatch */
} bare;

typedef struct iota_push {
    uint64_t out;
    uint32_t n, offset, groups_x, groups_y;
} iota_push;

static void record_bare(lws_cmd *cmd, void *arg) {
    bare *b = arg;
    iota_push push = {b->out.addr, 64, 0, 1, 1};
    if (b->declare == 1) lws_cmd_reads(cmd, b->out);
    if (b->declare >= 2) lws_cmd_writes(cmd, b->out);
    if (b->declare == 3) {
        lws_cmd_barrier(cmd);
        return;
    }
    lws_cmd_dispatch(cmd, b->pipe, &push, sizeof push, 1, 1, 1);
}

static void check_undeclared(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    bare b = {NULL, test_output(ctx, 64), 0};
    uint32_t spec[1] = {64};
    CHECK_OK(lws_pipeline_get(ctx, "iota", spec, 1, &b.pipe));
    const char *none[] = {"kernel iota declared no accesses", NULL};
    expect_refused("a dispatch without declarations", record(ctx, record_bare, &b), none);
    b.declare = 1;
    const char *no_write[] = {"kernel iota declared no writes", NULL};
    expect_refused("a dispatch that declares no write", record(ctx, record_bare, &b), no_write);
    b.declare = 3;
    const char *left[] = {"no dispatch followed them before a barrier", NULL};
    expect_refused("declarations without a dispatch", record(ctx, record_bare, &b), left);
    b.declare = 2;
    expect_ok("the dispatch with its write declared", record(ctx, record_bare, &b));
    lws_arena_reset(ctx, mark);
}

/* ---- strided blocks, copies, fills, the arena ------------------------------ */

typedef struct columns {
    lws_buffer c, a, b, src;
    int overlap, copy_kind;
} columns;

/* Two matmuls writing column blocks of one [4, 16] matrix, as a batch of
 * one-row problems each (C rows 16 floats apart). */
static void record_columns(lws_cmd *cmd, void *arg) {
    columns *p = arg;
    uint32_t second = p->overlap ? 4 : 8;
    lws_op_matmul_batched(cmd, LWS_MM_NT, p->c, p->a, p->b, 1, 8, 4, 0, 4, 16, 4, 0);
    lws_op_matmul_batched(cmd, LWS_MM_NT, lws_buffer_slice(p->c, 4 * second, 4 * (64 - second)),
                          p->a, p->b, 1, 8, 4, 0, 4, 16, 4, 0);
}

static void record_transfers(lws_cmd *cmd, void *arg) {
    columns *p = arg;
    lws_cmd_label(cmd, "prefill");
    lws_op_axpby(cmd, p->src, p->a, p->a, 1, 1, 16);
    if (p->copy_kind == 0) {
        lws_cmd_copy(cmd, p->src, p->c, 64); /* reads what axpby wrote */
    } else if (p->copy_kind == 1) {
        lws_cmd_fill(cmd, p->src, 0); /* overwrites it */
    } else {
        lws_cmd_barrier(cmd);
        lws_cmd_copy(cmd, p->src, p->c, 64);
    }
}

typedef struct optim {
    lws_buffer hyper, table, grad;
} optim;

/* The optimizer follows addresses in a device table: it declares the whole
 * arena, so a write anywhere since the barrier conflicts. */
static void record_optim(lws_cmd *cmd, void *arg) {
    optim *o = arg;
    lws_op_axpby(cmd, o->grad, o->grad, o->grad, 2, 0, 16);
    lws_op_adamw(cmd, o->hyper, o->table, 1, 1);
}

static void check_blocks(lws_context *ctx, test_rng *rng) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    float *a = test_random_floats(rng, 64, 1.0);
    columns p = {test_output(ctx, 64),
                 test_upload_floats(ctx, a, 16),
                 test_upload_floats(ctx, a, 32),
                 test_output(ctx, 16),
                 0,
                 0};
    lws_buffer_name(ctx, p.c, "logits");
    expect_ok("matmuls writing disjoint column blocks", record(ctx, record_columns, &p));
    p.overlap = 1;
    const char *cols[] = {"write after write", "logits bytes 16..", "4 such ranges 64 bytes apart",
                          NULL};
    expect_refused("matmuls writing overlapping column blocks", record(ctx, record_columns, &p),
                   cols);

    lws_buffer_name(ctx, p.src, "x");
    const char *copy[] = {"read after write", "(copy, at \"prefill\")", "(axpby, at \"prefill\")",
                          NULL};
    expect_refused("a copy of what a dispatch wrote", record(ctx, record_transfers, &p), copy);
    p.copy_kind = 1;
    const char *fill[] = {"write after write", "(fill", NULL};
    expect_refused("a fill over what a dispatch wrote", record(ctx, record_transfers, &p), fill);
    p.copy_kind = 2;
    expect_ok("the copy after a barrier", record(ctx, record_transfers, &p));

    /* Recorded, never run: the values do not matter. */
    lws_optim_hyper h = {.clip_scale = 1};
    optim o = {test_upload(ctx, &h, sizeof h), {0}, test_upload_floats(ctx, a, 16)};
    lws_buffer state = test_upload_floats(ctx, a, 48);
    lws_optim_entry e = {state.addr + 128, o.grad.addr, state.addr, state.addr + 64, 16, 0, 0, 0};
    o.table = test_upload(ctx, &e, sizeof e);
    lws_buffer_name(ctx, o.grad, "layers.0.wq.grad");
    const char *arena[] = {"adamw", "axpby", "the parameters, gradients and moments", NULL};
    expect_refused("adamw right after a gradient write", record(ctx, record_optim, &o), arena);
    free(a);
    lws_arena_reset(ctx, mark);
}

/* ---- names released with the arena ---------------------------------------- */

static void record_unnamed(lws_cmd *cmd, void *arg) {
    columns *p = arg;
    lws_op_axpby(cmd, p->c, p->a, p->a, 1, 1, 16);
    lws_op_axpby(cmd, p->a, p->c, p->c, 1, 1, 16);
}

static void check_names_released(lws_context *ctx) {
    lws_arena_mark mark = lws_arena_get_mark(ctx);
    lws_buffer old = test_output(ctx, 16);
    lws_buffer_name(ctx, old, "released.tensor");
    lws_arena_reset(ctx, mark);
    columns p = {test_output(ctx, 16), test_output(ctx, 16), {0}, {0}, 0, 0};
    recorded r = record(ctx, record_unnamed, &p);
    CHECK(r.status == LWS_ERR_INVALID && !test_contains(r.message, "released.tensor") &&
              test_contains(r.message, "buffer+0x"),
          "a name of released memory is forgotten: '%s'", r.message);
    printf("ok   names of released memory are forgotten: %s\n", r.message);
    lws_arena_reset(ctx, mark);
}

/* ---- LWS_SKIP_BARRIER, and checking off ------------------------------------ */

static void check_skip_and_off(test_rng *rng) {
    /* Barrier 1 of a fresh context is the one between matmul and rmsnorm. */
    lws_context *ctx = make_context(1, 1);
    float *a, *b, *w;
    chain ch = make_chain(ctx, rng, &a, &b, &w);
    ch.barrier = 1;
    const char *parts[] = {"read after write", "matmul_nt", "rmsnorm", NULL};
    expect_refused("the chain with its barrier left out (skip_barrier = 1)",
                   record(ctx, record_chain, &ch), parts);
    expect_ok("the chain again (only the first barrier was left out)",
              record(ctx, record_chain, &ch));
    lws_context_destroy(ctx);
    free(a), free(b), free(w);

    ctx = make_context(-1, 0);
    CHECK(!lws_context_checks_hazards(ctx), "check_hazards = -1 turns checking off");
    ch = make_chain(ctx, rng, &a, &b, &w);
    expect_ok("with checking off, the chain without a barrier", record(ctx, record_chain, &ch));
    bare u = {NULL, test_output(ctx, 64), 0};
    uint32_t spec[1] = {64};
    CHECK_OK(lws_pipeline_get(ctx, "iota", spec, 1, &u.pipe));
    expect_ok("with checking off, a dispatch without declarations", record(ctx, record_bare, &u));
    recorded r = record(ctx, record_independent, &(independent){ch.a, ch.b, ch.y, ch.c, 0});
    CHECK(r.barriers == 2 && r.unneeded == 0, "off: barriers counted (%u), none judged (%u)",
          r.barriers, r.unneeded);
    lws_context_destroy(ctx);
    free(a), free(b), free(w);
}

int main(void) {
    test_rng rng;
    test_rng_seed(&rng, 11);
    lws_context *ctx = make_context(1, 0);
    CHECK(lws_context_checks_hazards(ctx), "check_hazards = 1 turns checking on");
    check_producer_consumer(ctx, &rng);
    check_pairs(ctx, &rng);
    check_unneeded(ctx, &rng);
    check_undeclared(ctx);
    check_blocks(ctx, &rng);
    check_names_released(ctx);
    lws_context_destroy(ctx);
    check_skip_and_off(&rng);
    return test_finish(NULL);
}
