/* The generic HDF5 data set: the reader (source "hdf5") and the writer (ensdistill datagen).
 *   /train/images  uint8 or float32 [N, C, H, W]; [N, H, W, C] with attribute layout = "NHWC";
 *                  [N, H, W] = one channel
 *   /train/labels  any integer type [N], in [0, num_classes)
 *   /train/tags    optional uint8 [N] (multi-view data: 1 multi-view, 0 single-view)
 *   /test/...      the same
 *   /views         optional float32 [K, 2, D] (multi-view data)
 *   attributes of /: num_classes (optional: else max label + 1), orth_noise, noise_sigma
 * Every HDF5 call is checked; a bad file stops with a message naming the file and the object. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H5DATA_FORMAT "ensdistill-data"
#define H5DATA_VERSION 1

static void fail_h5(const char *path, const char *obj, const char *what) {
    ed_fail("%s: %s: %s", path, obj, what);
}

/* Checks rc of an HDF5 call on object obj of file path. */
static hid_t chk(hid_t rc, const char *path, const char *obj, const char *what) {
    if (rc < 0) fail_h5(path, obj, what);
    return rc;
}
static herr_t chk_e(herr_t rc, const char *path, const char *obj, const char *what) {
    if (rc < 0) fail_h5(path, obj, what);
    return rc;
}

static int link_exists(hid_t loc, const char *name, const char *path) {
    htri_t e = H5Lexists(loc, name, H5P_DEFAULT);
    if (e < 0) fail_h5(path, name, "cannot look up the link");
    return e > 0;
}

/* ---- reading ---- */

/* Reads a scalar string attribute (fixed or variable length) into buf. */
static void read_str_attr(hid_t obj, const char *name, char *buf, size_t size, const char *path,
                          const char *obj_name) {
    char what[256];
    snprintf(what, sizeof(what), "attribute %s", name);
    hid_t a = chk(H5Aopen(obj, name, H5P_DEFAULT), path, obj_name, what);
    hid_t t = chk(H5Aget_type(a), path, obj_name, what);
    if (H5Tget_class(t) != H5T_STRING) {
        snprintf(what, sizeof(what), "attribute %s must be a string", name);
        fail_h5(path, obj_name, what);
    }
    hid_t sp = chk(H5Aget_space(a), path, obj_name, what);
    if (H5Sget_simple_extent_npoints(sp) != 1) {
        snprintf(what, sizeof(what), "attribute %s must be a single string", name);
        fail_h5(path, obj_name, what);
    }
    hid_t mt = chk(H5Tcopy(H5T_C_S1), path, obj_name, what);
    htri_t var = H5Tis_variable_str(t);
    chk_e(var < 0 ? -1 : 0, path, obj_name, what);
    if (var) {
        char *s = NULL;
        chk_e(H5Tset_size(mt, H5T_VARIABLE), path, obj_name, what);
        chk_e(H5Tset_cset(mt, H5Tget_cset(t)), path, obj_name, what);
        chk_e(H5Aread(a, mt, &s), path, obj_name, what);
        snprintf(buf, size, "%s", s ? s : "");
        H5free_memory(s);
    } else {
        size_t n = H5Tget_size(t);
        char *tmp = xcalloc(n + 1, 1);
        chk_e(H5Tset_size(mt, n), path, obj_name, what);
        chk_e(H5Aread(a, mt, tmp), path, obj_name, what);
        snprintf(buf, size, "%s", tmp);
        free(tmp);
    }
    H5Tclose(mt);
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
}

/* Reads a single-number attribute as a double; returns 0 if it does not exist. */
static int read_num_attr(hid_t obj, const char *name, double *out, const char *path,
                         const char *obj_name) {
    htri_t e = H5Aexists(obj, name);
    char what[256];
    snprintf(what, sizeof(what), "attribute %s", name);
    if (e < 0) fail_h5(path, obj_name, what);
    if (!e) return 0;
    hid_t a = chk(H5Aopen(obj, name, H5P_DEFAULT), path, obj_name, what);
    hid_t t = chk(H5Aget_type(a), path, obj_name, what);
    H5T_class_t cls = H5Tget_class(t);
    hid_t sp = chk(H5Aget_space(a), path, obj_name, what);
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || H5Sget_simple_extent_npoints(sp) != 1) {
        snprintf(what, sizeof(what), "attribute %s must be a single number", name);
        fail_h5(path, obj_name, what);
    }
    chk_e(H5Aread(a, H5T_NATIVE_DOUBLE, out), path, obj_name, what);
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return 1;
}

/* Opens dataset name (e.g. "/train/images"); fills its dims (at most 4) and type class/size. */
static hid_t open_dataset(hid_t f, const char *name, const char *path, int *ndim, hsize_t dims[4],
                          H5T_class_t *cls, size_t *tsize, H5T_sign_t *sign) {
    hid_t d = chk(H5Dopen2(f, name, H5P_DEFAULT), path, name, "cannot open the dataset");
    hid_t sp = chk(H5Dget_space(d), path, name, "cannot read its dataspace");
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd < 0) fail_h5(path, name, "cannot read its rank");
    if (nd > 4) {
        char what[128];
        snprintf(what, sizeof(what), "has %d dimensions (at most 4)", nd);
        fail_h5(path, name, what);
    }
    chk_e(H5Sget_simple_extent_dims(sp, dims, NULL), path, name, "cannot read its dimensions");
    hid_t t = chk(H5Dget_type(d), path, name, "cannot read its type");
    *cls = H5Tget_class(t);
    *tsize = H5Tget_size(t);
    *sign = *cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_NONE;
    H5Tclose(t);
    H5Sclose(sp);
    *ndim = nd;
    return d;
}

static void read_part(Dataset *ds, hid_t f, const char *path, const char *part) {
    char name[64], what[256];
    snprintf(name, sizeof(name), "/%s", part);
    if (!link_exists(f, name, path))
        fail_h5(path, name,
                "missing group (a data file needs /train and /test, each with "
                "images and labels)");
    /* images */
    snprintf(name, sizeof(name), "/%s/images", part);
    if (!link_exists(f, name, path)) fail_h5(path, name, "missing dataset");
    int nd;
    hsize_t dims[4];
    H5T_class_t cls;
    size_t tsize;
    H5T_sign_t sign;
    hid_t d = open_dataset(f, name, path, &nd, dims, &cls, &tsize, &sign);
    int u8 = 0;
    if (cls == H5T_INTEGER && tsize == 1 && sign == H5T_SGN_NONE)
        u8 = 1;
    else if (cls != H5T_FLOAT)
        fail_h5(path, name, "images must be uint8 or float32");
    char layout[32] = "NCHW";
    htri_t has_layout = H5Aexists(d, "layout");
    if (has_layout < 0) fail_h5(path, name, "attribute layout");
    if (has_layout) read_str_attr(d, "layout", layout, sizeof(layout), path, name);
    int nhwc = strcmp(layout, "NHWC") == 0;
    if (!nhwc && strcmp(layout, "NCHW") != 0) {
        snprintf(what, sizeof(what), "attribute layout must be \"NCHW\" or \"NHWC\", got \"%s\"",
                 layout);
        fail_h5(path, name, what);
    }
    hsize_t N, C, H, W;
    if (nd == 4) {
        N = dims[0];
        C = nhwc ? dims[3] : dims[1];
        H = nhwc ? dims[1] : dims[2];
        W = nhwc ? dims[2] : dims[3];
    } else if (nd == 3) {
        N = dims[0], C = 1, H = dims[1], W = dims[2];
    } else {
        snprintf(what, sizeof(what),
                 "images have %d dimensions (expected [N, C, H, W], "
                 "[N, H, W, C] with layout=\"NHWC\", or [N, H, W])",
                 nd);
        fail_h5(path, name, what);
        return;
    }
    if (N < 1 || C < 1 || H < 1 || W < 1 || N > (1u << 30) || C * H * W > (1u << 28)) {
        snprintf(what, sizeof(what),
                 "images of shape %llu x %llu x %llu x %llu are empty or too "
                 "large",
                 (unsigned long long)N, (unsigned long long)C, (unsigned long long)H,
                 (unsigned long long)W);
        fail_h5(path, name, what);
    }
    ds->N = (int)N, ds->C = (int)C, ds->H = (int)H, ds->W = (int)W;
    size_t count = (size_t)N * C * H * W, esize = u8 ? 1 : sizeof(float);
    void *raw = xmalloc(count * esize);
    chk_e(H5Dread(d, u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw),
          path, name, "cannot read the images");
    H5Dclose(d);
    if (nhwc && C > 1) {
        /* out[n, c, y, x] = in[n, y, x, c] */
        void *t = xmalloc(count * esize);
        size_t HW = (size_t)H * W;
        for (size_t n = 0; n < N; n++)
            for (size_t p = 0; p < HW; p++)
                for (size_t c = 0; c < C; c++) {
                    size_t src = (n * HW + p) * C + c, dst = (n * C + c) * HW + p;
                    if (u8)
                        ((uint8_t *)t)[dst] = ((uint8_t *)raw)[src];
                    else
                        ((float *)t)[dst] = ((float *)raw)[src];
                }
        free(raw);
        raw = t;
    }
    if (u8)
        ds->u8 = raw;
    else
        ds->f32 = raw;

    /* labels */
    snprintf(name, sizeof(name), "/%s/labels", part);
    if (!link_exists(f, name, path)) fail_h5(path, name, "missing dataset");
    d = open_dataset(f, name, path, &nd, dims, &cls, &tsize, &sign);
    if (cls != H5T_INTEGER) fail_h5(path, name, "labels must be integers");
    if (nd != 1 || dims[0] != N) {
        snprintf(what, sizeof(what),
                 "labels must be [%llu] like the images, got %d dimensions "
                 "of first size %llu",
                 (unsigned long long)N, nd, (unsigned long long)(nd ? dims[0] : 0));
        fail_h5(path, name, what);
    }
    int64_t *lab = xmalloc((size_t)N * sizeof(int64_t));
    chk_e(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab), path, name,
          "cannot read the labels");
    H5Dclose(d);
    ds->labels = xmalloc((size_t)N * sizeof(int32_t));
    for (size_t i = 0; i < N; i++) {
        if (lab[i] < 0 || lab[i] > (1 << 24)) {
            snprintf(what, sizeof(what), "label %lld of sample %zu is out of range",
                     (long long)lab[i], i);
            fail_h5(path, name, what);
        }
        ds->labels[i] = (int32_t)lab[i];
    }
    free(lab);

    /* tags (optional) */
    snprintf(name, sizeof(name), "/%s/tags", part);
    if (link_exists(f, name, path)) {
        d = open_dataset(f, name, path, &nd, dims, &cls, &tsize, &sign);
        if (cls != H5T_INTEGER || nd != 1 || dims[0] != N)
            fail_h5(path, name, "tags must be integers [N] like the labels");
        ds->tags = xmalloc((size_t)N);
        chk_e(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->tags), path, name,
              "cannot read the tags");
        H5Dclose(d);
    }
}

static int max_label(const Dataset *ds) {
    int m = -1;
    for (int i = 0; i < ds->N; i++)
        if (ds->labels[i] > m) m = ds->labels[i];
    return m;
}

static void check_labels(const Dataset *ds, const char *path, const char *part) {
    for (int i = 0; i < ds->N; i++)
        if (ds->labels[i] >= ds->K)
            ed_fail("%s: /%s/labels: label %d of sample %d is out of range [0, %d) (num_classes)",
                    path, part, ds->labels[i], i, ds->K);
}

void h5data_read(DataSplit *split, const char *path) {
    memset(split, 0, sizeof(*split));
    if (access(path, R_OK) != 0) ed_fail("%s: cannot open: %s", path, strerror(errno));
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's error stack dump */
    htri_t is_h5 = H5Fis_hdf5(path);
    if (is_h5 <= 0) ed_fail("%s: not an HDF5 file", path);
    hid_t f = chk(H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), path, "/",
                  "cannot open the file (truncated or damaged?)");
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(split->train.name, sizeof(split->train.name), "%.50s/train", base);
    snprintf(split->test.name, sizeof(split->test.name), "%.50s/test", base);
    read_part(&split->train, f, path, "train");
    read_part(&split->test, f, path, "test");
    Dataset *tr = &split->train, *te = &split->test;
    if (tr->C != te->C || tr->H != te->H || tr->W != te->W || (tr->u8 == NULL) != (te->u8 == NULL))
        ed_fail("%s: /test/images (%d x %d x %d %s) do not match /train/images (%d x %d x %d %s)",
                path, te->C, te->H, te->W, te->u8 ? "uint8" : "float", tr->C, tr->H, tr->W,
                tr->u8 ? "uint8" : "float");

    double num;
    int K;
    if (read_num_attr(f, "num_classes", &num, path, "/")) {
        if (!(num >= 1 && num <= (1 << 24) && num == (int)num))
            ed_fail("%s: attribute num_classes = %g is not a positive integer", path, num);
        K = (int)num;
    } else {
        int a = max_label(tr), b = max_label(te);
        K = (a > b ? a : b) + 1;
        if (K < 2) K = 2;
    }
    tr->K = te->K = K;
    check_labels(tr, path, "train");
    check_labels(te, path, "test");

    if (link_exists(f, "/views", path)) {
        int nd;
        hsize_t dims[4];
        H5T_class_t cls;
        size_t tsize;
        H5T_sign_t sign;
        hid_t d = open_dataset(f, "/views", path, &nd, dims, &cls, &tsize, &sign);
        if (cls != H5T_FLOAT || nd != 3 || dims[0] != (hsize_t)K || dims[1] != 2 ||
            dims[2] != (hsize_t)tr->W || tr->H != 1 || tr->u8)
            ed_fail("%s: /views: must be float [num_classes=%d, 2, D] with float images "
                    "[N, P, 1, D] (D = %d)",
                    path, K, tr->W);
        size_t n = (size_t)K * 2 * tr->W;
        tr->views = xmalloc(n * sizeof(float));
        chk_e(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, tr->views), path,
              "/views", "cannot read the views");
        H5Dclose(d);
        te->views = xmalloc(n * sizeof(float));
        memcpy(te->views, tr->views, n * sizeof(float));
        tr->D = te->D = tr->W;
    }
    double orth = 0.0, sigma = 0.0;
    read_num_attr(f, "orth_noise", &orth, path, "/");
    read_num_attr(f, "noise_sigma", &sigma, path, "/");
    tr->orth_noise = te->orth_noise = orth != 0.0;
    tr->noise_sigma = te->noise_sigma = tr->orth_noise ? (float)sigma : 0.0f;
    chk_e(H5Fclose(f), path, "/", "cannot close the file");
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
}

/* ---- writing ---- */

static void write_str_attr(hid_t obj, const char *name, const char *value, const char *path) {
    hid_t t = chk(H5Tcopy(H5T_C_S1), path, name, "cannot write attribute");
    chk_e(H5Tset_size(t, H5T_VARIABLE), path, name, "cannot write attribute");
    chk_e(H5Tset_cset(t, H5T_CSET_UTF8), path, name, "cannot write attribute");
    hid_t sp = chk(H5Screate(H5S_SCALAR), path, name, "cannot write attribute");
    hid_t a = chk(H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT), path, name,
                  "cannot write attribute");
    chk_e(H5Awrite(a, t, &value), path, name, "cannot write attribute");
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void write_num_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                           const void *value, const char *path) {
    hid_t sp = chk(H5Screate(H5S_SCALAR), path, name, "cannot write attribute");
    hid_t a = chk(H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT), path, name,
                  "cannot write attribute");
    chk_e(H5Awrite(a, mem_type, value), path, name, "cannot write attribute");
    H5Aclose(a);
    H5Sclose(sp);
}

static void write_dataset(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int nd,
                          const hsize_t *dims, const void *data, const char *path) {
    hid_t sp = chk(H5Screate_simple(nd, dims, NULL), path, name, "cannot create the dataspace");
    hid_t d = chk(H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path,
                  name, "cannot create the dataset");
    chk_e(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path, name,
          "cannot write the dataset");
    chk_e(H5Dclose(d), path, name, "cannot close the dataset");
    H5Sclose(sp);
}

static void write_part(hid_t f, const Dataset *ds, const char *part, const char *path) {
    char name[64];
    snprintf(name, sizeof(name), "/%s", part);
    hid_t g = chk(H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path, name,
                  "cannot create the group");
    hsize_t dims[4] = {(hsize_t)ds->N, (hsize_t)ds->C, (hsize_t)ds->H, (hsize_t)ds->W};
    if (ds->u8)
        write_dataset(g, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, ds->u8, path);
    else
        write_dataset(g, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, ds->f32, path);
    hid_t d = chk(H5Dopen2(g, "images", H5P_DEFAULT), path, "images", "cannot reopen");
    write_str_attr(d, "layout", "NCHW", path);
    H5Dclose(d);
    write_dataset(g, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, ds->labels, path);
    if (ds->tags) write_dataset(g, "tags", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, ds->tags, path);
    H5Gclose(g);
}

void h5data_write(const DataSplit *split, const DataConfig *cfg, const char *config_text,
                  const char *path) {
    char tmp[CFG_PATH + 8];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        ed_fail("%s: output path too long", path);
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        ed_fail("%s: cannot create the file (does the directory exist and is it writable?)", tmp);
    const Dataset *tr = &split->train;
    int version = H5DATA_VERSION;
    write_str_attr(f, "format", H5DATA_FORMAT, tmp);
    write_num_attr(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, tmp);
    write_str_attr(f, "source", cfg->source, tmp);
    write_num_attr(f, "num_classes", H5T_STD_I32LE, H5T_NATIVE_INT, &tr->K, tmp);
    if (config_text) write_str_attr(f, "config", config_text, tmp);
    if (tr->views) {
        const MultiviewConfig *mv = &cfg->multiview;
        int orth = tr->orth_noise;
        float sigma = tr->noise_sigma;
        int64_t seed = mv->seed;
        write_str_attr(f, "noise", mv->noise, tmp);
        write_num_attr(f, "sigma", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &mv->sigma, tmp);
        write_num_attr(f, "seed", H5T_STD_I64LE, H5T_NATIVE_INT64, &seed, tmp);
        write_num_attr(f, "orth_noise", H5T_STD_I32LE, H5T_NATIVE_INT, &orth, tmp);
        write_num_attr(f, "noise_sigma", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &sigma, tmp);
        hsize_t vd[3] = {(hsize_t)tr->K, 2, (hsize_t)tr->D};
        write_dataset(f, "/views", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, vd, tr->views, tmp);
    }
    write_part(f, &split->train, "train", tmp);
    write_part(f, &split->test, "test", tmp);
    chk_e(H5Fflush(f, H5F_SCOPE_GLOBAL), tmp, "/", "cannot flush the file");
    chk_e(H5Fclose(f), tmp, "/", "cannot close the file");
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) ed_fail("%s: cannot sync: %s", tmp, strerror(errno));
    close(fd);
    if (rename(tmp, path) != 0)
        ed_fail("%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
}
