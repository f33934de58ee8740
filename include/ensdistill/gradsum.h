/* The data-parallel gradient sum of a group of ranks training one model: step.h's GradSum
 * hooks over MPI, one non-blocking all-reduce per bucket, so buckets that backward has
 * finished travel while it computes the rest (as PyTorch's DDP and Horovod do). */
#ifndef ENSDISTILL_GRADSUM_H
#define ENSDISTILL_GRADSUM_H

#include "ensdistill/step.h"

#include <mpi.h>
#include <stddef.h>

typedef struct GroupSum GroupSum;

/* An empty sum over comm (which must outlive it); step_create fills it through the hooks. */
GroupSum *group_sum_create(MPI_Comm comm);
/* After the step that used it is freed. */
void group_sum_free(GroupSum *gs);
/* The hooks for StepOptions.sum, with the bucket size and the overlap switch. */
GradSum group_sum_hooks(GroupSum *gs, size_t bucket_floats, int overlap);
/* Floats per bucket for parallel.grad_bucket_mb (MiB of float gradient; 0: one bucket). */
size_t group_sum_bucket_floats(double mib);
/* "persistent MPI_Allreduce_init", ... : how each bucket is summed (for the logs). */
const char *group_sum_method(void);

#endif
