/* Forming the ensemble teacher across groups: each group leader adds its members' logits (or
 * probabilities) into 64-bit fixed-point sums (ensemble_accumulate, nn/ensemble.c); here the
 * leaders MPI_Allreduce them. Integer addition is associative, so the teacher is bitwise the
 * same whatever the number of ranks or the order in which groups finish, which a float
 * reduction cannot promise. */
#include "ensdistill/error.h"
#include "ensdistill/teacher.h"

void teacher_reduce(int64_t *acc, size_t count, const Layout *lo) {
    if (lo->is_leader && lo->n_groups > 1)
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, acc, (int)count, MPI_INT64_T, MPI_SUM,
                                lo->leaders_comm));
    if (lo->ranks_per_model > 1)
        MPI_CHECK(MPI_Bcast(acc, (int)count, MPI_INT64_T, 0, lo->group_comm));
}
