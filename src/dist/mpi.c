/* The ranks of a run over MPI (include/lws/dist.h). Every call returns an
 * lws_status: the communicator returns its errors instead of aborting, so a
 * failure names the MPI call and MPI's reason. Counts above what an MPI int
 * holds are sent in pieces. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lws/dist.h"

/* Elements per MPI call: well inside an int. */
#define PIECE ((uint64_t)1 << 30)
/* Pieces one request may hold (2^40 floats, 4 TiB). */
#define MAX_PIECES 1024

struct lws_dist {
    int rank, size, local_rank, local_size;
    int mpi; /* MPI_Init ran (the process was started by an MPI launcher) */
    MPI_Comm comm;
};

struct lws_dist_request {
    uint32_t count;
    MPI_Request req[MAX_PIECES];
};

static lws_status mpi_fail(int code, const char *call) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "code %d", code);
    return lws_fail(LWS_ERR_IO, "%s failed: %s", call, text);
}
#define MPI_TRY(call, name)                                                                        \
    do {                                                                                           \
        int mpi_rc_ = (call);                                                                      \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(mpi_rc_, name);                                \
    } while (0)

/* The environment an MPI launcher gives its processes: Open MPI's mpirun,
 * PMIx (srun, prterun) and PMI-1/2 (MPICH's hydra, srun --mpi=pmi2). */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

lws_status lws_dist_start(int *argc, char ***argv, lws_dist **out) {
    *out = NULL;
    lws_dist *d = calloc(1, sizeof *d);
    if (!d) return lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
    d->size = d->local_size = 1;
    if (!launched_by_mpi()) { /* one rank; MPI stays untouched */
        *out = d;
        return LWS_OK;
    }
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) {
        free(d);
        return mpi_fail(rc, "MPI_Init");
    }
    d->mpi = 1;
    *out = d;
    MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &d->comm), "MPI_Comm_dup");
    MPI_TRY(MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    MPI_TRY(MPI_Comm_rank(d->comm, &d->rank), "MPI_Comm_rank");
    MPI_TRY(MPI_Comm_size(d->comm, &d->size), "MPI_Comm_size");
    MPI_Comm node;
    MPI_TRY(MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
    MPI_Comm_rank(node, &d->local_rank);
    MPI_Comm_size(node, &d->local_size);
    MPI_Comm_free(&node);
    return LWS_OK;
}

void lws_dist_finish(lws_dist *d) {
    if (!d) return;
    if (d->mpi) {
        MPI_Comm_free(&d->comm);
        MPI_Finalize();
    }
    free(d);
}

void lws_dist_abort(lws_dist *d, int code) {
    fflush(stdout);
    fflush(stderr);
    if (d && d->mpi) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int lws_dist_rank(const lws_dist *d) {
    return d->rank;
}
int lws_dist_size(const lws_dist *d) {
    return d->size;
}
int lws_dist_local_rank(const lws_dist *d) {
    return d->local_rank;
}
int lws_dist_local_size(const lws_dist *d) {
    return d->local_size;
}

const char *lws_dist_library(void) {
    static char name[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!name[0]) {
        int len = 0;
        /* one of the calls MPI allows before MPI_Init */
        if (MPI_Get_library_version(name, &len) != MPI_SUCCESS) snprintf(name, sizeof name, "MPI");
        name[strcspn(name, ",\n")] = 0; /* "Open MPI v4.1.4, package: ..." */
    }
    return name;
}

lws_status lws_dist_allreduce_f64(lws_dist *d, double *x, uint32_t n, lws_dist_op op) {
    if (d->size == 1) return LWS_OK;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE,
                          op == LWS_DIST_MAX ? MPI_MAX : MPI_SUM, d->comm),
            "MPI_Allreduce");
    return LWS_OK;
}

lws_status lws_dist_broadcast(lws_dist *d, void *buf, uint64_t bytes, int root) {
    if (d->size == 1) return LWS_OK;
    for (uint64_t at = 0; at < bytes; at += PIECE) {
        uint64_t n = bytes - at < PIECE ? bytes - at : PIECE;
        MPI_TRY(MPI_Bcast((char *)buf + at, (int)n, MPI_BYTE, root, d->comm), "MPI_Bcast");
    }
    return LWS_OK;
}

lws_status lws_dist_allgather_f32(lws_dist *d, float *x, const uint64_t *bounds) {
    /* Each slice broadcast by its owner: 64-bit offsets, any slice sizes. */
    for (int r = 0; r < d->size; r++)
        LWS_TRY(lws_dist_broadcast(d, x + bounds[r], (bounds[r + 1] - bounds[r]) * sizeof *x, r));
    return LWS_OK;
}

lws_status lws_dist_gather_f32(lws_dist *d, float *x, const uint64_t *bounds, int root) {
    for (int r = 0; r < d->size; r++) {
        if (r == root || (d->rank != root && d->rank != r)) continue;
        for (uint64_t at = bounds[r]; at < bounds[r + 1]; at += PIECE) {
            int n = (int)(bounds[r + 1] - at < PIECE ? bounds[r + 1] - at : PIECE);
            if (d->rank == root)
                MPI_TRY(MPI_Recv(x + at, n, MPI_FLOAT, r, 0, d->comm, MPI_STATUS_IGNORE),
                        "MPI_Recv");
            else
                MPI_TRY(MPI_Send(x + at, n, MPI_FLOAT, root, 0, d->comm), "MPI_Send");
        }
    }
    return LWS_OK;
}

static lws_status new_request(uint64_t n, lws_dist_request **out) {
    if ((n + PIECE - 1) / PIECE > MAX_PIECES)
        return lws_fail(LWS_ERR_INVALID, "a reduction of %llu floats: more than %llu at once",
                        (unsigned long long)n, (unsigned long long)(PIECE * MAX_PIECES));
    *out = calloc(1, sizeof **out);
    return *out ? LWS_OK : lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory");
}

/* Cancels what a request started before a failure, then frees it. */
static lws_status drop_request(lws_dist_request *r, lws_status s) {
    for (uint32_t i = 0; i < r->count; i++) MPI_Wait(&r->req[i], MPI_STATUS_IGNORE);
    free(r);
    return s;
}

lws_status lws_dist_allreduce_f32_start(lws_dist *d, float *x, uint64_t n, lws_dist_request **out) {
    LWS_TRY(new_request(n, out));
    lws_dist_request *r = *out;
    for (uint64_t at = 0; at < n; at += PIECE) {
        int rc = MPI_Iallreduce(MPI_IN_PLACE, x + at, (int)(n - at < PIECE ? n - at : PIECE),
                                MPI_FLOAT, MPI_SUM, d->comm, &r->req[r->count]);
        if (rc != MPI_SUCCESS) return drop_request(r, mpi_fail(rc, "MPI_Iallreduce"));
        r->count++;
    }
    return LWS_OK;
}

lws_status lws_dist_reduce_scatter_f32_start(lws_dist *d, const float *x, uint64_t lo, uint64_t hi,
                                             const uint64_t *bounds, float *shard,
                                             lws_dist_request **out) {
    LWS_TRY(new_request(hi - lo, out));
    lws_dist_request *r = *out;
    int *counts = malloc((size_t)d->size * sizeof *counts);
    if (!counts) return drop_request(r, lws_fail(LWS_ERR_OUT_OF_MEMORY, "out of host memory"));
    lws_status s = LWS_OK;
    for (uint64_t a = lo; s == LWS_OK && a < hi; a += PIECE) {
        uint64_t b = hi - a < PIECE ? hi : a + PIECE;
        /* piece [a, b) cut at the slice bounds, in rank order */
        for (int k = 0; k < d->size; k++) {
            uint64_t from = bounds[k] > a ? bounds[k] : a,
                     to = bounds[k + 1] < b ? bounds[k + 1] : b;
            counts[k] = to > from ? (int)(to - from) : 0;
        }
        uint64_t mine = bounds[d->rank] > a ? bounds[d->rank] : a;
        float *recv = shard + (mine > bounds[d->rank + 1] ? 0 : mine - bounds[d->rank]);
        /* MPI reads the send buffer only */
        int rc = MPI_Ireduce_scatter((void *)(x + a), recv, counts, MPI_FLOAT, MPI_SUM, d->comm,
                                     &r->req[r->count]);
        if (rc != MPI_SUCCESS)
            s = mpi_fail(rc, "MPI_Ireduce_scatter");
        else
            r->count++;
    }
    free(counts);
    return s == LWS_OK ? LWS_OK : drop_request(r, s);
}

lws_status lws_dist_test(lws_dist_request *r, int *done) {
    int flag = 0;
    MPI_TRY(MPI_Testall((int)r->count, r->req, &flag, MPI_STATUSES_IGNORE), "MPI_Testall");
    *done = flag;
    if (flag) free(r);
    return LWS_OK;
}

lws_status lws_dist_wait(lws_dist_request *r) {
    int rc = MPI_Waitall((int)r->count, r->req, MPI_STATUSES_IGNORE);
    free(r);
    return rc == MPI_SUCCESS ? LWS_OK : mpi_fail(rc, "MPI_Waitall");
}
