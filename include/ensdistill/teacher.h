/* The ensemble teacher: the mean of L members' logits (ensemble.combine = logits) or the log
 * of the mean of their softmax probabilities (combine = probs), formed across groups in
 * 64-bit fixed point so that it is bitwise independent of the rank layout. */
#ifndef ENSDISTILL_TEACHER_H
#define ENSDISTILL_TEACHER_H

#include "ensdistill/layout.h"

#include <stddef.h>
#include <stdint.h>

#define TEACHER_MAX_CLASSES 1000

/* acc[N*K] += fixed-point logits (or softmax probabilities when use_probs) of one member. */
void teacher_accumulate(int64_t *acc, const float *logits, int N, int K, int use_probs);
/* Sums acc over the group leaders, then gives every rank of each group the total. */
void teacher_reduce(int64_t *acc, size_t count, const Layout *lo);
/* out = acc / members as logits (log of the mean probability when use_probs). */
void teacher_finish(float *out, const int64_t *acc, size_t count, int members, int use_probs);

#endif
