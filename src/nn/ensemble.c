/* The fixed-point ensemble of models' logits (see ensemble.h). */
#include "ensdistill/ensemble.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/loss.h"

#include <math.h>
#include <stdlib.h>

#define FIXED_SCALE 4294967296.0 /* 2^32 */
#define FIXED_MAX 1e8f           /* |value| below this: value * 2^32 fits an int64 with room */

/* acc += x in fixed point; 0, or 1 (and bad = 1) when x is out of range. */
static inline size_t add_fixed(int64_t *acc, uint8_t *bad, float x) {
    if (fabsf(x) < FIXED_MAX) { /* false for NaN */
        *acc += llrint((double)x * FIXED_SCALE);
        return 0;
    }
    if (bad) *bad = 1;
    return 1;
}

size_t ensemble_accumulate(int64_t *acc, uint8_t *bad, const float *logits, int N, int K,
                           Combine combine) {
    size_t n_bad = 0;
    if (combine == COMBINE_LOGITS) {
        for (size_t i = 0; i < (size_t)N * K; i++)
            n_bad += add_fixed(&acc[i], bad ? &bad[i] : NULL, logits[i]);
        return n_bad;
    }
    float p[ENSEMBLE_MAX_CLASSES];
    ED_CHECK(K <= ENSEMBLE_MAX_CLASSES, "%d classes", K);
    for (int n = 0; n < N; n++) {
        size_t row = (size_t)n * K;
        nn_softmax(p, logits + row, K, 1.0f);
        for (int k = 0; k < K; k++)
            n_bad += add_fixed(&acc[row + k], bad ? &bad[row + k] : NULL, p[k]);
    }
    return n_bad;
}

void ensemble_finish(float *out, const int64_t *acc, size_t count, int members, Combine combine) {
    for (size_t i = 0; i < count; i++) {
        double mean = (double)acc[i] / FIXED_SCALE / members;
        out[i] = combine == COMBINE_PROBS ? (float)log(mean > 1e-30 ? mean : 1e-30) : (float)mean;
    }
}

void ensemble_combine(float *out, const float *const *members, int n, int N, int K,
                      Combine combine) {
    size_t count = (size_t)N * K, n_bad = 0;
    int64_t *acc = xcalloc(count, sizeof(int64_t));
    uint8_t *bad = xcalloc(count, 1);
    for (int l = 0; l < n; l++)
        n_bad += ensemble_accumulate(acc, bad, members[l], N, K, combine);
    ensemble_finish(out, acc, count, n, combine);
    for (size_t i = 0; n_bad && i < count; i++)
        if (bad[i]) out[i] = NAN;
    free(acc);
    free(bad);
}
