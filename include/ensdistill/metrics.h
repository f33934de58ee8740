/* Evaluation metrics on logits. Pure functions: no MPI, no I/O. */
#ifndef ENSDISTILL_METRICS_H
#define ENSDISTILL_METRICS_H

#include <stdint.h>

typedef struct {
    double acc;        /* top-1 accuracy */
    double nll;        /* mean -log softmax(logits)[y] */
    double ece;        /* expected calibration error, equal-width confidence bins */
    double acc_multi;  /* accuracy on samples tagged multi-view (NaN without tags) */
    double acc_single; /* accuracy on samples tagged single-view (NaN without tags) */
} Metrics;

/* logits[N,K]; tags may be NULL. */
Metrics metrics_compute(const float *logits, const int32_t *labels, const uint8_t *tags, int N,
                        int K, int ece_bins);

/* Fraction of samples on which the two models' predictions differ. */
double metrics_disagreement(const float *a, const float *b, int N, int K);

#endif
