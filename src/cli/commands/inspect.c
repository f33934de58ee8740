/* `ensdistill inspect RUN_DIR | FILE.h5 [--tensors]`: a readable summary of a run directory
 * (every model file: role, index, epochs, complete or not, accuracies, size, checksum status;
 * then run.h5) or of one file (checkpoint or run.h5). Exit 2 when anything is missing or damaged.
 */
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h"
#include "ensdistill/cli.h"
#include "ensdistill/describe.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/h5file.h"
#include "ensdistill/runfile.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *inspect_usage =
    "usage: ensdistill inspect RUN_DIR | FILE.h5 [--tensors]\n"
    "  RUN_DIR   every model checkpoint (epochs, accuracy, size, checksums) and run.h5\n"
    "  FILE.h5   one checkpoint (attributes, tensors, history) or one run.h5\n"
    "  --tensors with RUN_DIR: also list the tensors of every model file\n";

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Order of roles in a run, then index. */
static int role_rank(const char *name) {
    static const char *const roles[4] = {"member-", "kd-", "self-", "sum-"};
    for (int i = 0; i < 4; i++)
        if (strncmp(name, roles[i], strlen(roles[i])) == 0) return i;
    return 4;
}

static int compare_names(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int rx = role_rank(x), ry = role_rank(y);
    return rx != ry ? rx - ry : strcmp(x, y);
}

static int inspect_file(const char *path) {
    char format[64], why[512];
    /* the seal first: HDF5 parses nothing of a damaged file */
    int rc = h5_file_format(path, format, sizeof(format), why, sizeof(why));
    if (rc < 0) return ed_error("%s: %s", path, why);
    if (rc == 0 && strcmp(format, CKPT_FORMAT) == 0) {
        if (ckpt_describe(path, stdout, 1) == 0) return 0;
    } else if (rc == 0 && strcmp(format, RUNFILE_FORMAT) == 0) {
        if (runfile_describe(path, stdout) == 0) return 0;
    } else {
        return ed_error("%s is not an ensdistill file (format attribute %s%s%s)", path,
                        rc ? "missing" : "'", rc ? "" : format, rc ? "" : "'");
    }
    fflush(stdout);
    return ed_error("%s is damaged or incomplete (see above)", path);
}

static int inspect_dir(const char *dir, int show_tensors) {
    char models[ED_PATH_MAX], runh5[ED_PATH_MAX], cfg[ED_PATH_MAX];
    fs_join(models, sizeof(models), dir, "models");
    fs_join(runh5, sizeof(runh5), dir, "run.h5");
    fs_join(cfg, sizeof(cfg), dir, "config.yaml");
    struct stat sb;
    int have_models = stat(models, &sb) == 0 && S_ISDIR(sb.st_mode);
    int have_run = stat(runh5, &sb) == 0;
    if (!have_models && !have_run) {
        return ed_error("%s is not a run directory (no models/ and no run.h5)", dir);
    }
    printf("run directory %s%s\n", dir, stat(cfg, &sb) == 0 ? "  (config.yaml present)" : "");

    /* the model files, in role order */
    char **names = NULL;
    int n = 0, cap = 0;
    DIR *d = have_models ? opendir(models) : NULL;
    if (have_models && !d) {
        return ed_error("cannot list %s", models);
    }
    for (struct dirent *e; d && (e = readdir(d));) {
        if (ends_with(e->d_name, ".prev.h5") || ends_with(e->d_name, ".h5.tmp")) {
            printf("  note: %s/%s is left from an interrupted write (the next checkpoint removes "
                   "it)\n",
                   models, e->d_name);
            continue;
        }
        if (!ends_with(e->d_name, ".h5")) continue;
        if (n == cap) names = xrealloc(names, (size_t)(cap = cap ? 2 * cap : 32) * sizeof(char *));
        names[n++] = xstrdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, (size_t)n, sizeof(char *), compare_names);

    int damaged = 0, complete = 0;
    long long total = 0;
    if (n) {
        printf("\n  %-12s %-7s %5s %9s %-10s %9s %9s %10s  %s\n", "model", "role", "index",
               "epochs", "state", "train acc", "test acc", "size", "checksums");
    }
    for (int i = 0; i < n; i++) {
        char path[ED_PATH_MAX], err[512], size[32];
        fs_join(path, sizeof(path), models, names[i]);
        char stem[256];
        snprintf(stem, sizeof(stem), "%.*s", (int)(strlen(names[i]) - 3), names[i]);
        struct stat fs;
        long long bytes = stat(path, &fs) == 0 ? (long long)fs.st_size : -1;
        total += bytes > 0 ? bytes : 0;
        CkptInfo info;
        if (ckpt_info(path, &info, err, sizeof(err)) != 0) {
            printf("  %-12s %-58s %10s  FAILED: %s\n", stem, "",
                   io_human_size(size, sizeof(size), bytes), err);
            damaged++;
            continue;
        }
        long nds = h5_verify_file(path, err, sizeof(err));
        char epochs[32];
        snprintf(epochs, sizeof(epochs), "%d/%d", info.epoch, info.epochs_total);
        printf("  %-12s %-7s %5d %9s %-10s ", stem, info.role, info.index, epochs,
               info.complete ? "complete" : "partial");
        io_print_percent(stdout, info.last_train_acc);
        putchar(' ');
        io_print_percent(stdout, info.last_test_acc);
        printf(" %10s  ", io_human_size(size, sizeof(size), bytes));
        if (nds >= 0)
            printf("ok (%ld datasets)\n", nds);
        else {
            printf("FAILED: %s\n", err);
            damaged++;
        }
        complete += info.complete != 0;
    }
    if (n) {
        char size[32];
        printf("  %d model file(s), %d complete, %s in all\n", n, complete,
               io_human_size(size, sizeof(size), total));
    }
    if (show_tensors)
        for (int i = 0; i < n; i++) {
            char path[ED_PATH_MAX];
            fs_join(path, sizeof(path), models, names[i]);
            putchar('\n');
            ckpt_describe(path, stdout, 1); /* damage was counted above */
        }
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);

    if (have_run) {
        putchar('\n');
        if (runfile_describe(runh5, stdout) != 0) damaged++;
    } else {
        printf("\n  no run.h5 yet: the run has not reached its results phase\n");
    }
    if (damaged) {
        fflush(stdout);
        return ed_error("%d file(s) in %s are damaged, unreadable or missing (see above)", damaged,
                        dir);
    }
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    const char *target = NULL;
    int show_tensors = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--tensors") == 0)
            show_tensors = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(inspect_usage, stdout);
            return 0;
        } else if (argv[i][0] != '-' && !target)
            target = argv[i];
        else {
            ed_error("unexpected argument '%s'", argv[i]);
            fputs(inspect_usage, stderr);
            return ED_EXIT_USER;
        }
    }
    if (!target) {
        ed_error("nothing to inspect");
        fputs(inspect_usage, stderr);
        return ED_EXIT_USER;
    }
    struct stat sb;
    if (stat(target, &sb) != 0) {
        return ed_error("%s: no such file or directory", target);
    }
    return S_ISDIR(sb.st_mode) ? inspect_dir(target, show_tensors) : inspect_file(target);
}
