/* Rank layout and per-rank thread count (see layout.h). */
#include "ensdistill/layout.h"
#include "ensdistill/error.h"
#include "ensdistill/threads.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int layout_create(Layout *lo, int ranks_per_model, int threads, char *err, size_t err_size) {
    *lo = (Layout){0};
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &lo->world_rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &lo->world_size));
    if (ranks_per_model < 1 || lo->world_size % ranks_per_model != 0) {
        snprintf(err, err_size,
                 "parallel.ranks_per_model = %d does not divide the %d ranks of this run: launch "
                 "a multiple of %d ranks (mpirun -n %d, %d, ...) or change ranks_per_model",
                 ranks_per_model, lo->world_size, ranks_per_model, ranks_per_model,
                 2 * ranks_per_model);
        return -1;
    }
    lo->ranks_per_model = ranks_per_model;
    lo->n_groups = lo->world_size / ranks_per_model;
    lo->group = lo->world_rank / ranks_per_model;
    lo->group_rank = lo->world_rank % ranks_per_model;
    lo->is_leader = lo->group_rank == 0;
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, lo->group, lo->group_rank, &lo->group_comm));
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, lo->is_leader ? 0 : MPI_UNDEFINED, lo->group,
                             &lo->leaders_comm));

    MPI_Comm node;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, lo->world_rank,
                                  MPI_INFO_NULL, &node));
    MPI_CHECK(MPI_Comm_size(node, &lo->ranks_on_node));
    MPI_Comm_free(&node);
    if (threads <= 0) {
        /* auto: the CPUs the launcher bound this rank to; unbound ranks (every rank sees all
         * the node's CPUs) share them evenly */
        int given = threads_cpus_given();
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = given >= online && lo->ranks_on_node > 1 ? given / lo->ranks_on_node : given;
        if (threads < 1) threads = 1;
    }
    lo->threads = threads;
    return 0;
}

void layout_free(Layout *lo) {
    if (lo->group_comm != MPI_COMM_NULL && lo->group_comm) MPI_Comm_free(&lo->group_comm);
    if (lo->leaders_comm != MPI_COMM_NULL && lo->leaders_comm) MPI_Comm_free(&lo->leaders_comm);
}

void layout_wait_all(MPI_Comm comm) {
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(comm, &req));
    for (;;) {
        int done = 0;
        MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) return;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}
