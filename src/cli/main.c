/* ensdistill: the executable. Initialises MPI, dispatches to a subcommand, finalises. */
#include "ensdistill/cli.h"
#include "ensdistill/error.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

static const char *usage =
    "usage: ensdistill <command> [args]\n"
    "  run CONFIG [--set key=value ...]   train members, form the teacher, train students,\n"
    "                                     write RUN_DIR/run.h5 (launch with mpirun -n R)\n"
    "  eval FILE.h5 [--config CONFIG]     evaluate a checkpoint on its (or the given) config's test set\n"
    "  inspect RUN_DIR|FILE.h5 [--tensors] summarise a run or a checkpoint (and list its tensors)\n"
    "  datagen CONFIG OUT.h5              write the config's data set as an HDF5 data file\n"
    "  bench MODEL [--batch B] [--threads T] [--steps N]\n"
    "                                     time forward+backward+update on random data\n"
    "  config docs | config check CONFIG [--set key=value ...]\n"
    "                                     print the key table / validate and print a config\n";

int main(int argc, char **argv) {
    /* Every file is closed before the program ends, except one a failed write (disk full) had
     * to abandon: HDF5's clean-up at exit would flush that one again and crash inside HDF5. */
    H5dont_atexit();
    /* OpenMP threads compute; only the main thread calls MPI, between parallel regions */
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int status;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        status = argc < 2 ? ED_EXIT_USER : 0;
    } else if (strcmp(argv[1], "run") == 0) {
        status = cmd_run(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "eval") == 0) {
        status = cmd_eval(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "inspect") == 0) {
        status = cmd_inspect(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "datagen") == 0) {
        status = cmd_datagen(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "bench") == 0) {
        status = cmd_bench(argc - 2, argv + 2);
    } else if (strcmp(argv[1], "config") == 0) {
        status = cmd_config(argc - 2, argv + 2);
    } else {
        status = ed_error("unknown command '%s'", argv[1]);
        fputs(usage, stderr);
    }
    MPI_Finalize();
    return status;
}
