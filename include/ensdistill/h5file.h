/* The HDF5 helpers every module shares (core: below data and io): files, attributes and
 * datasets with checked returns, and whole-file checksum verification.
 * The one HDF5 error idiom:
 *   - write helpers stop with ed_fail("cannot write FILE: ...") (a full disk is not a bug);
 *   - read helpers return < 0 (or NULL) and print nothing: the caller names the file and the
 *     object in its own message (ed_fail, or an err buffer when it can recover, e.g. falling
 *     back to a previous checkpoint);
 *   - H5_CHECK (error.h) wraps calls that fail only on a bug (property lists, types). */
#ifndef ENSDISTILL_H5FILE_H
#define ENSDISTILL_H5FILE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* What wrote a file (CMake defines both for the library). */
#ifndef ED_GIT_REV
#define ED_GIT_REV "unknown"
#endif
#ifndef ED_COMPILER
#define ED_COMPILER "unknown"
#endif

/* Silences HDF5's automatic error printing (a damaged file is reported by us, once). */
void h5u_quiet(void);
/* File access list: checksummed metadata (format of HDF5 1.8 and later), H5F_CLOSE_STRONG,
 * no file locking (files are renamed into place, never modified). */
hid_t h5u_fapl(void);
/* Opens path read-only with h5u_fapl; < 0 if it cannot. The seal is not looked at: only for
 * files ensdistill did not write (data files, which users edit with h5py) and for `upgrade`
 * after its own checks. Every file the program wrote is opened with h5u_open_sealed (the one
 * rule: the seal is checked before HDF5 parses a byte; tests/scripts/checkpoint_damage.sh
 * lists the callers allowed). */
hid_t h5u_open_read(const char *path);
/* Files an H5Writer writes carry a whole-file CRC32 in a 512-byte user block (written at
 * h5w_close). h5u_check_seal: 0 when it matches, 1 when the file has none (a plain HDF5 file:
 * format 1 of ensdistill, or another program's), -1 with the reason in err when the file is
 * damaged, truncated, empty, unreadable or not HDF5 at all ("not an ensdistill checkpoint or
 * run file (no HDF5 signature)"). h5u_open_sealed (checkpoints, run.h5, .prev) refuses a file
 * whose seal fails or is absent, with the reason in err. */
int h5u_check_seal(const char *path, char *err, size_t err_size);
/* Writes the seal of a closed file created with the 512-byte user block (h5w_create does;
 * h5w_close calls this). 0, or -1 with errno. Tests use it to seal files they edit. */
int h5u_seal(const char *path);
hid_t h5u_open_sealed(const char *path, char *err, size_t err_size);

/* ---- writing: every failure is ed_fail("cannot write FILE: ...") ---- */
typedef struct {
    const char *path; /* for messages */
    hid_t file;
    int deflate;
} H5Writer;

/* Creates path (truncating), with the checksummed-metadata format. */
void h5w_create(H5Writer *w, const char *path, int deflate);
/* A write failed: abandons the file (every HDF5 identifier of it released, so that exit()
 * does not flush it again), removes it, and stops with ed_fail naming it, what failed and errno.
 * Every h5w_* function calls it on failure. */
noreturn void h5w_fail(H5Writer *w, const char *what, const char *name);
/* Flushes and closes; ed_fail if the close fails (e.g. the disk is full). */
void h5w_close(H5Writer *w);
/* Creates group `name` (with missing intermediate groups) under loc, tracking the creation
 * order of its links; returns it (close it). */
hid_t h5w_group(H5Writer *w, hid_t loc, const char *name);
/* Scalar attribute `name` of obj: value in mem_type, stored as file_type (replaced if it
 * exists). The _str/_i64/_f64 forms store UTF-8 variable-length strings, int64 and float64. */
void h5w_attr(H5Writer *w, hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
              const void *value);
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
/* Type class, size and sign (H5T_SGN_NONE unless an integer) of dataset name; -1 if absent
 * or unreadable. */
int h5r_type(hid_t loc, const char *name, H5T_class_t *cls, size_t *size, H5T_sign_t *sign);
/* Dimensions of dataset name: *ndim (up to max_dims) and dims. -1 if absent or unreadable. */
int h5r_dims(hid_t loc, const char *name, int *ndim, hsize_t *dims, int max_dims);
/* Reads the whole dataset name into out as mem_type (HDF5 converts numeric types). -1 on any
 * failure, including a checksum mismatch or a truncated file. */
int h5r_read(hid_t loc, const char *name, hid_t mem_type, void *out);

/* ---- whole files: never stop the program ---- */
/* Reads every dataset of a file this program wrote (the seal checked first, following no
 * external links), which makes HDF5 check each chunk's Fletcher32 checksum. Returns the number
 * of datasets checked (>= 0), or -1 with a one-line reason in err (the seal's, or naming the
 * dataset) on the first failure. */
long h5_verify_file(const char *path, char *err, size_t err_size);
/* The same for a file without a seal (format 1, which `ensdistill upgrade` reads): HDF5 parses
 * it unchecked, so nothing else may call this. */
long h5_verify_unsealed(const char *path, char *err, size_t err_size);
/* The "format" attribute of a file this program wrote ("ensdistill-model", "ensdistill-run")
 * into buf, the seal checked first. Returns 0; 1 if the file has no format attribute; -1 with
 * the reason in err if the seal fails or the file is not readable. */
int h5_file_format(const char *path, char *buf, size_t size, char *err, size_t err_size);

#endif
