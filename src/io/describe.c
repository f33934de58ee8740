/* Human-readable summaries of the files src/io writes, for `ensdistill inspect`: one model
 * checkpoint (attributes, tensors with shapes, training state, history, checksum status) and
 * one run.h5 (attributes, results table, linked models). */
#include "ensdistill/describe.h"
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/h5file.h"
#include "ensdistill/runfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *io_human_size(char *buf, size_t size, long long bytes) {
    if (bytes < 0)
        snprintf(buf, size, "?");
    else if (bytes < 1024)
        snprintf(buf, size, "%lld B", bytes);
    else if (bytes < 1024 * 1024)
        snprintf(buf, size, "%.1f KiB", bytes / 1024.0);
    else if (bytes < 1024LL * 1024 * 1024)
        snprintf(buf, size, "%.1f MiB", bytes / 1048576.0);
    else
        snprintf(buf, size, "%.2f GiB", bytes / 1073741824.0);
    return buf;
}

void io_print_percent(FILE *out, double v) {
    if (isfinite(v))
        fprintf(out, "%8.2f%%", 100.0 * v);
    else
        fprintf(out, "%9s", "-");
}

void runfile_print_results(FILE *out, const ResultRow *rows, int n_rows) {
    int w = 22; /* the name column: wider for a sweep's "kd T=2 alpha=0.5 lr=0.05" */
    for (int i = 0; i < n_rows; i++)
        if ((int)strlen(rows[i].name) > w) w = (int)strlen(rows[i].name);
    int rw = 7; /* the role column: wider for "codistill" */
    for (int i = 0; i < n_rows; i++)
        if ((int)strlen(rows[i].role) > rw) rw = (int)strlen(rows[i].role);
    int multi = 0;
    for (int i = 0; i < n_rows; i++)
        multi |= isfinite(rows[i].acc_multi);
    fprintf(out, "  %-*s %-*s %6s %9s %9s %8s %8s", w, "result", rw, "role", "models", "test acc",
            "+- std", "NLL", "ECE");
    if (multi) fprintf(out, " %9s %9s", "multi", "single");
    fputc('\n', out);
    for (int i = 0; i < n_rows; i++) {
        const ResultRow *r = &rows[i];
        fprintf(out, "  %-*s %-*s %6d ", w, r->name, rw, r->role, r->n_models);
        io_print_percent(out, r->test_acc);
        fputc(' ', out);
        io_print_percent(out, r->acc_std);
        fprintf(out, " %8.4f %8.4f", r->nll, r->ece);
        if (multi) {
            fputc(' ', out);
            io_print_percent(out, r->acc_multi);
            fputc(' ', out);
            io_print_percent(out, r->acc_single);
        }
        fputc('\n', out);
    }
}

/* ---- one checkpoint ---- */

typedef struct {
    FILE *out;
    const char *group;
    long count;
    double floats;
} TensorListCtx;

static herr_t list_tensor(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    TensorListCtx *c = data;
    (void)info;
    int ndim;
    hsize_t dims[8];
    char shape[160] = "?", type[16] = "?";
    if (h5r_dims(g, name, &ndim, dims, 8) == 0) {
        size_t used = (size_t)snprintf(shape, sizeof(shape), "[");
        double n = 1;
        for (int d = 0; d < ndim && used < sizeof(shape); d++) {
            used += (size_t)snprintf(shape + used, sizeof(shape) - used, "%s%llu", d ? ", " : "",
                                     (unsigned long long)dims[d]);
            n *= (double)dims[d];
        }
        if (used < sizeof(shape)) snprintf(shape + used, sizeof(shape) - used, "]");
        c->floats += n;
        hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
        if (ds >= 0) {
            hid_t t = H5Dget_type(ds);
            if (t >= 0) {
                H5T_class_t cl = H5Tget_class(t);
                snprintf(type, sizeof(type), "%s%zu", cl == H5T_FLOAT ? "float" : "int",
                         8 * H5Tget_size(t));
                H5Tclose(t);
            }
            H5Dclose(ds);
        }
    }
    if (c->out) fprintf(c->out, "    %-44s %-20s %s\n", name, shape, type);
    c->count++;
    return 0;
}

/* Lists (or only counts) the datasets of group: in creation order (the model's order) when
 * the file tracks it, else by name. */
static void list_group(hid_t f, const char *group, FILE *out, int show, long *count,
                       double *floats) {
    TensorListCtx c = {show ? out : NULL, group, 0, 0};
    if (h5r_has(f, group)) {
        hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
        if (g >= 0) {
            hid_t gcpl = H5Gget_create_plist(g);
            unsigned order = 0;
            if (gcpl >= 0) {
                H5Pget_link_creation_order(gcpl, &order);
                H5Pclose(gcpl);
            }
            H5_index_t index = (order & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
            if (H5Literate(g, index, H5_ITER_INC, NULL, list_tensor, &c) < 0 && out)
                fprintf(out, "    (group /%s is damaged)\n", group);
            H5Gclose(g);
        }
    }
    *count = c.count;
    *floats = c.floats;
}

int ckpt_describe(const char *path, FILE *out, int show_tensors) {
    char err[512], size[32];
    CkptInfo info;
    int rc = ckpt_info(path, &info, err, sizeof(err));
    if (rc != 0) {
        fprintf(out, "%s: %s\n", path, err);
        return -1;
    }
    const ModelSpec *sp = &info.spec;
    fprintf(out, "%s  (%s)\n", path, io_human_size(size, sizeof(size), fs_file_size(path)));
    fprintf(out, "  format        %s, format_version %d; written %s by revision %s\n", CKPT_FORMAT,
            info.format_version, info.written_at, info.code_revision);
    fprintf(out, "  model         %s, index %d, seed %lld\n", info.role, info.index,
            (long long)info.seed);
    fprintf(out, "  arch          %s, input [%d, %d, %d], %d classes", sp->arch, sp->C, sp->H,
            sp->W, sp->num_classes);
    if (sp->hidden) fprintf(out, ", hidden %d", sp->hidden);
    if (sp->sum_of > 1) fprintf(out, ", sum of %d nets", sp->sum_of);
    if (sp->random_features) fprintf(out, ", random features (last layer trained)");
    if (sp->arch_name.kind == ARCH_MVCONV)
        fprintf(out, ", %d filters per class, sReLU q=%g rho=%g", sp->mv_filters, sp->srelu_q,
                sp->srelu_rho);
    fputc('\n', out);
    fprintf(out, "  progress      %d/%d epochs, %lld steps, %s\n", info.epoch, info.epochs_total,
            (long long)info.step, info.complete ? "complete" : "incomplete");
    long nds = h5_verify_file(path, err, sizeof(err));
    if (nds >= 0)
        fprintf(out, "  checksums     ok (%ld datasets read back)\n", nds);
    else
        fprintf(out, "  checksums     FAILED: %s\n", err);

    hid_t f = h5u_open_sealed(path, err, sizeof(err));
    if (f < 0) return -1;
    long np, nb, nm;
    double fp, fb, fm;
    list_group(f, "params", out, 0, &np, &fp);
    list_group(f, "buffers", out, 0, &nb, &fb);
    list_group(f, "optimizer/momentum", out, 0, &nm, &fm);
    fprintf(out, "  tensors       params %ld (%.0f values), buffers %ld (%.0f), momentum %ld\n", np,
            fp, nb, fb, nm);
    if (show_tensors) {
        fprintf(out, "  /params\n");
        list_group(f, "params", out, 1, &np, &fp);
        if (nb) {
            fprintf(out, "  /buffers\n");
            list_group(f, "buffers", out, 1, &nb, &fb);
        }
    }
    int64_t cursor[4] = {0, 0, 0, 0};
    double partial[4] = {0, 0, 0, 0};
    if (h5r_read(f, "state/cursor", H5T_NATIVE_INT64, cursor) == 0 && cursor[1] > 0 &&
        h5r_read(f, "state/partial", H5T_NATIVE_DOUBLE, partial) == 0)
        fprintf(out, "  mid-epoch     epoch %lld stopped after step %lld (%.0f samples seen)\n",
                (long long)cursor[0] + 1, (long long)cursor[1], partial[2]);
    if (info.n_train_logits || info.n_test_logits)
        fprintf(out, "  logits        train [%d, %d], test [%d, %d]\n", info.n_train_logits,
                sp->num_classes, info.n_test_logits, sp->num_classes);
    int n = info.n_history;
    if (n > 0) {
        double *cols = xmalloc((size_t)CKPT_HISTORY_COLUMNS * n * sizeof(double));
        int ok = 1;
        for (int k = 0; k < CKPT_HISTORY_COLUMNS; k++) {
            char name[64];
            snprintf(name, sizeof(name), "history/%s", ckpt_history_names[k]);
            ok &= h5r_read(f, name, H5T_NATIVE_DOUBLE, cols + (size_t)k * n) == 0;
        }
        if (ok) {
            fprintf(out, "  history\n    %5s %10s %10s %9s %9s %8s\n", "epoch", "lr", "loss",
                    "train acc", "test acc", "seconds");
            for (int e = 0; e < n; e++) {
                fprintf(out, "    %5.0f %10.4g %10.4f ", cols[e], cols[n + e], cols[2 * n + e]);
                io_print_percent(out, cols[3 * n + e]);
                fputc(' ', out);
                io_print_percent(out, cols[4 * n + e]);
                fprintf(out, " %8.1f\n", cols[5 * n + e]);
            }
        } else {
            fprintf(out, "  history       unreadable\n");
        }
        free(cols);
    }
    H5Fclose(f);
    return nds >= 0 ? 0 : -1;
}

/* ---- run.h5 ---- */

/* Prints every external link of /models (group g of run_path) whose target file is missing or
 * is not a readable HDF5 file; returns how many. Targets are relative to run.h5's directory. */
static int check_model_links(hid_t g, long n, const char *run_path, FILE *out) {
    char dir[ED_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", run_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = '\0';
    else
        dir[0] = '\0';
    int bad = 0;
    for (long i = 0; i < n; i++) {
        char name[256], value[ED_PATH_MAX], target[2 * ED_PATH_MAX];
        H5L_info_t li;
        const char *file = NULL, *obj = NULL;
        unsigned flags;
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, (hsize_t)i, name, sizeof(name),
                               H5P_DEFAULT) < 0 ||
            H5Lget_info(g, name, &li, H5P_DEFAULT) < 0) {
            fprintf(out, "  models        link %ld is unreadable (damaged)\n", i);
            bad++;
            continue;
        }
        if (li.type != H5L_TYPE_EXTERNAL) continue;
        if (li.u.val_size > sizeof(value) ||
            H5Lget_val(g, name, value, sizeof(value), H5P_DEFAULT) < 0 ||
            H5Lunpack_elink_val(value, li.u.val_size, &flags, &file, &obj) < 0) {
            fprintf(out, "  models        link /models/%s is unreadable (damaged)\n", name);
            bad++;
            continue;
        }
        snprintf(target, sizeof(target), "%s%s", file[0] == '/' ? "" : dir, file);
        if (!fs_exists(target)) {
            fprintf(out, "  models        MISSING: /models/%s links to %s, which does not exist\n",
                    name, target);
            bad++;
        }
    }
    return bad;
}

int runfile_describe(const char *path, FILE *out) {
    char err[512], size[32];
    long nds = h5_verify_file(path, err, sizeof(err));
    hid_t f = h5u_open_sealed(path, err, sizeof(err));
    if (f < 0) {
        fprintf(out, "%s: %s\n", path, err);
        return -1;
    }
    char format[64] = "", rev[64] = "?", when[32] = "?";
    int64_t version = 0;
    h5r_attr_str(f, "format", format, sizeof(format));
    h5r_attr_i64(f, "format_version", &version);
    h5r_attr_str(f, "code_revision", rev, sizeof(rev));
    h5r_attr_str(f, "written_at", when, sizeof(when));
    fprintf(out, "%s  (%s)\n", path, io_human_size(size, sizeof(size), fs_file_size(path)));
    if (strcmp(format, RUNFILE_FORMAT) != 0) {
        fprintf(out, "  not an ensdistill run file (format '%s')\n", format);
        H5Fclose(f);
        return -1;
    }
    fprintf(out, "  format        %s, format_version %lld; written %s by revision %s\n", format,
            (long long)version, when, rev);
    if (nds >= 0)
        fprintf(out, "  checksums     ok (%ld datasets read back)\n", nds);
    else
        fprintf(out, "  checksums     FAILED: %s\n", err);
    int ndim;
    hsize_t dims[8];
    if (h5r_dims(f, "teacher/train_logits", &ndim, dims, 8) == 0 && ndim == 2)
        fprintf(out, "  teacher       train logits [%llu, %llu]", (unsigned long long)dims[0],
                (unsigned long long)dims[1]);
    if (h5r_dims(f, "teacher/test_logits", &ndim, dims, 8) == 0 && ndim == 2)
        fprintf(out, ", test logits [%llu, %llu]\n", (unsigned long long)dims[0],
                (unsigned long long)dims[1]);
    int missing = 0;
    if (h5r_has(f, "models")) {
        hid_t g = H5Gopen2(f, "models", H5P_DEFAULT);
        H5G_info_t gi;
        if (g >= 0 && H5Gget_info(g, &gi) >= 0) {
            fprintf(out, "  models        %llu external links under /models\n",
                    (unsigned long long)gi.nlinks);
            missing = check_model_links(g, (long)gi.nlinks, path, out);
        }
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    ResultRow *rows;
    int n_rows;
    if (runfile_read_results(path, &rows, &n_rows, err, sizeof(err)) == 0) {
        fprintf(out, "  results\n");
        runfile_print_results(out, rows, n_rows);
        free(rows);
    } else {
        fprintf(out, "  results       unreadable: %s\n", err);
        return -1;
    }
    f = h5u_open_sealed(path, err, sizeof(err));
    if (f >= 0) {
        if (h5r_dims(f, "results/ensemble_size_acc", &ndim, dims, 8) == 0 && ndim == 1 &&
            dims[0] > 0) {
            int L = (int)dims[0];
            float *acc = xmalloc((size_t)L * sizeof(float));
            if (h5r_read(f, "results/ensemble_size_acc", H5T_NATIVE_FLOAT, acc) == 0) {
                fprintf(out, "  ensemble size vs test acc:");
                for (int i = 0; i < L; i++)
                    fprintf(out, " %d:%.2f%%", i + 1, 100.0 * acc[i]);
                fputc('\n', out);
            }
            free(acc);
        }
        H5Fclose(f);
    }
    return nds >= 0 && missing == 0 ? 0 : -1;
}
