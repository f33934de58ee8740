/* The distributed experiment (DESIGN.md "The run, as data flows through it"):
 *   phase 1 members (and the sum control, which needs no teacher) -> phase 2 teacher ->
 *   phase 3 students -> phase 4 results.
 * A job is one model to train; the groups take the jobs of a phase from a shared counter,
 * longest first, each as soon as it is free (JobQueue).
 * Every phase is restartable: complete models are skipped, partial ones resume from their
 * last checkpoint, bitwise as if never interrupted. */
#ifndef ENSDISTILL_PIPELINE_H
#define ENSDISTILL_PIPELINE_H

#include "ensdistill/config.h"
#include "ensdistill/dataset.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/layout.h"
#include "ensdistill/model.h"
#include "ensdistill/runfile.h" /* TeacherRun */

#include <stdint.h>

typedef enum { ROLE_MEMBER = 1, ROLE_KD = 2, ROLE_SELF = 3, ROLE_SUM = 4 } Role;
const char *job_role_name(Role role);

/* Everything a phase needs, the same on every rank. */
typedef struct {
    const Config *cfg;
    const char *config_text; /* resolved YAML, stored in every checkpoint */
    const Layout *lo;
    const DataSplit *data;
    char run_dir[ED_PATH_MAX];
    char data_fingerprint[1024]; /* data_fingerprint() of data (rank 0): stored in run.h5 */
    /* distill.teacher: the finished run whose members this run reuses, as an absolute path
     * (every rank; "" = none) and its run.h5 (rank 0, checked by reuse_check; else NULL). */
    char teacher_dir[ED_PATH_MAX];
    const TeacherRun *teacher_run;
} RunContext;

/* One model to train. */
typedef struct {
    Role role;
    int index;
    char name[32];         /* "member-003": its file is RUN_DIR/models/<name>.h5 */
    int epochs;
    double lr;
    int sum_of;            /* > 1 for the train-the-sum control */
    const float *teacher;  /* soft targets [N_train, K] (kd, self), or NULL: hard labels */
    double temperature, alpha; /* of the distillation loss (kd, self) */
    int combo;             /* students of a sweep: which (T, alpha, lr) combination, else -1 */
    int seed_index;        /* keys its init, batch order and augmentation: index, except in a
                              sweep, where students of one seed start alike in every combination */
    const char *from_run;  /* a finished run whose models/<name>.h5 is read (verified, never
                              written) instead of training, or NULL */
    int group;             /* the group that trained it (known on every rank after its phase) */
} Job;

/* The order in which a phase hands out its jobs to n_groups groups: order[0..n) = job indices,
 * longest first (cost = epochs x nets), equal costs in list order; with one group, list order
 * (members before the sum control: the order changes no time there). */
void jobs_order(const Job *jobs, int n, int n_groups, int *order);

/* The next-job counters of the phases, in an MPI window on world rank 0. A group leader takes
 * index i = jobqueue_take (0, 1, 2, ... over all leaders, atomically) and trains job order[i]
 * when i < n; which group trains a job changes no result (a model's numbers do not depend on
 * where it trains), so any order resumes. */
typedef struct {
    MPI_Win win;
    long *base; /* the counters (on rank 0) */
    int n_counters;
} JobQueue;
/* Collective over MPI_COMM_WORLD: n_counters counters, all 0. */
void jobqueue_create(JobQueue *q, int n_counters);
/* Returns the value of counter `counter` and adds 1 to it (MPI_Fetch_and_op). */
long jobqueue_take(JobQueue *q, int counter);
/* Collective. */
void jobqueue_free(JobQueue *q);

/* The data set once per node in MPI-3 shared memory (shared_data.c): the node's first rank
 * loads it (data_load_into) straight into the window, the node's ranks map the same pages
 * read-only. */
typedef struct {
    MPI_Win win;
    MPI_Comm node;     /* the ranks of this node */
    int ranks_on_node;
    size_t bytes;      /* the shared copy, once per node */
} SharedData;
/* Collective over MPI_COMM_WORLD: fills split as data_load would, its arrays in the window. */
void data_load_shared(DataSplit *split, const DataConfig *cfg, SharedData *sh);
/* Collective: releases the window (the split's arrays with it) and clears split. */
void data_free_shared(DataSplit *split, SharedData *sh);

/* Status of a job or phase. */
enum { JOB_DONE = 0, JOB_STOPPED = 1 };

/* The ModelSpec of a job for this config and data (max_batch: the local shard or the
 * evaluation batch, whichever is larger). */
ModelSpec job_model_spec(const RunContext *ctx, const Job *job);
/* Effective global batch size (train.batch_size, 0 = the whole training set). */
int job_global_batch(const RunContext *ctx);

/* Trains one job on this rank's group (every rank of the group calls it), resuming from its
 * checkpoint, and fills train_logits [N_train, K] and test_logits [N_test, K] on every rank of
 * the group (eval mode, no augmentation). Returns JOB_DONE, or JOB_STOPPED when a signal
 * asked to stop (the model was checkpointed). */
int train_job(const RunContext *ctx, const Job *job, float *train_logits, float *test_logits);

/* distill.teacher (reuse.c), rank 0, before any work: the teacher run ctx->teacher_dir must be
 * a finished run of the same data (fingerprint), model, train and ensemble sections, not this
 * run's directory. Reads its run.h5 into t. Returns 0, or -1 with a message naming what
 * differs in err. */
int reuse_check(const RunContext *ctx, TeacherRun *t, char *err, size_t size);
/* Phase 2 with distill.teacher (rank 0): the teacher formed from the reused members' logits
 * must be bitwise the one the teacher run stored; stops (ed_fail) naming the difference. */
void reuse_verify_teacher(const RunContext *ctx, const float *train_logits,
                          const float *test_logits);

/* The students' sweep: the number of (temperature, alpha, lr) combinations of dc (1 without a
 * sweep), and combination c (0 <= c < that) in the order temperature (outer), alpha, lr
 * (inner); lr 0 stands for train.lr. */
int sweep_combinations(const DistillConfig *dc);
void sweep_combination(const DistillConfig *dc, int c, double *T, double *alpha, double *lr);

/* Runs the four phases. Returns JOB_DONE or JOB_STOPPED (all ranks agree). */
int pipeline_run(const RunContext *ctx);

/* ---- signals (signals.c): SIGTERM / SIGUSR1 ask every rank to checkpoint and stop ---- */
void signals_install(void);
int signals_stop_requested(void);
/* 1 if any rank of comm has seen a stop signal (a collective over comm). */
int signals_any(MPI_Comm comm);

/* ---- progress (progress.c): only world rank 0 prints and writes metrics.jsonl ---- */
typedef struct {
    char name[32];
    char role[16];
    int index;
    int epoch, epochs;
    double loss, acc, test_acc, lr, images_per_s, seconds, eta_seconds;
    double grad_sum_share; /* ranks_per_model > 1: of the leader's step time, in the sum */
    char note[112];   /* epoch 0: not an epoch, a line about the model ("views learned: ...") */
} EpochReport;
/* Called by a group leader after each epoch: rank 0 prints and logs, others send to rank 0. */
void progress_report(const RunContext *ctx, const EpochReport *r);
/* Rank 0: prints what other leaders have sent (non-blocking). No-op elsewhere. */
void progress_poll(const RunContext *ctx);
/* End of a phase: leaders tell rank 0; rank 0 prints until every group has ended the phase. */
void progress_phase_end(const RunContext *ctx);
/* Rank 0: a progress bar for its own model's steps when stdout is a terminal. */
void progress_step(const RunContext *ctx, const char *name, int epoch, int epochs, int step,
                   int steps);
/* Rank 0: printf to stdout (other ranks print nothing). */
void progress_say(const RunContext *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
