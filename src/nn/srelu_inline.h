/* Private to src/nn: the smoothed ReLU of the paper, inline for mvconv, which applies it per
 * element (the tests include it to check it). Integer q (the paper's q = 3, 4, ...) uses repeated
 * multiplication instead of powf, which is several times slower. */
#ifndef ENSDISTILL_NN_SRELU_INLINE_H
#define ENSDISTILL_NN_SRELU_INLINE_H

#include <math.h>

/* t^(q-1) for t in (0, 1] */
static inline float srelu_pow(float t, float q) {
    const int n = (int)q - 1;
    if ((float)(n + 1) == q && n >= 0 && n <= 16) {
        float p = 1.0f;
        for (int i = 0; i < n; i++)
            p *= t;
        return p;
    }
    return powf(t, q - 1.0f);
}

/* 0 (z <= 0);  z^q / (q rho^(q-1)) = (z/rho)^(q-1) z / q (0 < z <= rho);  z - (1 - 1/q) rho */
static inline float srelu_value(float z, float q, float rho) {
    if (z <= 0.0f) return 0.0f;
    if (z <= rho) return srelu_pow(z / rho, q) * z / q;
    return z - (1.0f - 1.0f / q) * rho;
}

/* 0 (z <= 0);  (z/rho)^(q-1) (0 < z <= rho);  1 (z > rho) */
static inline float srelu_derivative(float z, float q, float rho) {
    if (z <= 0.0f) return 0.0f;
    if (z <= rho) return srelu_pow(z / rho, q);
    return 1.0f;
}

#endif
