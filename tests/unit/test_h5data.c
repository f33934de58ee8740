/* The generic HDF5 data set: h5data_write then source "hdf5" gives back an identical Dataset
 * (multi-view with orth and gauss noise, uint8 images with normalisation); files written with the
 * HDF5 C API in other layouts (NHWC with a fixed-length string attribute, [N, H, W], int64 and
 * uint16 labels, no num_classes) and by h5py as the README shows; and every malformed case
 * stopping with status 2 and a message naming the file and the dataset. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "expect_fail.h"

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>

#include "check.h"

static char dir[512];

/* Every field of two data sets except the name; prints the first difference. */
static int same_dataset(const Dataset *a, const Dataset *b, const char *what) {
    char diff[256] = "";
    size_t n = (size_t)a->N * dataset_sample_floats(a);
    if (a->N != b->N || a->C != b->C || a->H != b->H || a->W != b->W || a->K != b->K)
        snprintf(diff, sizeof(diff), "shape %d %d %d %d K %d vs %d %d %d %d K %d", a->N, a->C, a->H,
                 a->W, a->K, b->N, b->C, b->H, b->W, b->K);
    else if ((a->u8 == NULL) != (b->u8 == NULL) || (a->f32 == NULL) != (b->f32 == NULL))
        snprintf(diff, sizeof(diff), "storage type");
    else if (a->u8 && memcmp(a->u8, b->u8, n) != 0)
        snprintf(diff, sizeof(diff), "uint8 pixels");
    else if (a->f32 && memcmp(a->f32, b->f32, n * sizeof(float)) != 0)
        snprintf(diff, sizeof(diff), "float pixels");
    else if (memcmp(a->labels, b->labels, (size_t)a->N * sizeof(int32_t)) != 0)
        snprintf(diff, sizeof(diff), "labels");
    else if ((a->tags == NULL) != (b->tags == NULL) ||
             (a->tags && memcmp(a->tags, b->tags, (size_t)a->N) != 0))
        snprintf(diff, sizeof(diff), "tags");
    else if ((a->views == NULL) != (b->views == NULL) || a->D != b->D ||
             (a->views && memcmp(a->views, b->views, (size_t)a->K * 2 * a->D * 4) != 0))
        snprintf(diff, sizeof(diff), "views or D (%d vs %d)", a->D, b->D);
    else if (a->orth_noise != b->orth_noise || a->noise_sigma != b->noise_sigma)
        snprintf(diff, sizeof(diff), "orth noise %d %g vs %d %g", a->orth_noise, a->noise_sigma,
                 b->orth_noise, b->noise_sigma);
    else if (a->normalize != b->normalize || memcmp(a->mean, b->mean, sizeof(a->mean)) != 0 ||
             memcmp(a->std, b->std, sizeof(a->std)) != 0)
        snprintf(diff, sizeof(diff), "normalisation");
    else if (a->id_base != b->id_base)
        snprintf(diff, sizeof(diff), "id_base %lld vs %lld", (long long)a->id_base,
                 (long long)b->id_base);
    EXPECT(!diff[0], "%s: %s differ", what, diff);
    if (diff[0]) return 0;
    return 1;
}

static DataConfig mv_config(NoiseKind noise) {
    DataConfig c;
    memset(&c, 0, sizeof(c));
    c.source = SOURCE_MULTIVIEW;
    MultiviewConfig *m = &c.multiview;
    m->k = 5, m->d = 16, m->patches = 6, m->patches_per_view = 1, m->n_train = 200, m->n_test = 50,
    m->mu = 0.2, m->view_lo = 1, m->view_hi = 1.3, m->weak_scale = 0.05, m->off_prob = 0.3,
    m->off_mv_lo = 0.4, m->off_mv_hi = 0.6, m->off_sv_lo = 0.05, m->off_sv_hi = 0.15,
    m->sigma = 1.3, m->seed = 3;
    m->noise = noise;
    c.normalize = 1;
    return c;
}

static void roundtrip(const DataConfig *cfg, const DataSplit *orig, const char *file,
                      const char *what) {
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    h5data_write(orig, cfg, "name: test\n", path);
    char tmp[720];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    EXPECT(access(tmp, F_OK) != 0, "%s left behind", tmp);
    DataConfig rc;
    memset(&rc, 0, sizeof(rc));
    rc.source = SOURCE_HDF5;
    snprintf(rc.path, sizeof(rc.path), "%s", path);
    rc.normalize = cfg->normalize;
    DataSplit back;
    data_load(&back, &rc);
    same_dataset(&orig->train, &back.train, what);
    same_dataset(&orig->test, &back.test, what);
    report("round trip %s: identical Dataset (train %d, test %d)\n", what, back.train.N,
           back.test.N);
    datasplit_free(&back);
}

static void test_roundtrips(void) {
    DataConfig cfg = mv_config(NOISE_ORTH);
    DataSplit s;
    data_load(&s, &cfg);
    roundtrip(&cfg, &s, "mv-orth.h5", "multiview orth");
    datasplit_free(&s);
    cfg = mv_config(NOISE_GAUSS);
    cfg.multiview.feature_noise = 0.1;
    data_load(&s, &cfg);
    roundtrip(&cfg, &s, "mv-gauss.h5", "multiview gauss");
    datasplit_free(&s);
    cfg.train_limit = 20;
    data_load(&s, &cfg);
    roundtrip(&cfg, &s, "mv-limit.h5", "multiview with train_limit");
    datasplit_free(&s);
    cfg.source = SOURCE_TOY2;
    cfg.train_limit = 0;
    data_load(&s, &cfg);
    roundtrip(&cfg, &s, "toy2.h5", "toy2");
    datasplit_free(&s);

    /* uint8 images, normalised on load (statistics recomputed from the same pixels) */
    DataSplit u;
    memset(&u, 0, sizeof(u));
    Dataset *parts[2] = {&u.train, &u.test};
    for (int p = 0; p < 2; p++) {
        Dataset *d = parts[p];
        d->N = p ? 7 : 30, d->C = 3, d->H = 4, d->W = 5, d->K = 4;
        d->u8 = xmalloc((size_t)d->N * 60);
        d->labels = xmalloc((size_t)d->N * 4);
        for (int i = 0; i < d->N * 60; i++)
            d->u8[i] = (uint8_t)(i * 13 + p);
        for (int i = 0; i < d->N; i++)
            d->labels[i] = (i + p) % 4;
    }
    u.test.id_base = 30;
    DataConfig ucfg;
    memset(&ucfg, 0, sizeof(ucfg));
    ucfg.source = SOURCE_CIFAR10;
    ucfg.normalize = 1;
    dataset_compute_normalization(&u.train, &u.test);
    roundtrip(&ucfg, &u, "u8.h5", "uint8 images, normalised");
    datasplit_free(&u);
}

/* ---- files written here with the HDF5 C API ---- */
static void put(hid_t loc, const char *name, hid_t type, int nd, const hsize_t *dims,
                const void *data) {
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        fprintf(stderr, "cannot write %s\n", name);
        exit(1);
    }
    H5Dclose(d);
    H5Sclose(sp);
}

static void put_fixed_str_attr(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, value);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

/* Variants of a small file: images NHWC uint8 [N, 4, 5, 3] with pixel (n, y, x, c) = n*60 +
 * y*15 + x*3 + c, int64 labels n % 3. Each `bad` value breaks one thing. */
enum {
    OK_NHWC,
    OK_NHW,
    BAD_LAYOUT,
    BAD_NO_TEST,
    BAD_NO_LABELS,
    BAD_LABEL_LEN,
    BAD_FLOAT_LABELS,
    BAD_INT16_IMAGES,
    BAD_LABEL_RANGE,
    BAD_RANK2,
    BAD_MISMATCH,
    BAD_NEG_LABEL,
    STRAY_LABEL /* one training label 255, no num_classes: a warning, K = 256 */
};

static void write_variant(const char *path, int bad) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) exit(1);
    for (int p = 0; p < 2; p++) {
        if (p == 1 && bad == BAD_NO_TEST) break;
        hid_t g = H5Gcreate2(f, p ? "test" : "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        int N = p ? 4 : 6;
        uint8_t px[6 * 60];
        for (int i = 0; i < N * 60; i++)
            px[i] = (uint8_t)(i + 7 * p);
        int W = (bad == BAD_MISMATCH && p == 1) ? 4 : 5;
        hsize_t dims[4] = {(hsize_t)N, 4, (hsize_t)W, 3};
        if (bad == OK_NHW) {
            hsize_t d3[3] = {(hsize_t)N, 4, 15};
            put(g, "images", H5T_NATIVE_UINT8, 3, d3, px);
        } else if (bad == BAD_INT16_IMAGES) {
            int16_t s[6 * 60] = {0};
            put(g, "images", H5T_NATIVE_INT16, 4, dims, s);
        } else if (bad == BAD_RANK2) {
            hsize_t d2[2] = {(hsize_t)N, 60};
            put(g, "images", H5T_NATIVE_UINT8, 2, d2, px);
        } else {
            put(g, "images", H5T_NATIVE_UINT8, 4, dims, px);
        }
        if (bad != OK_NHW && bad != BAD_RANK2) {
            hid_t d = H5Dopen2(g, "images", H5P_DEFAULT);
            put_fixed_str_attr(d, "layout", bad == BAD_LAYOUT ? "NWHC" : "NHWC");
            H5Dclose(d);
        }
        int64_t lab[6];
        for (int i = 0; i < N; i++)
            lab[i] = i % 3;
        if (bad == BAD_LABEL_RANGE && p == 1) lab[2] = 3;
        if (bad == BAD_NEG_LABEL && p == 0) lab[4] = -1;
        if (bad == STRAY_LABEL && p == 0) lab[3] = 255;
        hsize_t ln = (hsize_t)(bad == BAD_LABEL_LEN ? N - 1 : N);
        if (bad == BAD_FLOAT_LABELS) {
            float fl[6] = {0};
            put(g, "labels", H5T_NATIVE_FLOAT, 1, &ln, fl);
        } else if (bad != BAD_NO_LABELS) {
            put(g, "labels", H5T_NATIVE_INT64, 1, &ln, lab);
        }
        H5Gclose(g);
    }
    if (bad == BAD_LABEL_RANGE) {
        int k = 3;
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "num_classes", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &k);
        H5Aclose(a);
        H5Sclose(sp);
    }
    H5Fclose(f);
}

static void load_path(void *p) {
    DataConfig c;
    memset(&c, 0, sizeof(c));
    c.source = SOURCE_HDF5;
    snprintf(c.path, sizeof(c.path), "%s", (const char *)p);
    DataSplit s;
    data_load(&s, &c);
}

static void test_layouts(void) {
    char path[700];
    snprintf(path, sizeof(path), "%s/nhwc.h5", dir);
    write_variant(path, OK_NHWC);
    DataSplit s;
    h5data_read(&s, path);
    EXPECT(s.train.N == 6 && s.train.C == 3 && s.train.H == 4 && s.train.W == 5 && s.test.N == 4,
           "NHWC shape %d %d %d %d", s.train.N, s.train.C, s.train.H, s.train.W);
    EXPECT(s.train.K == 3, "K from max label + 1: %d", s.train.K);
    /* (n=2, c=1, y=3, x=4) comes from NHWC offset 2*60 + 3*15 + 4*3 + 1 */
    EXPECT(s.train.u8[((2 * 3 + 1) * 4 + 3) * 5 + 4] == (uint8_t)(2 * 60 + 3 * 15 + 4 * 3 + 1),
           "NHWC transposition: %d", s.train.u8[((2 * 3 + 1) * 4 + 3) * 5 + 4]);
    EXPECT(s.test.u8[((1 * 3 + 2) * 4 + 0) * 5 + 1] == (uint8_t)(60 + 3 + 2 + 7), "test NHWC");
    EXPECT(s.train.labels[5] == 2 && !s.train.tags && !s.train.views && !s.train.orth_noise,
           "labels / optional parts");
    datasplit_free(&s);
    snprintf(path, sizeof(path), "%s/nhw.h5", dir);
    write_variant(path, OK_NHW);
    h5data_read(&s, path);
    EXPECT(s.train.C == 1 && s.train.H == 4 && s.train.W == 15 && s.train.u8[61] == 61,
           "[N, H, W] images: C %d H %d W %d", s.train.C, s.train.H, s.train.W);
    datasplit_free(&s);
    report("NHWC with a fixed-length layout attribute, [N, H, W] images, int64 labels, K from "
           "labels\n");

    /* The first rows only, by hyperslab: the same samples as the whole read's first rows. */
    snprintf(path, sizeof(path), "%s/nhwc.h5", dir);
    DataSplit all, first;
    h5data_read(&all, path);
    h5data_read_first(&first, path, 4, 3, &data_alloc_heap);
    size_t per = (size_t)all.train.C * all.train.H * all.train.W;
    EXPECT(first.train.N == 4 && first.test.N == 3 && first.train.K == all.train.K,
           "first rows: N %d / %d, K %d", first.train.N, first.test.N, first.train.K);
    EXPECT(memcmp(first.train.u8, all.train.u8, 4 * per) == 0 &&
               memcmp(first.test.u8, all.test.u8, 3 * per) == 0 &&
               memcmp(first.train.labels, all.train.labels, 4 * sizeof(int32_t)) == 0,
           "first rows differ from the whole read's");
    datasplit_free(&first);
    h5data_read_first(&first, path, 100, 0, &data_alloc_heap); /* more than the file holds: all of it */
    EXPECT(first.train.N == all.train.N && first.test.N == all.test.N, "limit above N: %d %d",
           first.train.N, first.test.N);
    datasplit_free(&first);
    datasplit_free(&all);
    report("h5data_read_first: the first rows by hyperslab, a limit above N reads all\n");

    static const struct {
        int bad;
        const char *what, *needle;
    } cases[] = {
        {BAD_LAYOUT, "bad layout attribute",
         "/train/images: attribute layout must be \"NCHW\" or "
         "\"NHWC\", got \"NWHC\""},
        {BAD_NO_TEST, "missing /test", "/test: missing group"},
        {BAD_NO_LABELS, "missing labels", "/train/labels: missing dataset"},
        {BAD_LABEL_LEN, "labels of the wrong length", "/train/labels: labels must be [6]"},
        {BAD_FLOAT_LABELS, "float labels", "/train/labels: labels must be integers"},
        {BAD_INT16_IMAGES, "int16 images", "/train/images: images must be uint8 or float32"},
        {BAD_LABEL_RANGE, "label >= num_classes",
         "/test/labels[2]: label 3 is out of range [0, 3) (the file's num_classes attribute)"},
        {BAD_NEG_LABEL, "negative label", "/train/labels: label -1 of sample 4 is out of range"},
        {BAD_RANK2, "2-D images", "/train/images: images have 2 dimensions"},
        {BAD_MISMATCH, "test shape differs", "/test/images (3 x 4 x 4 uint8) do not match"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(path, sizeof(path), "%s/bad%zu.h5", dir, i);
        write_variant(path, cases[i].bad);
        char needle[1200];
        snprintf(needle, sizeof(needle), "%s: %s", path, cases[i].needle);
        expect_fail(cases[i].what, load_path, path, ED_EXIT_USER, needle);
    }
    /* Without num_classes, one stray label: K = 256 with a warning that names the label, where
     * it is and the classes without a training sample (issue 20, point 7) */
    snprintf(path, sizeof(path), "%s/stray.h5", dir);
    write_variant(path, STRAY_LABEL);
    char warning[1200];
    snprintf(warning, sizeof(warning),
             "%s: no num_classes attribute, so the number of classes is the largest label + 1 = "
             "256 (label 255, /train/labels[3]); 252 of these classes have no training sample "
             "(3-254)",
             path);
    expect_fail("a stray label 255 without num_classes", load_path, path, 0, warning);
    DataSplit stray;
    h5data_read(&stray, path);
    EXPECT(stray.train.K == 256, "K = %d with a stray label 255", stray.train.K);
    datasplit_free(&stray);
    report("a stray label without num_classes: K = largest + 1, warned naming it and the empty "
           "classes\n");

    snprintf(path, sizeof(path), "%s/text.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    char needle[1200];
    snprintf(needle, sizeof(needle), "%s: not an HDF5 file", path);
    expect_fail("not an HDF5 file", load_path, path, ED_EXIT_USER, needle);
    /* a data file cut in half: HDF5 refuses it, the message names the file */
    char full[700];
    snprintf(full, sizeof(full), "%s/mv-orth.h5", dir);
    snprintf(path, sizeof(path), "%s/cut.h5", dir);
    FILE *in = fopen(full, "rb"), *out = fopen(path, "wb");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *buf = xmalloc((size_t)size);
    if (fread(buf, 1, (size_t)size, in) != (size_t)size) exit(1);
    fwrite(buf, 1, (size_t)size / 2, out);
    fclose(in);
    fclose(out);
    free(buf);
    snprintf(needle, sizeof(needle), "%s: ", path);
    expect_fail("truncated HDF5 file", load_path, path, ED_EXIT_USER, needle);
    snprintf(path, sizeof(path), "%s/absent.h5", dir);
    snprintf(needle, sizeof(needle), "%s: cannot open", path);
    expect_fail("missing file", load_path, path, ED_EXIT_USER, needle);
    reported = failures;
}

/* The README's h5py example, run by Debian's python3 (skipped if h5py is missing). */
static void test_h5py(void) {
    const char *py = getenv("ED_PYTHON");
    if (!py || !py[0]) py = "/usr/bin/python3";
    char path[700], cmd[2400];
    snprintf(path, sizeof(path), "%s/h5py.h5", dir);
    snprintf(cmd, sizeof(cmd),
             "%s -c 'import h5py, numpy as np\n"
             "with h5py.File(\"%s\", \"w\") as f:\n"
             "    for part, n in ((\"train\", 50), (\"test\", 10)):\n"
             "        x = np.arange(n * 8 * 8 * 3, dtype=np.uint8).reshape(n, 8, 8, 3)\n"
             "        f[part + \"/images\"] = x\n"
             "        f[part + \"/images\"].attrs[\"layout\"] = \"NHWC\"\n"
             "        f[part + \"/labels\"] = np.arange(n) %% 10\n"
             "    f.attrs[\"num_classes\"] = 10\n' 2>&1",
             py, path);
    if (system(cmd) != 0) {
        printf("SKIP h5py example: %s with h5py and numpy did not run\n", py);
        return;
    }
    DataSplit s;
    h5data_read(&s, path);
    EXPECT(s.train.N == 50 && s.test.N == 10 && s.train.C == 3 && s.train.H == 8 &&
               s.train.W == 8 && s.train.K == 10,
           "h5py file: N %d C %d H %d W %d K %d", s.train.N, s.train.C, s.train.H, s.train.W,
           s.train.K);
    /* (n=1, c=2, y=0, x=1): NHWC offset 1*192 + 0 + 1*3 + 2 = 197 */
    EXPECT(s.train.u8[(1 * 3 + 2) * 64 + 1] == 197 && s.train.labels[13] == 3,
           "h5py file: pixel %d label %d", s.train.u8[(1 * 3 + 2) * 64 + 1], s.train.labels[13]);
    datasplit_free(&s);
    report("h5py-written NHWC file (variable-length string attribute, int64 labels)\n");
}

int main(void) {
    test_tmpdir(dir, sizeof(dir), "h5data");
    test_roundtrips();
    test_layouts();
    test_h5py();
    test_rmdir(dir);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all HDF5 data tests passed\n");
    return 0;
}
