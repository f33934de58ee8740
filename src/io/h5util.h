/* Private helpers of src/io: HDF5 attributes and datasets with checked returns, whole-file
 * checksum verification, and the POSIX side of crash-safe files (mkdir -p, fsync, paths).
 * Write helpers stop with ed_fail naming the file; read helpers return < 0 and leave the
 * reason to the caller, because a damaged file is something the caller recovers from. */
#ifndef ENSDISTILL_IO_H5UTIL_H
#define ENSDISTILL_IO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* What wrote a file (CMake defines both for the library). */
#ifndef ED_GIT_REV
#define ED_GIT_REV "unknown"
#endif
#ifndef ED_COMPILER
#define ED_COMPILER "unknown"
#endif

#define PATH_MAX_LEN 4096

/* Silences HDF5's automatic error printing (a damaged file is reported by us, once). */
void h5u_quiet(void);
/* File access list: checksummed metadata (format of HDF5 1.8 and later), H5F_CLOSE_STRONG,
 * no file locking (files are renamed into place, never modified). */
hid_t h5u_fapl(void);
/* Opens path read-only with h5u_fapl; < 0 if it cannot. */
hid_t h5u_open_read(const char *path);

/* ---- writing: every failure is ed_fail("cannot write FILE: ...") ---- */
typedef struct {
    const char *path; /* for messages */
    hid_t file;
    int deflate;
} H5Writer;

/* Creates path (truncating), with the checksummed-metadata format. */
void h5w_create(H5Writer *w, const char *path, int deflate);
/* Flushes and closes; ed_fail if the close fails (e.g. the disk is full). */
void h5w_close(H5Writer *w);
/* Creates group `name` (with missing intermediate groups) under loc, tracking the creation
 * order of its links; returns it (close it). */
hid_t h5w_group(H5Writer *w, hid_t loc, const char *name);
void h5w_attr_str(H5Writer *w, hid_t obj, const char *name, const char *value);
void h5w_attr_i64(H5Writer *w, hid_t obj, const char *name, int64_t value);
void h5w_attr_f64(H5Writer *w, hid_t obj, const char *name, double value);
void h5w_attr_i64_array(H5Writer *w, hid_t obj, const char *name, const int64_t *values, int n);
/* Writes dataset name under loc: dims[0..ndim) (ndim 0 = scalar, stored compact inside the
 * checksummed object header), element type file_type, memory type mem_type. Arrays are chunked
 * (chunks of at most 1 MiB) with Fletcher32 and the writer's deflate level. */
void h5w_dataset(H5Writer *w, hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                 int ndim, const hsize_t *dims, const void *data);
/* Variable-length UTF-8 string dataset (scalar). */
void h5w_string_dataset(H5Writer *w, hid_t loc, const char *name, const char *value);

/* ---- reading: 0 on success, < 0 on failure (nothing printed) ---- */
int h5r_has(hid_t loc, const char *name); /* 1 if the link exists (and its parents), else 0 */
/* String attribute (variable or fixed length) into buf; -1 if absent or unreadable. */
int h5r_attr_str(hid_t obj, const char *name, char *buf, size_t size);
/* Same, malloc'd (free() it); NULL if absent or unreadable. */
char *h5r_attr_str_alloc(hid_t obj, const char *name);
int h5r_attr_i64(hid_t obj, const char *name, int64_t *value);
int h5r_attr_f64(hid_t obj, const char *name, double *value);
/* Integer array attribute of exactly n elements. */
int h5r_attr_i64_array(hid_t obj, const char *name, int64_t *values, int n);
/* Dimensions of dataset name: *ndim (up to max_dims) and dims. -1 if absent or unreadable. */
int h5r_dims(hid_t loc, const char *name, int *ndim, hsize_t *dims, int max_dims);
/* Reads the whole dataset name into out as mem_type (HDF5 converts numeric types). -1 on any
 * failure, including a checksum mismatch or a truncated file. */
int h5r_read(hid_t loc, const char *name, hid_t mem_type, void *out);
/* Scalar variable-length string dataset, malloc'd; NULL on failure. */
char *h5r_string_dataset(hid_t loc, const char *name);

/* Reads every dataset of path (no external links); see checkpoint.h h5_verify_file. */
long h5u_verify_file(const char *path, char *err, size_t err_size);

/* ---- POSIX ---- */
/* mkdir -p; ed_fail naming the directory on failure. */
void io_mkdirs(const char *dir);
/* mkdir -p of the directory part of path. */
void io_mkdirs_parent(const char *path);
/* fsync a file / the directory that holds path; ed_fail naming it on failure. */
void io_fsync_file(const char *path);
void io_fsync_parent_dir(const char *path);
int io_exists(const char *path);
/* NAME.h5 -> NAME.prev.h5 (any other name: NAME.prev). */
void io_prev_path(char *out, size_t size, const char *path);
/* Current UTC time "2024-05-01T12:00:00Z". */
void io_utc_now(char *out, size_t size);
/* Size of a file in bytes, or -1. */
long long io_file_size(const char *path);

#endif
