/* Batch normalisation over the channel dimension of in[B,C,HW] (PyTorch BatchNorm2d, and
 * BatchNorm1d with HW = 1): training and eval forward, training backward. Per-channel sums are
 * taken in two passes (mean, then squared deviations) with double accumulation. */
#include "ensdistill/error.h"
#include "ensdistill/layers.h"
#include "parallel.h"
#include "vecsum.h"

#include <math.h>

void batchnorm_forward(float *out, float *save_mean, float *save_invstd, const float *in,
                       const float *gamma, const float *beta, float *running_mean,
                       float *running_var, int B, int C, int HW, float momentum, float eps,
                       int training) {
    const size_t N = (size_t)B * HW;
    ED_CHECK(N > 0 || !training, "batchnorm_forward: empty batch");
    ED_PARALLEL_FOR(N * C >= PAR_MIN_WORK, for (int c = 0; c < C; c++) {
        float mean, invstd;
        if (training) {
            /* mean = sum x / N;  var = sum (x - mean)^2 / N (biased, used to normalise) */
            double s = 0.0;
            for (int b = 0; b < B; b++)
                s += vec_sum(in + ((size_t)b * C + c) * HW, HW);
            mean = (float)(s / N);
            double ss = 0.0;
            for (int b = 0; b < B; b++)
                ss += vec_sqdev(in + ((size_t)b * C + c) * HW, mean, HW);
            double var = ss / N;
            invstd = (float)(1.0 / sqrt(var + eps));
            if (save_mean) save_mean[c] = mean;
            if (save_invstd) save_invstd[c] = invstd;
            /* running <- (1 - momentum) * running + momentum * batch (unbiased variance) */
            if (running_mean)
                running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
            if (running_var) {
                double unbiased = N > 1 ? ss / (N - 1) : var;
                running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)unbiased;
            }
        } else {
            mean = running_mean ? running_mean[c] : 0.0f;
            invstd = (float)(1.0 / sqrt((double)(running_var ? running_var[c] : 1.0f) + eps));
            if (save_mean) save_mean[c] = mean;
            if (save_invstd) save_invstd[c] = invstd;
        }
        /* y = (x - mean) * invstd * gamma + beta = x * a + shift */
        const float a = invstd * (gamma ? gamma[c] : 1.0f);
        const float shift = (beta ? beta[c] : 0.0f) - mean * a;
        for (int b = 0; b < B; b++) {
            const float *x = in + ((size_t)b * C + c) * HW;
            float *y = out + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++)
                y[i] = x[i] * a + shift;
        }
    });
}

/* With xhat = (x - mean) * invstd over the N = B*HW values of a channel:
 * dbeta += sum dy;  dgamma += sum dy * xhat;
 * din += gamma * invstd * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N) */
void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *gamma, const float *save_mean, const float *save_invstd, int B,
                        int C, int HW) {
    const size_t N = (size_t)B * HW;
    ED_PARALLEL_FOR(N * C >= PAR_MIN_WORK, for (int c = 0; c < C; c++) {
        const float mean = save_mean[c], invstd = save_invstd[c];
        double sum_dy = 0.0, sum_dy_xc = 0.0; /* xc = x - mean */
        for (int b = 0; b < B; b++) {
            const float *x = in + ((size_t)b * C + c) * HW;
            const float *dy = dout + ((size_t)b * C + c) * HW;
            float acc_dy[8] = {0}, acc_dx[8] = {0};
            int i = 0;
            for (; i + 8 <= HW; i += 8)
                for (int j = 0; j < 8; j++) {
                    acc_dy[j] += dy[i + j];
                    acc_dx[j] += dy[i + j] * (x[i + j] - mean);
                }
            for (; i < HW; i++) {
                sum_dy += dy[i];
                sum_dy_xc += (double)dy[i] * (x[i] - mean);
            }
            for (int j = 0; j < 8; j++) {
                sum_dy += acc_dy[j];
                sum_dy_xc += acc_dx[j];
            }
        }
        const double sum_dy_xhat = sum_dy_xc * invstd;
        if (dbeta) dbeta[c] += (float)sum_dy;
        if (dgamma) dgamma[c] += (float)sum_dy_xhat;
        if (!din) continue;
        /* din += a * dy - k * (x - mean) - a * sum_dy / N, k = a * invstd * sum_dy_xhat / N */
        const double a = (double)(gamma ? gamma[c] : 1.0f) * invstd;
        const double k = a * invstd * sum_dy_xhat / N;
        const float fa = (float)a, fk = (float)k, f0 = (float)(-a * sum_dy / N);
        for (int b = 0; b < B; b++) {
            const float *x = in + ((size_t)b * C + c) * HW;
            const float *dy = dout + ((size_t)b * C + c) * HW;
            float *dx = din + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++)
                dx[i] += fa * dy[i] - fk * (x[i] - mean) + f0;
        }
    });
}
