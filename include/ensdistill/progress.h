/* What the user sees (progress.c): only world rank 0 prints and writes metrics.jsonl. */
#ifndef ENSDISTILL_PROGRESS_H
#define ENSDISTILL_PROGRESS_H

#include "ensdistill/job.h"

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
