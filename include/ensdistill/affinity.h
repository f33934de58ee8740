/* Start-up report of where the ranks run: per node, the CPUs each rank may use
 * (sched_getaffinity) and the threads it runs, with a warning where threads outnumber CPUs. */
#ifndef ENSDISTILL_AFFINITY_H
#define ENSDISTILL_AFFINITY_H

#include <stddef.h>

#include "ensdistill/layout.h"

/* Formats a CPU set as a list of ranges ("0-7,16-23") into out; returns out. */
char *affinity_format(const unsigned char *mask, int n_cpus, char *out, size_t size);

/* Collective over MPI_COMM_WORLD. The first rank of every node prints one line for its node:
 *   node NAME: R rank(s); rank 0: CPUs 0 (1), 1 thread; rank 1: CPUs 1 (1), 1 thread
 * and a warning for every rank that runs more threads than it may use CPUs, and for a node
 * whose ranks run more threads together than the CPUs they may use. Allocates nothing that
 * outlives the call. */
void affinity_report(const Layout *lo);

#endif
