/* The dynamic job queue (see jobqueue.h): one counter per phase in a window held by world rank
 * 0. A group leader that is free takes the next index with MPI_Fetch_and_op under a shared
 * lock, so no rank serves requests; across nodes without hardware atomics (Open MPI's
 * pt2pt one-sided over TCP) the update completes when rank 0 next enters MPI, which it does
 * between its own steps (progress_poll). */
#include "ensdistill/error.h"
#include "ensdistill/jobqueue.h"

#include <stdlib.h>

void jobs_order(const Job *jobs, int n, int n_groups, int *order) {
    for (int j = 0; j < n; j++) order[j] = j;
    if (n_groups == 1) return; /* one group: the order changes no time; members finish first */
    /* stable sort by decreasing cost (insertion sort: a phase has few jobs) */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0; b--) {
            const Job *x = &jobs[order[b - 1]], *y = &jobs[order[b]];
            if ((double)x->epochs * x->sum_of >= (double)y->epochs * y->sum_of) break;
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
}

void jobqueue_create(JobQueue *q, int n_counters) {
    int rank;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_Aint bytes = rank == 0 ? (MPI_Aint)n_counters * (MPI_Aint)sizeof(long) : 0;
    q->n_counters = n_counters;
    MPI_CHECK(MPI_Win_allocate(bytes, sizeof(long), MPI_INFO_NULL, MPI_COMM_WORLD, &q->base,
                               &q->win));
    if (rank == 0) {
        MPI_CHECK(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win));
        for (int i = 0; i < n_counters; i++) q->base[i] = 0;
        MPI_CHECK(MPI_Win_unlock(0, q->win));
    }
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); /* nobody takes a job before the counters are 0 */
}

long jobqueue_take(JobQueue *q, int counter) {
    ED_CHECK(counter >= 0 && counter < q->n_counters, "counter %d of %d", counter, q->n_counters);
    const long one = 1;
    long got = -1;
    MPI_CHECK(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win));
    MPI_CHECK(MPI_Fetch_and_op(&one, &got, MPI_LONG, 0, counter, MPI_SUM, q->win));
    MPI_CHECK(MPI_Win_unlock(0, q->win));
    return got;
}

void jobqueue_free(JobQueue *q) {
    MPI_CHECK(MPI_Win_free(&q->win));
}
