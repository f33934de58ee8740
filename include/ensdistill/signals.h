/* SIGTERM / SIGUSR1 ask every rank to checkpoint and stop (signals.c). */
#ifndef ENSDISTILL_SIGNALS_H
#define ENSDISTILL_SIGNALS_H

#include <mpi.h>

void signals_install(void);
int signals_stop_requested(void);
/* 1 if any rank of comm has seen a stop signal (a collective over comm). */
int signals_any(MPI_Comm comm);

#endif
