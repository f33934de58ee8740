/* `ensdistill upgrade RUN_DIR | FILE.h5`: brings checkpoints and run.h5 written before the
 * whole-file seal (format_version 1) to format_version 2, so that a run made before the seal
 * resumes, serves as a teacher and inspects as before. Per file, in this order:
 *   1. the seal decides: a sealed file is left as it is, a damaged one is refused;
 *   2. every dataset of the old file is read back (HDF5 checks its Fletcher32) before anything
 *      is written, and its format attributes must say ensdistill format_version 1;
 *   3. the new file is written beside it (NAME.h5.upgrade.tmp, run.upgrade.tmp.h5): the same
 *      objects (H5Ocopy: chunks, filters and checksums as they were) and root attributes,
 *      format_version 2, sealed;
 *   4. it is verified: its seal, every dataset read back and equal to the old one's, and the
 *      program's own reader (ckpt_info / runfile_read_results) takes it;
 *   5. only then is it renamed over the old file (atomic), and the directory fsynced.
 * The old file is untouched until step 5; a failure removes the new one. One line per file
 * says what was done. A RUN_DIR is locked (runlock.h) while it is upgraded. This is the only
 * code besides the data reader that lets HDF5 parse a file without its seal (step 2 does). */
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h"
#include "ensdistill/cli.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/h5file.h"
#include "ensdistill/runfile.h"
#include "ensdistill/runlock.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *upgrade_usage =
    "usage: ensdistill upgrade RUN_DIR | FILE.h5\n"
    "  brings checkpoints (models/*.h5, *.prev.h5) and run.h5 of format_version 1 (written\n"
    "  before the whole-file checksum) to format_version 2: every dataset is verified first,\n"
    "  the new file is written beside the old one and replaces it only once it verifies\n";

/* ---- copying ---- */

static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    H5Writer *w = data;
    if (strcmp(name, "format_version") == 0) return 0; /* written anew */
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, s = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    size_t esize = t >= 0 ? H5Tget_size(t) : 0;
    int rc = -1;
    if (n >= 0 && esize > 0) {
        void *buf = xcalloc((size_t)n + 1, esize);
        if (H5Aread(a, t, buf) >= 0) {
            hid_t b = H5Acreate2(w->file, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
            rc = b >= 0 && H5Awrite(b, t, buf) >= 0 ? 0 : -1;
            if (b >= 0) H5Aclose(b);
            if (H5Tdetect_class(t, H5T_VLEN) > 0 || H5Tis_variable_str(t) > 0)
                H5Dvlen_reclaim(t, s, H5P_DEFAULT, buf);
        }
        free(buf);
    }
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    if (rc < 0) h5w_fail(w, "copying attribute", name);
    return 0;
}

typedef struct {
    H5Writer *w;
    hid_t from;
} CopyCtx;

static herr_t copy_link(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    (void)group;
    CopyCtx *c = data;
    if (info->type != H5L_TYPE_HARD) h5w_fail(c->w, "copying (a root link that is not an object)", name);
    /* external links inside groups (run.h5's /models) are copied as links */
    if (H5Ocopy(c->from, name, c->w->file, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
        h5w_fail(c->w, "copying object", name);
    return 0;
}

/* ---- comparing the old file's datasets with the new one's ---- */

typedef struct {
    hid_t other;
    long count;
    char *err;
    size_t err_size;
} SameCtx;

/* Dataset name read whole from a and b in a's native type; 0 when equal. */
static int same_dataset(hid_t a, hid_t b, const char *name, char *err, size_t err_size) {
    hid_t da = H5Dopen2(a, name, H5P_DEFAULT), db = H5Dopen2(b, name, H5P_DEFAULT);
    int rc = -1;
    if (da >= 0 && db >= 0) {
        hid_t ft = H5Dget_type(da), s = H5Dget_space(da), sb = H5Dget_space(db);
        hid_t mt = H5Tget_native_type(ft, H5T_DIR_DEFAULT);
        hssize_t n = H5Sget_simple_extent_npoints(s);
        int vstr = H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0;
        if (n == H5Sget_simple_extent_npoints(sb) && n >= 0 && mt >= 0) {
            size_t bytes = (size_t)n * H5Tget_size(mt);
            char *x = xcalloc(bytes + 1, 1), *y = xcalloc(bytes + 1, 1);
            if (n == 0) {
                rc = 0;
            } else if (H5Dread(da, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0 &&
                       H5Dread(db, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0) {
                if (vstr) {
                    rc = 0;
                    for (hssize_t i = 0; i < n && rc == 0; i++) {
                        const char *p = ((char **)x)[i], *q = ((char **)y)[i];
                        rc = (p && q && strcmp(p, q) == 0) || (!p && !q) ? 0 : -1;
                    }
                    H5Dvlen_reclaim(mt, s, H5P_DEFAULT, x);
                    H5Dvlen_reclaim(mt, sb, H5P_DEFAULT, y);
                } else {
                    rc = memcmp(x, y, bytes) == 0 ? 0 : -1;
                }
            }
            free(x);
            free(y);
        }
        if (mt >= 0) H5Tclose(mt);
        H5Tclose(ft);
        H5Sclose(s);
        H5Sclose(sb);
    }
    if (da >= 0) H5Dclose(da);
    if (db >= 0) H5Dclose(db);
    if (rc < 0) snprintf(err, err_size, "dataset /%s differs in the new file", name);
    return rc;
}

static herr_t same_visit(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    SameCtx *c = data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        snprintf(c->err, c->err_size, "object /%s does not open", name);
        return -1;
    }
    int is_dataset = H5Iget_type(obj) == H5I_DATASET;
    H5Oclose(obj);
    if (!is_dataset) return 0;
    if (same_dataset(group, c->other, name, c->err, c->err_size) < 0) return -1;
    c->count++;
    return 0;
}

/* ---- one file ---- */

enum { UP_DONE, UP_UNCHANGED, UP_FAILED };

/* Reads format and format_version of the open file; 0 when it is an ensdistill checkpoint or
 * run.h5 of format_version 1 (*is_run says which). */
static int old_format(hid_t f, int *is_run, char *err, size_t err_size) {
    char format[64] = "";
    int64_t version = 0;
    if (h5r_attr_str(f, "format", format, sizeof(format)) < 0 ||
        h5r_attr_i64(f, "format_version", &version) < 0) {
        snprintf(err, err_size, "no readable format / format_version attributes: not an ensdistill "
                 "file");
        return -1;
    }
    *is_run = strcmp(format, RUNFILE_FORMAT) == 0;
    if ((!*is_run && strcmp(format, CKPT_FORMAT) != 0) || version != 1) {
        snprintf(err, err_size, "format '%s' version %lld, not an ensdistill checkpoint or run.h5 "
                 "of format_version 1", format, (long long)version);
        return -1;
    }
    return 0;
}

/* Writes tmp from the open old file: its objects and root attributes, format_version 2. */
static void write_new(hid_t old, const char *tmp, int is_run) {
    H5Writer w;
    h5w_create(&w, tmp, 0);
    if (H5Aiterate2(old, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &w) < 0)
        h5w_fail(&w, "copying", "the root attributes");
    h5w_attr_i64(&w, w.file, "format_version", is_run ? RUNFILE_FORMAT_VERSION : CKPT_FORMAT_VERSION);
    CopyCtx c = {&w, old};
    if (H5Literate(old, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_link, &c) < 0)
        h5w_fail(&w, "copying", "the objects");
    h5w_close(&w);
}

/* The new file as the program reads it, and dataset for dataset the old one's data. */
static int verify_new(hid_t old, const char *tmp, int is_run, long n_old, char *err,
                      size_t err_size) {
    long n_new = h5_verify_file(tmp, err, err_size);
    if (n_new < 0) return -1;
    if (n_new != n_old) {
        snprintf(err, err_size, "it has %ld datasets, the old file %ld", n_new, n_old);
        return -1;
    }
    hid_t f = h5u_open_sealed(tmp, err, err_size);
    if (f < 0) return -1;
    SameCtx c = {f, 0, err, err_size};
    herr_t rc = H5Lvisit(old, H5_INDEX_NAME, H5_ITER_INC, same_visit, &c);
    H5Fclose(f);
    if (rc < 0) return -1;
    if (is_run) {
        ResultRow *rows;
        int n_rows;
        if (runfile_read_results(tmp, &rows, &n_rows, err, err_size) != 0) return -1;
        free(rows);
    } else {
        CkptInfo info;
        if (ckpt_info(tmp, &info, err, err_size) != 0) return -1;
    }
    return 0;
}

static int upgrade_file(const char *path) {
    char why[1024], tmp[ED_PATH_MAX + 32];
    int seal = h5u_check_seal(path, why, sizeof(why));
    if (seal == 0) {
        printf("  %s: already sealed (format_version 2): unchanged\n", path);
        return UP_UNCHANGED;
    }
    if (seal < 0) {
        printf("  %s: NOT upgraded: %s\n", path, why);
        return UP_FAILED;
    }
    long n_old = h5_verify_unsealed(path, why, sizeof(why));
    if (n_old < 0) {
        printf("  %s: NOT upgraded, left as it is: %s\n", path, why);
        return UP_FAILED;
    }
    hid_t old = h5u_open_read(path);
    int is_run = 0;
    if (old < 0 || old_format(old, &is_run, why, sizeof(why)) != 0) {
        if (old >= 0) H5Fclose(old);
        else snprintf(why, sizeof(why), "not a readable HDF5 file");
        printf("  %s: NOT upgraded, left as it is: %s\n", path, why);
        return UP_FAILED;
    }
    /* beside the old file; a run.h5's name must end in .h5 for runfile_read_results */
    if (is_run)
        snprintf(tmp, sizeof(tmp), "%.*s.upgrade.tmp.h5", (int)strlen(path) - 3, path);
    else
        snprintf(tmp, sizeof(tmp), "%s.upgrade.tmp", path);
    write_new(old, tmp, is_run);
    int rc = verify_new(old, tmp, is_run, n_old, why, sizeof(why));
    H5Fclose(old);
    if (rc != 0) {
        unlink(tmp);
        printf("  %s: NOT upgraded, left as it is: the new file did not verify (%s)\n", path, why);
        return UP_FAILED;
    }
    fs_commit(tmp, path);
    printf("  %s: upgraded to format_version 2 (%s; %ld datasets verified by their Fletcher32 "
           "before, read back equal after; sealed)\n",
           path, is_run ? "run.h5" : "checkpoint", n_old);
    return UP_DONE;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every NAME.h5 of models/ (NAME.prev.h5 too), then run.h5; counts into n[UP_*]. */
static void upgrade_dir(const char *dir, int n[3]) {
    char models[ED_PATH_MAX], path[ED_PATH_MAX];
    fs_join(models, sizeof(models), dir, "models");
    DIR *d = opendir(models);
    char **names = NULL;
    int count = 0, cap = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!ends_with(e->d_name, ".h5")) continue;
        if (count == cap) names = xrealloc(names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof(char *));
        names[count++] = xstrdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(names, (size_t)count, sizeof(char *), by_name);
    for (int i = 0; i < count; i++) {
        fs_join(path, sizeof(path), models, names[i]);
        n[upgrade_file(path)]++;
        free(names[i]);
    }
    free(names);
    fs_join(path, sizeof(path), dir, "run.h5");
    if (fs_exists(path)) n[upgrade_file(path)]++;
}

int cmd_upgrade(int argc, char **argv) {
    if (argc == 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
        fputs(upgrade_usage, stdout);
        return 0;
    }
    if (argc != 1 || argv[0][0] == '-') {
        ed_error(argc ? "unexpected arguments" : "nothing to upgrade");
        fputs(upgrade_usage, stderr);
        return ED_EXIT_USER;
    }
    const char *target = argv[0];
    struct stat sb;
    if (stat(target, &sb) != 0) return ed_error("%s: %s", target, strerror(errno));
    h5u_quiet();
    int n[3] = {0, 0, 0};
    char err[2048];
    if (S_ISDIR(sb.st_mode)) {
        char runh5[ED_PATH_MAX], models[ED_PATH_MAX];
        fs_join(runh5, sizeof(runh5), target, "run.h5");
        fs_join(models, sizeof(models), target, "models");
        if (!fs_exists(runh5) && !fs_exists(models))
            return ed_error("%s is not a run directory (no models/ and no run.h5)", target);
        /* no run may write the directory meanwhile */
        if (runlock_acquire(target, err, sizeof(err)) != 0) return ed_error("%s", err);
        printf("upgrade %s\n", target);
        upgrade_dir(target, n);
    } else {
        printf("upgrade %s\n", target);
        n[upgrade_file(target)]++;
    }
    printf("%d file(s) upgraded, %d already sealed, %d not upgraded\n", n[UP_DONE],
           n[UP_UNCHANGED], n[UP_FAILED]);
    if (n[UP_FAILED])
        return ed_error("%d file(s) were not upgraded (see above); they are unchanged", n[UP_FAILED]);
    return 0;
}
