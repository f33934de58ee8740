/* Fully connected layer (PyTorch Linear: weight[OUT,IN]) through one sgemm per product, and its
 * plain loop twin kept as the tests' reference.
 *
 * The sgemm is oneDNN's where the build has it: its threads are OpenMP's, the ones every other
 * kernel of the step runs on. OpenBLAS's pthread build (Debian's default libopenblas0-pthread)
 * keeps a pool of its own that busy-waits after each call, on the cores the next kernels need:
 * on Debian 13 (OpenBLAS 0.3.29) that made the whole backward pass of the cnn twice as slow at 2
 * threads. The build without oneDNN multiplies with OpenBLAS. */
#include "ensdistill/error.h"
#include "ensdistill/layers.h"

#ifdef ED_HAVE_DNNL
#include <dnnl.h>
#else
#include <cblas.h>
#endif

/* C[M,N] = A[M,K] (transposed when ta) * B[K,N] (transposed when tb) + beta C, row-major. */
static void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc) {
#ifdef ED_HAVE_DNNL
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb,
                                  beta, C, ldc);
    ED_CHECK(st == dnnl_success, "dnnl_sgemm %dx%dx%d: status %d", M, N, K, (int)st);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* out[B,OUT] = in[B,IN] * weight[OUT,IN]^T + bias[OUT] */
void linear_forward(float *out, const float *in, const float *weight, const float *bias, int B,
                    int IN, int OUT) {
    sgemm(0, 1, B, OUT, IN, in, IN, weight, IN, 0.0f, out, OUT);
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
        sgemm(1, 0, OUT, IN, B, dout, OUT, in, IN, 1.0f, dweight, IN);
    if (dbias)
        for (int b = 0; b < B; b++) {
            const float *g = dout + (size_t)b * OUT;
            for (int j = 0; j < OUT; j++)
                dbias[j] += g[j];
        }
    if (din)
        sgemm(0, 0, B, IN, OUT, dout, OUT, weight, IN, 1.0f, din, IN);
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
