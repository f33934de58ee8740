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

int cifar_read_file(Dataset *ds, const char *path, int cifar100, int coarse) {
    const int head = cifar100 ? 2 : 1, rec = head + CIFAR_PIXELS;
    FILE *f = fopen(path, "rb");
    if (!f) ed_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) ed_fail("%s: cannot stat: %s", path, strerror(errno));
    long long size = (long long)st.st_size;
    if (size == 0) ed_fail("%s: empty file (expected %d-byte records)", path, rec);
    if (size % rec != 0)
        ed_fail("%s: truncated: record %lld has %lld of %d bytes (file size %lld is not a whole "
                "number of %d-byte %s records)",
                path, size / rec, size % rec, rec, size, rec, cifar100 ? "CIFAR-100" : "CIFAR-10");
    long long count = size / rec;
    if (count + ds->N > 1 << 30) ed_fail("%s: %lld records is too many", path, count);

    ds->C = 3;
    ds->H = 32;
    ds->W = 32;
    size_t n0 = (size_t)ds->N, n1 = n0 + (size_t)count;
    ds->u8 = xrealloc(ds->u8, n1 * CIFAR_PIXELS);
    ds->labels = xrealloc(ds->labels, n1 * sizeof(int32_t));
    unsigned char *buf = xmalloc((size_t)CIFAR_CHUNK * rec);
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
            size_t i = n0 + (size_t)r;
            ds->labels[i] = label;
            memcpy(ds->u8 + i * CIFAR_PIXELS, p + head, CIFAR_PIXELS);
        }
    }
    free(buf);
    fclose(f);
    ds->N = (int)n1;
    return (int)count;
}

static int file_exists(const char *dir, const char *name) {
    char path[ED_PATH_MAX];
    fs_join(path, sizeof(path), dir, name);
    return access(path, F_OK) == 0;
}

static void cifar_part(Dataset *ds, const char *dir, const char *const *files, int nfiles,
                       int cifar100, int coarse, const char *name, const char *part) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s/%s", name, part);
    ds->K = cifar100 ? (coarse ? 20 : 100) : 10;
    for (int i = 0; i < nfiles; i++) {
        char path[ED_PATH_MAX];
        fs_join(path, sizeof(path), dir, files[i]);
        if (access(path, F_OK) != 0)
            ed_fail("%s: missing batch file (%s needs %s)", path, name,
                    cifar100 ? "train.bin and test.bin"
                             : "data_batch_1.bin .. data_batch_5.bin and test_batch.bin");
        cifar_read_file(ds, path, cifar100, coarse);
    }
}

void cifar_load(DataSplit *split, const char *dir, int cifar100, int coarse) {
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
    if (cifar100) {
        cifar_part(&split->train, dir, c100_train, 1, 1, coarse, name, "train");
        cifar_part(&split->test, dir, c100_test, 1, 1, coarse, name, "test");
    } else {
        cifar_part(&split->train, dir, c10_train, 5, 0, 0, name, "train");
        cifar_part(&split->test, dir, c10_test, 1, 0, 0, name, "test");
    }
}
