/* distill.teacher (reuse.c): new students from the members and teacher of a finished run. */
#ifndef ENSDISTILL_REUSE_H
#define ENSDISTILL_REUSE_H

#include "ensdistill/job.h"

#include <stddef.h>

/* Rank 0, before any work: the teacher run ctx->teacher_dir must be a finished run of the
 * same data (fingerprint), model, train and ensemble sections, not this run's directory.
 * Reads its run.h5 into t. Returns 0, or -1 with a message naming what differs in err. */
int reuse_check(const RunContext *ctx, TeacherRun *t, char *err, size_t size);
/* Phase 2 with distill.teacher (rank 0): the teacher formed from the reused members' logits
 * must be bitwise the one the teacher run stored; stops (ed_fail) naming the difference. */
void reuse_verify_teacher(const RunContext *ctx, const float *train_logits,
                          const float *test_logits);

#endif
