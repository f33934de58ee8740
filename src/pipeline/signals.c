/* SIGTERM and SIGUSR1: finish the current step, checkpoint, exit 0 (see signals.h). The
 * handler only sets a flag; the training loop reads it between steps. */
#include "ensdistill/error.h"
#include "ensdistill/signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

void signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int signals_stop_requested(void) {
    return stop_requested != 0;
}

int signals_any(MPI_Comm comm) {
    int mine = signals_stop_requested(), any = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
    if (any) stop_requested = 1;
    return any;
}
