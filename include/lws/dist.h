/* lws — data parallelism: the ranks of one training run, one per GPU, and
 * the collectives it needs. Built over MPI when lws is built with it
 * (src/dist/mpi.c); otherwise every run is a single rank and the same calls
 * act on that rank alone (src/dist/single.c). Vulkan has no collective
 * library, so gradients travel through host memory. */
#ifndef LWS_DIST_H
#define LWS_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "lws/status.h"

typedef struct lws_dist lws_dist;

/* Joins the run: MPI_Init when the process was started by an MPI launcher
 * (mpirun, srun: its environment says so), else a run of one rank that
 * touches no MPI at all. argc/argv may be NULL. */
lws_status lws_dist_start(int *argc, char ***argv, lws_dist **out);
/* Leaves the run (MPI_Finalize) and frees d; NULL is fine. */
void lws_dist_finish(lws_dist *d);
/* Ends every rank of the run at once (MPI_Abort) with exit status code: for a
 * failure of this rank alone, which the others would otherwise wait on
 * forever. Without MPI (or on one rank) it exits this process. */
void lws_dist_abort(lws_dist *d, int code);

int lws_dist_rank(const lws_dist *d);       /* 0 .. size - 1 */
int lws_dist_size(const lws_dist *d);       /* ranks in the run */
int lws_dist_local_rank(const lws_dist *d); /* among the ranks of this node */
int lws_dist_local_size(const lws_dist *d);

/* "Open MPI v4.1.4" (the MPI library this lws is built with), or NULL when
 * it is built without MPI. */
const char *lws_dist_library(void);

/* ---- blocking collectives (every rank calls them, in the same order) ---- */

typedef enum lws_dist_op { LWS_DIST_SUM, LWS_DIST_MAX } lws_dist_op;

/* x[0..n) combined over the ranks, in place. */
lws_status lws_dist_allreduce_f64(lws_dist *d, double *x, uint32_t n, lws_dist_op op);
/* bytes of buf from rank root to every rank. */
lws_status lws_dist_broadcast(lws_dist *d, void *buf, uint64_t bytes, int root);
/* A flat float array cut into one slice per rank, slice r = [bounds[r],
 * bounds[r + 1]) (bounds has size + 1 entries): every rank holds its own
 * slice of x; afterwards every rank holds all of x. */
lws_status lws_dist_allgather_f32(lws_dist *d, float *x, const uint64_t *bounds);
/* The same cut: every rank's slice of x lands in root's x; x on the other
 * ranks is only read. */
lws_status lws_dist_gather_f32(lws_dist *d, float *x, const uint64_t *bounds, int root);

/* ---- non-blocking reductions of float ranges ------------------------------ */

typedef struct lws_dist_request lws_dist_request;

/* Sums x[0..n) over the ranks in place. x must stay untouched until the
 * request is done. */
lws_status lws_dist_allreduce_f32_start(lws_dist *d, float *x, uint64_t n, lws_dist_request **out);
/* Sums the range [lo, hi) of the flat array x over the ranks and leaves in
 * each rank's `shard` (its slice [bounds[rank], bounds[rank + 1]) of the
 * whole array, so shard[0] is element bounds[rank]) the sums of the part of
 * [lo, hi) in its slice. */
lws_status lws_dist_reduce_scatter_f32_start(lws_dist *d, const float *x, uint64_t lo, uint64_t hi,
                                             const uint64_t *bounds, float *shard,
                                             lws_dist_request **out);
/* Progresses the request; *done = 1 once it has completed (and is freed). */
lws_status lws_dist_test(lws_dist_request *r, int *done);
/* Waits for the request to complete and frees it. */
lws_status lws_dist_wait(lws_dist_request *r);

#endif
