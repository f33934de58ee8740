/* Fully connected layer (PyTorch Linear: weight[OUT,IN]) through cblas_sgemm, and its plain
 * loop twin kept as the tests' reference. */
#include "ensdistill/layers.h"

#include <cblas.h>

/* out[B,OUT] = in[B,IN] * weight[OUT,IN]^T + bias[OUT] */
void linear_forward(float *out, const float *in, const float *weight, const float *bias, int B,
                    int IN, int OUT) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OUT, IN, 1.0f, in, IN, weight, IN, 0.0f,
                out, OUT);
    if (bias)
        for (int b = 0; b < B; b++) {
            float *o = out + (size_t)b * OUT;
            for (int j = 0; j < OUT; j++)
                o[j] += bias[j];
        }
}

/* dweight += dout^T * in;  dbias += sum_b dout;  din += dout * weight */
void linear_backward(float *din, float *dweight, float *dbias, const float *dout, const float *in,
                     const float *weight, int B, int IN, int OUT) {
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OUT, IN, B, 1.0f, dout, OUT, in, IN,
                    1.0f, dweight, IN);
    if (dbias)
        for (int b = 0; b < B; b++) {
            const float *g = dout + (size_t)b * OUT;
            for (int j = 0; j < OUT; j++)
                dbias[j] += g[j];
        }
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, IN, OUT, 1.0f, dout, OUT, weight,
                    IN, 1.0f, din, IN);
}

/* out[b,j] = bias[j] + sum_i in[b,i] * weight[j,i] */
void linear_forward_naive(float *out, const float *in, const float *weight, const float *bias,
                          int B, int IN, int OUT) {
    for (int b = 0; b < B; b++)
        for (int j = 0; j < OUT; j++) {
            double s = bias ? bias[j] : 0.0;
            for (int i = 0; i < IN; i++)
                s += (double)in[(size_t)b * IN + i] * weight[(size_t)j * IN + i];
            out[(size_t)b * OUT + j] = (float)s;
        }
}

void linear_backward_naive(float *din, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, int B, int IN, int OUT) {
    for (int b = 0; b < B; b++)
        for (int j = 0; j < OUT; j++) {
            float g = dout[(size_t)b * OUT + j];
            if (dbias) dbias[j] += g;
            for (int i = 0; i < IN; i++) {
                if (dweight) dweight[(size_t)j * IN + i] += g * in[(size_t)b * IN + i];
                if (din) din[(size_t)b * IN + i] += g * weight[(size_t)j * IN + i];
            }
        }
}
