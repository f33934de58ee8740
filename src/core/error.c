/* Error reporting and the single exit path of the program (see error.h). */
#include "ensdistill/error.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int ed_rank(void) {
    int up = 0, down = 0, rank = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

noreturn void ed_stop(int status) {
    int up = 0, down = 0, size = 1;
    fflush(stdout);
    fflush(stderr);
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) {
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1) MPI_Abort(MPI_COMM_WORLD, status);
    }
    exit(status);
}

noreturn void ed_die_at(const char *file, int line, const char *func, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "[%d] %s:%s():%d: ", ed_rank(), file, func, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ed_stop(ED_EXIT_INTERNAL);
}

/* "[rank] ensdistill: <kind>: <message>\n" to stderr (no rank on rank 0). */
static void print_message(const char *kind, const char *fmt, va_list ap) {
    int rank = ed_rank();
    if (rank != 0) fprintf(stderr, "[%d] ", rank);
    fprintf(stderr, "ensdistill: %s: ", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
}

noreturn void ed_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_message("error", fmt, ap);
    va_end(ap);
    ed_stop(ED_EXIT_USER);
}

int ed_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_message("error", fmt, ap);
    va_end(ap);
    return ED_EXIT_USER;
}

void ed_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_message("warning", fmt, ap);
    va_end(ap);
}
