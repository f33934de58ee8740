/* Errors. Two kinds, as STYLE.md asks:
 *   ed_fail(...)  bad input: the user's mistake. Prints "ensdistill: error: <message>" and stops
 *                 with exit status 2 (MPI_Abort when other ranks run, so none hangs).
 *   ED_CHECK / ED_DIE  a broken invariant: ours. Prints "[rank] file:function():line: message"
 *                 and stops through MPI_Abort.
 * A lone rank never calls exit() while others run: every path goes through ed_stop(). */
#ifndef ENSDISTILL_ERROR_H
#define ENSDISTILL_ERROR_H

#include <stdnoreturn.h>

#define ED_EXIT_USER 2     /* bad config, data, checkpoint or command line */
#define ED_EXIT_INTERNAL 3 /* a bug: an invariant failed */

noreturn void ed_die_at(const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
noreturn void ed_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ed_fail's message without the stop: prints "ensdistill: error: <message>" and returns
 * ED_EXIT_USER, for a command that cleans up and returns its exit status
 * (`return ed_error("nothing to inspect");`). */
int ed_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a warning prefixed with the rank; never stops. */
void ed_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stop every rank with this exit status (MPI_Abort if MPI is up and >1 rank, else exit). */
noreturn void ed_stop(int status);
/* This process's rank in MPI_COMM_WORLD, or 0 before MPI_Init. */
int ed_rank(void);

#define ED_DIE(...) ed_die_at(__FILE__, __LINE__, __func__, __VA_ARGS__)
#define ED_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) ed_die_at(__FILE__, __LINE__, __func__, __VA_ARGS__);                         \
    } while (0)
/* MPI calls return MPI_SUCCESS (0) when they succeed. */
#define MPI_CHECK(call)                                                                            \
    do {                                                                                           \
        int mpi_rc_ = (call);                                                                      \
        if (mpi_rc_ != 0) ed_die_at(__FILE__, __LINE__, __func__, "%s failed (%d)", #call, mpi_rc_); \
    } while (0)
/* HDF5 calls return a negative value on failure. Evaluates to the call's value. */
#define H5_CHECK(call)                                                                             \
    ({                                                                                             \
        __typeof__(call) h5_rc_ = (call);                                                          \
        if (h5_rc_ < 0) ed_die_at(__FILE__, __LINE__, __func__, "%s failed", #call);               \
        h5_rc_;                                                                                    \
    })

#endif
