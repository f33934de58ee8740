/* Rank layout: R ranks form G = R / g groups of g = parallel.ranks_per_model consecutive ranks
 * (MPI_Comm_split). Groups take jobs from a shared queue (JobQueue, jobqueue.h); inside a
 * group one model trains data-parallel. Group leaders (group rank 0) form a communicator of
 * their own for the teacher. It also decides the threads of this rank (lo->threads); the
 * caller sets them (threads_set, threads.h). */
#ifndef ENSDISTILL_LAYOUT_H
#define ENSDISTILL_LAYOUT_H

#include <mpi.h>
#include <stddef.h>

typedef struct {
    int world_rank, world_size;
    int ranks_per_model; /* g */
    int n_groups;        /* G */
    int group;           /* j: this rank's group */
    int group_rank;      /* rank inside the group */
    int is_leader;       /* group_rank == 0 */
    MPI_Comm group_comm;   /* the g ranks of this group */
    MPI_Comm leaders_comm; /* the G group leaders (MPI_COMM_NULL on other ranks) */
    int ranks_on_node;   /* ranks sharing this node */
    int threads;         /* threads this rank's kernels use */
} Layout;

/* Builds the layout. Returns 0, or -1 with a message when R is not a multiple of g (every
 * rank computes the same answer, so all can stop cleanly). threads: 0 = auto (the CPUs this
 * rank is bound to; all the node's CPUs / ranks on this node when ranks are not bound); the
 * count is lo->threads, set nowhere else: call threads_set(lo->threads). */
int layout_create(Layout *lo, int ranks_per_model, int threads, char *err, size_t err_size);
void layout_free(Layout *lo);

/* A barrier over comm that sleeps while it waits. Open MPI busy-polls inside blocking
 * collectives, so a group that ends its share of a phase early would spin a core at 100% until
 * the slowest group arrives, taking that core from a working rank when ranks outnumber cores.
 * This one tests a non-blocking barrier every millisecond instead. */
void layout_wait_all(MPI_Comm comm);

#endif
