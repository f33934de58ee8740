/* The HDF5 helpers every module shares (see h5file.h): checked attribute and dataset writes
 * that stop naming the file, quiet reads that return an error code, whole-file verification. */
#include "ensdistill/h5file.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK_BYTES_MAX (1u << 20)

void h5u_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

hid_t h5u_fapl(void) {
    hid_t fapl = H5_CHECK(H5Pcreate(H5P_FILE_ACCESS));
    /* The 1.8+ format checksums superblock, object headers and group structures, so damaged
     * metadata is detected like damaged data. h5py reads it. */
    H5_CHECK(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
    H5_CHECK(H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
#if H5_VERSION_GE(1, 10, 7)
    /* A file is written once under a temporary name and renamed, never changed in place, so
     * HDF5's flock() protects nothing here, and it fails on some cluster file systems. */
    H5_CHECK(H5Pset_file_locking(fapl, 0, 1));
#endif
    return fapl;
}

/* ---------------------------------------------------------------- the whole-file seal */

/* Every file an H5Writer writes starts with a SEAL_BYTES user block (HDF5 and h5py skip it):
 * magic, version, the CRC32 of the whole file (this field read as zero) and the file's size.
 * It is checked before HDF5 parses a byte of the file, so no damaged byte, metadata or data,
 * reaches HDF5 or the program. */
#define SEAL_BYTES 512
#define SEAL_MAGIC "ensdistill-crc32"
enum { SEAL_CRC_AT = 20, SEAL_SIZE_AT = 24 };

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

/* crc32 of the open file fd (size bytes), the seal's crc field read as zero. 0 or -1. */
static int file_crc(int fd, uint64_t size, uint32_t *crc_out) {
    unsigned char *buf = malloc(1 << 20);
    if (!buf) return -1;
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t at = 0;
    int rc = 0;
    while (at < size) {
        size_t want = size - at < (1u << 20) ? (size_t)(size - at) : (1u << 20);
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got <= 0) {
            rc = -1;
            break;
        }
        if (at < SEAL_CRC_AT + 4 && at + (uint64_t)got > SEAL_CRC_AT)
            for (uint64_t i = SEAL_CRC_AT; i < SEAL_CRC_AT + 4; i++)
                if (i >= at && i < at + (uint64_t)got) buf[i - at] = 0;
        crc = crc32(crc, buf, (uInt)got);
        at += (uint64_t)got;
    }
    free(buf);
    *crc_out = (uint32_t)crc;
    return rc;
}

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int h5u_seal(const char *path) {
    int fd = open(path, O_RDWR);
    struct stat sb;
    unsigned char head[SEAL_BYTES];
    uint32_t crc;
    if (fd < 0) return -1;
    memset(head, 0, sizeof head);
    memcpy(head, SEAL_MAGIC, 16);
    put_le(head + 16, 1, 4);
    int rc = fstat(fd, &sb) == 0 ? 0 : -1;
    if (rc == 0) put_le(head + SEAL_SIZE_AT, (uint64_t)sb.st_size, 8);
    if (rc == 0 && (pwrite(fd, head, sizeof head, 0) != (ssize_t)sizeof head ||
                    file_crc(fd, (uint64_t)sb.st_size, &crc) != 0))
        rc = -1;
    if (rc == 0) put_le(head + SEAL_CRC_AT, crc, 4);
    if (rc == 0 && pwrite(fd, head + SEAL_CRC_AT, 4, SEAL_CRC_AT) != 4) rc = -1;
    if (close(fd) != 0) rc = -1;
    return rc;
}

/* Writes the seal of the closed file w->path; h5w_fail on an I/O error. */
static void seal_file(H5Writer *w) {
    if (h5u_seal(w->path) != 0) h5w_fail(w, "sealing", "file");
}

/* What the first bytes of a file that failed to carry a valid seal say it is: the reason into
 * err. A file of another kind altogether is told apart from an ensdistill file that lost bytes
 * or whose checksum block is damaged (its HDF5 superblock then still sits after the block). */
static void explain_unsealed(int fd, const unsigned char *head, size_t got, long long size,
                             char *err, size_t err_size) {
    unsigned char at_block[8];
    int ours = got > 0 && memcmp(head, SEAL_MAGIC, got < 16 ? got : 16) == 0;
    int hdf5_after_block = pread(fd, at_block, 8, SEAL_BYTES) == 8 &&
                           memcmp(at_block, hdf5_signature, 8) == 0;
    if (size == 0)
        snprintf(err, err_size, "empty (0 bytes)");
    else if (ours && got < SEAL_BYTES)
        snprintf(err, err_size, "truncated (%lld bytes)", size);
    else if (ours || hdf5_after_block)
        snprintf(err, err_size, "damaged: its checksum block is unreadable");
    else
        snprintf(err, err_size, "not an ensdistill checkpoint or run file (no HDF5 signature)");
}

int h5u_check_seal(const char *path, char *err, size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat sb;
    unsigned char head[SEAL_BYTES];
    int rc = 0;
    ssize_t got = fstat(fd, &sb) == 0 ? pread(fd, head, sizeof head, 0) : -1;
    if (got < 0) {
        snprintf(err, err_size, "unreadable: %s", strerror(errno));
        rc = -1;
    } else if (got >= 8 && memcmp(head, hdf5_signature, 8) == 0) {
        rc = 1;
    } else if (got < (ssize_t)sizeof head || memcmp(head, SEAL_MAGIC, 16) != 0 ||
               get_le(head + 16, 4) != 1) {
        explain_unsealed(fd, head, (size_t)got, (long long)sb.st_size, err, err_size);
        rc = -1;
    } else if (get_le(head + SEAL_SIZE_AT, 8) != (uint64_t)sb.st_size) {
        snprintf(err, err_size, "truncated or extended: %lld bytes, written with %llu",
                 (long long)sb.st_size, (unsigned long long)get_le(head + SEAL_SIZE_AT, 8));
        rc = -1;
    } else {
        uint32_t crc;
        if (file_crc(fd, (uint64_t)sb.st_size, &crc) != 0) {
            snprintf(err, err_size, "unreadable: %s", strerror(errno));
            rc = -1;
        } else if (crc != (uint32_t)get_le(head + SEAL_CRC_AT, 4)) {
            snprintf(err, err_size,
                     "damaged: its whole-file CRC32 does not match (a byte changed after it was "
                     "written)");
            rc = -1;
        }
    }
    close(fd);
    return rc;
}

hid_t h5u_open_sealed(const char *path, char *err, size_t err_size) {
    int rc = h5u_check_seal(path, err, err_size);
    if (rc > 0)
        snprintf(err, err_size,
                 "it has no whole-file checksum: format_version 1, written before the seal "
                 "(`ensdistill upgrade RUN_DIR` converts it), or another program's HDF5 file; "
                 "not trusted");
    if (rc != 0) return -1;
    hid_t f = h5u_open_read(path);
    if (f < 0) snprintf(err, err_size, "not a readable HDF5 file (damaged)");
    return f;
}

hid_t h5u_open_read(const char *path) {
    h5u_quiet();
    hid_t fapl = h5u_fapl();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

/* ---------------------------------------------------------------- writing */

/* Closes every HDF5 object of file (its datasets, groups and attributes too), whatever its
 * state: an identifier left open after a failed write makes HDF5's clean-up at exit() flush it
 * again, and crash. */
static void abandon_file(hid_t file) {
    if (file < 0) return;
    ssize_t n = H5Fget_obj_count(file, H5F_OBJ_LOCAL | H5F_OBJ_DATASET | H5F_OBJ_GROUP |
                                           H5F_OBJ_DATATYPE | H5F_OBJ_ATTR);
    if (n > 0) {
        hid_t *ids = malloc((size_t)n * sizeof(hid_t));
        if (ids) {
            n = H5Fget_obj_ids(file, H5F_OBJ_LOCAL | H5F_OBJ_DATASET | H5F_OBJ_GROUP |
                                         H5F_OBJ_DATATYPE | H5F_OBJ_ATTR,
                               (size_t)n, ids);
            for (ssize_t i = 0; i < n; i++)
                while (H5Iis_valid(ids[i]) > 0 && H5Idec_ref(ids[i]) > 0) {
                }
            free(ids);
        }
    }
    while (H5Iis_valid(file) > 0 && H5Idec_ref(file) > 0) {
    }
}

/* A write failed (disk full, quota, I/O error): abandon the half-written file, remove it (the
 * previous checkpoint stays what it was) and stop naming it. */
noreturn void h5w_fail(H5Writer *w, const char *what, const char *name) {
    int err = errno;
    abandon_file(w->file);
    w->file = -1;
    unlink(w->path);
    ed_fail("cannot write %s: %s '%s' failed (%s; disk full or not writable?); it was removed, "
            "and the files it would have replaced are unchanged",
            w->path, what, name, err ? strerror(err) : "HDF5 refused it");
}

void h5w_create(H5Writer *w, const char *path, int deflate) {
    h5u_quiet();
    w->path = path;
    w->deflate = deflate;
    hid_t fapl = h5u_fapl();
    hid_t fcpl = H5_CHECK(H5Pcreate(H5P_FILE_CREATE));
    H5_CHECK(H5Pset_userblock(fcpl, SEAL_BYTES));
    int existed = fs_exists(path);
    errno = 0;
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (w->file < 0) {
        int err = errno;
        /* HDF5 may have created the file before its first write failed (a full disk): remove
         * what this call created, so no empty NAME.h5.tmp is left behind. */
        if (!existed) unlink(path);
        ed_fail("%s: cannot create the file: %s (does the directory exist, is it writable, is "
                "the disk full?)",
                path, err ? strerror(err) : "HDF5 refused it");
    }
}

void h5w_close(H5Writer *w) {
    errno = 0;
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) h5w_fail(w, "flush", "file");
    if (H5Fclose(w->file) < 0) h5w_fail(w, "close", "file");
    w->file = -1;
    seal_file(w);
}

hid_t h5w_group(H5Writer *w, hid_t loc, const char *name) {
    hid_t lcpl = H5_CHECK(H5Pcreate(H5P_LINK_CREATE));
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    hid_t gcpl = H5_CHECK(H5Pcreate(H5P_GROUP_CREATE));
    /* Keep the order of creation (a model's order of tensors) for listings. */
    H5_CHECK(H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
    hid_t g = H5Gcreate2(loc, name, lcpl, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    H5Pclose(lcpl);
    if (g < 0) h5w_fail(w, "group", name);
    return g;
}

static void attr_write(H5Writer *w, hid_t obj, const char *name, hid_t type, hid_t space,
                       const void *data) {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) h5w_fail(w, "attribute", name);
    herr_t rc = H5Awrite(a, type, data);
    H5Aclose(a);
    if (rc < 0) h5w_fail(w, "attribute", name);
}

static hid_t vlen_str_type(void) {
    hid_t t = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(t, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(t, H5T_CSET_UTF8));
    return t;
}

void h5w_attr_str(H5Writer *w, hid_t obj, const char *name, const char *value) {
    hid_t t = vlen_str_type();
    hid_t s = H5_CHECK(H5Screate(H5S_SCALAR));
    const char *v = value ? value : "";
    attr_write(w, obj, name, t, s, &v);
    H5Sclose(s);
    H5Tclose(t);
}

void h5w_attr(H5Writer *w, hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
              const void *value) {
    hid_t s = H5_CHECK(H5Screate(H5S_SCALAR));
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, file_type, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mem_type, value) < 0) h5w_fail(w, "attribute", name);
    H5Aclose(a);
    H5Sclose(s);
}

void h5w_attr_i64(H5Writer *w, hid_t obj, const char *name, int64_t value) {
    h5w_attr(w, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void h5w_attr_f64(H5Writer *w, hid_t obj, const char *name, double value) {
    h5w_attr(w, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void h5w_attr_i64_array(H5Writer *w, hid_t obj, const char *name, const int64_t *values, int n) {
    hsize_t dim = (hsize_t)n;
    hid_t s = H5_CHECK(H5Screate_simple(1, &dim, NULL));
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, values) < 0) h5w_fail(w, "attribute", name);
    H5Aclose(a);
    H5Sclose(s);
}

void h5w_dataset(H5Writer *w, hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                 int ndim, const hsize_t *dims, const void *data) {
    ED_CHECK(ndim >= 0 && ndim <= 8, "dataset %s: %d dimensions", name, ndim);
    hid_t dcpl = H5_CHECK(H5Pcreate(H5P_DATASET_CREATE));
    hid_t space;
    if (ndim == 0) {
        /* A scalar lives in the object header, which the file format checksums. */
        space = H5_CHECK(H5Screate(H5S_SCALAR));
        H5_CHECK(H5Pset_layout(dcpl, H5D_COMPACT));
    } else {
        hsize_t chunk[8], maxdims[8];
        int has_zero = 0;
        size_t row_bytes = H5Tget_size(file_type);
        for (int d = 0; d < ndim; d++) {
            maxdims[d] = dims[d];
            chunk[d] = dims[d] ? dims[d] : 1;
            if (dims[d] == 0) has_zero = 1;
            if (d > 0) row_bytes *= (size_t)chunk[d];
        }
        /* An empty array can still be chunked if its first dimension may grow. */
        if (has_zero) maxdims[0] = H5S_UNLIMITED;
        /* At most 1 MiB per chunk, in chunks of equal rows: HDF5 stores the last chunk whole,
         * so 640 rows in chunks of 45 would waste 35 rows, in chunks of 43 only 5. */
        hsize_t rows = CHUNK_BYTES_MAX / (row_bytes ? row_bytes : 1);
        if (rows < 1) rows = 1;
        if (chunk[0] > rows) {
            hsize_t n_chunks = (chunk[0] + rows - 1) / rows;
            chunk[0] = (chunk[0] + n_chunks - 1) / n_chunks;
        }
        space = H5_CHECK(H5Screate_simple(ndim, dims, maxdims));
        H5_CHECK(H5Pset_chunk(dcpl, ndim, chunk));
        if (w->deflate > 0) H5_CHECK(H5Pset_deflate(dcpl, (unsigned)w->deflate));
        H5_CHECK(H5Pset_fletcher32(dcpl));
    }
    hid_t lcpl = H5_CHECK(H5Pcreate(H5P_LINK_CREATE));
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    hid_t ds = H5Dcreate2(loc, name, file_type, space, lcpl, dcpl, H5P_DEFAULT);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    if (ds < 0) h5w_fail(w, "dataset", name);
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    if (npoints > 0 && H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        h5w_fail(w, "dataset", name);
    H5Dclose(ds);
    H5Sclose(space);
}

void h5w_string_dataset(H5Writer *w, hid_t loc, const char *name, const char *value) {
    hid_t t = vlen_str_type();
    hid_t s = H5_CHECK(H5Screate(H5S_SCALAR));
    hid_t ds = H5Dcreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *v = value ? value : "";
    if (ds < 0 || H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0)
        h5w_fail(w, "dataset", name);
    H5Dclose(ds);
    H5Sclose(s);
    H5Tclose(t);
}

/* ---------------------------------------------------------------- reading */

int h5r_has(hid_t loc, const char *name) {
    /* H5Lexists needs every intermediate component to exist: check them one by one. */
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", name);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
        *p = '/';
    }
    return H5Lexists(loc, buf, H5P_DEFAULT) > 0;
}

/* Reads a scalar string attribute, variable or fixed length, into a malloc'd string. */
char *h5r_attr_str_alloc(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    char *out = NULL;
    hid_t ft = H5Aget_type(a);
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = vlen_str_type();
            char *v = NULL;
            if (H5Aread(a, mt, &v) >= 0 && v) {
                out = xstrdup(v);
                H5free_memory(v);
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(ft);
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, n + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            char *v = xcalloc(n + 2, 1);
            if (H5Aread(a, mt, v) >= 0)
                out = v;
            else
                free(v);
            H5Tclose(mt);
        }
    }
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return out;
}

int h5r_attr_str(hid_t obj, const char *name, char *buf, size_t size) {
    char *s = h5r_attr_str_alloc(obj, name);
    if (!s) return -1;
    snprintf(buf, size, "%s", s);
    free(s);
    return 0;
}

static int attr_read_num(hid_t obj, const char *name, hid_t mem_type, void *value, int n) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = -1;
    hid_t s = H5Aget_space(a);
    hid_t ft = H5Aget_type(a);
    if (s >= 0 && ft >= 0 && H5Sget_simple_extent_npoints(s) == n &&
        (H5Tget_class(ft) == H5T_INTEGER || H5Tget_class(ft) == H5T_FLOAT))
        rc = H5Aread(a, mem_type, value) < 0 ? -1 : 0;
    if (ft >= 0) H5Tclose(ft);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return rc;
}

int h5r_attr_i64(hid_t obj, const char *name, int64_t *value) {
    return attr_read_num(obj, name, H5T_NATIVE_INT64, value, 1);
}
int h5r_attr_f64(hid_t obj, const char *name, double *value) {
    return attr_read_num(obj, name, H5T_NATIVE_DOUBLE, value, 1);
}
int h5r_attr_i64_array(hid_t obj, const char *name, int64_t *values, int n) {
    return attr_read_num(obj, name, H5T_NATIVE_INT64, values, n);
}

int h5r_type(hid_t loc, const char *name, H5T_class_t *cls, size_t *size, H5T_sign_t *sign) {
    if (!h5r_has(loc, name)) return -1;
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t t = H5Dget_type(ds);
    int rc = -1;
    if (t >= 0) {
        *cls = H5Tget_class(t);
        *size = H5Tget_size(t);
        *sign = *cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_NONE;
        rc = *cls < 0 || *size == 0 || (*cls == H5T_INTEGER && *sign < 0) ? -1 : 0;
        H5Tclose(t);
    }
    H5Dclose(ds);
    return rc;
}

/* Opens dataset `name` and its data space: 0 with both open (the caller closes them), or -1
 * with nothing open. */
static int dataset_open(hid_t loc, const char *name, hid_t *ds, hid_t *space) {
    if (!h5r_has(loc, name)) return -1;
    *ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (*ds < 0) return -1;
    *space = H5Dget_space(*ds);
    if (*space >= 0) return 0;
    H5Dclose(*ds);
    return -1;
}

int h5r_dims(hid_t loc, const char *name, int *ndim, hsize_t *dims, int max_dims) {
    hid_t ds, s;
    if (dataset_open(loc, name, &ds, &s) < 0) return -1;
    int nd = H5Sget_simple_extent_ndims(s);
    int rc = nd >= 0 && nd <= max_dims && H5Sget_simple_extent_dims(s, dims, NULL) >= 0 ? 0 : -1;
    if (rc == 0) *ndim = nd;
    H5Sclose(s);
    H5Dclose(ds);
    return rc;
}

int h5r_read(hid_t loc, const char *name, hid_t mem_type, void *out) {
    hid_t ds, s;
    if (dataset_open(loc, name, &ds, &s) < 0) return -1;
    hssize_t n = H5Sget_simple_extent_npoints(s);
    int rc = n == 0 ? 0 : -1;
    if (n > 0) rc = H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0 ? -1 : 0;
    H5Sclose(s);
    H5Dclose(ds);
    return rc;
}

/* ---------------------------------------------------------------- verification */

typedef struct {
    long count;
    char *err;
    size_t err_size;
} VerifyCtx;

/* Reads one dataset whole in its own (file) type: HDF5 checks each chunk's checksum. */
static int verify_dataset(hid_t ds, const char *name, VerifyCtx *ctx) {
    hid_t ft = H5Dget_type(ds);
    hid_t s = H5Dget_space(ds);
    int rc = -1;
    if (ft >= 0 && s >= 0) {
        hssize_t n = H5Sget_simple_extent_npoints(s);
        size_t esize = H5Tget_size(ft);
        int vlen = H5Tdetect_class(ft, H5T_VLEN) > 0 ||
                   (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0);
        if (n == 0) {
            rc = 0;
        } else if (n > 0 && esize > 0) {
            hid_t mt = H5Tget_native_type(ft, H5T_DIR_DEFAULT);
            if (mt >= 0) {
                size_t msize = H5Tget_size(mt);
                void *buf = malloc((size_t)n * msize);
                if (buf) {
                    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0) {
                        rc = 0;
                        if (vlen) H5Dvlen_reclaim(mt, s, H5P_DEFAULT, buf);
                    }
                    free(buf);
                }
                H5Tclose(mt);
            }
        }
    }
    if (s >= 0) H5Sclose(s);
    if (ft >= 0) H5Tclose(ft);
    if (rc < 0)
        snprintf(ctx->err, ctx->err_size,
                 "dataset /%s does not read back (checksum mismatch or truncated file)", name);
    else
        ctx->count++;
    return rc;
}

static herr_t verify_visit(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    VerifyCtx *ctx = data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        snprintf(ctx->err, ctx->err_size, "object /%s cannot be opened (damaged metadata)", name);
        return -1;
    }
    int rc = 0;
    if (H5Iget_type(obj) == H5I_DATASET) rc = verify_dataset(obj, name, ctx);
    H5Oclose(obj);
    return rc < 0 ? -1 : 0;
}

/* Every dataset of the open file f read back; the count or -1 (reason in err). Closes f. */
static long verify_open_file(hid_t f, char *err, size_t err_size) {
    VerifyCtx ctx = {0, err, err_size};
    herr_t rc = H5Lvisit(f, H5_INDEX_NAME, H5_ITER_NATIVE, verify_visit, &ctx);
    if (rc < 0 && !err[0]) snprintf(err, err_size, "damaged group structure");
    H5Fclose(f);
    return rc < 0 ? -1 : ctx.count;
}

long h5_verify_file(const char *path, char *err, size_t err_size) {
    char dummy[8];
    if (!err) {
        err = dummy;
        err_size = sizeof(dummy);
    }
    err[0] = 0;
    if (!fs_exists(path)) {
        snprintf(err, err_size, "no such file");
        return -1;
    }
    hid_t f = h5u_open_sealed(path, err, err_size);
    return f < 0 ? -1 : verify_open_file(f, err, err_size);
}

long h5_verify_unsealed(const char *path, char *err, size_t err_size) {
    err[0] = 0;
    hid_t f = h5u_open_read(path);
    if (f < 0) {
        snprintf(err, err_size, "not a readable HDF5 file (truncated or damaged)");
        return -1;
    }
    return verify_open_file(f, err, err_size);
}

int h5_file_format(const char *path, char *buf, size_t size, char *err, size_t err_size) {
    buf[0] = 0;
    hid_t f = h5u_open_sealed(path, err, err_size);
    if (f < 0) return -1;
    int rc = 0;
    if (h5r_attr_str(f, "format", buf, size) < 0) rc = H5Aexists(f, "format") == 0 ? 1 : -1;
    if (rc < 0) snprintf(err, err_size, "its format attribute is unreadable (damaged)");
    H5Fclose(f);
    return rc;
}
