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

#define IDX_CHUNK ((size_t)1 << 16) /* bytes dropped or converted per read */

/* An open IDX file whose header has been read; the payload comes next. */
typedef struct {
    gzFile f;
    const char *path;
    int64_t dims[IDX_MAX_DIMS];
} IdxFile;

/* Opens an image file: N x rows x columns. */
static void idx_open_images(IdxFile *x, const char *path) {
    x->path = path;
    x->f = idx_open(path);
    int64_t *dims = x->dims;
    int ndim = idx_header(x->f, path, dims);
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
}

/* Opens a label file: N labels (n_images > 0: must be that many). */
static void idx_open_labels(IdxFile *x, const char *path, int n_images) {
    x->path = path;
    x->f = idx_open(path);
    int ndim = idx_header(x->f, path, x->dims);
    if (ndim != 1)
        ed_fail("%s: wrong dimensions: a label file has 1 (N), this one has %d", path, ndim);
    if (x->dims[0] < 1 || x->dims[0] > INT_MAX)
        ed_fail("%s: wrong dimensions: %lld labels", path, (long long)x->dims[0]);
    if (n_images > 0 && x->dims[0] != n_images)
        ed_fail("%s: %lld labels for %d images", path, (long long)x->dims[0], n_images);
}

/* Reads the n payload bytes the header announces and checks that nothing follows: the first
 * `keep` straight into keep_to, the rest through a small buffer, each chunk of which goes to
 * chunk_fn (NULL: dropped) with the index of its first byte. */
typedef void (*IdxChunkFn)(const IdxFile *x, const uint8_t *bytes, size_t n, size_t first,
                           void *ctx);
static void idx_payload(IdxFile *x, size_t n, void *keep_to, size_t keep, const char *what,
                        IdxChunkFn chunk_fn, void *ctx) {
    size_t got = gz_read_all(x->f, keep_to, keep, x->path);
    if (got == keep && got < n) {
        uint8_t *chunk = xmalloc(IDX_CHUNK);
        while (got < n) {
            size_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
            size_t r = gz_read_all(x->f, chunk, want, x->path);
            if (r < want) { /* truncated: said below, before anything in the chunk */
                got += r;
                break;
            }
            if (chunk_fn) chunk_fn(x, chunk, r, got, ctx);
            got += r;
        }
        free(chunk);
    }
    if (got < n) ed_fail("%s: truncated: expected %zu bytes of %s, got %zu", x->path, n, what, got);
    unsigned char extra;
    if (gz_read_all(x->f, &extra, 1, x->path) != 0)
        ed_fail("%s: malformed: more data after the %zu bytes of %s the header announces", x->path,
                n, what);
    gzclose(x->f);
    x->f = NULL;
}

/* The pixels: the first `keep` images into px, the rest read and dropped. */
static void idx_read_pixels(IdxFile *x, uint8_t *px, int keep) {
    size_t per = (size_t)x->dims[1] * (size_t)x->dims[2];
    idx_payload(x, (size_t)x->dims[0] * per, px, (size_t)keep * per, "pixels", NULL, NULL);
}

typedef struct {
    int K;           /* labels must be below K (0: any) */
    int32_t *labels; /* where the kept ones go, widened to int32 */
    size_t keep;
} LabelSink;

static void label_chunk(const IdxFile *x, const uint8_t *raw, size_t n, size_t first, void *ctx) {
    LabelSink *s = ctx;
    for (size_t j = 0; j < n; j++) {
        size_t i = first + j;
        if (s->K > 0 && raw[j] >= s->K)
            ed_fail("%s: label %d of sample %zu is out of range [0, %d)", x->path, raw[j], i, s->K);
        if (i < s->keep) s->labels[i] = raw[j];
    }
}

/* The labels, every one checked against K (0: unchecked); the first `keep` into labels. */
static void idx_read_label_values(IdxFile *x, int32_t *labels, int keep, int K) {
    LabelSink sink = {K, labels, (size_t)keep};
    idx_payload(x, (size_t)x->dims[0], NULL, 0, "labels", label_chunk, &sink);
}

void idx_read_images(Dataset *ds, const char *path) {
    IdxFile x;
    idx_open_images(&x, path);
    uint8_t *px = xmalloc((size_t)x.dims[0] * (size_t)x.dims[1] * (size_t)x.dims[2]);
    idx_read_pixels(&x, px, (int)x.dims[0]);
    free(ds->u8);
    ds->u8 = px;
    ds->N = (int)x.dims[0];
    ds->C = 1;
    ds->H = (int)x.dims[1];
    ds->W = (int)x.dims[2];
}

void idx_read_labels(Dataset *ds, const char *path) {
    IdxFile x;
    idx_open_labels(&x, path, ds->N);
    int n = (int)x.dims[0];
    int32_t *labels = xmalloc((size_t)n * sizeof(int32_t));
    idx_read_label_values(&x, labels, n, ds->K);
    free(ds->labels);
    ds->labels = labels;
    ds->N = n;
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

/* The two files of one part: names ds, sets K and the shapes (N after keep). */
static void idx_open_part(Dataset *ds, IdxFile files[2], const char *dir, const char *prefix,
                          const char *name, const char *part, int keep,
                          char paths[2][ED_PATH_MAX]) {
    char file[64];
    snprintf(ds->name, sizeof(ds->name), "%s/%s", name, part);
    ds->K = 10;
    snprintf(file, sizeof(file), "%s-images-idx3-ubyte", prefix);
    idx_path(paths[0], ED_PATH_MAX, dir, file);
    idx_open_images(&files[0], paths[0]);
    snprintf(file, sizeof(file), "%s-labels-idx1-ubyte", prefix);
    idx_path(paths[1], ED_PATH_MAX, dir, file);
    idx_open_labels(&files[1], paths[1], (int)files[0].dims[0]);
    ds->N = data_keep((int)files[0].dims[0], keep);
    ds->C = 1;
    ds->H = (int)files[0].dims[1];
    ds->W = (int)files[0].dims[2];
}

void idx_load(DataSplit *split, const char *dir, const char *name, int train_keep, int test_keep,
              DataAlloc *alloc) {
    /* every header first: the shapes size the arrays before a pixel is read */
    IdxFile files[2][2];
    char paths[2][2][ED_PATH_MAX];
    Dataset *parts[2] = {&split->train, &split->test};
    idx_open_part(parts[0], files[0], dir, "train", name, "train", train_keep, paths[0]);
    idx_open_part(parts[1], files[1], dir, "t10k", name, "test", test_keep, paths[1]);
    if (split->test.H != split->train.H || split->test.W != split->train.W)
        ed_fail("%s: test images are %d x %d, training images %d x %d", dir, split->test.H,
                split->test.W, split->train.H, split->train.W);
    size_t bytes[2][DATA_ARRAYS] = {{0}};
    for (int p = 0; p < 2; p++) {
        bytes[p][DATA_U8] = (size_t)parts[p]->N * dataset_sample_floats(parts[p]);
        bytes[p][DATA_LABELS] = (size_t)parts[p]->N * sizeof(int32_t);
    }
    alloc->arrays(alloc, split, bytes);
    for (int p = 0; p < 2; p++) {
        idx_read_pixels(&files[p][0], parts[p]->u8, parts[p]->N);
        idx_read_label_values(&files[p][1], parts[p]->labels, parts[p]->N, parts[p]->K);
    }
}
