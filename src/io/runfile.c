/* The run summary file RUN_DIR/run.h5 (teacher logits, results table, external links to every
 * model file, the config) and the per-epoch metrics log RUN_DIR/metrics.jsonl (see runfile.h). */
#include "ensdistill/runfile.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/h5file.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* The memory layout of ResultRow as an HDF5 compound (fixed-length strings). */
static hid_t result_row_type(void) {
    hid_t name_t = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(name_t, sizeof(((ResultRow *)0)->name)));
    hid_t role_t = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(role_t, sizeof(((ResultRow *)0)->role)));
    hid_t t = H5_CHECK(H5Tcreate(H5T_COMPOUND, sizeof(ResultRow)));
    H5_CHECK(H5Tinsert(t, "name", offsetof(ResultRow, name), name_t));
    H5_CHECK(H5Tinsert(t, "role", offsetof(ResultRow, role), role_t));
    H5_CHECK(H5Tinsert(t, "n_models", offsetof(ResultRow, n_models), H5T_NATIVE_INT));
    H5_CHECK(H5Tinsert(t, "test_acc", offsetof(ResultRow, test_acc), H5T_NATIVE_DOUBLE));
    H5_CHECK(H5Tinsert(t, "nll", offsetof(ResultRow, nll), H5T_NATIVE_DOUBLE));
    H5_CHECK(H5Tinsert(t, "ece", offsetof(ResultRow, ece), H5T_NATIVE_DOUBLE));
    H5_CHECK(H5Tinsert(t, "acc_multi", offsetof(ResultRow, acc_multi), H5T_NATIVE_DOUBLE));
    H5_CHECK(H5Tinsert(t, "acc_single", offsetof(ResultRow, acc_single), H5T_NATIVE_DOUBLE));
    H5_CHECK(H5Tinsert(t, "acc_std", offsetof(ResultRow, acc_std), H5T_NATIVE_DOUBLE));
    H5Tclose(name_t);
    H5Tclose(role_t);
    return t;
}

/* A 1-D array of variable-length UTF-8 strings (contiguous: filters do not apply to them). */
static void write_string_column(H5Writer *w, hid_t loc, const char *name, const char **values,
                                int n) {
    hid_t t = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(t, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8));
    hsize_t dim = (hsize_t)n;
    hid_t s = H5_CHECK(H5Screate_simple(1, &dim, NULL));
    hid_t ds = H5Dcreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds < 0 || (n > 0 && H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0))
        h5w_fail(w, "dataset", name);
    H5Dclose(ds);
    H5Sclose(s);
    H5Tclose(t);
}

static void run_path(char *out, size_t size, const char *run_dir_or_file) {
    size_t n = strlen(run_dir_or_file);
    if (n > 3 && strcmp(run_dir_or_file + n - 3, ".h5") == 0)
        snprintf(out, size, "%s", run_dir_or_file);
    else
        snprintf(out, size, "%s/run.h5", run_dir_or_file);
}

int runfile_write(const char *run_dir, const RunSummary *s) {
    const char *config_text = s->config_text;
    const char *const *model_names = s->model_names;
    const int n_models = s->n_models, n_train = s->n_train, n_test = s->n_test, K = s->K;
    const int n_rows = s->n_rows, L = s->L;
    const ResultRow *rows = s->rows;
    ED_CHECK(run_dir && n_models >= 0 && n_rows >= 0 && L >= 0, "bad arguments");
    h5u_quiet();
    fs_mkdirs(run_dir);
    char path[ED_PATH_MAX], tmp[ED_PATH_MAX];
    run_path(path, sizeof(path), run_dir);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        ed_fail("run directory name too long: %s", run_dir);
    H5Writer w;
    h5w_create(&w, tmp, 0);
    hid_t root = w.file;
    char now[32];
    fs_utc_now(now, sizeof(now));
    h5w_attr_str(&w, root, "format", RUNFILE_FORMAT);
    h5w_attr_i64(&w, root, "format_version", RUNFILE_FORMAT_VERSION);
    h5w_attr_str(&w, root, "code_revision", ED_GIT_REV);
    h5w_attr_str(&w, root, "compiler", ED_COMPILER);
    h5w_attr_str(&w, root, "written_at", now);
    h5w_attr_str(&w, root, "config", config_text ? config_text : "");
    h5w_attr_i64(&w, root, "num_classes", K);
    if (s->data_fingerprint) h5w_attr_str(&w, root, "data_fingerprint", s->data_fingerprint);
    if (s->teacher_run) {
        h5w_attr_str(&w, root, "teacher_run", s->teacher_run);
        h5w_attr_str(&w, root, "teacher_run_revision",
                     s->teacher_run_revision ? s->teacher_run_revision : "");
    }
    h5w_string_dataset(&w, root, "config", config_text ? config_text : "");

    /* teacher */
    hid_t g = h5w_group(&w, root, "teacher");
    if (s->teacher_train) {
        hsize_t dims[2] = {(hsize_t)n_train, (hsize_t)K};
        h5w_dataset(&w, g, "train_logits", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims,
                    s->teacher_train);
    }
    if (s->teacher_test) {
        hsize_t dims[2] = {(hsize_t)n_test, (hsize_t)K};
        h5w_dataset(&w, g, "test_logits", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims,
                    s->teacher_test);
    }
    H5Gclose(g);

    /* the test labels (and multi-view tags) the metrics were computed against */
    g = h5w_group(&w, root, "data");
    hsize_t nt = (hsize_t)n_test;
    if (s->test_labels)
        h5w_dataset(&w, g, "test_labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &nt, s->test_labels);
    if (s->test_tags)
        h5w_dataset(&w, g, "test_tags", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &nt, s->test_tags);
    H5Gclose(g);

    /* results: one compound table, and the same as one array per column */
    g = h5w_group(&w, root, "results");
    hid_t mt = result_row_type();
    hid_t ft = H5_CHECK(H5Tcopy(mt));
    H5_CHECK(H5Tpack(ft));
    hsize_t nr = (hsize_t)n_rows;
    h5w_dataset(&w, g, "table", ft, mt, 1, &nr, rows);
    H5Tclose(ft);
    H5Tclose(mt);
    const char **names = xcalloc((size_t)n_rows + 1, sizeof(char *));
    const char **roles = xcalloc((size_t)n_rows + 1, sizeof(char *));
    int64_t *counts = xcalloc((size_t)n_rows + 1, sizeof(int64_t));
    double *col = xcalloc((size_t)n_rows + 1, sizeof(double));
    for (int i = 0; i < n_rows; i++) {
        names[i] = rows[i].name;
        roles[i] = rows[i].role;
        counts[i] = rows[i].n_models;
    }
    write_string_column(&w, g, "name", names, n_rows);
    write_string_column(&w, g, "role", roles, n_rows);
    h5w_dataset(&w, g, "n_models", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &nr, counts);
    static const char *const columns[6] = {"test_acc",  "nll",        "ece",
                                           "acc_multi", "acc_single", "acc_std"};
    for (int k = 0; k < 6; k++) {
        for (int i = 0; i < n_rows; i++) {
            const ResultRow *r = &rows[i];
            double v[6] = {r->test_acc, r->nll, r->ece, r->acc_multi, r->acc_single, r->acc_std};
            col[i] = v[k];
        }
        h5w_dataset(&w, g, columns[k], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &nr, col);
    }
    hsize_t nl = (hsize_t)L;
    if (s->ensemble_size_acc)
        h5w_dataset(&w, g, "ensemble_size_acc", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &nl,
                    s->ensemble_size_acc);
    h5w_attr_f64(&w, g, "disagreement", s->disagreement);
    if (s->codistill_disagreement == s->codistill_disagreement) /* not NaN: co-distilled members */
        h5w_attr_f64(&w, g, "codistill_disagreement", s->codistill_disagreement);
    h5w_attr_str(&w, g, "columns",
                 "name, role, n_models, test_acc, nll, ece, acc_multi, acc_single, acc_std "
                 "(accuracies are fractions; NaN where not applicable)");
    H5Gclose(g);
    free(names);
    free(roles);
    free(counts);
    free(col);

    /* models: external links, relative to run.h5 (or where model_files says) */
    g = h5w_group(&w, root, "models");
    for (int i = 0; i < n_models; i++) {
        char target[ED_PATH_MAX];
        if (s->model_files && s->model_files[i])
            snprintf(target, sizeof(target), "%s", s->model_files[i]);
        else
            snprintf(target, sizeof(target), "models/%s.h5", model_names[i]);
        if (H5Lcreate_external(target, "/", g, model_names[i], H5P_DEFAULT, H5P_DEFAULT) < 0)
            h5w_fail(&w, "external link", model_names[i]);
    }
    H5Gclose(g);
    h5w_close(&w);
    char err[512];
    if (h5_verify_file(tmp, err, sizeof(err)) < 0)
        ed_fail("%s did not verify after writing: %s", tmp, err);
    fs_commit(tmp, path);
    return 0;
}

int runfile_read_results(const char *run_dir_or_file, ResultRow **rows, int *n_rows, char *err,
                         size_t err_size) {
    char dummy[8];
    if (!err) {
        err = dummy;
        err_size = sizeof(dummy);
    }
    err[0] = 0;
    *rows = NULL;
    *n_rows = 0;
    char path[ED_PATH_MAX];
    run_path(path, sizeof(path), run_dir_or_file);
    if (!fs_exists(path)) {
        snprintf(err, err_size, "no such file");
        return 1;
    }
    hid_t f = h5u_open_sealed(path, err, err_size);
    if (f < 0) return -1;
    char format[64] = "";
    int ndim, rc = 0;
    hsize_t dims[8];
    if (h5r_attr_str(f, "format", format, sizeof(format)) < 0 ||
        strcmp(format, RUNFILE_FORMAT) != 0) {
        snprintf(err, err_size, "attribute format is not '%s'", RUNFILE_FORMAT);
        rc = -1;
    } else if (h5r_dims(f, "results/table", &ndim, dims, 8) < 0 || ndim != 1) {
        snprintf(err, err_size, "/results/table is missing or unreadable");
        rc = -1;
    } else {
        int n = (int)dims[0];
        ResultRow *r = xcalloc((size_t)n + 1, sizeof(ResultRow));
        hid_t mt = result_row_type();
        if (h5r_read(f, "results/table", mt, r) < 0) {
            snprintf(err, err_size, "/results/table does not read (checksum or truncation)");
            free(r);
            rc = -1;
        } else {
            for (int i = 0; i < n; i++) {
                r[i].name[sizeof(r[i].name) - 1] = 0;
                r[i].role[sizeof(r[i].role) - 1] = 0;
            }
            *rows = r;
            *n_rows = n;
        }
        H5Tclose(mt);
    }
    H5Fclose(f);
    return rc;
}

static void json_number(FILE *fp, const char *key, double v) {
    if (isfinite(v))
        fprintf(fp, ",\"%s\":%.9g", key, v);
    else
        fprintf(fp, ",\"%s\":null", key);
}

void runfile_append_metrics(const char *run_dir, const char *role, int index,
                            const EpochRecord *rec) {
    fs_mkdirs(run_dir);
    char path[ED_PATH_MAX], name[64];
    snprintf(path, sizeof(path), "%s/metrics.jsonl", run_dir);
    FILE *fp = fopen(path, "a");
    if (!fp) ed_fail("cannot open %s for appending", path);
    fprintf(fp, "{\"model\":\"%s\",\"role\":\"%s\",\"index\":%d,\"%s\":%d",
            ckpt_model_name(name, sizeof(name), role, index), role, index, ckpt_history_names[HISTORY_EPOCH],
            rec->epoch);
    for (int k = HISTORY_EPOCH + 1; k < CKPT_HISTORY_COLUMNS; k++)
        json_number(fp, ckpt_history_names[k], ckpt_history_get(rec, k));
    fputs("}\n", fp);
    if (fclose(fp) != 0) ed_fail("cannot write %s (disk full?)", path);
}

int runfile_read_teacher_run(const char *run_dir, TeacherRun *t, char *err, size_t err_size) {
    memset(t, 0, sizeof(*t));
    char path[ED_PATH_MAX];
    run_path(path, sizeof(path), run_dir);
    if (!fs_exists(path)) {
        snprintf(err, err_size, "%s does not exist (not a finished run)", path);
        return -1;
    }
    /* Another run's file: its seal first (one flipped byte of it crashed HDF5), read-only. */
    char why[512];
    hid_t f = h5u_open_sealed(path, why, sizeof(why));
    if (f < 0) {
        snprintf(err, err_size, "%s: %s", path, why);
        return -1;
    }
    char format[64] = "";
    int rc = -1, ndim;
    hsize_t dims[8];
    if (h5r_attr_str(f, "format", format, sizeof(format)) < 0 ||
        strcmp(format, RUNFILE_FORMAT) != 0)
        snprintf(err, err_size, "%s: attribute format is not '%s'", path, RUNFILE_FORMAT);
    else if (h5r_attr_str(f, "data_fingerprint", t->data_fingerprint,
                          sizeof(t->data_fingerprint)) < 0)
        snprintf(err, err_size,
                 "%s has no data fingerprint (written before distill.teacher existed): run that "
                 "run's command once more (every model is skipped, run.h5 is rewritten)", path);
    else if (h5r_dims(f, "teacher/train_logits", &ndim, dims, 8) < 0 || ndim != 2)
        snprintf(err, err_size, "%s has no /teacher/train_logits", path);
    else {
        t->n_train = (int)dims[0];
        t->K = (int)dims[1];
        if (h5r_dims(f, "teacher/test_logits", &ndim, dims, 8) < 0 || ndim != 2 ||
            (int)dims[1] != t->K) {
            snprintf(err, err_size, "%s has no /teacher/test_logits with %d classes", path, t->K);
        } else {
            t->n_test = (int)dims[0];
            t->train_logits = xfloats((size_t)t->n_train * t->K);
            t->test_logits = xfloats((size_t)t->n_test * t->K);
            if (h5r_read(f, "teacher/train_logits", H5T_NATIVE_FLOAT, t->train_logits) < 0 ||
                h5r_read(f, "teacher/test_logits", H5T_NATIVE_FLOAT, t->test_logits) < 0)
                snprintf(err, err_size, "%s: the teacher logits do not read (checksum or "
                         "truncation)", path);
            else
                rc = 0;
            h5r_attr_str(f, "code_revision", t->code_revision, sizeof(t->code_revision));
        }
    }
    H5Fclose(f);
    if (rc != 0) teacher_run_free(t);
    return rc;
}

void teacher_run_free(TeacherRun *t) {
    free(t->train_logits);
    free(t->test_logits);
    t->train_logits = t->test_logits = NULL;
}
