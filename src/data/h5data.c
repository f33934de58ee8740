/* The generic HDF5 data set: the reader (source "hdf5") and the writer (ensdistill datagen).
 *   /train/images  uint8 or float32 [N, C, H, W]; [N, H, W, C] with attribute layout = "NHWC";
 *                  [N, H, W] = one channel
 *   /train/labels  any integer type [N], in [0, num_classes)
 *   /train/tags    optional uint8 [N] (multi-view data: 1 multi-view, 0 single-view)
 *   /test/...      the same
 *   /views         optional float32 [K, 2, D] (multi-view data)
 *   attributes of /: num_classes (optional: else the largest label + 1, with a warning naming
 *                  the label and the classes without a training sample when any is empty; a
 *                  label >= a given num_classes is refused), orth_noise, noise_sigma
 * The reader checks every shape first, gets the arrays from the caller's DataAlloc, then reads
 * by hyperslab a few MB of rows at a time straight into them (NHWC through a buffer of rows):
 * nothing past the limits is read, nothing is held twice.
 * HDF5 goes through core's h5file helpers; a bad file stops with a message naming the file and
 * the object. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/h5file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H5DATA_FORMAT "ensdistill-data"
#define H5DATA_VERSION 1

/* ---- reading ---- */

/* Dimensions (at most 4) and type of dataset name, which must exist. */
static void dataset_shape(hid_t f, const char *path, const char *name, int *ndim, hsize_t dims[4],
                          H5T_class_t *cls, size_t *tsize, H5T_sign_t *sign) {
    if (h5r_type(f, name, cls, tsize, sign) < 0)
        ed_fail("%s: %s: cannot open the dataset or read its type", path, name);
    if (h5r_dims(f, name, ndim, dims, 4) < 0)
        ed_fail("%s: %s: cannot read its dimensions (at most 4)", path, name);
}

static void read_whole(hid_t f, const char *path, const char *name, hid_t mem_type, void *out,
                       const char *what) {
    if (h5r_read(f, name, mem_type, out) < 0)
        ed_fail("%s: %s: cannot read the %s", path, name, what);
}

#define H5DATA_CHUNK_BYTES ((size_t)4 << 20) /* bytes of rows per hyperslab read */
#define H5DATA_LABEL_ROWS ((size_t)1 << 16)  /* labels per hyperslab read */

/* Rows [r0, r0 + rows) (along dimension 0) of dataset name into out, by hyperslab: nothing
 * beyond them is read or held. */
static void read_rows(hid_t f, const char *path, const char *name, hid_t mem_type, void *out,
                      hsize_t r0, hsize_t rows, const char *what) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fs = d < 0 ? -1 : H5Dget_space(d), ms = -1;
    int ok = fs >= 0;
    hsize_t dims[4], start[4] = {r0, 0, 0, 0};
    int nd = ok ? H5Sget_simple_extent_dims(fs, dims, NULL) : -1;
    ok = ok && nd >= 1 && nd <= 4 && r0 + rows <= dims[0];
    if (ok && rows > 0) {
        dims[0] = rows;
        ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL) >= 0 &&
             (ms = H5Screate_simple(nd, dims, NULL)) >= 0 &&
             H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, out) >= 0;
    }
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    if (!ok) ed_fail("%s: %s: cannot read the %s", path, name, what);
}

/* What one part of the file holds, as part_shape finds it before anything is read. */
typedef struct {
    const char *part; /* "train" or "test" */
    int u8;           /* images are uint8 (else read as float32) */
    int nhwc;         /* images stored [N, H, W, C] */
    int tags;         /* /part/tags exists */
} PartFile;

/* Checks /part of the file and sets ds's shape: N = the first `keep` samples (keep <= 0: all). */
static void part_shape(Dataset *ds, PartFile *pf, hid_t f, const char *path, const char *part,
                       int keep) {
    char name[64];
    pf->part = part;
    snprintf(name, sizeof(name), "/%s", part);
    if (!h5r_has(f, name))
        ed_fail("%s: %s: missing group (a data file needs /train and /test, each with images and "
                "labels)",
                path, name);
    /* images */
    snprintf(name, sizeof(name), "/%s/images", part);
    if (!h5r_has(f, name)) ed_fail("%s: %s: missing dataset", path, name);
    int nd;
    hsize_t dims[4];
    H5T_class_t cls;
    size_t tsize;
    H5T_sign_t sign;
    dataset_shape(f, path, name, &nd, dims, &cls, &tsize, &sign);
    pf->u8 = 0;
    if (cls == H5T_INTEGER && tsize == 1 && sign == H5T_SGN_NONE)
        pf->u8 = 1;
    else if (cls != H5T_FLOAT)
        ed_fail("%s: %s: images must be uint8 or float32", path, name);
    char layout[32] = "NCHW";
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) ed_fail("%s: %s: cannot open the dataset", path, name);
    htri_t has_layout = H5Aexists(d, "layout");
    int layout_rc = has_layout > 0 ? h5r_attr_str(d, "layout", layout, sizeof(layout)) : 0;
    H5Dclose(d);
    if (has_layout < 0 || layout_rc < 0)
        ed_fail("%s: %s: attribute layout is unreadable or not a string", path, name);
    pf->nhwc = strcmp(layout, "NHWC") == 0;
    if (!pf->nhwc && strcmp(layout, "NCHW") != 0)
        ed_fail("%s: %s: attribute layout must be \"NCHW\" or \"NHWC\", got \"%s\"", path, name,
                layout);
    hsize_t N, C, H, W;
    if (nd == 4) {
        N = dims[0];
        C = pf->nhwc ? dims[3] : dims[1];
        H = pf->nhwc ? dims[1] : dims[2];
        W = pf->nhwc ? dims[2] : dims[3];
    } else if (nd == 3) {
        N = dims[0], C = 1, H = dims[1], W = dims[2];
    } else {
        ed_fail("%s: %s: images have %d dimensions (expected [N, C, H, W], [N, H, W, C] with "
                "layout=\"NHWC\", or [N, H, W])",
                path, name, nd);
    }
    if (N < 1 || C < 1 || H < 1 || W < 1 || N > (1u << 30) || C * H * W > (1u << 28))
        ed_fail("%s: %s: images of shape %llu x %llu x %llu x %llu are empty or too large", path,
                name, (unsigned long long)N, (unsigned long long)C, (unsigned long long)H,
                (unsigned long long)W);
    ds->N = data_keep((int)N, keep), ds->C = (int)C, ds->H = (int)H, ds->W = (int)W;

    /* labels and tags: as many as the file's images */
    snprintf(name, sizeof(name), "/%s/labels", part);
    if (!h5r_has(f, name)) ed_fail("%s: %s: missing dataset", path, name);
    dataset_shape(f, path, name, &nd, dims, &cls, &tsize, &sign);
    if (cls != H5T_INTEGER) ed_fail("%s: %s: labels must be integers", path, name);
    if (nd != 1 || dims[0] != N)
        ed_fail("%s: %s: labels must be [%llu] like the images, got %d dimensions of first size "
                "%llu",
                path, name, (unsigned long long)N, nd, (unsigned long long)(nd ? dims[0] : 0));
    snprintf(name, sizeof(name), "/%s/tags", part);
    pf->tags = h5r_has(f, name);
    if (pf->tags) {
        dataset_shape(f, path, name, &nd, dims, &cls, &tsize, &sign);
        if (cls != H5T_INTEGER || nd != 1 || dims[0] != N)
            ed_fail("%s: %s: tags must be integers [N] like the labels", path, name);
    }
}

/* Images read per hyperslab: about H5DATA_CHUNK_BYTES, at least one. */
static size_t rows_per_read(const Dataset *ds, int u8) {
    size_t sample = dataset_sample_floats(ds) * (u8 ? 1 : sizeof(float));
    return H5DATA_CHUNK_BYTES / sample ? H5DATA_CHUNK_BYTES / sample : 1;
}

/* Reads the first ds->N samples of /part into ds's arrays, a few MB of rows at a time; scratch
 * holds the rows of an NHWC read (rows_per_read) or H5DATA_LABEL_ROWS int64 labels. */
static void part_read(Dataset *ds, const PartFile *pf, hid_t f, const char *path, void *scratch) {
    char name[64];
    const char *part = pf->part;
    const size_t N = (size_t)ds->N, C = (size_t)ds->C, HW = (size_t)ds->H * ds->W;
    const size_t esize = pf->u8 ? 1 : sizeof(float), sample = C * HW * esize;
    /* images: NCHW straight into the array; NHWC through a buffer of rows, then
     * out[n, c, y, x] = in[n, y, x, c] */
    snprintf(name, sizeof(name), "/%s/images", part);
    size_t rows_per = rows_per_read(ds, pf->u8);
    char *out = pf->u8 ? (char *)ds->u8 : (char *)ds->f32;
    char *rows_buf = pf->nhwc && C > 1 ? scratch : NULL;
    for (size_t r0 = 0; r0 < N; r0 += rows_per) {
        size_t rows = N - r0 < rows_per ? N - r0 : rows_per;
        char *dst = out + r0 * sample;
        read_rows(f, path, name, pf->u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT,
                  rows_buf ? rows_buf : dst, r0, rows, "images");
        if (!rows_buf) continue;
        for (size_t n = 0; n < rows; n++)
            for (size_t p = 0; p < HW; p++)
                for (size_t c = 0; c < C; c++) {
                    size_t src = (n * HW + p) * C + c, to = (n * C + c) * HW + p;
                    if (pf->u8)
                        ((uint8_t *)dst)[to] = ((uint8_t *)rows_buf)[src];
                    else
                        ((float *)dst)[to] = ((float *)rows_buf)[src];
                }
    }

    /* labels: any integer type, read as int64 a chunk at a time, checked, stored as int32 */
    snprintf(name, sizeof(name), "/%s/labels", part);
    int64_t *lab = scratch;
    for (size_t r0 = 0; r0 < N; r0 += H5DATA_LABEL_ROWS) {
        size_t rows = N - r0 < H5DATA_LABEL_ROWS ? N - r0 : H5DATA_LABEL_ROWS;
        read_rows(f, path, name, H5T_NATIVE_INT64, lab, r0, rows, "labels");
        for (size_t j = 0; j < rows; j++) {
            if (lab[j] < 0 || lab[j] > (1 << 24))
                ed_fail("%s: %s: label %lld of sample %zu is out of range", path, name,
                        (long long)lab[j], r0 + j);
            ds->labels[r0 + j] = (int32_t)lab[j];
        }
    }

    if (pf->tags) {
        snprintf(name, sizeof(name), "/%s/tags", part);
        read_rows(f, path, name, H5T_NATIVE_UINT8, ds->tags, 0, N, "tags");
    }
}

/* Attribute name of the file as a number: 0 if absent, 1 if read; a damaged or non-numeric
 * one stops. */
static int read_num_attr(hid_t f, const char *path, const char *name, double *out) {
    htri_t e = H5Aexists(f, name);
    if (e == 0) return 0;
    if (e < 0 || h5r_attr_f64(f, name, out) < 0)
        ed_fail("%s: /: attribute %s must be a single number", path, name);
    return 1;
}

/* The largest label of ds (-1 when empty) and its first sample. */
static int max_label(const Dataset *ds, int *at) {
    int m = -1;
    for (int i = 0; i < ds->N; i++)
        if (ds->labels[i] > m) {
            m = ds->labels[i];
            *at = i;
        }
    return m;
}

/* Without a num_classes attribute K is the largest label + 1: a stray label (one 255 in a
 * 10-class file) would make a model of 256 classes, most of them empty. Warns, naming the
 * largest label, where it is, and the classes that no training sample has. */
static void warn_empty_classes(const Dataset *tr, const Dataset *te, const char *path, int K) {
    int *seen = xcalloc((size_t)K, sizeof(int));
    for (int i = 0; i < tr->N; i++)
        seen[tr->labels[i]] = 1;
    int empty = 0;
    char list[256] = "";
    size_t used = 0;
    for (int k = 0; k < K; k++) {
        if (seen[k]) continue;
        int last = k;
        while (last + 1 < K && !seen[last + 1])
            last++;
        empty += last - k + 1;
        if (used < sizeof(list) - 24 && last > k)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d-%d", used ? ", " : "",
                                     k, last);
        else if (used < sizeof(list) - 24)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d", used ? ", " : "", k);
        k = last;
    }
    free(seen);
    if (!empty) return;
    int at_tr = -1, at_te = -1;
    int a = max_label(tr, &at_tr), b = max_label(te, &at_te);
    const char *part = a >= b ? "train" : "test";
    ed_warn("%s: no num_classes attribute, so the number of classes is the largest label + 1 = %d "
            "(label %d, /%s/labels[%d]); %d of these classes have no training sample (%s%s). If "
            "the label is a mistake, fix it; else set the file's num_classes attribute",
            path, K, K - 1, part, a >= b ? at_tr : at_te, empty, list,
            used >= sizeof(list) - 24 ? ", ..." : "");
}

static void check_labels(const Dataset *ds, const char *path, const char *part) {
    for (int i = 0; i < ds->N; i++)
        if (ds->labels[i] >= ds->K)
            ed_fail("%s: /%s/labels[%d]: label %d is out of range [0, %d) (the file's "
                    "num_classes attribute)",
                    path, part, i, ds->labels[i], ds->K);
}

void h5data_read(DataSplit *split, const char *path) {
    h5data_read_first(split, path, 0, 0, &data_alloc_heap);
}

void h5data_read_first(DataSplit *split, const char *path, int train_keep, int test_keep,
                       DataAlloc *alloc) {
    memset(split, 0, sizeof(*split));
    if (access(path, R_OK) != 0) ed_fail("%s: cannot open: %s", path, strerror(errno));
    h5u_quiet(); /* our messages replace HDF5's error stack dump */
    if (H5Fis_hdf5(path) <= 0) ed_fail("%s: not an HDF5 file", path);
    hid_t f = h5u_open_read(path);
    if (f < 0) ed_fail("%s: /: cannot open the file (truncated or damaged?)", path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(split->train.name, sizeof(split->train.name), "%.50s/train", base);
    snprintf(split->test.name, sizeof(split->test.name), "%.50s/test", base);
    Dataset *tr = &split->train, *te = &split->test;
    PartFile pf[2];
    part_shape(tr, &pf[0], f, path, "train", train_keep);
    part_shape(te, &pf[1], f, path, "test", test_keep);
    if (tr->C != te->C || tr->H != te->H || tr->W != te->W || pf[0].u8 != pf[1].u8)
        ed_fail("%s: /test/images (%d x %d x %d %s) do not match /train/images (%d x %d x %d %s)",
                path, te->C, te->H, te->W, pf[1].u8 ? "uint8" : "float", tr->C, tr->H, tr->W,
                pf[0].u8 ? "uint8" : "float");
    /* /views [K, 2, D]: its shape now (the arrays are sized before anything is read), K checked
     * against num_classes once the labels are in */
    int has_views = h5r_has(f, "/views");
    hsize_t vdims[4] = {0};
    if (has_views) {
        int nd;
        H5T_class_t cls;
        size_t tsize;
        H5T_sign_t sign;
        dataset_shape(f, path, "/views", &nd, vdims, &cls, &tsize, &sign);
        if (cls != H5T_FLOAT || nd != 3 || vdims[0] < 1 || vdims[0] > (1 << 24) || vdims[1] != 2 ||
            vdims[2] != (hsize_t)tr->W || tr->H != 1 || pf[0].u8)
            ed_fail("%s: /views: must be float [num_classes, 2, D] with float images "
                    "[N, P, 1, D] (D = %d)",
                    path, tr->W);
    }

    size_t bytes[2][DATA_ARRAYS] = {{0}};
    for (int p = 0; p < 2; p++) {
        Dataset *ds = p ? te : tr;
        size_t n = (size_t)ds->N, per = dataset_sample_floats(ds);
        bytes[p][pf[p].u8 ? DATA_U8 : DATA_F32] = n * per * (pf[p].u8 ? 1 : sizeof(float));
        bytes[p][DATA_LABELS] = n * sizeof(int32_t);
        bytes[p][DATA_TAGS] = pf[p].tags ? n : 0;
        bytes[p][DATA_VIEWS] = has_views ? (size_t)vdims[0] * 2 * vdims[2] * sizeof(float) : 0;
    }
    alloc->arrays(alloc, split, bytes);
    /* one scratch buffer for both parts: the rows of an NHWC read, or a chunk of labels */
    size_t scratch_bytes = H5DATA_LABEL_ROWS * sizeof(int64_t);
    size_t rows_bytes =
        rows_per_read(tr, pf[0].u8) * dataset_sample_floats(tr) * (pf[0].u8 ? 1 : sizeof(float));
    if ((pf[0].nhwc || pf[1].nhwc) && tr->C > 1 && rows_bytes > scratch_bytes)
        scratch_bytes = rows_bytes;
    void *scratch = xmalloc(scratch_bytes);
    part_read(tr, &pf[0], f, path, scratch);
    part_read(te, &pf[1], f, path, scratch);
    free(scratch);

    double num;
    int K;
    if (read_num_attr(f, path, "num_classes", &num)) {
        if (!(num >= 1 && num <= (1 << 24) && num == (int)num))
            ed_fail("%s: attribute num_classes = %g is not a positive integer", path, num);
        K = (int)num;
        tr->K = te->K = K;
        check_labels(tr, path, "train");
        check_labels(te, path, "test");
    } else {
        int at;
        int a = max_label(tr, &at), b = max_label(te, &at);
        K = (a > b ? a : b) + 1;
        if (K < 2) K = 2;
        tr->K = te->K = K;
        warn_empty_classes(tr, te, path, K);
    }

    if (has_views) {
        if (vdims[0] != (hsize_t)K)
            ed_fail("%s: /views: must be float [num_classes=%d, 2, D] with float images "
                    "[N, P, 1, D] (D = %d)",
                    path, K, tr->W);
        read_whole(f, path, "/views", H5T_NATIVE_FLOAT, tr->views, "views");
        memcpy(te->views, tr->views, (size_t)K * 2 * tr->W * sizeof(float));
        tr->D = te->D = tr->W;
    }
    double orth = 0.0, sigma = 0.0;
    read_num_attr(f, path, "orth_noise", &orth);
    read_num_attr(f, path, "noise_sigma", &sigma);
    tr->orth_noise = te->orth_noise = orth != 0.0;
    tr->noise_sigma = te->noise_sigma = tr->orth_noise ? (float)sigma : 0.0f;
    if (H5Fclose(f) < 0) ed_fail("%s: /: cannot close the file", path);
}

/* ---- writing ---- */

static void write_part(H5Writer *w, const Dataset *ds, const char *part) {
    hid_t g = h5w_group(w, w->file, part);
    hsize_t dims[4] = {(hsize_t)ds->N, (hsize_t)ds->C, (hsize_t)ds->H, (hsize_t)ds->W};
    if (ds->u8)
        h5w_dataset(w, g, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, dims, ds->u8);
    else
        h5w_dataset(w, g, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, ds->f32);
    hid_t d = H5Dopen2(g, "images", H5P_DEFAULT);
    if (d < 0) h5w_fail(w, "reopening dataset", "images");
    h5w_attr_str(w, d, "layout", "NCHW");
    H5Dclose(d);
    h5w_dataset(w, g, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, ds->labels);
    if (ds->tags) h5w_dataset(w, g, "tags", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, ds->tags);
    H5Gclose(g);
}

void h5data_write(const DataSplit *split, const DataConfig *cfg, const char *config_text,
                  const char *path) {
    char tmp[ED_PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        ed_fail("%s: output path too long", path);
    H5Writer w;
    h5w_create(&w, tmp, 0);
    hid_t f = w.file;
    const Dataset *tr = &split->train;
    int version = H5DATA_VERSION;
    h5w_attr_str(&w, f, "format", H5DATA_FORMAT);
    h5w_attr(&w, f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version);
    h5w_attr_str(&w, f, "source", config_source_names[cfg->source]);
    h5w_attr(&w, f, "num_classes", H5T_STD_I32LE, H5T_NATIVE_INT, &tr->K);
    if (config_text) h5w_attr_str(&w, f, "config", config_text);
    if (tr->views) {
        const MultiviewConfig *mv = &cfg->multiview;
        int orth = tr->orth_noise;
        float sigma = tr->noise_sigma;
        h5w_attr_str(&w, f, "noise", config_noise_names[mv->noise]);
        h5w_attr_f64(&w, f, "sigma", mv->sigma);
        h5w_attr_i64(&w, f, "seed", mv->seed);
        h5w_attr(&w, f, "orth_noise", H5T_STD_I32LE, H5T_NATIVE_INT, &orth);
        h5w_attr(&w, f, "noise_sigma", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &sigma);
        hsize_t vd[3] = {(hsize_t)tr->K, 2, (hsize_t)tr->D};
        h5w_dataset(&w, f, "views", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, vd, tr->views);
    }
    write_part(&w, &split->train, "train");
    write_part(&w, &split->test, "test");
    h5w_close(&w);
    fs_commit(tmp, path);
}
