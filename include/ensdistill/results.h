/* Phase 4 on rank 0: the results table of a run (DESIGN.md): every model's test accuracy,
 * NLL and ECE; single models mean +- std; the ensemble (the teacher's test logits, stored as
 * /teacher/test_logits); the ensemble of the first n members for n = 1..L; mean pairwise
 * disagreement of members; KD, self-distillation, the sum control and the ensemble of KD
 * students (every ensemble the fixed-point arithmetic of ensemble.h); multi-view / single-view
 * accuracy on multi-view data.
 * Printed, and written with the teacher logits to RUN_DIR/run.h5. */
#ifndef ENSDISTILL_RESULTS_H
#define ENSDISTILL_RESULTS_H

#include "ensdistill/job.h"

void results_report(const RunContext *ctx, const Job *members, int L, float *const *member_test,
                    const Job *students, int n_students, float *const *student_test,
                    const float *teacher_train, const float *teacher_test);

#endif
