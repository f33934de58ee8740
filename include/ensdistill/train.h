/* Training one job on one group of ranks (train.c). */
#ifndef ENSDISTILL_TRAIN_H
#define ENSDISTILL_TRAIN_H

#include "ensdistill/checkpoint.h" /* ModelState, CkptDataset */
#include "ensdistill/gradsum.h"
#include "ensdistill/job.h"
#include "ensdistill/optim.h" /* Schedule */
#include "ensdistill/step.h"

/* Trains one job on this rank's group (every rank of the group calls it), resuming from its
 * checkpoint, and fills train_logits [N_train, K] and test_logits [N_test, K] on every rank of
 * the group (eval mode, no augmentation). Returns JOB_DONE, or JOB_STOPPED when a signal
 * asked to stop (the model was checkpointed). */
int train_job(const RunContext *ctx, const Job *job, float *train_logits, float *test_logits);

/* ---- one model's training in pieces (train.c): train_job is trainer_open, the epochs
 * (trainer_epoch_begin, trainer_batch + step_run per step, trainer_end_epoch), trainer_finish
 * and trainer_close; codistill.c drives several trainers in lock-step with the same pieces. */
typedef struct Workspace Workspace;
typedef struct {
    const RunContext *ctx;
    const Job *job;
    Model *m;
    Step *step;
    Workspace *w;
    GroupSum *gs;
    ModelState st;
    Schedule sched;
    Augment aug;             /* this epoch's augmentation */
    char path[ED_PATH_MAX];  /* RUN_DIR/models/<name>.h5 (or the teacher run's) */
    char write_path[ED_PATH_MAX]; /* where checkpoints go: path, unless the caller changes it */
    const CkptDataset *extra; /* stored with every checkpoint before the complete one (the
                                 caller's state: codistill.c's exchanged weights), or NULL */
    int n_extra;
} Trainer;

/* Sums of one epoch over this rank's shards (restored when resuming mid-epoch). */
typedef struct {
    double loss, correct, seen;
    double t_start;  /* MPI_Wtime at the epoch's start, less the time before a resume */
    double lr;       /* of the epoch's last step */
    StepTimes times; /* ranks_per_model > 1: this rank's step phases (the sum's share) */
} EpochSums;

/* Builds job's model (initialised from its streams), resumes it from its checkpoint and
 * allocates the loop's buffers. Returns 1 when the model is complete and its logits were read
 * into train_logits [N_train, K] and test_logits [N_test, K] (nothing else was allocated:
 * no trainer_close), else 0 (trainer_close frees it). */
int trainer_open(Trainer *t, const RunContext *ctx, const Job *job, float *train_logits,
                 float *test_logits);
/* The steps of an epoch: its sample order and augmentation, the sums so far (a resumed
 * epoch's partial ones). Returns the number of steps of an epoch. */
int trainer_epoch_begin(Trainer *t, int epoch, EpochSums *e);
/* This rank's share of step `step` of the epoch begun (the teacher's rows with a teacher). */
StepBatch trainer_batch(Trainer *t, int step);
/* The learning rate of step `step` of `epoch`. */
double trainer_lr(const Trainer *t, int epoch, int step);
/* A stop inside the epoch: saves the partial epoch (the next step to run is `next_step`). */
void trainer_save_partial(Trainer *t, int epoch, int next_step, const EpochSums *e);
/* After the last step of `epoch`: sums over the group, the divergence check, the test
 * evaluation when due (*have_test = 1 after the last epoch's), the history, the progress
 * report and the periodic checkpoint. Returns 1 if it wrote a checkpoint. */
int trainer_end_epoch(Trainer *t, int epoch, const EpochSums *e, float *test_logits,
                      int *have_test, int stop_requested);
/* After the last epoch: the logits (test ones unless have_test), the probe, the complete
 * checkpoint. */
void trainer_finish(Trainer *t, float *train_logits, float *test_logits, int have_test);
void trainer_close(Trainer *t);
/* A line about the trainer's model, printed by rank 0 whichever group trains it. */
void trainer_note(const RunContext *ctx, const Job *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
