/* Private to src/nn: the weight and bias gradients of a convolution whose input has one channel
 * (a grayscale image: the cnn's conv1 on Fashion-MNIST), which the oneDNN backend computes here
 * instead of with oneDNN. oneDNN's JIT kernels for backward weights want the input in the
 * channel-blocked layout, so one channel is padded to 8 (AVX2) or 16 (AVX-512) and the kernel
 * does 8-16x the work: on the cnn's conv1 (1 -> 32 channels, 5x5, 28x28, batch 128) 20 ms a
 * step on a Zen 3, against 2.3 ms for its forward; its GEMM-based kernel took 10-13 ms. */
#ifndef ENSDISTILL_NN_CONV_WGRAD_H
#define ENSDISTILL_NN_CONV_WGRAD_H

#include <stddef.h>

/* Images per partial sum: the batch is cut into chunks of this many images, each chunk's sums
 * are formed apart, and the chunks are added in order, so the result depends on the batch
 * size only, never on the thread count. */
#define CONV_WGRAD_CHUNK 8

/* 1 when conv_wgrad_1ch takes this shape: kernel up to 7, a padded row up to 2048, L 1, 8 or
 * 16. */
int conv_wgrad_1ch_fits(int W, int KS, int pad, int L);
/* Floats of scratch conv_wgrad_1ch needs for a batch of B. */
size_t conv_wgrad_1ch_scratch(int B, int OC, int KS);

/* dweight[OC, 1, KS, KS] += d/dweight, dbias[OC] += d/dbias (dbias may be NULL) of
 * out = conv(in, weight) + bias, from in (fp32 [B, 1, H, W]) and dout (fp32 [B, OC, OH, OW] in
 * layout `L`: 1 plain, 8 or 16 channel-blocked as blocked_at says). scratch: the floats
 * conv_wgrad_1ch_scratch asks for. */
void conv_wgrad_1ch(float *dweight, float *dbias, const float *dout, const float *in, int B, int H,
                    int W, int OC, int KS, int stride, int pad, int L, float *scratch);

/* 1 when conv_wgrad3 takes this convolution: a 3x3 kernel, pad 0-2, C and OC multiples of 8, in
 * and dout in the 8-lane blocked layout (AVX2's; oneDNN 2.6's JIT kernel reached 64-69% of
 * the FMA peak there on a Zen 3, against 83-92% for the same layers' forward and backward
 * data). */
int conv_wgrad3_fits(int C, int OC, int KS, int pad, int L);
/* Floats of scratch conv_wgrad3 needs for a batch of B. */
size_t conv_wgrad3_scratch(int B, int C, int OC);
/* dweight[OC, C, 3, 3] += d/dweight, dbias[OC] += d/dbias (dbias may be NULL) of
 * out = conv(in, weight) + bias, from in (fp32 [B, C, H, W]) and dout (fp32 [B, OC, OH, OW]),
 * both 8-lane blocked. scratch: the floats conv_wgrad3_scratch asks for. */
void conv_wgrad3(float *dweight, float *dbias, const float *dout, const float *in, int B, int C,
                 int H, int W, int OC, int stride, int pad, float *scratch);

#endif
