/* Kernels on bf16 activations (train.precision bf16): blocked_fwd.h's forward kernels
 * instantiated for bf16, and the elementwise ReLU and residual add of activation.c. Values are
 * widened to float, computed as the fp32 kernels compute them, and rounded back
 * (bf16_inline.h); max pooling, the shortcut and ReLU only move values, so they round nothing.
 * Gradients stay fp32: the only backward that reads a bf16 activation is ReLU's mask. */
#include "bf16_inline.h"
#include "nn_internal.h"

#include "ensdistill/error.h"
#include "parallel.h"

#include <math.h>
#include <string.h>

#define ELEM uint16_t
#define LOAD(v) bf16_to_f32(v)
#define STORE(f) f32_to_bf16(f)
#define NAME(n) n##_bf16
#include "blocked_fwd.h"

/* out = max(in, 0) (a NaN gives 0, as relu_forward) */
void relu_forward_bf16(uint16_t *out, const uint16_t *in, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        out[i] = bf16_to_f32(in[i]) > 0.0f ? in[i] : 0;
    });
}

/* din += dout * (out > 0), out being the ReLU's output; din = that where `write` */
void relu_backward_bf16(float *din, const float *dout, const uint16_t *out, size_t n, int write) {
    if (write) {
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            const float g = dout[i];
            din[i] = bf16_to_f32(out[i]) > 0.0f ? g : 0.0f;
        });
        return;
    }
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        const float g = dout[i];
        din[i] += bf16_to_f32(out[i]) > 0.0f ? g : 0.0f;
    });
}

/* out = a + b, rounded to bf16 */
void add_forward_bf16(uint16_t *out, const uint16_t *a, const uint16_t *b, size_t n) {
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        out[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
    });
}
