/* Layer kernels, forward and backward, as plain functions (outputs first, shapes in comments).
 * Layout is NCHW, float32, as PyTorch. Weight layouts are PyTorch's.
 *
 * Short names: B batch, C / OC input / output channels, H, W height and width, KS the
 * (square) kernel size of conv and pooling, K the number of classes (mvconv's outputs).
 *
 * Conventions shared by every kernel:
 *   - forward functions OVERWRITE their output;
 *   - backward functions ADD into din, dweight and dbias (the model zeroes gradients once per
 *     step; adding lets a value feed two layers, as a residual block's input does);
 *   - din may be NULL: the input needs no gradient (the network's input);
 *   - bias / dbias may be NULL: the layer has no bias;
 *   - workspace is caller-owned scratch of at least *_workspace_floats() floats: kernels never
 *     allocate.
 * Each fast kernel has a plain *_naive twin kept as the reference for tests. */
#ifndef ENSDISTILL_LAYERS_H
#define ENSDISTILL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ---- linear:  out[B,OUT] = in[B,IN] * weight[OUT,IN]^T + bias[OUT] ---- */
void linear_forward(float *out, const float *in, const float *weight, const float *bias, int B,
                    int IN, int OUT);
void linear_backward(float *din, float *dweight, float *dbias, const float *dout, const float *in,
                     const float *weight, int B, int IN, int OUT);
void linear_forward_naive(float *out, const float *in, const float *weight, const float *bias,
                          int B, int IN, int OUT);
void linear_backward_naive(float *din, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, int B, int IN, int OUT);

/* ---- conv2d:  out[B,OC,OH,OW] = in[B,C,H,W] (*) weight[OC,C,KS,KS] + bias[OC]
 *      OH = (H + 2*pad - KS) / stride + 1, OW likewise. im2col + sgemm; 1x1 stride-1 pad-0 skips
 *      im2col. ---- */
static inline int conv2d_out_size(int H, int KS, int stride, int pad) {
    return (H + 2 * pad - KS) / stride + 1;
}
/* Scratch the fast kernels need for a batch of B: the im2col matrix of as many samples as make
 * about 1024 output columns, their gathered outputs and one zero-padded sample. The same
 * amount serves forward and backward. Nondecreasing in B, so scratch sized for the largest
 * batch serves every smaller one; 0 for the 1x1 stride-1 pad-0 path. Bounded: at most about
 * 16M floats (64 MB) unless a single sample's im2col needs more. */
size_t conv2d_workspace_floats(int B, int C, int H, int W, int OC, int KS, int stride, int pad);
void conv2d_forward(float *out, const float *in, const float *weight, const float *bias, int B,
                    int C, int H, int W, int OC, int KS, int stride, int pad, float *workspace);
void conv2d_backward(float *din, float *dweight, float *dbias, const float *dout, const float *in,
                     const float *weight, int B, int C, int H, int W, int OC, int KS, int stride,
                     int pad, float *workspace);
void conv2d_forward_naive(float *out, const float *in, const float *weight, const float *bias,
                          int B, int C, int H, int W, int OC, int KS, int stride, int pad);
void conv2d_backward_naive(float *din, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, int B, int C, int H, int W, int OC,
                           int KS, int stride, int pad);

/* ---- batchnorm2d over in[B,C,HW] (HW = H*W; 1 for BatchNorm1d on [B,C]) ----
 * training: y = (x - mean_b) * invstd_b * gamma + beta with the batch's biased variance;
 *           running_mean/var <- (1 - momentum) * running + momentum * batch (unbiased var), as
 *           PyTorch; saves mean[C] and invstd[C] for backward. Running stats may be NULL.
 * eval:     uses running statistics; mean/invstd may be NULL (else they receive the running
 *           mean and 1/sqrt(var + eps)).
 * gamma/beta NULL: no affine part (1 and 0). Backward is the training-mode gradient (through
 * the batch statistics); dgamma/dbeta/din may be NULL. */
void batchnorm_forward(float *out, float *save_mean, float *save_invstd, const float *in,
                       const float *gamma, const float *beta, float *running_mean,
                       float *running_var, int B, int C, int HW, float momentum, float eps,
                       int training);
void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                        const float *in, const float *gamma, const float *save_mean,
                        const float *save_invstd, int B, int C, int HW);

/* ---- elementwise ---- */
/* out = max(in, 0) */
void relu_forward(float *out, const float *in, size_t n);
/* din += dout * (in > 0) */
void relu_backward(float *din, const float *dout, const float *in, size_t n);
/* din = dout * (in > 0): the same, where din holds no other contribution yet */
void relu_backward_write(float *din, const float *dout, const float *in, size_t n);
/* out = a + b */
void add_forward(float *out, const float *a, const float *b, size_t n);
/* dx += dout (the backward of add, for each operand) */
void add_backward(float *dx, const float *dout, size_t n);

/* ---- pooling (no padding unless given; out size as conv2d_out_size) ---- */
/* Padding counts as -infinity. argmax[B*C*OH*OW] records, for backward, the index h*W + w of
 * each maximum within its (b, c) input plane (PyTorch's return_indices convention; the first
 * maximum wins ties, NaN propagates). */
void maxpool_forward(float *out, int32_t *argmax, const float *in, int B, int C, int H, int W,
                     int KS, int stride, int pad);
void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int C, int H,
                      int W, int KS, int stride, int pad);
/* out[B,C] = mean over H*W of in[B,C,H,W] */
void global_avgpool_forward(float *out, const float *in, int B, int C, int HW);
void global_avgpool_backward(float *din, const float *dout, int B, int C, int HW);

/* ---- He et al.'s parameter-free CIFAR shortcut (option A): subsample by `stride` and pad
 * channels with zeros, pad_front before and OC - C - pad_front after.
 * out[B,OC,OH,OW] from in[B,C,H,W], OH = ceil(H / stride). ---- */
void shortcut_pad_forward(float *out, const float *in, int B, int C, int H, int W, int OC,
                          int stride, int pad_front);
void shortcut_pad_backward(float *din, const float *dout, int B, int C, int H, int W, int OC,
                           int stride, int pad_front);

/* ---- the paper's patch network (mvconv): F_i(X) = sum_r sum_p sReLU(<w_{i,r}, x_p>)
 * in[B,P,D] patches, weight[K*M, D] (class i owns rows i*M .. i*M+M-1), out[B,K].
 * Sparse "orth" noise: patch p of sample id s also carries noise of norm sigma along its own
 * coordinate c = s*P + p, orthogonal to everything else; its weight is noise_w[row, c] when
 * c < n_noise (trained), else a fixed draw noise_init(row, c) (never trained: test samples).
 * noise_w may be NULL (dense data, sigma unused). pre[B*P*K*M] saves the pre-activations. ---- */
typedef float (*NoiseInitFn)(const void *ctx, int row, int64_t coord);
typedef struct {
    const float *noise_w; /* [K*M, n_noise] or NULL */
    int64_t n_noise;
    float sigma;
    const int64_t *sample_ids; /* [B] */
    NoiseInitFn noise_init;
    const void *noise_ctx;
} MvNoise;
void mvconv_forward(float *out, float *pre, const float *in, const float *weight,
                    const MvNoise *noise, int B, int P, int D, int K, int M, float q, float rho);
/* dweight += ...; dnoise_w[row, c] += ... for trained coordinates (may be NULL); no din. */
void mvconv_backward(float *dweight, float *dnoise_w, const float *dout, const float *pre,
                     const float *in, const MvNoise *noise, int B, int P, int D, int K, int M,
                     float q, float rho);
/* The noise weight a pre-activation carries: noise_w[row, coord] when trained, noise_init(...)
 * beyond, 0 without noise (noise NULL, or neither noise_w nor noise_init). */
float mvconv_noise_weight(const MvNoise *noise, int row, int64_t coord);
void mvconv_forward_naive(float *out, float *pre, const float *in, const float *weight,
                          const MvNoise *noise, int B, int P, int D, int K, int M, float q,
                          float rho);
void mvconv_backward_naive(float *dweight, float *dnoise_w, const float *dout, const float *pre,
                           const float *in, const MvNoise *noise, int B, int P, int D, int K,
                           int M, float q, float rho);

#endif
