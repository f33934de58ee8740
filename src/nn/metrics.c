/* Accuracy, NLL, ECE and disagreement (see metrics.h). */
#include "ensdistill/metrics.h"
#include "ensdistill/alloc.h"
#include "ensdistill/loss.h"

#include <math.h>
#include <stdlib.h>

Metrics metrics_compute(const float *logits, const int32_t *labels, const uint8_t *tags, int N,
                        int K, int ece_bins) {
    double *bin_conf = xcalloc((size_t)ece_bins, sizeof(double));
    double *bin_acc = xcalloc((size_t)ece_bins, sizeof(double));
    long *bin_n = xcalloc((size_t)ece_bins, sizeof(long));
    long correct = 0, multi = 0, multi_ok = 0, single = 0, single_ok = 0;
    double nll = 0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * K;
        /* log-sum-exp for -log p_y; confidence = p_max = 1 / sum exp(z - z_max) */
        int pred = nn_argmax(z, K);
        double zmax = z[pred], sum = 0;
        for (int k = 0; k < K; k++) sum += exp((double)z[k] - zmax);
        double lse = zmax + log(sum);
        nll += lse - z[labels[i]];
        double conf = 1.0 / sum;
        int ok = pred == labels[i];
        correct += ok;
        /* NaN logits (a diverged model read by eval) land in bin 0 instead of off the table */
        int b = conf > 0 ? (int)(conf * ece_bins) : 0;
        if (b >= ece_bins) b = ece_bins - 1;
        bin_conf[b] += conf;
        bin_acc[b] += ok;
        bin_n[b]++;
        if (tags) {
            if (tags[i]) {
                multi++;
                multi_ok += ok;
            } else {
                single++;
                single_ok += ok;
            }
        }
    }
    double ece = 0;
    for (int b = 0; b < ece_bins; b++)
        if (bin_n[b]) ece += fabs(bin_acc[b] - bin_conf[b]) / N;
    Metrics m = {
        .acc = N ? (double)correct / N : NAN,
        .nll = N ? nll / N : NAN,
        .ece = ece,
        .acc_multi = tags && multi ? (double)multi_ok / multi : NAN,
        .acc_single = tags && single ? (double)single_ok / single : NAN,
    };
    free(bin_conf);
    free(bin_acc);
    free(bin_n);
    return m;
}

double metrics_disagreement(const float *a, const float *b, int N, int K) {
    long differ = 0;
    for (int i = 0; i < N; i++)
        differ += nn_argmax(a + (size_t)i * K, K) != nn_argmax(b + (size_t)i * K, K);
    return N ? (double)differ / N : 0;
}
