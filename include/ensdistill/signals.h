/* SIGTERM / SIGUSR1 ask every rank to checkpoint and stop (signals.c). */
#ifndef ENSDISTILL_SIGNALS_H
#define ENSDISTILL_SIGNALS_H

#include <mpi.h>

/* SIGTERM and SIGUSR1 become a stop request: a flag-setting handler, and both blocked in the
 * calling thread, so in every thread it starts later. Call it first in main, before MPI_Init,
 * in a process that checkpoints on them: no thread MPI or OpenMP starts is ever interrupted by
 * them (see signals.c for why that matters). */
void signals_install(void);
/* 1 once a stop signal has arrived (takes a pending one). Call from the main thread. */
int signals_stop_requested(void);
/* 1 if any rank of comm has seen a stop signal (a collective over comm). */
int signals_any(MPI_Comm comm);

#endif
