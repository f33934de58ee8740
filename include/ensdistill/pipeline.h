/* The distributed experiment (DESIGN.md "The run, as data flows through it"):
 *   phase 1 members (and the sum control, which needs no teacher) -> phase 2 teacher ->
 *   phase 3 students -> phase 4 results.
 * A job is one model to train (job.h); the groups take the jobs of a phase from a shared
 * counter, longest first, each as soon as it is free (jobqueue.h).
 * Every phase is restartable: complete models are skipped, partial ones resume from their
 * last checkpoint, bitwise as if never interrupted. */
#ifndef ENSDISTILL_PIPELINE_H
#define ENSDISTILL_PIPELINE_H

#include "ensdistill/job.h"

/* Runs the four phases. Returns JOB_DONE or JOB_STOPPED (all ranks agree). */
int pipeline_run(const RunContext *ctx);

#endif
