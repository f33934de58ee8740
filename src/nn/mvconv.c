/* The paper's two-layer patch network: F_i(X) = sum_{r<M} sum_{p<P} sReLU(<w_{i*M+r}, x_p> +
 * sigma * noise weight), with the optional sparse "orth" noise of layers.h. The dense part is
 * one sgemm over all B*P patches; the plain loops at the end are the tests' reference. */
#include "ensdistill/error.h"
#include "ensdistill/layers.h"
#include "parallel.h"
#include "srelu_inline.h"

#include <cblas.h>

float mvconv_noise_weight(const MvNoise *noise, int row, int64_t coord) {
    if (!noise) return 0.0f;
    if (noise->noise_w && coord < noise->n_noise)
        return noise->noise_w[row * noise->n_noise + coord];
    if (noise->noise_init) return noise->noise_init(noise->noise_ctx, row, coord);
    return 0.0f;
}

static int has_noise(const MvNoise *noise) {
    return noise && (noise->noise_w || noise->noise_init);
}

/* pre[b*P + p, row] += sigma * noise_weight(row, sample_ids[b]*P + p) */
static void add_noise(float *pre, const MvNoise *noise, int B, int P, int KM) {
    ED_CHECK(noise->sample_ids, "mvconv: noise without sample_ids");
    for (int b = 0; b < B; b++)
        for (int p = 0; p < P; p++) {
            const int64_t coord = noise->sample_ids[b] * P + p;
            ED_CHECK(coord >= 0, "mvconv: negative sample id %lld",
                     (long long)noise->sample_ids[b]);
            float *z = pre + ((size_t)b * P + p) * KM;
            if (noise->noise_w && coord < noise->n_noise) {
                const float *nw = noise->noise_w + coord;
                for (int row = 0; row < KM; row++)
                    z[row] += noise->sigma * nw[(size_t)row * noise->n_noise];
            } else if (noise->noise_init) {
                for (int row = 0; row < KM; row++)
                    z[row] += noise->sigma * noise->noise_init(noise->noise_ctx, row, coord);
            }
        }
}

/* pre[B*P, K*M] = in[B*P, D] * weight[K*M, D]^T (+ noise);
 * out[b, i] = sum_p sum_{r<M} sReLU(pre[b*P + p, i*M + r]) */
void mvconv_forward(float *out, float *pre, const float *in, const float *weight,
                    const MvNoise *noise, int B, int P, int D, int K, int M, float q, float rho) {
    const int KM = K * M;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B * P, KM, D, 1.0f, in, D, weight, D, 0.0f,
                pre, KM);
    if (has_noise(noise)) add_noise(pre, noise, B, P, KM);
    ED_PARALLEL_FOR((size_t)B * P * KM >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * K;
        for (int i = 0; i < K; i++)
            o[i] = 0.0f;
        for (int p = 0; p < P; p++) {
            const float *z = pre + ((size_t)b * P + p) * KM;
            for (int i = 0; i < K; i++) {
                float s = 0.0f;
                for (int r = 0; r < M; r++)
                    s += srelu_value(z[i * M + r], q, rho);
                o[i] += s;
            }
        }
    });
}

/* Rows of B*P handled per sgemm in backward: the gradient block lives on the stack. */
#define MV_BLOCK_FLOATS 16384

/* g[b*P + p, row] = dout[b, row / M] * sReLU'(pre[b*P + p, row]);
 * dweight[K*M, D] += g^T * in[B*P, D];  dnoise_w[row, coord] += sigma * g (trained coords) */
void mvconv_backward(float *dweight, float *dnoise_w, const float *dout, const float *pre,
                     const float *in, const MvNoise *noise, int B, int P, int D, int K, int M,
                     float q, float rho) {
    const int KM = K * M;
    const size_t rows = (size_t)B * P;
    const int trained_noise = dnoise_w && noise && noise->noise_w && noise->n_noise > 0;
    if (trained_noise) ED_CHECK(noise->sample_ids, "mvconv: noise without sample_ids");
    float g[MV_BLOCK_FLOATS];
    size_t block = KM <= MV_BLOCK_FLOATS ? MV_BLOCK_FLOATS / KM : 0;
    if (block == 0) {
        /* very wide layer: one patch at a time, without sgemm */
        for (size_t n = 0; n < rows; n++) {
            const float *z = pre + n * KM, *x = in + n * D, *dy = dout + (n / P) * K;
            const int64_t coord =
                trained_noise ? noise->sample_ids[n / P] * P + (int64_t)(n % P) : -1;
            for (int row = 0; row < KM; row++) {
                const float gr = dy[row / M] * srelu_derivative(z[row], q, rho);
                if (gr == 0.0f) continue;
                if (dweight) {
                    float *dw = dweight + (size_t)row * D;
                    for (int d = 0; d < D; d++)
                        dw[d] += gr * x[d];
                }
                if (trained_noise && coord < noise->n_noise)
                    dnoise_w[row * noise->n_noise + coord] += noise->sigma * gr;
            }
        }
        return;
    }
    for (size_t n0 = 0; n0 < rows; n0 += block) {
        const size_t nr = rows - n0 < block ? rows - n0 : block;
        ED_PARALLEL_FOR(nr * KM >= PAR_MIN_WORK / 4, for (size_t j = 0; j < nr; j++) {
            const size_t n = n0 + j;
            const float *z = pre + n * KM, *dy = dout + (n / P) * K;
            float *gj = g + j * KM;
            for (int row = 0; row < KM; row++)
                gj[row] = dy[row / M] * srelu_derivative(z[row], q, rho);
        });
        /* in order: a batch holding a sample twice adds to the same noise weights */
        for (size_t j = 0; trained_noise && j < nr; j++) {
            const size_t n = n0 + j;
            const float *gj = g + j * KM;
            const int64_t coord = noise->sample_ids[n / P] * P + (int64_t)(n % P);
            if (coord < noise->n_noise)
                for (int row = 0; row < KM; row++)
                    dnoise_w[row * noise->n_noise + coord] += noise->sigma * gj[row];
        }
        if (dweight)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, KM, D, (int)nr, 1.0f, g, KM,
                        in + n0 * D, D, 1.0f, dweight, D);
    }
}

/* ---- reference: the definition, sum by sum, with sReLU in double through pow() ---- */

static double srelu_ref(double z, double q, double rho) {
    if (z <= 0.0) return 0.0;
    if (z <= rho) return pow(z, q) / (q * pow(rho, q - 1.0));
    return z - (1.0 - 1.0 / q) * rho;
}

static double srelu_grad_ref(double z, double q, double rho) {
    if (z <= 0.0) return 0.0;
    if (z <= rho) return pow(z / rho, q - 1.0);
    return 1.0;
}

void mvconv_forward_naive(float *out, float *pre, const float *in, const float *weight,
                          const MvNoise *noise, int B, int P, int D, int K, int M, float q,
                          float rho) {
    const int KM = K * M;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < K; i++) {
            double s = 0.0;
            for (int r = 0; r < M; r++) {
                const int row = i * M + r;
                for (int p = 0; p < P; p++) {
                    double z = 0.0;
                    for (int d = 0; d < D; d++)
                        z += (double)weight[(size_t)row * D + d] * in[((size_t)b * P + p) * D + d];
                    if (has_noise(noise))
                        z += (double)noise->sigma *
                             mvconv_noise_weight(noise, row, noise->sample_ids[b] * P + p);
                    pre[((size_t)b * P + p) * KM + row] = (float)z;
                    s += srelu_ref((float)z, q, rho);
                }
            }
            out[(size_t)b * K + i] = (float)s;
        }
}

void mvconv_backward_naive(float *dweight, float *dnoise_w, const float *dout, const float *pre,
                           const float *in, const MvNoise *noise, int B, int P, int D, int K, int M,
                           float q, float rho) {
    const int KM = K * M;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < P; p++)
            for (int row = 0; row < KM; row++) {
                const float g = dout[(size_t)b * K + row / M] *
                                (float)srelu_grad_ref(pre[((size_t)b * P + p) * KM + row], q, rho);
                if (dweight)
                    for (int d = 0; d < D; d++)
                        dweight[(size_t)row * D + d] += g * in[((size_t)b * P + p) * D + d];
                if (dnoise_w && noise && noise->noise_w) {
                    const int64_t coord = noise->sample_ids[b] * P + p;
                    if (coord < noise->n_noise)
                        dnoise_w[row * noise->n_noise + coord] += noise->sigma * g;
                }
            }
}
