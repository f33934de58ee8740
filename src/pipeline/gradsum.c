/* The gradient sum over a group (gradsum.h). A bucket's place in the gradient never moves, so
 * each bucket gets a persistent all-reduce, made once when the step is created (the MPI-4
 * MPI_Allreduce_init, or Open MPI 4's MPIX_Allreduce_init extension), and each step only
 * starts it: no schedule is built or allocated per step. An MPI without either falls back to
 * one MPI_Iallreduce per bucket per step. Open MPI moves a non-blocking collective forward
 * only inside MPI calls (no progress thread by default), so the step calls progress
 * (MPI_Test) between backward's ops. Every rank starts the same buckets in the same order,
 * so the collectives match, and the sums are the same with the overlap on or off. */
#include "ensdistill/gradsum.h"
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <stdlib.h>
#if defined(ED_GRADSUM_NONBLOCKING)
/* -DED_GRADSUM_NONBLOCKING: the per-step MPI_Iallreduce, whatever the library offers */
#elif MPI_VERSION >= 4
#define PERSISTENT_ALLREDUCE MPI_Allreduce_init
#define PERSISTENT_NAME "persistent MPI_Allreduce_init"
#elif defined(OPEN_MPI)
#include <mpi-ext.h>
#if defined(OMPI_HAVE_MPI_EXT_PCOLLREQ) && OMPI_HAVE_MPI_EXT_PCOLLREQ
#define PERSISTENT_ALLREDUCE MPIX_Allreduce_init
#define PERSISTENT_NAME "persistent MPIX_Allreduce_init"
#endif
#endif

typedef struct {
    float *grads;
    int n;
} Bucket;

struct GroupSum {
    MPI_Comm comm;
    Bucket *bucket;   /* [n_buckets], as prepared */
    MPI_Request *req; /* [n_buckets]: persistent, or the step's non-blocking ones */
    MPI_Status *status; /* [n_buckets]: unread (an array rather than MPI_STATUSES_IGNORE, which
                           GCC takes for a too-small array under MPICH's access attributes) */
    int n_buckets, started;
    int complete; /* buckets [0, complete) of this step are summed: their requests are inactive */
};

GroupSum *group_sum_create(MPI_Comm comm) {
    GroupSum *gs = xcalloc(1, sizeof(GroupSum));
    gs->comm = comm;
    return gs;
}

void group_sum_free(GroupSum *gs) {
    if (!gs) return;
#ifdef PERSISTENT_ALLREDUCE
    for (int b = 0; b < gs->n_buckets; b++)
        if (gs->req[b] != MPI_REQUEST_NULL) MPI_CHECK(MPI_Request_free(&gs->req[b]));
#endif
    free(gs->bucket);
    free(gs->req);
    free(gs->status);
    free(gs);
}

const char *group_sum_method(void) {
#ifdef PERSISTENT_ALLREDUCE
    return PERSISTENT_NAME;
#else
    return "MPI_Iallreduce";
#endif
}

/* step_create: bucket `bucket` is grads[0..n), for the life of the step. */
static void sum_prepare(float *grads, size_t n, int bucket, void *ctx) {
    GroupSum *gs = ctx;
    ED_CHECK(bucket == gs->n_buckets && n <= (size_t)INT32_MAX,
             "gradient sum: bucket %d of %zu floats prepared out of order", bucket, n);
    gs->bucket = xrealloc(gs->bucket, (size_t)(bucket + 1) * sizeof(Bucket));
    gs->req = xrealloc(gs->req, (size_t)(bucket + 1) * sizeof(MPI_Request));
    gs->status = xrealloc(gs->status, (size_t)(bucket + 1) * sizeof(MPI_Status));
    gs->bucket[bucket] = (Bucket){grads, (int)n};
    gs->req[bucket] = MPI_REQUEST_NULL;
#ifdef PERSISTENT_ALLREDUCE
    MPI_CHECK(PERSISTENT_ALLREDUCE(MPI_IN_PLACE, grads, (int)n, MPI_FLOAT, MPI_SUM, gs->comm,
                                   MPI_INFO_NULL, &gs->req[bucket]));
#endif
    gs->n_buckets++;
}

static void sum_start(int bucket, void *ctx) {
    GroupSum *gs = ctx;
    ED_CHECK(bucket == gs->started && bucket < gs->n_buckets,
             "gradient sum: bucket %d started out of order (%d started, %d buckets)", bucket,
             gs->started, gs->n_buckets);
#ifdef PERSISTENT_ALLREDUCE
    MPI_CHECK(MPI_Start(&gs->req[bucket]));
#else
    const Bucket *b = &gs->bucket[bucket];
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, b->grads, b->n, MPI_FLOAT, MPI_SUM, gs->comm,
                             &gs->req[bucket]));
#endif
    gs->started++;
}

static void sum_progress(void *ctx) {
    GroupSum *gs = ctx;
    /* In bucket order, up to the first one still running; each MPI_Test drives the progress
     * engine. (Not MPI_Testall: MPICH 4.0.2's returns MPI_ERR_IN_STATUS, every status
     * MPI_ERR_PENDING, over persistent collectives that are merely not finished.) */
    while (gs->complete < gs->started) {
        int done;
        MPI_CHECK(MPI_Test(&gs->req[gs->complete], &done, &gs->status[gs->complete]));
        if (!done) return;
        gs->complete++;
    }
}

static void sum_finish(void *ctx) {
    GroupSum *gs = ctx;
    MPI_CHECK(MPI_Waitall(gs->started - gs->complete, gs->req + gs->complete, gs->status));
    gs->started = gs->complete = 0;
}

GradSum group_sum_hooks(GroupSum *gs, size_t bucket_floats, int overlap) {
    return (GradSum){.prepare = sum_prepare, .start = sum_start, .progress = sum_progress,
                     .finish = sum_finish, .ctx = gs, .bucket_floats = bucket_floats,
                     .overlap = overlap};
}

size_t group_sum_bucket_floats(double mib) {
    if (mib <= 0.0) return 0; /* one bucket */
    double floats = mib * 1048576.0 / sizeof(float);
    return floats < 1.0 ? 1 : (size_t)floats;
}
