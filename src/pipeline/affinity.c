/* Where the ranks run (see affinity.h): each rank's CPU mask and thread count, gathered on the
 * first rank of its node, which prints the node's line. Since Slurm 22.05 srun no longer
 * inherits sbatch's --cpus-per-task, and Open MPI binds to one core by default for up to two
 * ranks: both show up here as several threads on one CPU. */
#define _GNU_SOURCE
#include "ensdistill/affinity.h"
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MASK_BYTES = CPU_SETSIZE / 8 };

typedef struct {
    int world_rank, threads, n_cpus;
    unsigned char mask[MASK_BYTES]; /* bit c of byte c / 8: the rank may run on CPU c */
} RankPlace;

char *affinity_format(const unsigned char *mask, int n_cpus, char *out, size_t size) {
    size_t used = 0;
    out[0] = '\0';
    for (int c = 0; c < n_cpus; c++) {
        if (!(mask[c / 8] >> (c % 8) & 1)) continue;
        int last = c;
        while (last + 1 < n_cpus && (mask[(last + 1) / 8] >> ((last + 1) % 8) & 1)) last++;
        int n = last == c ? snprintf(out + used, size - used, "%s%d", used ? "," : "", c)
                          : snprintf(out + used, size - used, "%s%d-%d", used ? "," : "", c, last);
        if (n < 0 || (size_t)n >= size - used) { /* too long: end with "..." */
            if (size >= 4) snprintf(out + size - 4, 4, "...");
            return out;
        }
        used += (size_t)n;
        c = last;
    }
    return out;
}

static int mask_count(const unsigned char *mask) {
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) n += mask[c / 8] >> (c % 8) & 1;
    return n;
}

void affinity_report(const Layout *lo) {
    RankPlace me = {.world_rank = lo->world_rank, .threads = lo->threads};
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) me.mask[c / 8] |= (unsigned char)(1u << (c % 8));
    }
    me.n_cpus = mask_count(me.mask);

    MPI_Comm node;
    int node_rank, node_size;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, lo->world_rank,
                                  MPI_INFO_NULL, &node));
    MPI_CHECK(MPI_Comm_rank(node, &node_rank));
    MPI_CHECK(MPI_Comm_size(node, &node_size));
    RankPlace *all = node_rank == 0 ? xcalloc((size_t)node_size, sizeof(RankPlace)) : NULL;
    MPI_CHECK(MPI_Gather(&me, (int)sizeof(me), MPI_BYTE, all, (int)sizeof(me), MPI_BYTE, 0, node));
    MPI_Comm_free(&node);
    if (node_rank != 0) return;

    char host[MPI_MAX_PROCESSOR_NAME];
    int host_len;
    MPI_CHECK(MPI_Get_processor_name(host, &host_len));
    size_t line_size = 128 + (size_t)node_size * 128;
    char *line = xmalloc(line_size), cpus[64];
    unsigned char any[MASK_BYTES] = {0};
    int used = snprintf(line, line_size, "node %s: %d rank(s)", host, node_size);
    int threads_on_node = 0;
    for (int i = 0; i < node_size; i++) {
        const RankPlace *r = &all[i];
        for (int b = 0; b < MASK_BYTES; b++) any[b] |= r->mask[b];
        threads_on_node += r->threads;
        affinity_format(r->mask, CPU_SETSIZE, cpus, sizeof(cpus));
        used += snprintf(line + used, line_size - (size_t)used, "; rank %d: CPUs %s (%d), %d thread%s",
                         r->world_rank, cpus, r->n_cpus, r->threads, r->threads == 1 ? "" : "s");
    }
    printf("%s\n", line);
    for (int i = 0; i < node_size; i++) {
        const RankPlace *r = &all[i];
        if (r->threads > r->n_cpus)
            printf("warning: rank %d on %s runs %d threads on %d CPU(s): under Slurm give srun "
                   "the CPUs (SRUN_CPUS_PER_TASK or srun -c %d); under mpirun bind each rank to "
                   "%d cores (--map-by slot:PE=%d) or set parallel.threads\n",
                   r->world_rank, host, r->threads, r->n_cpus, r->threads, r->threads, r->threads);
    }
    int cpus_on_node = mask_count(any);
    if (threads_on_node > cpus_on_node)
        printf("warning: the %d rank(s) on %s run %d threads together on %d CPU(s): they will "
               "compete for cores\n",
               node_size, host, threads_on_node, cpus_on_node);
    fflush(stdout);
    free(line);
    free(all);
}
