/* The run's vocabulary, at the bottom of src/pipeline where every file of it can see it: the
 * roles, one job (one model to train), the run context every phase reads, the job lists of
 * the phases and the students' sweep. Pure data and arithmetic: no MPI call. */
#ifndef ENSDISTILL_JOB_H
#define ENSDISTILL_JOB_H

#include "ensdistill/config.h"
#include "ensdistill/dataset.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/layout.h"
#include "ensdistill/model.h"
#include "ensdistill/runfile.h" /* TeacherRun */

#include <stdint.h>

typedef enum {
    ROLE_MEMBER = 1,
    ROLE_KD = 2,
    ROLE_SELF = 3,
    ROLE_SUM = 4,
    ROLE_CODISTILL = 5 /* the co-distilled members (codistill.c) */
} Role;
/* "member", "kd", "self", "sum", "codistill" ("?" for anything else). */
const char *job_role_name(Role role);

/* Status of a job or phase. */
enum { JOB_DONE = 0, JOB_STOPPED = 1 };

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
    Role rng_role;         /* the role whose random streams it draws (init, order, augmentation);
                              0 = role. Co-distilled member l draws member l's. */
    int order_index;       /* keys its minibatch order; -1 = seed_index */
} Job;

/* The jobs of one phase, in list order (jobs allocated by the job_list_* builders; free
 * with job_list_free). */
typedef struct {
    Job *jobs;
    int n;
} JobList;

/* Phase 1: the members (jobs 0..L-1, each read from ctx->teacher_dir when it is set), then
 * the train-the-sum control (job L) when distill.students has sum. */
JobList job_list_members(const RunContext *ctx);
/* Phase 3: one student per (temperature, alpha, lr) combination and seed, kd (soft targets
 * teacher) before self (self_teacher); in a sweep (more than one combination) student index =
 * combination * seeds + seed. */
JobList job_list_students(const RunContext *ctx, const float *teacher, const float *self_teacher);
/* The co-distilled members (distill.students: [codistill]; else an empty list): codistill-l
 * draws member l's initial weights and augmentation, and member 0's minibatch order in mode
 * logits (its own, member l's, in mode checkpoints); loss weight and temperature of
 * distill.codistill. */
JobList job_list_codistilled(const RunContext *ctx);
void job_list_free(JobList *list);

/* The ModelSpec of a job for this config and data (max_batch: the local shard or the
 * evaluation batch, whichever is larger). */
ModelSpec job_model_spec(const RunContext *ctx, const Job *job);
/* Effective global batch size (train.batch_size, 0 = the whole training set). */
int job_global_batch(const RunContext *ctx);

/* The students' sweep: the number of (temperature, alpha, lr) combinations of dc (1 without a
 * sweep), and combination c (0 <= c < that) in the order temperature (outer), alpha, lr
 * (inner); lr 0 stands for train.lr. */
int sweep_combinations(const DistillConfig *dc);
void sweep_combination(const DistillConfig *dc, int c, double *T, double *alpha, double *lr);

#endif
