/* Forming the ensemble teacher across groups. Each group leader adds its members' logits (or
 * probabilities) into 64-bit fixed-point sums; the leaders MPI_Allreduce them. Integer addition
 * is associative, so the teacher is bitwise the same whatever the number of ranks or the order
 * in which groups finish, which a float reduction cannot promise. Resolution 2^-32. */
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/loss.h"
#include "ensdistill/teacher.h"

#include <math.h>
#include <string.h>

#define FIXED_SCALE 4294967296.0 /* 2^32 */

void teacher_accumulate(int64_t *acc, const float *logits, int N, int K, int use_probs) {
    if (!use_probs) {
        for (size_t i = 0; i < (size_t)N * K; i++) {
            ED_CHECK(fabsf(logits[i]) < 1e8f, "logit %g out of the teacher's fixed-point range",
                     logits[i]);
            acc[i] += llrint((double)logits[i] * FIXED_SCALE);
        }
        return;
    }
    float p[TEACHER_MAX_CLASSES];
    ED_CHECK(K <= TEACHER_MAX_CLASSES, "%d classes", K);
    for (int n = 0; n < N; n++) {
        softmax(p, logits + (size_t)n * K, K, 1.0f);
        for (int k = 0; k < K; k++) acc[(size_t)n * K + k] += llrint((double)p[k] * FIXED_SCALE);
    }
}

void teacher_reduce(int64_t *acc, size_t count, const Layout *lo) {
    if (lo->is_leader && lo->n_groups > 1)
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, acc, (int)count, MPI_INT64_T, MPI_SUM,
                                lo->leaders_comm));
    if (lo->ranks_per_model > 1)
        MPI_CHECK(MPI_Bcast(acc, (int)count, MPI_INT64_T, 0, lo->group_comm));
}

void teacher_finish(float *out, const int64_t *acc, size_t count, int members, int use_probs) {
    for (size_t i = 0; i < count; i++) {
        double mean = (double)acc[i] / FIXED_SCALE / members;
        out[i] = use_probs ? (float)log(mean > 1e-30 ? mean : 1e-30) : (float)mean;
    }
}
