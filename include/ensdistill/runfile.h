/* The run summary file RUN_DIR/run.h5 and the metrics log RUN_DIR/metrics.jsonl.
 * run.h5 (written to run.h5.tmp, fsynced, renamed; read it with h5py, which skips the
 * 512-byte user block that holds the whole-file seal of h5file.h):
 *   attrs  format="ensdistill-run", format_version=2, code_revision, compiler, written_at,
 *          config (YAML text), num_classes, data_fingerprint (see data_fingerprint), and
 *          with distill.teacher: teacher_run (its absolute path), teacher_run_revision
 *   /config                          the config text (string dataset)
 *   /teacher/train_logits [N, K], /teacher/test_logits [N_test, K]   float32, when given
 *   /results/table                   compound rows: name, role, n_models, test_acc, nll, ece,
 *                                    acc_multi, acc_single, acc_std (fixed-length strings)
 *   /results/<column>                the same table as one array per column (name and role
 *                                    as variable-length strings)
 *   /results/ensemble_size_acc [L]   test accuracy of the ensemble of the first n members
 *   /models/<name>                   external links to models/<name>.h5, so
 *     h5py.File('RUN_DIR/run.h5')['models/member-003/params/conv1.weight'] works.
 * Like checkpoint.h, this module knows no MPI: rank 0 calls it. */
#ifndef ENSDISTILL_RUNFILE_H
#define ENSDISTILL_RUNFILE_H

#include "ensdistill/checkpoint.h"

#include <stddef.h>
#include <stdio.h>

#define RUNFILE_FORMAT "ensdistill-run"
#define RUNFILE_FORMAT_VERSION 2

/* One row of the results table. acc_multi / acc_single are NaN unless the data is multi-view
 * (accuracy on the multi-view / single-view test samples); acc_std is NaN unless the row is a
 * mean over n_models models (then it is their standard deviation). Accuracies are fractions. */
typedef struct {
    char name[64]; /* "single", "ensemble", "kd", "self", "sum", "ensemble-of-kd", ... */
    char role[16]; /* the role of the models it summarises */
    int n_models;
    double test_acc, nll, ece, acc_multi, acc_single;
    double acc_std;
} ResultRow;

/* Everything run.h5 holds. Pointers may be NULL where noted. */
typedef struct {
    const char *config_text;             /* may be NULL */
    const char *const *model_names;      /* stems such as "member-003" (ckpt_model_name) */
    int n_models;
    const float *teacher_train;          /* [n_train, K] or NULL */
    int n_train;
    const float *teacher_test;           /* [n_test, K] or NULL */
    int n_test;
    int K;
    const int32_t *test_labels;          /* [n_test] or NULL: /data/test_labels */
    const uint8_t *test_tags;            /* [n_test] or NULL: /data/test_tags (multi-view) */
    const ResultRow *rows;               /* the results table */
    int n_rows;
    const float *ensemble_size_acc;      /* [L] or NULL */
    int L;
    double disagreement;                 /* mean pairwise disagreement of members (NaN: none) */
    double codistill_disagreement;       /* ... of the co-distilled members (NaN: none; the
                                            attribute codistill_disagreement of /results) */
    const char *data_fingerprint;        /* attribute data_fingerprint, or NULL */
    const char *teacher_run;             /* distill.teacher's absolute path, or NULL */
    const char *teacher_run_revision;    /* its code_revision */
    const char *const *model_files;      /* [n_models] link targets (NULL or an entry NULL:
                                            models/<name>.h5) */
} RunSummary;

/* Writes RUN_DIR/run.h5 (see above; also /data/test_labels, /data/test_tags and the attribute
 * "disagreement" of /results), creating RUN_DIR if needed. Each model name becomes an
 * external link /models/<name> -> models/<name>.h5 (relative to run.h5, so a moved run
 * directory still works). Returns 0; an I/O failure stops with ed_fail naming the file. */
int runfile_write(const char *run_dir, const RunSummary *s);

/* What a run reusing another's members (distill.teacher) reads from that run's run.h5. */
typedef struct {
    char data_fingerprint[1024];
    char code_revision[128];
    float *train_logits, *test_logits; /* /teacher/train_logits [n_train, K], test_logits */
    int n_train, n_test, K;
} TeacherRun;
/* Reads RUN_DIR/run.h5 into t (free with teacher_run_free). Returns 0, or -1 with a reason
 * naming the file (not a run, no fingerprint, no teacher logits, damaged). */
int runfile_read_teacher_run(const char *run_dir, TeacherRun *t, char *err, size_t err_size);
void teacher_run_free(TeacherRun *t);

/* Reads the results table of RUN_DIR/run.h5 (or of a run.h5 path) into a malloc'd array
 * (*rows, free() it) of *n_rows rows. Returns 0; 1 if the file does not exist; -1 with a
 * reason in err if it is unreadable. Never stops the program. */
int runfile_read_results(const char *run_dir_or_file, ResultRow **rows, int *n_rows, char *err,
                         size_t err_size);

/* Appends one JSON line for one finished epoch of one model to RUN_DIR/metrics.jsonl:
 * {"model":"member-003","role":"member","index":3,"epoch":1,"lr":...,"train_loss":...,
 *  "train_acc":...,"test_acc":...|null,"seconds":...}. Creates RUN_DIR if needed. */
void runfile_append_metrics(const char *run_dir, const char *role, int index,
                            const EpochRecord *rec);

#endif
