/* The dynamic job queue (jobqueue.c): which job a free group takes next. */
#ifndef ENSDISTILL_JOBQUEUE_H
#define ENSDISTILL_JOBQUEUE_H

#include "ensdistill/job.h"

#include <mpi.h>

/* The order in which a phase hands out its jobs to n_groups groups: order[0..n) = job indices,
 * longest first (cost = epochs x nets), equal costs in list order; with one group, list order
 * (members before the sum control: the order changes no time there). */
void jobs_order(const Job *jobs, int n, int n_groups, int *order);

/* The next-job counters of the phases, in an MPI window on world rank 0. A group leader takes
 * index i = jobqueue_take (0, 1, 2, ... over all leaders, atomically) and trains job order[i]
 * when i < n; which group trains a job changes no result (a model's numbers do not depend on
 * where it trains), so any order resumes. */
typedef struct {
    MPI_Win win;
    long *base; /* the counters (on rank 0) */
    int n_counters;
} JobQueue;
/* Collective over MPI_COMM_WORLD: n_counters counters, all 0. */
void jobqueue_create(JobQueue *q, int n_counters);
/* Returns the value of counter `counter` and adds 1 to it (MPI_Fetch_and_op). */
long jobqueue_take(JobQueue *q, int counter);
/* Collective. */
void jobqueue_free(JobQueue *q);

#endif
