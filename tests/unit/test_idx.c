/* IDX reader: small files in the exact MNIST format (gzip and plain) written here; counts, a
 * known pixel and label, limits and normalisation through data_load, and every malformed case
 * (truncated, bad magic, wrong type, wrong dimensions, count mismatch, out-of-range label,
 * trailing data, corrupt gzip, missing file) stopping with status 2 and a message naming the file.
 */
#include "ensdistill/dataset.h"

#include "ensdistill/error.h"
#include "expect_fail.h"
#include <stdarg.h>

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "check.h"

static char dir[512];

/* Writes an IDX file: 4 magic bytes, ndim big-endian dims, then payload (first `len` bytes). */
static void write_idx(const char *path, int gz, const unsigned char magic[4], int ndim,
                      const uint32_t *dims, const unsigned char *payload, size_t len) {
    unsigned char head[4 + 16];
    memcpy(head, magic, 4);
    for (int d = 0; d < ndim; d++) {
        head[4 + 4 * d] = (unsigned char)(dims[d] >> 24);
        head[5 + 4 * d] = (unsigned char)(dims[d] >> 16);
        head[6 + 4 * d] = (unsigned char)(dims[d] >> 8);
        head[7 + 4 * d] = (unsigned char)dims[d];
    }
    size_t hl = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || gzwrite(f, head, (unsigned)hl) != (int)hl ||
            (len && gzwrite(f, payload, (unsigned)len) != (int)len) || gzclose(f) != Z_OK) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(1);
        }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(head, 1, hl, f) != hl || (len && fwrite(payload, 1, len, f) != len)) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(1);
        }
        fclose(f);
    }
}

static const unsigned char IMG_MAGIC[4] = {0, 0, 8, 3}, LAB_MAGIC[4] = {0, 0, 8, 1};

/* N images of 3 x 4, pixel (i, y, x) = (i * 12 + y * 4 + x) * 3 mod 256; label i mod 10. */
static void write_set(const char *d, const char *prefix, int N, int gz) {
    char path[1024];
    unsigned char px[64 * 12], lab[64];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 12; j++)
            px[i * 12 + j] = (unsigned char)((i * 12 + j) * 3);
        lab[i] = (unsigned char)(i % 10);
    }
    uint32_t idims[3] = {(uint32_t)N, 3, 4}, ldims[1] = {(uint32_t)N};
    snprintf(path, sizeof(path), "%s/%s-images-idx3-ubyte%s", d, prefix, gz ? ".gz" : "");
    write_idx(path, gz, IMG_MAGIC, 3, idims, px, (size_t)N * 12);
    snprintf(path, sizeof(path), "%s/%s-labels-idx1-ubyte%s", d, prefix, gz ? ".gz" : "");
    write_idx(path, gz, LAB_MAGIC, 1, ldims, lab, (size_t)N);
}

static void test_good(int gz) {
    char d[700];
    snprintf(d, sizeof(d), "%s/good%d", dir, gz);
    if (mkdir(d, 0700) != 0) {
        perror(d);
        exit(1);
    }
    write_set(d, "train", 20, gz);
    write_set(d, "t10k", 7, gz);
    DataConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.source = SOURCE_MNIST;
    snprintf(cfg.path, sizeof(cfg.path), "%s", d);
    DataSplit s;
    data_load(&s, &cfg);
    EXPECT(s.train.N == 20 && s.test.N == 7, "counts %d %d", s.train.N, s.test.N);
    EXPECT(s.train.C == 1 && s.train.H == 3 && s.train.W == 4 && s.train.K == 10,
           "shape %d %d %d K %d", s.train.C, s.train.H, s.train.W, s.train.K);
    EXPECT(s.train.u8 && !s.train.f32, "train must be held as uint8");
    /* sample 13, row 2, column 1: (13*12 + 9) * 3 mod 256 */
    EXPECT(s.train.u8[13 * 12 + 2 * 4 + 1] == (unsigned char)((13 * 12 + 9) * 3), "pixel %d",
           s.train.u8[13 * 12 + 9]);
    EXPECT(s.train.labels[13] == 3 && s.test.labels[6] == 6, "labels %d %d", s.train.labels[13],
           s.test.labels[6]);
    EXPECT(s.test.id_base == 20 && s.train.id_base == 0, "id_base %lld", (long long)s.test.id_base);
    EXPECT(!s.train.normalize, "normalize must stay off");
    EXPECT(dataset_bytes(&s.train) == 20 * 12 + 20 * 4, "bytes %zu", dataset_bytes(&s.train));
    datasplit_free(&s);

    /* limits and normalisation: mean and std of the first 10 training images, in double */
    cfg.train_limit = 10;
    cfg.test_limit = 3;
    cfg.normalize = 1;
    data_load(&s, &cfg);
    EXPECT(s.train.N == 10 && s.test.N == 3 && s.test.id_base == 10, "limits %d %d base %lld",
           s.train.N, s.test.N, (long long)s.test.id_base);
    double sum = 0, ss = 0;
    for (int j = 0; j < 120; j++)
        sum += ((j * 3) % 256) / 255.0;
    double mean = sum / 120;
    for (int j = 0; j < 120; j++)
        ss += pow(((j * 3) % 256) / 255.0 - mean, 2);
    double sd = sqrt(ss / 120);
    EXPECT(fabs(s.train.mean[0] - mean) < 1e-6 && fabs(s.train.std[0] - sd) < 1e-6,
           "mean %g std %g, expected %g %g", s.train.mean[0], s.train.std[0], mean, sd);
    EXPECT(s.test.normalize && s.test.mean[0] == s.train.mean[0] && s.test.std[0] == s.train.std[0],
           "test set must carry the training statistics");
    float x[12];
    int i1 = 1;
    dataset_make_batch(&s.test, &i1, 1, x, NULL, NULL, NULL);
    float want = (float)((((12 + 5) * 3) % 256 / 255.0 - mean) / sd);
    EXPECT(fabsf(x[5] - want) < 1e-5, "normalised pixel %g, expected %g", x[5], want);
    datasplit_free(&s);
    report("%s IDX files: counts, pixel, labels, limits, normalisation\n", gz ? "gzip" : "plain");
}

/* ---- malformed files: each case writes one file and reads it in a child ---- */
typedef struct {
    char path[1024];
    int labels; /* read as labels (with N preset to `n_images`, K = 10) */
    int n_images;
} ReadArgs;

static void read_file(void *p) {
    ReadArgs *a = p;
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    if (a->labels) {
        ds.N = a->n_images;
        ds.K = 10;
        idx_read_labels(&ds, a->path);
    } else {
        idx_read_images(&ds, a->path);
    }
}

static void load_dir(void *p) {
    DataConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.source = SOURCE_FASHION_MNIST;
    snprintf(cfg.path, sizeof(cfg.path), "%s", (const char *)p);
    DataSplit s;
    data_load(&s, &cfg);
}

static void check_fail(const char *what, const char *name, int gz, const unsigned char magic[4],
                       int ndim, const uint32_t *dims, const unsigned char *payload, size_t len,
                       int labels, int n_images, const char *needle) {
    ReadArgs a = {.labels = labels, .n_images = n_images};
    snprintf(a.path, sizeof(a.path), "%s/%s", dir, name);
    write_idx(a.path, gz, magic, ndim, dims, payload, len);
    char full[1400];
    snprintf(full, sizeof(full), "%s: %s", name, needle); /* the message names the file first */
    expect_fail(what, read_file, &a, ED_EXIT_USER, full);
}

static void test_malformed(void) {
    static unsigned char px[2 * 28 * 28];
    unsigned char lab[4] = {1, 2, 10, 3};
    uint32_t img2[3] = {2, 28, 28};
    check_fail("truncated pixels (gzip)", "trunc-images-idx3-ubyte.gz", 1, IMG_MAGIC, 3, img2, px,
               1234, 0, 0, "truncated: expected 1568 bytes of pixels, got 1234");
    check_fail("truncated pixels (plain)", "trunc-images-idx3-ubyte", 0, IMG_MAGIC, 3, img2, px,
               700, 0, 0, "truncated: expected 1568 bytes of pixels, got 700");
    check_fail("truncated header", "head-images-idx3-ubyte.gz", 1, IMG_MAGIC, 1, img2, NULL, 0, 0,
               0, "truncated: header announces 3 dimensions");
    unsigned char bad[4] = {0x12, 0x34, 8, 3};
    check_fail("bad magic", "magic-images-idx3-ubyte", 0, bad, 3, img2, px, sizeof(px), 0, 0,
               "bad magic");
    unsigned char f32[4] = {0, 0, 0x0d, 3};
    check_fail("wrong data type", "type-images-idx3-ubyte", 0, f32, 3, img2, px, sizeof(px), 0, 0,
               "unsupported IDX data type 0x0d");
    uint32_t flat[2] = {2, 784};
    unsigned char m2[4] = {0, 0, 8, 2};
    check_fail("wrong dims (image file with 2)", "dims-images-idx3-ubyte", 0, m2, 2, flat, px,
               sizeof(px), 0, 0, "wrong dimensions: an image file has 3");
    uint32_t zero[3] = {0, 28, 28};
    check_fail("zero images", "zero-images-idx3-ubyte", 0, IMG_MAGIC, 3, zero, px, 0, 0, 0,
               "wrong dimensions 0 x 28 x 28");
    /* one byte more than the header announces */
    {
        static unsigned char more[2 * 784 + 1];
        ReadArgs a = {0};
        snprintf(a.path, sizeof(a.path), "%s/extra2-images-idx3-ubyte.gz", dir);
        write_idx(a.path, 1, IMG_MAGIC, 3, img2, more, sizeof(more));
        expect_fail("trailing data", read_file, &a, ED_EXIT_USER,
                    "extra2-images-idx3-ubyte.gz: malformed: more data after the 1568 bytes");
    }
    uint32_t l4[1] = {4};
    check_fail("label out of range", "range-labels-idx1-ubyte", 0, LAB_MAGIC, 1, l4, lab, 4, 1, 4,
               "label 10 of sample 2 is out of range [0, 10)");
    check_fail("label count mismatch", "count-labels-idx1-ubyte", 0, LAB_MAGIC, 1, l4, lab, 4, 1, 5,
               "4 labels for 5 images");
    check_fail("truncated labels", "tl-labels-idx1-ubyte.gz", 1, LAB_MAGIC, 1, l4, lab, 3, 1, 4,
               "truncated: expected 4 bytes of labels, got 3");
    check_fail("labels with 3 dims", "ld-labels-idx1-ubyte", 0, IMG_MAGIC, 3, img2, px, sizeof(px),
               1, 2, "wrong dimensions: a label file has 1");

    /* corrupt gzip: damage the deflate stream of a valid file */
    {
        ReadArgs a = {0};
        snprintf(a.path, sizeof(a.path), "%s/crc-images-idx3-ubyte.gz", dir);
        static unsigned char noise[2 * 784];
        for (size_t i = 0; i < sizeof(noise); i++)
            noise[i] = (unsigned char)(i * 7919 >> 3);
        write_idx(a.path, 1, IMG_MAGIC, 3, img2, noise, sizeof(noise));
        FILE *f = fopen(a.path, "r+b");
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size - 6, SEEK_SET); /* inside the CRC32 trailer */
        fputc(0x55, f);
        fputc(0xAA, f);
        fclose(f);
        expect_fail("corrupt gzip (bad CRC)", read_file, &a, ED_EXIT_USER,
                    "crc-images-idx3-ubyte.gz: corrupt gzip data: incorrect data check");
    }
    /* a missing file in a directory: names the file and data.path */
    {
        char d[700];
        snprintf(d, sizeof(d), "%s/missing", dir);
        if (mkdir(d, 0700) != 0) exit(1);
        write_set(d, "train", 3, 1);
        char needle[1024];
        snprintf(needle, sizeof(needle), "%s/t10k-images-idx3-ubyte(.gz): missing", d);
        expect_fail("missing test file", load_dir, d, ED_EXIT_USER, needle);
    }
}

int main(void) {
    test_tmpdir(dir, sizeof(dir), "idx");
    test_good(1);
    test_good(0);
    test_malformed();
    test_rmdir(dir);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all IDX tests passed\n");
    return 0;
}
