/* ensdistill: the executable. Initialises MPI, dispatches to a subcommand, finalises. */
#include "ensdistill/cli.h"
#include "ensdistill/error.h"
#include "ensdistill/signals.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: ensdistill <command> [args]\n"
    "  run CONFIG [--set key=value ...]   train members, form the teacher, train students,\n"
    "                                     write RUN_DIR/run.h5 (launch with mpirun -n R)\n"
    "  eval FILE.h5 [--config CONFIG]     evaluate a checkpoint on its (or the given) config's test set\n"
    "  inspect RUN_DIR|FILE.h5 [--tensors] summarise a run or a checkpoint (and list its tensors)\n"
    "  datagen CONFIG OUT.h5              write the config's data set as an HDF5 data file\n"
    "  upgrade RUN_DIR|FILE.h5            bring files of format_version 1 to the sealed format 2\n"
    "  bench MODEL [--batch B] [--threads T] [--steps N]\n"
    "                                     time forward+backward+update on random data\n"
    "  config docs | config check CONFIG [--set key=value ...]\n"
    "                                     print the key table / validate and print a config\n";

/* A launcher that speaks another MPI's protocol than this binary's (srun --mpi=none for Open
 * MPI, Open MPI's mpirun for an MPICH build, ...) starts N singletons: each a world of one that
 * would run the whole job by itself, all writing the same run directory. The launchers say how
 * many tasks they started; a world of one among several is refused. Returns 0 when fine. */
static int check_world(void) {
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 1) return 0;
    static const char *vars[] = {"SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                                 "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (!v || atol(v) <= 1) continue;
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len;
        MPI_Get_library_version(lib, &len);
        char *nl = strchr(lib, '\n');
        if (nl) *nl = '\0';
        return ed_error("the launcher started %s tasks (%s=%s), but this one is an MPI world of "
                        "1: the tasks did not join one world and each would run the whole job. "
                        "Launch with this binary's MPI (%s): srun --mpi=pmix for Open MPI, "
                        "--mpi=pmi2 for MPICH, or its own mpirun; jobs/common.sh chooses (README "
                        "\"What a site needs\")",
                        v, vars[i], v, lib);
    }
    return 0;
}

/* The subcommand argv[1]. */
static int dispatch(int argc, char **argv) {
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 2, argv + 2);
    if (strcmp(cmd, "datagen") == 0) return cmd_datagen(argc - 2, argv + 2);
    if (strcmp(cmd, "upgrade") == 0) return cmd_upgrade(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0) return cmd_config(argc - 2, argv + 2);
    int status = ed_error("unknown command '%s'", cmd);
    fputs(usage, stderr);
    return status;
}

int main(int argc, char **argv) {
    /* Every file is closed before the program ends, except one a failed write (disk full) had
     * to abandon: HDF5's clean-up at exit would flush that one again and crash inside HDF5. */
    H5dont_atexit();
    /* OpenMP threads compute; only the main thread calls MPI, between parallel regions */
    int provided;
#if defined(OPEN_MPI) && OMPI_MAJOR_VERSION < 5
    /* The job queue's window spans every node. Debian's Open MPI 4.1 excludes osc pt2pt and ucx
     * (/etc/openmpi/openmpi-mca-params.conf), which leaves osc rdma, and the TCP BTL carries no
     * RDMA: on two nodes over TCP MPI_Win_allocate failed with MPI_ERR_WIN (test cluster).
     * Allow pt2pt again, as upstream does; one node still takes sm. OMPI_MCA_osc set by the
     * user wins. */
    setenv("OMPI_MCA_osc", "^ucx", 0);
#endif
    /* run takes SIGTERM / SIGUSR1 as a stop request, from the start (a signal during start-up
     * must not kill a rank): blocked before MPI or OpenMP starts a thread, so that none of
     * theirs ever runs a handler (signals.c) */
    if (argc >= 2 && strcmp(argv[1], "run") == 0) signals_install();
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int status;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        status = argc < 2 ? ED_EXIT_USER : 0;
    } else {
        status = check_world();
        if (status == 0) status = dispatch(argc, argv);
    }
    MPI_Finalize();
    return status;
}
