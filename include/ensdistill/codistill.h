/* Online co-distillation (codistill.c): the co-distilled members of distill.students:
 * [codistill] train in lock-step on all groups, each distilling from its peers. */
#ifndef ENSDISTILL_CODISTILL_H
#define ENSDISTILL_CODISTILL_H

#include "ensdistill/job.h"

#include <stdint.h>

/* The co-distilled members (codistill.c, distill.students: [codistill]): every group takes
 * members l = group, group + G, ... and they train in lock-step, each distilling from its
 * peers. Collective over MPI_COMM_WORLD. test_out[l] [N_test, K] receives member l's test
 * logits on rank 0 (allocated there by the caller; elsewhere NULL), jobs[l] its job. Returns
 * JOB_DONE or JOB_STOPPED. */
int codistill_run(const RunContext *ctx, Job *jobs, float **test_out);
/* The peers' mean of mode logits: out[B, K] = (sum - own) / (L - 1)
 * with sum [B, K] the fixed-point sum (ensemble_accumulate, COMBINE_LOGITS) of all L members'
 * logits on these samples and own [B, K] this member's; scratch: B K int64. */
void codistill_peers(float *out, int64_t *scratch, const int64_t *sum, const float *own, int B,
                     int K, int L);
/* Before any training (collective over MPI_COMM_WORLD): the groups hold their co-distilled
 * members at once, ceil(L / G) each; stops with the numbers (ed_fail) when a rank's share
 * would exceed its share of the node's available memory, else says what they take. */
void codistill_check_memory(const RunContext *ctx);

#endif
