/* IDX files (MNIST, Fashion-MNIST), gzip-compressed or plain: zlib's gzread reads both.
 * Format: 0x00 0x00, type byte (0x08 = unsigned byte), number of dimensions, then each dimension
 * as a big-endian uint32, then the data. Every size is checked against what the header says. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_DIMS 4

static gzFile idx_open(const char *path) {
    gzFile f = gzopen(path, "rb");
    if (!f) ed_fail("%s: cannot open: %m", path);
    gzbuffer(f, 1 << 17);
    return f;
}

/* Reads up to n bytes; returns the number read (short only at the end of the data). A gzip
 * stream that is corrupt is an error naming the file. */
static size_t gz_read_all(gzFile f, void *buf, size_t n, const char *path) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        int r = gzread(f, (char *)buf + got, (unsigned)want);
        if (r < 0) {
            int errnum = 0;
            const char *msg = gzerror(f, &errnum);
            size_t pl = strlen(path); /* zlib prefixes its message with the path */
            if (strncmp(msg, path, pl) == 0 && msg[pl] == ':') msg += pl + 2;
            ed_fail("%s: corrupt gzip data: %s", path, msg);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got; /* a truncated gzip stream reads short (zlib's Z_BUF_ERROR) */
}

/* Reads the header; returns the number of dimensions and fills dims. */
static int idx_header(gzFile f, const char *path, int64_t dims[IDX_MAX_DIMS]) {
    unsigned char magic[4];
    size_t got = gz_read_all(f, magic, 4, path);
    if (got < 4) ed_fail("%s: truncated: %zu bytes, shorter than the 4-byte IDX header", path, got);
    if (magic[0] != 0 || magic[1] != 0)
        ed_fail("%s: bad magic 0x%02x%02x%02x%02x: not an IDX file (expected 0x0000 then type and "
                "dimensions)",
                path, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != 0x08)
        ed_fail("%s: unsupported IDX data type 0x%02x (only unsigned byte, 0x08)", path, magic[2]);
    int ndim = magic[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        ed_fail("%s: %d dimensions in the IDX header (expected 1 to %d)", path, ndim, IDX_MAX_DIMS);
    unsigned char raw[4 * IDX_MAX_DIMS];
    got = gz_read_all(f, raw, 4 * (size_t)ndim, path);
    if (got < 4 * (size_t)ndim)
        ed_fail("%s: truncated: header announces %d dimensions, only %zu of %d size bytes present",
                path, ndim, got, 4 * ndim);
    for (int d = 0; d < ndim; d++) {
        const unsigned char *b = raw + 4 * d;
        dims[d] = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | b[3];
    }
    return ndim;
}

/* Reads exactly n payload bytes and checks that nothing follows. */
static void idx_payload(gzFile f, const char *path, void *buf, size_t n, const char *what) {
    size_t got = gz_read_all(f, buf, n, path);
    if (got < n) ed_fail("%s: truncated: expected %zu bytes of %s, got %zu", path, n, what, got);
    unsigned char extra;
    if (gz_read_all(f, &extra, 1, path) != 0)
        ed_fail("%s: malformed: more data after the %zu bytes of %s the header announces", path, n,
                what);
}

void idx_read_images(Dataset *ds, const char *path) {
    gzFile f = idx_open(path);
    int64_t dims[IDX_MAX_DIMS];
    int ndim = idx_header(f, path, dims);
    if (ndim != 3)
        ed_fail("%s: wrong dimensions: an image file has 3 (N, rows, columns), this one has %d",
                path, ndim);
    if (dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || dims[0] > INT_MAX || dims[1] > 65536 ||
        dims[2] > 65536)
        ed_fail("%s: wrong dimensions %lld x %lld x %lld", path, (long long)dims[0],
                (long long)dims[1], (long long)dims[2]);
    size_t n = (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2];
    if (n > ((size_t)1 << 36))
        ed_fail("%s: implausible header: %lld x %lld x %lld images (%zu bytes)", path,
                (long long)dims[0], (long long)dims[1], (long long)dims[2], n);
    uint8_t *px = xmalloc(n);
    idx_payload(f, path, px, n, "pixels");
    gzclose(f);
    free(ds->u8);
    ds->u8 = px;
    ds->N = (int)dims[0];
    ds->C = 1;
    ds->H = (int)dims[1];
    ds->W = (int)dims[2];
}

void idx_read_labels(Dataset *ds, const char *path) {
    gzFile f = idx_open(path);
    int64_t dims[IDX_MAX_DIMS];
    int ndim = idx_header(f, path, dims);
    if (ndim != 1)
        ed_fail("%s: wrong dimensions: a label file has 1 (N), this one has %d", path, ndim);
    if (dims[0] < 1 || dims[0] > INT_MAX)
        ed_fail("%s: wrong dimensions: %lld labels", path, (long long)dims[0]);
    if (ds->N > 0 && dims[0] != ds->N)
        ed_fail("%s: %lld labels for %d images", path, (long long)dims[0], ds->N);
    size_t n = (size_t)dims[0];
    uint8_t *raw = xmalloc(n);
    idx_payload(f, path, raw, n, "labels");
    gzclose(f);
    int32_t *labels = xmalloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        if (ds->K > 0 && raw[i] >= ds->K)
            ed_fail("%s: label %d of sample %zu is out of range [0, %d)", path, raw[i], i, ds->K);
        labels[i] = raw[i];
    }
    free(raw);
    free(ds->labels);
    ds->labels = labels;
    ds->N = (int)n;
}

/* DIR/NAME.gz if it exists, else DIR/NAME; a missing file names both. */
static void idx_path(char *out, size_t size, const char *dir, const char *name) {
    if (snprintf(out, size, "%s/%s.gz", dir, name) >= (int)size)
        ed_fail("%s/%s: path too long", dir, name);
    if (access(out, R_OK) == 0) return;
    snprintf(out, size, "%s/%s", dir, name);
    if (access(out, R_OK) == 0) return;
    ed_fail("%s/%s(.gz): missing (data.path is '%s')", dir, name, dir);
}

static void idx_split(Dataset *ds, const char *dir, const char *prefix, const char *name,
                      const char *part) {
    char path[ED_PATH_MAX], file[64];
    snprintf(ds->name, sizeof(ds->name), "%s/%s", name, part);
    ds->K = 10;
    snprintf(file, sizeof(file), "%s-images-idx3-ubyte", prefix);
    idx_path(path, sizeof(path), dir, file);
    idx_read_images(ds, path);
    snprintf(file, sizeof(file), "%s-labels-idx1-ubyte", prefix);
    idx_path(path, sizeof(path), dir, file);
    idx_read_labels(ds, path);
}

void idx_load(DataSplit *split, const char *dir, const char *name) {
    idx_split(&split->train, dir, "train", name, "train");
    idx_split(&split->test, dir, "t10k", name, "test");
    if (split->test.H != split->train.H || split->test.W != split->train.W)
        ed_fail("%s: test images are %d x %d, training images %d x %d", dir, split->test.H,
                split->test.W, split->train.H, split->train.W);
}
