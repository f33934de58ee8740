/* Elementwise layers: ReLU, residual addition and gradient accumulation. (The paper's smoothed
 * ReLU is applied inside mvconv: srelu_inline.h.) */
#include "ensdistill/layers.h"
#include "parallel.h"

/* out = max(in, 0) */
void relu_forward(float *out, const float *in, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
    });
}

/* din += dout * (in > 0) */
void relu_backward(float *din, const float *dout, const float *in, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        const float g = dout[i]; /* loaded unconditionally, so the loop vectorises */
        din[i] += in[i] > 0.0f ? g : 0.0f;
    });
}

/* din = dout * (in > 0) */
void relu_backward_write(float *din, const float *dout, const float *in, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        const float g = dout[i];
        din[i] = in[i] > 0.0f ? g : 0.0f;
    });
}

/* out = a + b */
void add_forward(float *out, const float *a, const float *b, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        out[i] = a[i] + b[i];
    });
}

/* dx += dout */
void add_backward(float *dx, const float *dout, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        dx[i] += dout[i];
    });
}
