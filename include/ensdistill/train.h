/* Training one job on one group of ranks (train.c). */
#ifndef ENSDISTILL_TRAIN_H
#define ENSDISTILL_TRAIN_H

#include "ensdistill/job.h"

/* Trains one job on this rank's group (every rank of the group calls it), resuming from its
 * checkpoint, and fills train_logits [N_train, K] and test_logits [N_test, K] on every rank of
 * the group (eval mode, no augmentation). Returns JOB_DONE, or JOB_STOPPED when a signal
 * asked to stop (the model was checkpointed). */
int train_job(const RunContext *ctx, const Job *job, float *train_logits, float *test_logits);

#endif
