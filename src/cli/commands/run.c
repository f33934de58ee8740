/* `ensdistill run CONFIG [--set key=value ...]`: the whole experiment on all ranks.
 * Rank 0 parses and validates the config and broadcasts it; every rank loads the data once;
 * the pipeline runs; a stop signal leaves every model checkpointed and exits 0. */
#include "ensdistill/affinity.h"
#include "ensdistill/alloc.h"
#include "ensdistill/cli.h"
#include "ensdistill/config.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/layout.h"
#include "ensdistill/pipeline.h"
#include "ensdistill/precision.h"
#include "ensdistill/progress.h"
#include "ensdistill/reuse.h"
#include "ensdistill/runlock.h"
#include "ensdistill/shared_data.h"
#include "ensdistill/signals.h"
#include "ensdistill/threads.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *run_usage =
    "usage: ensdistill run CONFIG [--set key=value ...]   (launch with mpirun -n R)\n"
    "  trains the members, forms the teacher, trains the students and writes RUN_DIR/run.h5\n"
    "  (RUN_DIR = checkpoint.dir); running the same command again resumes.\n"
    "  --set distill.teacher=OTHER_RUN_DIR reads the members and teacher of a finished run\n"
    "  instead of training them, and trains only the students (and the sum control)\n";

/* Rank 0 decides; every rank learns the verdict and its message, so all stop together. */
static int agree(int failed_on_root, const char *message) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_CHECK(MPI_Bcast(&failed_on_root, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (failed_on_root && rank == 0) ed_error("%s", message);
    return failed_on_root;
}

/* Collective: rank 0 prints how the data is held, one shared window per node, and a line per
 * node with its host name and how many ranks map that node's window. */
static void report_shared_data(const RunContext *ctx, const SharedData *sh) {
    typedef struct {
        int leader, ranks;
        char host[64];
    } NodeData;
    NodeData me = {.ranks = sh->ranks_on_node};
    int node_rank, world_size, host_len;
    char host[MPI_MAX_PROCESSOR_NAME];
    MPI_CHECK(MPI_Comm_rank(sh->node, &node_rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
    MPI_CHECK(MPI_Get_processor_name(host, &host_len));
    me.leader = node_rank == 0; /* the rank that loaded the node's copy into its window */
    snprintf(me.host, sizeof(me.host), "%.63s", host);
    int root = ctx->lo->world_rank == 0;
    NodeData *all = root ? xcalloc((size_t)world_size, sizeof(NodeData)) : NULL;
    MPI_CHECK(MPI_Gather(&me, (int)sizeof(me), MPI_BYTE, all, (int)sizeof(me), MPI_BYTE, 0,
                         MPI_COMM_WORLD));
    if (!root) return;
    int windows = 0;
    for (int r = 0; r < world_size; r++)
        windows += all[r].leader;
    progress_say(ctx,
                 "data: %.1f MiB once per node in shared memory, %d window(s) on %d node(s) "
                 "(%.1f MiB if each of the %d rank(s) loaded its own)\n",
                 sh->bytes / 1048576.0, windows, windows,
                 sh->bytes * (double)world_size / 1048576.0, world_size);
    for (int r = 0; r < world_size; r++)
        if (all[r].leader)
            progress_say(ctx,
                         "data on %s: loaded once by rank %d, mapped by the node's %d rank(s)\n",
                         all[r].host, r, all[r].ranks);
    free(all);
}

/* 1 if RUN_DIR holds anything a run wrote besides config.yaml: a model file or run.h5. */
static int holds_results(const char *run_dir) {
    char path[ED_PATH_MAX];
    snprintf(path, sizeof(path), "%.4000s/run.h5", run_dir);
    if (access(path, F_OK) == 0) return 1;
    snprintf(path, sizeof(path), "%.4000s/models", run_dir);
    DIR *d = opendir(path);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        found = n > 3 && strcmp(e->d_name + n - 3, ".h5") == 0;
    }
    if (d) closedir(d);
    return found;
}

/* Rank 0, before the data loads: an existing RUN_DIR/config.yaml must describe the same
 * experiment (config_first_difference: the parallel and checkpoint sections may change, and the
 * same directory may be spelt differently), or resuming would mix two runs. A directory that
 * holds no model yet takes the new config. */
static int check_run_dir(const Config *cfg, char *err, size_t size) {
    /* Room for the longest file name the run writes below it, models/NAME.prev.h5 */
    char path[ED_PATH_MAX];
    const int room = ED_PATH_MAX - 64;
    if (strlen(cfg->checkpoint.dir) > (size_t)room) {
        snprintf(err, size, "checkpoint.dir is longer than %d characters", room);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/config.yaml", cfg->checkpoint.dir);
    char *old = fs_read_text(path);
    if (!old || !holds_results(cfg->checkpoint.dir)) {
        free(old);
        return 0;
    }
    Config prev;
    char perr[1024], key[128], was[600], now[600];
    int rc = 0;
    if (config_load_text(&prev, old, path, perr, sizeof(perr)) != 0) {
        snprintf(err, size,
                 "%.1100s does not load (%.600s): restore it, or set checkpoint.dir to a new "
                 "directory",
                 path, perr);
        rc = -1;
    } else if (config_first_difference(&prev, cfg, NULL, key, sizeof(key), was, now, sizeof(was))) {
        snprintf(err, size,
                 "%.1100s holds a run of another config: %s is %.200s there (config.yaml) but "
                 "%.200s here. Resume it with its config, or set checkpoint.dir to a new "
                 "directory",
                 cfg->checkpoint.dir, key, was, now);
        rc = -1;
    }
    free(old);
    return rc;
}

/* Writes text to RUN_DIR/name through name.tmp (fsync, rename). 0, or -1 with err. */
static int write_text(const Config *cfg, const char *name, const char *text, char *err,
                      size_t size) {
    char path[ED_PATH_MAX], tmp[ED_PATH_MAX];
    snprintf(path, sizeof(path), "%.4000s/%.40s", cfg->checkpoint.dir, name);
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) ED_DIE("dir was checked");
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        snprintf(err, size, "cannot write %.1024s: %s", tmp, strerror(errno));
        return -1;
    }
    fs_commit(tmp, path);
    return 0;
}

/* Rank 0, once the data has loaded (a start that fails before leaves nothing behind): creates
 * RUN_DIR/models and writes RUN_DIR/config.yaml, the resolved config, and
 * RUN_DIR/data.fingerprint, what the data was (data_fingerprint). */
static int write_run_dir(const Config *cfg, const char *config_text, const char *fingerprint,
                         char *err, size_t size) {
    char path[ED_PATH_MAX], line[1100];
    snprintf(path, sizeof(path), "%s/models", cfg->checkpoint.dir);
    fs_mkdirs(path);
    snprintf(line, sizeof(line), "%s\n", fingerprint);
    return write_text(cfg, "config.yaml", config_text, err, size) != 0 ||
                   write_text(cfg, "data.fingerprint", line, err, size) != 0
               ? -1
               : 0;
}

/* Rank 0, once the data has loaded: a RUN_DIR that holds models continues only on the data it
 * was trained on. RUN_DIR/data.fingerprint (written at its first start) must match the data
 * loaded now: a data file edited in place between a stop and its resume, or other data brought
 * in with --set, is refused, naming the data and what changed. A directory made before the
 * fingerprint was kept there has nothing to compare with (it is written now). */
static int check_run_data(const Config *cfg, const char *fingerprint, char *err, size_t size) {
    char path[ED_PATH_MAX], why[1024];
    snprintf(path, sizeof(path), "%s/data.fingerprint", cfg->checkpoint.dir);
    char *stored = fs_read_text(path);
    int rc = 0;
    if (stored && holds_results(cfg->checkpoint.dir)) {
        stored[strcspn(stored, "\n")] = 0;
        if (data_fingerprint_diff(fingerprint, stored, why, sizeof(why))) {
            const DataConfig *d = &cfg->data;
            char data[ED_PATH_MAX + 64];
            if (d->source == SOURCE_MULTIVIEW || d->source == SOURCE_TOY2)
                snprintf(data, sizeof(data), "the %s generator", config_source_names[d->source]);
            else
                snprintf(data, sizeof(data), "data.path %s (%s)", d->path[0] ? d->path : "default",
                         config_source_names[d->source]);
            snprintf(err, size,
                     "%.300s holds models trained on other data than %.400s gives now: "
                     "%.700s (%.300s records what they were trained on). Resume with that "
                     "data, or set checkpoint.dir to a new directory",
                     cfg->checkpoint.dir, data, why, path);
            rc = -1;
        }
    }
    free(stored);
    return rc;
}

/* Rank 0 keeps every model's test logits for the results, [N_test, K] floats each: refuse a
 * run that could not hold them before training anything. */
static int check_room(const Config *cfg, const DataSplit *data, char *err, size_t size) {
    const DistillConfig *dc = &cfg->distill;
    double models = cfg->ensemble.members * (dc->codistilled ? 2.0 : 1.0) + 1.0 +
                    2.0 * dc->seeds * dc->n_temperature * dc->n_alpha * dc->n_lr;
    double bytes = models * data->test.N * data->test.K * sizeof(float) +
                   3.0 * data->train.N * data->train.K * sizeof(double);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if (have <= 0 || bytes <= have / 2) return 0;
    snprintf(err, size,
             "ensemble.members %d and distill.seeds %d: rank 0 would hold %.1f GiB of logits "
             "(%d test samples x %d classes per model), more than half of this machine's %.1f "
             "GiB: lower them, or data.test_limit",
             cfg->ensemble.members, cfg->distill.seeds, bytes / 1073741824.0, data->test.N,
             data->test.K, have / 1073741824.0);
    return -1;
}

enum { RUN_ARGS_OK, RUN_ARGS_HELP, RUN_ARGS_BAD };
/* The command line: CONFIG into *config_path, the --set values into sets[*n_sets]. Returns
 * RUN_ARGS_OK, RUN_ARGS_HELP (-h), or RUN_ARGS_BAD with the message in err. */
static int parse_run_args(int argc, char **argv, const char **config_path, char **sets,
                          int *n_sets, char *err, size_t err_size) {
    int bad_args = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return RUN_ARGS_HELP;
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
            sets[(*n_sets)++] = argv[++i];
        else if (strncmp(argv[i], "--set=", 6) == 0)
            sets[(*n_sets)++] = argv[i] + 6;
        else if (argv[i][0] != '-' && !*config_path)
            *config_path = argv[i];
        else {
            snprintf(err, err_size, "unexpected argument '%s'\n%s", argv[i], run_usage);
            bad_args = 1;
        }
    }
    if (!*config_path && !bad_args) {
        snprintf(err, err_size, "no config given\n%s", run_usage);
        bad_args = 1;
    }
    return bad_args ? RUN_ARGS_BAD : RUN_ARGS_OK;
}

/* distill.teacher (collective; nothing without it): the finished run's absolute path into
 * ctx->teacher_dir on every rank, its run.h5 checked and read into t on rank 0
 * (ctx->teacher_run), before any work. Returns 0, or -1 on every rank when rank 0 refused it
 * (the message printed). */
static int attach_teacher(RunContext *ctx, TeacherRun *t, char *err, size_t err_size) {
    const Config *cfg = ctx->cfg;
    if (!cfg->distill.teacher[0]) return 0;
    int failed = 0;
    if (ctx->lo->world_rank == 0) {
        if (fs_realpath(cfg->distill.teacher, ctx->teacher_dir) != 0) {
            snprintf(err, err_size, "distill.teacher: %.1024s: %s", cfg->distill.teacher,
                     strerror(errno));
            failed = 1;
        } else {
            failed = reuse_check(ctx, t, err, err_size) != 0;
        }
    }
    if (agree(failed, err)) return -1;
    MPI_CHECK(MPI_Bcast(ctx->teacher_dir, (int)sizeof(ctx->teacher_dir), MPI_CHAR, 0,
                        MPI_COMM_WORLD));
    if (ctx->lo->world_rank == 0) ctx->teacher_run = t;
    progress_say(ctx,
                 "members and teacher from the finished run %s (read and verified, not "
                 "trained)\n",
                 ctx->teacher_dir);
    return 0;
}

int cmd_run(int argc, char **argv) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *config_path = NULL;
    char **sets = xcalloc((size_t)argc + 1, sizeof(char *));
    int n_sets = 0;
    char err[2048] = "";
    int args = parse_run_args(argc, argv, &config_path, sets, &n_sets, err, sizeof(err));
    if (args == RUN_ARGS_HELP && rank == 0) fputs(run_usage, stdout);
    if (args == RUN_ARGS_HELP || agree(args == RUN_ARGS_BAD, err)) {
        free(sets);
        return args == RUN_ARGS_HELP ? 0 : ED_EXIT_USER;
    }

    Config cfg;
    int failed = 0;
    if (rank == 0) failed = config_load(&cfg, config_path, n_sets, sets, err, sizeof(err)) != 0;
    free(sets);
    if (agree(failed, err)) return ED_EXIT_USER;
    MPI_CHECK(MPI_Bcast(&cfg, (int)sizeof(cfg), MPI_BYTE, 0, MPI_COMM_WORLD));
    char *config_text = config_to_yaml(&cfg);
    /* train.precision on every rank's CPU, before anything is read or written; the lowest
     * rank that cannot run it says why */
    failed = precision_check(cfg.train.precision, cfg.model.arch, err, sizeof(err)) != 0;
    int first_failed = failed ? rank : INT_MAX;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &first_failed, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (first_failed != INT_MAX) {
        if (rank == first_failed) ed_error("%s", err);
        free(config_text);
        return ED_EXIT_USER;
    }
    if (rank == 0 && cfg.train.precision == PRECISION_BF16)
        printf("train.precision: %s\n", precision_describe(cfg.train.precision));

    Layout lo;
    failed = layout_create(&lo, cfg.parallel.ranks_per_model, cfg.parallel.threads, err,
                           sizeof(err)) != 0;
    if (failed) {
        if (rank == 0) ed_error("%s", err);
        free(config_text);
        return ED_EXIT_USER;
    }
    threads_set(lo.threads); /* OpenMP and OpenBLAS: one thread count for every kernel */
    affinity_report(&lo);
    /* One run per RUN_DIR: rank 0 holds its lock until it exits (runlock.h), taken before
     * anything of the directory is read. */
    if (rank == 0)
        failed = runlock_acquire(cfg.checkpoint.dir, err, sizeof(err)) != 0 ||
                 check_run_dir(&cfg, err, sizeof(err)) != 0;
    if (agree(failed, err)) {
        layout_free(&lo);
        free(config_text);
        return ED_EXIT_USER;
    }

    RunContext ctx = {.cfg = &cfg, .config_text = config_text, .lo = &lo};
    snprintf(ctx.run_dir, sizeof(ctx.run_dir), "%s", cfg.checkpoint.dir);
    double t0 = MPI_Wtime();
    DataSplit data;
    SharedData shared;
    data_load_shared(&data, &cfg.data, &shared);
    ctx.data = &data;
    progress_say(&ctx, "%s: %s train %d, test %d, %dx%dx%d, %d classes; run dir %s\n", cfg.name,
                 config_source_names[cfg.data.source], data.train.N, data.test.N, data.train.C,
                 data.train.H, data.train.W, data.train.K, ctx.run_dir);
    report_shared_data(&ctx, &shared);

    if (rank == 0) {
        data_fingerprint(&data, &cfg.data, ctx.data_fingerprint, sizeof(ctx.data_fingerprint));
        failed = check_room(&cfg, &data, err, sizeof(err)) != 0 ||
                 check_run_data(&cfg, ctx.data_fingerprint, err, sizeof(err)) != 0 ||
                 write_run_dir(&cfg, config_text, ctx.data_fingerprint, err, sizeof(err)) != 0;
    }
    if (agree(failed, err)) {
        data_free_shared(&data, &shared);
        layout_free(&lo);
        free(config_text);
        return ED_EXIT_USER;
    }

    /* distill.teacher: the members and teacher of a finished run, checked before any work */
    TeacherRun teacher_run;
    memset(&teacher_run, 0, sizeof(teacher_run));
    if (attach_teacher(&ctx, &teacher_run, err, sizeof(err)) != 0) {
        data_free_shared(&data, &shared);
        layout_free(&lo);
        free(config_text);
        return ED_EXIT_USER;
    }

    int status = pipeline_run(&ctx);
    if (status == JOB_STOPPED)
        progress_say(&ctx, "checkpointed; run again to resume\n");
    else
        progress_say(&ctx, "done in %.1f s\n", MPI_Wtime() - t0);
    layout_wait_all(MPI_COMM_WORLD); /* the others sleep while rank 0 writes the results */

    teacher_run_free(&teacher_run);
    data_free_shared(&data, &shared);
    layout_free(&lo);
    free(config_text);
    return 0;
}
