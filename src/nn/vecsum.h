/* Private to src/nn: float reductions written so the compiler vectorises them without
 * -ffast-math (eight independent partial sums, combined in double at the end). */
#ifndef ENSDISTILL_NN_VECSUM_H
#define ENSDISTILL_NN_VECSUM_H

#include <stddef.h>

/* sum_i x[i] */
static inline double vec_sum(const float *x, size_t n) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j];
    double s = 0.0;
    for (; i < n; i++)
        s += x[i];
    for (int j = 0; j < 8; j++)
        s += acc[j];
    return s;
}

/* sum_i x[i] * y[i] */
static inline double vec_dot(const float *x, const float *y, size_t n) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += x[i + j] * y[i + j];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)x[i] * y[i];
    for (int j = 0; j < 8; j++)
        s += acc[j];
    return s;
}

/* sum_i (x[i] - m)^2 */
static inline double vec_sqdev(const float *x, float m, size_t n) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float d = x[i + j] - m;
            acc[j] += d * d;
        }
    double s = 0.0;
    for (; i < n; i++) {
        double d = (double)x[i] - m;
        s += d * d;
    }
    for (int j = 0; j < 8; j++)
        s += acc[j];
    return s;
}

#endif
