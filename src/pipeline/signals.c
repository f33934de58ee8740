/* SIGTERM and SIGUSR1: finish the current step, checkpoint, exit 0 (see signals.h).
 *
 * The signals never interrupt a computing thread. signals_install, first thing in main, blocks
 * them in the main thread before MPI or OpenMP starts a thread, so every thread those start
 * inherits the block; a signal sent to the process then stays pending until
 * signals_stop_requested takes it (sigtimedwait) between steps. Why not a handler alone:
 * oneDNN's JIT gemm kernels (2.6 and 3.7; fixed upstream in 2026, oneDNN PR #4855) point rsp
 * into a heap buffer while they run, and a handler's frame, which the kernel writes below rsp,
 * then overwrites the heap: glibc aborts at the next free. The handler only covers a thread
 * that unblocks them on its own or was started before main (a library's constructor): it sets
 * the flag. (In a run, /proc/PID/task/TID/status shows every thread with both blocked.) */
#include "ensdistill/error.h"
#include "ensdistill/signals.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested = 0;

static void stop_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
}

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
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Takes every pending stop signal (none waits: a zero timeout). */
static int take_pending(void) {
    sigset_t set, pending;
    stop_signals(&set);
    if (sigpending(&pending) != 0) return 0;
    int taken = 0;
    const struct timespec now = {0, 0};
    while ((sigismember(&pending, SIGTERM) || sigismember(&pending, SIGUSR1)) &&
           sigtimedwait(&set, NULL, &now) > 0) {
        taken = 1;
        if (sigpending(&pending) != 0) break;
    }
    return taken;
}

int signals_stop_requested(void) {
    if (!stop_requested && take_pending()) stop_requested = 1;
    return stop_requested != 0;
}

int signals_any(MPI_Comm comm) {
    int mine = signals_stop_requested(), any = 0;
    MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
    if (any) stop_requested = 1;
    return any;
}
