/* Private to src/nn: train.precision bf16 emulated by rounding, for measuring bf16's accuracy on a
 * CPU without bf16 units (ENSDISTILL_BF16_EMULATED=round; precision.h). The activations are
 * stored in bf16 as in real bf16 runs, and every other kernel is the same; only the oneDNN
 * convolutions and batch norms differ: they run in fp32 on copies rounded to bf16 at every point
 * where their bf16 primitives read or write bf16:
 * - a convolution's input, weights and output; in backward its diff_dst and diff_src (the weight
 *   and bias gradients stay fp32 sums of products of bf16 values, as oneDNN's are);
 * - a batch norm's input and output, its diff_dst and diff_src (statistics, scale and shift
 *   fp32, as oneDNN's are).
 * The numbers are those of the bf16 primitives but for the order of summation (and oneDNN's
 * flushing of denormals), at about fp32's speed: oneDNN's own bf16 emulation on AVX2 is its
 * reference kernels, hundreds of times slower. The copies live in four scratch buffers of the
 * context (dnnl_context_floats), grown when a layer meets a larger batch. */
#ifndef ENSDISTILL_BF16_ROUND_H
#define ENSDISTILL_BF16_ROUND_H

#include "dnnl_backend.h"

/* 1 when ENSDISTILL_BF16_EMULATED is "round" (read each time: a layer asks when it is built). */
int bf16_round_enabled(void);

typedef struct RoundConv RoundConv;
/* Arguments as dnnl_conv_create's (the conv computes in bf16). */
RoundConv *round_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                             int stride, int pad, int has_bias, DnnlAct in_act, DnnlAct out_act);
void round_conv_free(RoundConv *r);
void round_conv_forward(RoundConv *r, float *out, const float *in, const float *weight,
                        const float *bias, int B);
void round_conv_backward(RoundConv *r, float *din, float *dweight, float *dbias,
                         const float *dout, const float *in, const float *weight, int B,
                         int din_overwrite);

typedef struct RoundBn RoundBn;
/* A bf16 batch norm (bf16 in and out) in layout `lanes`, as dnnl_bn_create's. */
RoundBn *round_bn_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int lanes,
                         int relu);
void round_bn_free(RoundBn *r);
void round_bn_forward(RoundBn *r, float *out, float *mean, float *var, const float *in,
                      const float *gamma, const float *beta, int B, int training, float eps);
void round_bn_backward(RoundBn *r, float *din, float *dgamma, float *dbeta, const float *dout,
                       const float *in, const float *gamma, const float *beta, const float *mean,
                       const float *var, int B, float eps, int din_overwrite);

#endif
