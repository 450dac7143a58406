/* The commands' side of running as one rank of several (mpirun -np N lws
 * train|bench): joining the run, the device of each rank, quiet ranks, and
 * ending every rank when one fails alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lws/vk.h"

lws_dist *lws_cli_dist_start(void) {
    lws_dist *d = NULL;
    if (lws_dist_start(NULL, NULL, &d) != LWS_OK) {
        lws_cli_error();
        return NULL;
    }
    /* Rank 0 speaks for the run; the others only report their failures. */
    if (lws_dist_rank(d) != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "lws: rank %d: cannot silence standard output\n", lws_dist_rank(d));
        lws_dist_abort(d, 1);
    }
    return d;
}

int lws_cli_dist_fail(lws_dist *d, int status) {
    if (lws_dist_size(d) == 1) {
        fprintf(stderr, "lws: %s\n", lws_error_message());
        return status;
    }
    fprintf(stderr, "lws: rank %d of %d: %s\n", lws_dist_rank(d), lws_dist_size(d),
            lws_error_message());
    lws_dist_abort(d, status ? status : 1);
    return status;
}

void lws_cli_dist_describe(FILE *out) {
    const char *mpi = lws_dist_library();
    if (mpi)
        fprintf(out, "built with MPI (%s): mpirun -np N lws train|bench runs one rank per GPU\n",
                mpi);
    else
        fprintf(out, "built without MPI: one GPU per run\n");
}

/* "2,3": entry i for local rank i; one name or index: every rank's;
 * none: the node's devices in turn by local rank. */
lws_status lws_cli_rank_device(const lws_dist *d, const char *device, char *out, size_t size) {
    int local = lws_dist_local_rank(d);
    if (device && strchr(device, ',')) {
        const char *at = device;
        for (int i = 0; i < local && at; i++) {
            at = strchr(at, ',');
            if (at) at++;
        }
        if (!at)
            return lws_fail(LWS_ERR_INVALID,
                            "--device %s names fewer devices than the %d ranks on this node "
                            "(rank %d is local rank %d)",
                            device, lws_dist_local_size(d), lws_dist_rank(d), local);
        snprintf(out, size, "%.*s", (int)strcspn(at, ","), at);
        return LWS_OK;
    }
    if (device || lws_dist_size(d) == 1) {
        snprintf(out, size, "%s", device ? device : "");
        return LWS_OK;
    }
    lws_device_caps *devices = NULL;
    uint32_t n = 0;
    LWS_TRY(lws_list_devices(&devices, &n));
    free(devices);
    /* more ranks than devices share them (lavapipe in tests) */
    snprintf(out, size, "%u", n ? (uint32_t)local % n : 0u);
    return LWS_OK;
}
