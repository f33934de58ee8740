/* CIFAR-10 / CIFAR-100 binary readers on small files written here in exactly the official
 * format (3073-byte records: label, R, G, B planes; 3074-byte: coarse, fine, pixels): counts,
 * known pixels and labels, fine / coarse labels, the official sub-folder; and the malformed
 * cases (truncated record, out-of-range label, missing batch file, empty file, bad labels key). */
#include "ensdistill/dataset.h"

#include "ensdistill/error.h"
#include "expect_fail.h"
#include <stdarg.h>

#include <stdint.h>
#include <sys/stat.h>

#include "check.h"

static char dir[512];

static uint8_t pixel_of(int file, int rec, int j) {
    return (uint8_t)(file * 31 + rec * 7 + j * 3);
}
static int label10(int file, int rec) {
    return (file + rec) % 10;
}

/* Writes n records; file tags the pixel pattern. bad_rec gets label bad_label (-1: none);
 * cut bytes are removed from the end. */
static void write_cifar(const char *path, int cifar100, int file, int n, int bad_rec, int bad_label,
                        int cut) {
    int rec = cifar100 ? 3074 : 3073;
    unsigned char *buf = calloc((size_t)n, (size_t)rec);
    for (int r = 0; r < n; r++) {
        unsigned char *p = buf + (size_t)r * rec;
        if (cifar100) {
            p[0] = (unsigned char)(r % 20);
            p[1] = (unsigned char)((r * 13 + file) % 100);
        } else {
            p[0] = (unsigned char)label10(file, r);
        }
        if (r == bad_rec) p[cifar100 && bad_label >= 100] = (unsigned char)bad_label; /* fine: 1 */
        for (int j = 0; j < 3072; j++)
            p[(cifar100 ? 2 : 1) + j] = pixel_of(file, r, j);
    }
    FILE *f = fopen(path, "wb");
    size_t len = (size_t)n * rec - (size_t)cut;
    if (!f || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    free(buf);
}

static const int counts10[5] = {3, 2, 4, 1, 2};

static void make_cifar10(const char *d) {
    char path[1024];
    if (mkdir(d, 0700) != 0) {
        perror(d);
        exit(1);
    }
    for (int b = 0; b < 5; b++) {
        snprintf(path, sizeof(path), "%s/data_batch_%d.bin", d, b + 1);
        write_cifar(path, 0, b, counts10[b], -1, 0, 0);
    }
    snprintf(path, sizeof(path), "%s/test_batch.bin", d);
    write_cifar(path, 0, 9, 5, -1, 0, 0);
}

static void cfg_for(DataConfig *cfg, DataSource source, const char *path, LabelSet labels) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->source = source;
    snprintf(cfg->path, sizeof(cfg->path), "%s", path);
    cfg->labels = labels;
}

static void test_cifar10(void) {
    char d[700];
    snprintf(d, sizeof(d), "%s/c10", dir);
    make_cifar10(d);
    DataConfig cfg;
    cfg_for(&cfg, SOURCE_CIFAR10, d, LABELS_FINE);
    DataSplit s;
    data_load(&s, &cfg);
    EXPECT(s.train.N == 12 && s.test.N == 5, "counts %d %d", s.train.N, s.test.N);
    EXPECT(s.train.C == 3 && s.train.H == 32 && s.train.W == 32 && s.train.K == 10,
           "shape %d %d %d K %d", s.train.C, s.train.H, s.train.W, s.train.K);
    /* training sample 7 is record 2 of data_batch_3 (3 + 2 records before it) */
    int i = 7, file = 2, rec = 2;
    size_t j = 1024 + 5 * 32 + 17; /* green, row 5, column 17 */
    EXPECT(s.train.u8[(size_t)i * 3072 + j] == pixel_of(file, rec, (int)j), "pixel %d, want %d",
           s.train.u8[(size_t)i * 3072 + j], pixel_of(file, rec, (int)j));
    EXPECT(s.train.labels[i] == label10(file, rec), "label %d want %d", s.train.labels[i],
           label10(file, rec));
    EXPECT(s.train.labels[11] == label10(4, 1), "last train label %d", s.train.labels[11]);
    EXPECT(s.test.labels[4] == label10(9, 4) && s.test.u8[4 * 3072 + 3071] == pixel_of(9, 4, 3071),
           "test sample 4");
    EXPECT(dataset_bytes(&s.train) == 12 * 3072 + 12 * 4, "bytes %zu", dataset_bytes(&s.train));
    datasplit_free(&s);

    /* the folder holding the official archive's cifar-10-batches-bin/ works too */
    char parent[700], sub[800];
    snprintf(parent, sizeof(parent), "%s/archive", dir);
    mkdir(parent, 0700);
    snprintf(sub, sizeof(sub), "%s/cifar-10-batches-bin", parent);
    make_cifar10(sub);
    cfg_for(&cfg, SOURCE_CIFAR10, parent, LABELS_FINE);
    data_load(&s, &cfg);
    EXPECT(s.train.N == 12 && s.test.N == 5, "archive folder: counts %d %d", s.train.N, s.test.N);
    datasplit_free(&s);
    report("CIFAR-10: counts, pixel, labels, archive folder\n");
}

static void test_cifar100(void) {
    char d[700], path[1024];
    snprintf(d, sizeof(d), "%s/c100", dir);
    mkdir(d, 0700);
    snprintf(path, sizeof(path), "%s/train.bin", d);
    write_cifar(path, 1, 1, 6, -1, 0, 0);
    snprintf(path, sizeof(path), "%s/test.bin", d);
    write_cifar(path, 1, 2, 3, -1, 0, 0);
    DataConfig cfg;
    cfg_for(&cfg, SOURCE_CIFAR100, d, LABELS_FINE);
    DataSplit s;
    data_load(&s, &cfg);
    EXPECT(s.train.N == 6 && s.test.N == 3 && s.train.K == 100, "fine: N %d %d K %d", s.train.N,
           s.test.N, s.train.K);
    EXPECT(s.train.labels[5] == (5 * 13 + 1) % 100, "fine label %d", s.train.labels[5]);
    EXPECT(s.train.u8[5 * 3072 + 2048] == pixel_of(1, 5, 2048), "cifar100 pixel");
    datasplit_free(&s);
    cfg_for(&cfg, SOURCE_CIFAR100, d, LABELS_COARSE);
    data_load(&s, &cfg);
    EXPECT(s.train.K == 20 && s.test.K == 20, "coarse K %d", s.train.K);
    EXPECT(s.train.labels[5] == 5 && s.test.labels[2] == 2, "coarse labels %d %d",
           s.train.labels[5], s.test.labels[2]);
    datasplit_free(&s);
    report("CIFAR-100: fine and coarse labels, pixel\n");
}

/* ---- malformed ---- */
static void load_cfg(void *p) {
    DataSplit s;
    data_load(&s, (const DataConfig *)p);
}

static void fail_case(const char *what, DataSource source, const char *d, LabelSet labels,
                      const char *needle) {
    DataConfig cfg;
    cfg_for(&cfg, source, d, labels);
    expect_fail(what, load_cfg, &cfg, ED_EXIT_USER, needle);
}

static void test_malformed(void) {
    char d[700], path[1024], needle[1400];
    /* truncated: data_batch_2.bin loses 100 bytes of its last record */
    snprintf(d, sizeof(d), "%s/trunc", dir);
    make_cifar10(d);
    snprintf(path, sizeof(path), "%s/data_batch_2.bin", d);
    write_cifar(path, 0, 1, 2, -1, 0, 100);
    snprintf(needle, sizeof(needle), "%s: truncated: record 1 has 2973 of 3073 bytes", path);
    fail_case("truncated batch file", SOURCE_CIFAR10, d, LABELS_FINE, needle);

    /* out-of-range label in record 3 of data_batch_3.bin */
    snprintf(d, sizeof(d), "%s/label", dir);
    make_cifar10(d);
    snprintf(path, sizeof(path), "%s/data_batch_3.bin", d);
    write_cifar(path, 0, 2, 4, 3, 10, 0);
    snprintf(needle, sizeof(needle), "%s: record 3: label 10 out of range [0, 10)", path);
    fail_case("out-of-range label", SOURCE_CIFAR10, d, LABELS_FINE, needle);

    /* missing batch file */
    snprintf(d, sizeof(d), "%s/missing", dir);
    make_cifar10(d);
    snprintf(path, sizeof(path), "%s/data_batch_4.bin", d);
    unlink(path);
    snprintf(needle, sizeof(needle), "%s: missing batch file", path);
    fail_case("missing batch file", SOURCE_CIFAR10, d, LABELS_FINE, needle);

    /* empty test file */
    snprintf(d, sizeof(d), "%s/empty", dir);
    make_cifar10(d);
    snprintf(path, sizeof(path), "%s/test_batch.bin", d);
    FILE *f = fopen(path, "wb");
    fclose(f);
    snprintf(needle, sizeof(needle), "%s: empty file", path);
    fail_case("empty file", SOURCE_CIFAR10, d, LABELS_FINE, needle);

    /* CIFAR-100: fine label 100, coarse label 20, truncated, bad labels key */
    snprintf(d, sizeof(d), "%s/c100bad", dir);
    mkdir(d, 0700);
    snprintf(path, sizeof(path), "%s/test.bin", d);
    write_cifar(path, 1, 2, 3, -1, 0, 0);
    snprintf(path, sizeof(path), "%s/train.bin", d);
    write_cifar(path, 1, 1, 6, 4, 100, 0);
    snprintf(needle, sizeof(needle), "%s: record 4: fine label 100 out of range [0, 100)", path);
    fail_case("fine label out of range", SOURCE_CIFAR100, d, LABELS_FINE, needle);
    write_cifar(path, 1, 1, 6, 2, 20, 0);
    snprintf(needle, sizeof(needle), "%s: record 2: coarse label 20 out of range [0, 20)", path);
    fail_case("coarse label out of range", SOURCE_CIFAR100, d, LABELS_COARSE, needle);
    write_cifar(path, 1, 1, 6, -1, 0, 3074 + 1);
    snprintf(needle, sizeof(needle), "%s: truncated: record 4 has 3073 of 3074 bytes", path);
    fail_case("truncated CIFAR-100", SOURCE_CIFAR100, d, LABELS_FINE, needle);
    write_cifar(path, 1, 1, 6, -1, 0, 0);
    /* a CIFAR-10 file read as CIFAR-100: 3073-byte records are not 3074-byte ones */
    snprintf(path, sizeof(path), "%s/train.bin", d);
    write_cifar(path, 0, 1, 6, -1, 0, 0);
    snprintf(needle, sizeof(needle), "%s: truncated: record 5 has 3068 of 3074 bytes", path);
    fail_case("CIFAR-10 file as CIFAR-100", SOURCE_CIFAR100, d, LABELS_FINE, needle);
}

int main(void) {
    test_tmpdir(dir, sizeof(dir), "cifar");
    test_cifar10();
    test_cifar100();
    test_malformed();
    test_rmdir(dir);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all CIFAR tests passed\n");
    return 0;
}
