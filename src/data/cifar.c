/* CIFAR-10 and CIFAR-100 in their official binary format.
 * CIFAR-10 record (3073 bytes): label, then 1024 R, 1024 G, 1024 B (row-major 32 x 32).
 * CIFAR-100 record (3074 bytes): coarse label, fine label, then the same 3072 pixels. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CIFAR_PIXELS 3072
#define CIFAR_CHUNK 1024 /* records read per fread */

/* The number of records in a CIFAR file, from its size (which must be a whole number of them). */
static int cifar_count(const char *path, int cifar100) {
    const int rec = (cifar100 ? 2 : 1) + CIFAR_PIXELS;
    struct stat st;
    if (stat(path, &st) != 0) ed_fail("%s: cannot open: %s", path, strerror(errno));
    long long size = (long long)st.st_size;
    if (size == 0) ed_fail("%s: empty file (expected %d-byte records)", path, rec);
    if (size % rec != 0)
        ed_fail("%s: truncated: record %lld has %lld of %d bytes (file size %lld is not a whole "
                "number of %d-byte %s records)",
                path, size / rec, size % rec, rec, size, rec, cifar100 ? "CIFAR-100" : "CIFAR-10");
    if (size / rec > 1 << 30) ed_fail("%s: %lld records is too many", path, size / rec);
    return (int)(size / rec);
}

/* Reads and checks the `count` records of one file through buf (CIFAR_CHUNK records); record r
 * goes to sample first + r of px and labels when that is below keep, else it is dropped. */
static void cifar_read_records(const char *path, int cifar100, int coarse, int count, int first,
                               int keep, uint8_t *px, int32_t *labels, unsigned char *buf) {
    const int head = cifar100 ? 2 : 1, rec = head + CIFAR_PIXELS;
    FILE *f = fopen(path, "rb");
    if (!f) ed_fail("%s: cannot open: %s", path, strerror(errno));
    for (long long r0 = 0; r0 < count; r0 += CIFAR_CHUNK) {
        size_t nr = (size_t)(count - r0 < CIFAR_CHUNK ? count - r0 : CIFAR_CHUNK);
        size_t got = fread(buf, (size_t)rec, nr, f);
        if (got != nr)
            ed_fail("%s: read error at record %lld: %s", path, r0 + (long long)got,
                    ferror(f) ? strerror(errno) : "file shrank while reading");
        for (size_t j = 0; j < nr; j++) {
            const unsigned char *p = buf + j * rec;
            long long r = r0 + (long long)j;
            int label;
            if (cifar100) {
                if (p[0] >= 20)
                    ed_fail("%s: record %lld: coarse label %d out of range [0, 20)", path, r, p[0]);
                if (p[1] >= 100)
                    ed_fail("%s: record %lld: fine label %d out of range [0, 100)", path, r, p[1]);
                label = coarse ? p[0] : p[1];
            } else {
                if (p[0] >= 10)
                    ed_fail("%s: record %lld: label %d out of range [0, 10)", path, r, p[0]);
                label = p[0];
            }
            long long i = first + r;
            if (i >= keep) continue;
            labels[i] = label;
            memcpy(px + (size_t)i * CIFAR_PIXELS, p + head, CIFAR_PIXELS);
        }
    }
    fclose(f);
}

static int file_exists(const char *dir, const char *name) {
    char path[ED_PATH_MAX];
    fs_join(path, sizeof(path), dir, name);
    return access(path, F_OK) == 0;
}

/* The files of one part: names ds, sets K and the shapes (N after keep), the records per file. */
static void cifar_part(Dataset *ds, int counts[], const char *dir, const char *const *files,
                       int nfiles, int cifar100, int coarse, const char *name, const char *part,
                       int keep) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s/%s", name, part);
    ds->K = cifar100 ? (coarse ? 20 : 100) : 10;
    ds->C = 3;
    ds->H = 32;
    ds->W = 32;
    long long total = 0;
    for (int i = 0; i < nfiles; i++) {
        char path[ED_PATH_MAX];
        fs_join(path, sizeof(path), dir, files[i]);
        if (access(path, F_OK) != 0)
            ed_fail("%s: missing batch file (%s needs %s)", path, name,
                    cifar100 ? "train.bin and test.bin"
                             : "data_batch_1.bin .. data_batch_5.bin and test_batch.bin");
        counts[i] = cifar_count(path, cifar100);
        total += counts[i];
        if (total > 1 << 30) ed_fail("%s: %lld records is too many", path, total);
    }
    ds->N = data_keep((int)total, keep);
}

void cifar_load(DataSplit *split, const char *dir, int cifar100, int coarse, int train_keep,
                int test_keep, DataAlloc *alloc) {
    static const char *const c10_train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                            "data_batch_3.bin", "data_batch_4.bin",
                                            "data_batch_5.bin"};
    static const char *const c10_test[] = {"test_batch.bin"};
    static const char *const c100_train[] = {"train.bin"};
    static const char *const c100_test[] = {"test.bin"};
    /* Accept the folder that holds the extracted official archive as well. */
    char sub[2048];
    const char *first = cifar100 ? "train.bin" : "data_batch_1.bin";
    const char *inner = cifar100 ? "cifar-100-binary" : "cifar-10-batches-bin";
    fs_join(sub, sizeof(sub), dir, inner);
    if (!file_exists(dir, first) && file_exists(sub, first)) dir = sub;
    const char *name = cifar100 ? "cifar100" : "cifar10";
    const char *const *files[2] = {cifar100 ? c100_train : c10_train,
                                   cifar100 ? c100_test : c10_test};
    int nfiles[2] = {cifar100 ? 1 : 5, 1}, keep[2] = {train_keep, test_keep}, counts[2][5];
    Dataset *parts[2] = {&split->train, &split->test};
    const char *part_names[2] = {"train", "test"};
    /* every file's size first: the record counts size the arrays before a record is read */
    size_t bytes[2][DATA_ARRAYS] = {{0}};
    for (int p = 0; p < 2; p++) {
        cifar_part(parts[p], counts[p], dir, files[p], nfiles[p], cifar100, coarse, name,
                   part_names[p], keep[p]);
        bytes[p][DATA_U8] = (size_t)parts[p]->N * CIFAR_PIXELS;
        bytes[p][DATA_LABELS] = (size_t)parts[p]->N * sizeof(int32_t);
    }
    alloc->arrays(alloc, split, bytes);
    unsigned char *buf = xmalloc((size_t)CIFAR_CHUNK * ((cifar100 ? 2 : 1) + CIFAR_PIXELS));
    for (int p = 0; p < 2; p++)
        for (int i = 0, at = 0; i < nfiles[p]; at += counts[p][i], i++) {
            char path[ED_PATH_MAX];
            fs_join(path, sizeof(path), dir, files[p][i]);
            cifar_read_records(path, cifar100, coarse, counts[p][i], at, parts[p]->N, parts[p]->u8,
                               parts[p]->labels, buf);
        }
    free(buf);
}
