/* HDF5 model checkpoints: one file per model (RUN_DIR/models/<role>-<index>.h5), written
 * crash-safely (NAME.h5.tmp -> read back and compared -> fs_commit_keep_prev) and read back
 * with checksum verification and a fall-back to NAME.prev.h5. The io module knows the tensor
 * table and the Model arenas, never the layers, and no MPI: the caller (rank 0 or a model's
 * group leader) decides who writes.
 *
 * File layout, format_version 2 (read it with h5py, which skips the user block):
 *   user block  the first 512 bytes: the whole-file seal (h5file.h), a CRC32 of every byte of
 *          the file and its size, checked before HDF5 parses anything; files without one
 *          (format_version 1) are refused
 *   attrs  format="ensdistill-model", format_version=2, role, index, seed, init_seed and
 *          init_stream (the model_init key, as int64 bit patterns), arch, sum_of,
 *          random_features, hidden, num_classes, input_shape [C,H,W], mv_filters, srelu_q,
 *          srelu_rho, init_std, mv_noise_coords, mv_noise_sigma, epochs_total, epoch, step,
 *          complete (0/1), config (YAML text), code_revision, compiler, written_at, and
 *          strings_crc32 (the crc32 of the string attributes, in this order: checkpoint.c)
 *   /params/<state_dict name>            float32, torch shapes
 *   /buffers/<name>                      float32; int64 for num_batches_tracked (is_integer)
 *   /optimizer/momentum/<name>           float32, one per parameter
 *   /state/cursor  int64 [epoch, step_in_epoch, step, complete]
 *   /state/partial float64 [loss, correct, seen, seconds] sums of the current epoch so far
 *   /history/{epoch,lr,train_loss,train_acc,test_acc,seconds}  one value per finished epoch
 *   extra datasets the caller adds (CkptDataset), float32 with their own attributes:
 *     /logits/train [N,K], /logits/test [N_test,K] when the model completes (the pipeline),
 *     /probe/views [K, 2] of multi-view models (the pipeline, from probe.h)
 * Every dataset is chunked with Fletcher32 checksums. Every attribute above is required when
 * reading: a missing one is damage, never a default.
 * The random generator is counter-based (rng.h), keyed by (seed, role, index, epoch, ...), so
 * the cursor is all that resuming needs: there is no generator state to store. */
#ifndef ENSDISTILL_CHECKPOINT_H
#define ENSDISTILL_CHECKPOINT_H

#include "ensdistill/model.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CKPT_FORMAT "ensdistill-model"
#define CKPT_FORMAT_VERSION 2

/* One finished epoch. test_acc is NaN when the epoch was not evaluated. */
typedef struct {
    int epoch; /* 1-based: the epoch that just finished */
    double lr, train_loss, train_acc, test_acc, seconds;
} EpochRecord;

/* The history's columns, one per field of EpochRecord in this order: the datasets
 * /history/<name> of a checkpoint (epoch as int64, the others float64), the keys of
 * metrics.jsonl and the columns of inspect. */
enum {
    HISTORY_EPOCH,
    HISTORY_LR,
    HISTORY_TRAIN_LOSS,
    HISTORY_TRAIN_ACC,
    HISTORY_TEST_ACC,
    HISTORY_SECONDS,
    CKPT_HISTORY_COLUMNS
};
extern const char *const ckpt_history_names[CKPT_HISTORY_COLUMNS];
/* Column k of rec (0: the epoch), and setting it. */
double ckpt_history_get(const EpochRecord *rec, int k);
void ckpt_history_set(EpochRecord *rec, int k, double value);

/* The training state of one model besides its tensors. Zero-initialise it
 * (ModelState st = {0};) before the first use; free with ckpt_state_free. */
typedef struct {
    char role[16];  /* "member", "kd", "self", "sum" */
    int index;      /* model index within its role */
    int64_t seed;   /* ensemble.seed (or the student seed) */
    char arch[256]; /* filled by ckpt_read from the file; ckpt_write writes m->spec.arch */
    int epochs_total;
    int epoch;         /* epochs completed */
    int step_in_epoch; /* steps done in the current (incomplete) epoch: mid-epoch checkpoints */
    int64_t step;      /* optimizer steps done in all */
    int complete;
    double partial_loss, partial_correct, partial_seen, partial_seconds; /* current epoch sums */
    int n_history, cap_history;
    EpochRecord *history; /* owned by the struct; ckpt_state_free */
} ModelState;

/* An attribute of an extra dataset: a string, an int64 or a float64, by type. */
typedef enum { CKPT_ATTR_STR, CKPT_ATTR_I64, CKPT_ATTR_F64 } CkptAttrType;
typedef struct {
    const char *name;
    CkptAttrType type;
    const char *str;
    int64_t i64;
    double f64;
} CkptAttrValue;

#define CKPT_DATASET_MAX_DIMS 4
#define CKPT_DATASET_MAX_ATTRS 4
/* A float32 array the caller stores beside the model (logits, a probe, ...): written chunked
 * with Fletcher32 and verified after writing like the model's tensors. The pointers must stay
 * valid during ckpt_write. */
typedef struct {
    const char *name; /* path in the file, e.g. "logits/train"; missing groups are created */
    int ndim;         /* 1..CKPT_DATASET_MAX_DIMS */
    int64_t dims[CKPT_DATASET_MAX_DIMS];
    const float *data;
    int n_attrs;
    CkptAttrValue attrs[CKPT_DATASET_MAX_ATTRS];
} CkptDataset;

/* What ckpt_write stores besides the model and its state. Zero-initialise it. */
typedef struct {
    const char *config_text;  /* the "config" attribute; NULL stores "" */
    int deflate;              /* gzip level 0..9 (0 = none; DESIGN.md: 40-50x slower writes for
                               * 7-14% smaller files) */
    const CkptDataset *extra; /* n_extra datasets, written in this order after the model's */
    int n_extra;
} CkptWriteOptions;

/* What a checkpoint says about itself, read from its attributes alone (no tensors): enough to
 * build the model it belongs to (spec, with max_batch = 0: set it) and to summarise it. */
typedef struct {
    char role[16];
    int index;
    int64_t seed;
    ModelSpec spec; /* arch, C, H, W, num_classes, sum_of, hidden, random_features, mv_* */
    int epochs_total, epoch, complete;
    int64_t step;
    int format_version;
    char code_revision[64];
    char written_at[32];
    int n_history;
    double last_test_acc;              /* NaN if no epoch was evaluated */
    double last_train_acc;             /* NaN if no epoch finished */
    int n_train_logits, n_test_logits; /* rows of /logits/train, /logits/test; 0 if absent */
} CkptInfo;

/* "member-003" into buf: the file stem of a model, RUN_DIR/models/<stem>.h5. Returns buf. */
const char *ckpt_model_name(char *buf, size_t size, const char *role, int index);

/* Writes the checkpoint of m and st, and opt's extra datasets, to path (NAME.h5):
 *   1. writes NAME.h5.tmp (creating missing parent directories), closes it, fsyncs it;
 *   2. reopens it and reads back every dataset (Fletcher32 verified by HDF5) and compares the
 *      bytes with memory;
 *   3. fs_commit_keep_prev (fsutil.h): fsyncs the tmp file, keeps the old NAME.h5 as
 *      NAME.prev.h5, renames the tmp file to NAME.h5 (atomic: NAME.h5 always exists once
 *      written), fsyncs the directory, and removes NAME.prev.h5.
 * Returns 0. An I/O failure or a failed verification stops with ed_fail naming the file. */
int ckpt_write(const char *path, const Model *m, const ModelState *st,
               const CkptWriteOptions *opt);

/* Loads path into m (params, buffers, momentum) and st (st's old history is freed).
 * Returns 1 when neither path nor NAME.prev.h5 exists (nothing to resume: m and st untouched).
 * If path is missing, unreadable, truncated, fails a checksum or lacks a tensor or an
 * attribute, and NAME.prev.h5 is good, warns (ed_warn) and loads NAME.prev.h5; if neither is
 * good, ed_fail naming the file and what is wrong (the attribute or tensor). A file of another
 * format or format_version, of another arch (or sum_of, random_features, num_classes), or with
 * a tensor of another shape (the message names the attribute or tensor and both values) is
 * refused with ed_fail: never silently started over. When st->role is set on entry, the file
 * must also have the same role, index and seed (a run directory reused with another
 * ensemble.seed is refused), and a good NAME.prev.h5 takes the name NAME.h5 (fs_restore_prev);
 * with st->role empty (eval, tools) any role loads and no file is renamed. The HDF5 error
 * stack is silenced; a corrupted file never crashes the program. Returns 0 when loaded. */
int ckpt_read(const char *path, Model *m, ModelState *st);

/* ckpt_read for a file of another run (distill.teacher): path alone, opened read-only (its
 * seal first), with no fall-back to NAME.prev.h5 and nothing renamed, written or locked.
 * Returns 1 when path does not exist; a damaged or refused file stops with ed_fail naming it.
 * Returns 0 when loaded. */
int ckpt_read_other_run(const char *path, Model *m, ModelState *st);

/* Reads /logits/train or /logits/test (which = "train" / "test"), [n, K] float32, into out.
 * Returns 0, or -1 if the file has no such dataset. A missing file, a shape other than [n, K]
 * or a read/checksum error stops with ed_fail naming the file. */
int ckpt_read_logits(const char *path, const char *which, float *out, int n, int K);

/* Reads the 1-D float32 dataset /<name> of `count` values (an extra dataset ckpt_write
 * stored) into out. Returns 0, or -1 if the file has no such dataset; a missing file, another
 * shape or a read/checksum error stops with ed_fail naming the file. */
int ckpt_read_floats(const char *path, const char *name, float *out, size_t count);

/* Reads the attributes and history length of path into info (every attribute is required).
 * Returns 0; 1 if path does not exist; -1 if it is not a readable checkpoint of this format
 * (err gets a one-line reason; err may be NULL). Never stops the program. */
int ckpt_info(const char *path, CkptInfo *info, char *err, size_t err_size);

/* The "config" attribute of a checkpoint (the resolved YAML it was trained with), malloc'd;
 * NULL if the file is unreadable or has none. */
char *ckpt_read_config(const char *path);

/* Frees st->history and zeroes n_history / cap_history (the other fields are kept). */
void ckpt_state_free(ModelState *st);
/* Appends one epoch to st->history (grows the buffer). */
void ckpt_state_push_epoch(ModelState *st, const EpochRecord *rec);

#endif
