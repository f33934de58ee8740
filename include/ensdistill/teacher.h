/* The ensemble teacher across groups: the fixed-point sums of ensemble.h, each group's over
 * its members, added over the groups, so that the teacher is bitwise independent of the rank
 * layout. */
#ifndef ENSDISTILL_TEACHER_H
#define ENSDISTILL_TEACHER_H

#include "ensdistill/ensemble.h"
#include "ensdistill/layout.h"

#include <stddef.h>
#include <stdint.h>

/* Sums acc (ensemble_accumulate's sums) over the group leaders, then gives every rank of each
 * group the total; ensemble_finish turns it into the teacher. */
void teacher_reduce(int64_t *acc, size_t count, const Layout *lo);

#endif
