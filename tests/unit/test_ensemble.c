/* The fixed-point ensemble (nn/ensemble.c): the mean of the logits and the log of the mean
 * probability agree with a double-precision reference to the fixed point's resolution; the
 * result does not depend on the order of the members (bitwise); accumulate + finish give what
 * ensemble_combine gives (the teacher and the results table share the arithmetic); a value
 * outside the fixed-point range makes its entry NaN. */
#include "ensdistill/ensemble.h"

#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { L = 5, N = 7, K = 10 };

int main(void) {
    static float logits[L][N * K];
    unsigned s = 12345;
    for (int l = 0; l < L; l++)
        for (int i = 0; i < N * K; i++) {
            s = s * 1103515245u + 12345u;
            logits[l][i] = ((float)(s >> 8) / (float)(1u << 24) - 0.5f) * 20.0f;
        }
    const float *members[L], *reversed[L];
    for (int l = 0; l < L; l++) {
        members[l] = logits[l];
        reversed[l] = logits[L - 1 - l];
    }
    static float out[N * K], out_rev[N * K], out_split[N * K];
    for (int c = COMBINE_LOGITS; c <= COMBINE_PROBS; c++) {
        const char *name = c == COMBINE_LOGITS ? "logits" : "probs";
        ensemble_combine(out, members, L, N, K, (Combine)c);
        double max_err = 0;
        for (int i = 0; i < N; i++) {
            double ref[K], zmax[L];
            for (int l = 0; l < L; l++) {
                zmax[l] = -INFINITY;
                for (int k = 0; k < K; k++) zmax[l] = fmax(zmax[l], logits[l][i * K + k]);
            }
            for (int k = 0; k < K; k++) {
                ref[k] = 0;
                for (int l = 0; l < L; l++) {
                    if (c == COMBINE_LOGITS) {
                        ref[k] += logits[l][i * K + k] / (double)L;
                    } else {
                        double z = 0;
                        for (int j = 0; j < K; j++) z += exp(logits[l][i * K + j] - zmax[l]);
                        ref[k] += exp(logits[l][i * K + k] - zmax[l]) / z / L;
                    }
                }
                if (c == COMBINE_PROBS) ref[k] = log(ref[k]);
                max_err = fmax(max_err, fabs(out[i * K + k] - ref[k]) / fmax(1.0, fabs(ref[k])));
            }
        }
        EXPECT(max_err < 1e-5, "%s: max relative error %.3g against double", name, max_err);
        ensemble_combine(out_rev, reversed, L, N, K, (Combine)c);
        EXPECT(memcmp(out, out_rev, sizeof out) == 0, "%s: member order changes the ensemble",
               name);
        /* two "groups" summed separately, then added: what the teacher's Allreduce does */
        int64_t a[N * K] = {0}, b[N * K] = {0};
        for (int l = 0; l < L; l++)
            EXPECT(ensemble_accumulate(l % 2 ? a : b, NULL, logits[l], N, K, (Combine)c) == 0,
                   "%s: member %d out of range", name, l);
        for (int i = 0; i < N * K; i++) a[i] += b[i];
        ensemble_finish(out_split, a, N * K, L, (Combine)c);
        EXPECT(memcmp(out, out_split, sizeof out) == 0,
               "%s: grouped sums differ from ensemble_combine", name);
        report("ensemble of %d: %s, max error %.2g, order and grouping bitwise invariant\n", L,
               name, max_err);
    }
    logits[2][3] = NAN;
    logits[4][5] = 1e9f;
    ensemble_combine(out, members, L, N, K, COMBINE_LOGITS);
    int n_nan = 0;
    for (int i = 0; i < N * K; i++) n_nan += isnan(out[i]);
    EXPECT(isnan(out[3]) && isnan(out[5]) && n_nan == 2, "out-of-range logits: %d NaN", n_nan);
    report("logits out of the fixed-point range give NaN entries (%d)\n", n_nan);
    return failures != 0;
}
