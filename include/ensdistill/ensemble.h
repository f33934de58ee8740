/* The ensemble of L models: the mean of their logits (ensemble.combine = logits) or the log of
 * the mean of their softmax probabilities (combine = probs), summed in 64-bit fixed point
 * (resolution 2^-32). Integer addition is associative, so the result is bitwise the same
 * whatever the order or grouping of the sum: the distributed teacher (pipeline/teacher.c adds
 * the sums of the groups with MPI) and every ensemble in the results table are this one
 * arithmetic. Pure functions: no MPI, no I/O. */
#ifndef ENSDISTILL_ENSEMBLE_H
#define ENSDISTILL_ENSEMBLE_H

#include "ensdistill/nn_kinds.h" /* Combine: COMBINE_LOGITS, COMBINE_PROBS */

#include <stddef.h>
#include <stdint.h>

#define ENSEMBLE_MAX_CLASSES 1000

/* acc[N*K] += one model's logits[N*K] (or its softmax probabilities, COMBINE_PROBS) in fixed
 * point. Returns the number of values outside the fixed-point range (NaN, infinite, or a logit
 * of magnitude >= 1e8: a diverged model); each adds 0 to acc and, when bad is not NULL, sets
 * bad[i] = 1. */
size_t ensemble_accumulate(int64_t *acc, uint8_t *bad, const float *logits, int N, int K,
                           Combine combine);
/* out[count] = the ensemble of `members` models from their sum acc, as logits: acc / members,
 * or for COMBINE_PROBS the log of that mean probability (floored at 1e-30). */
void ensemble_finish(float *out, const int64_t *acc, size_t count, int members, Combine combine);
/* out[N,K] = the ensemble of members[0..n) (each [N,K]): accumulate + finish, the same numbers
 * as the teacher of the run. An entry that a value outside the fixed-point range reached is
 * NaN. */
void ensemble_combine(float *out, const float *const *members, int n, int N, int K,
                      Combine combine);

#endif
