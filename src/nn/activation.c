/* Elementwise layers: ReLU, the paper's smoothed ReLU, residual addition and gradient
 * accumulation. */
#include "ensdistill/layers.h"
#include "parallel.h"
#include "srelu_inline.h"

#include <math.h>

/* out = max(in, 0) */
void relu_forward(float *out, const float *in, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

/* din += dout * (in > 0) */
void relu_backward(float *din, const float *dout, const float *in, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        const float g = dout[i]; /* loaded unconditionally, so the loop vectorises */
        din[i] += in[i] > 0.0f ? g : 0.0f;
    }
}

/* sReLU(z) = 0 (z <= 0);  z^q / (q rho^(q-1)) (0 < z <= rho);  z - (1 - 1/q) rho (z > rho).
 * Both pieces meet at rho with value rho/q and slope 1. */
float srelu(float z, float q, float rho) {
    return srelu_value(z, q, rho);
}

/* sReLU'(z) = 0 (z <= 0);  (z / rho)^(q-1) (0 < z <= rho);  1 (z > rho) */
float srelu_grad(float z, float q, float rho) {
    return srelu_derivative(z, q, rho);
}

void srelu_forward(float *out, const float *in, size_t n, float q, float rho) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        out[i] = srelu_value(in[i], q, rho);
}

/* din += dout * sReLU'(in) */
void srelu_backward(float *din, const float *dout, const float *in, size_t n, float q, float rho) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        din[i] += dout[i] * srelu_derivative(in[i], q, rho);
}

/* out = a + b */
void add_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* dx += dout */
void accumulate(float *dx, const float *dout, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN_WORK)
    for (size_t i = 0; i < n; i++)
        dx[i] += dout[i];
}
