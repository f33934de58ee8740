/* Private to src/nn: the layers' kernels on oneDNN (C API, dnnl.h), for the build that has it
 * (ED_HAVE_DNNL). A layer's primitives are created once per batch size and executed with no
 * allocation. Activations stay in the blocked layout of dnnl_backend_lanes() between layers
 * (the engine's plan, nn_assign_layouts); weights stay plain OIHW in the parameter arena (the
 * checkpoint layout) and are reordered per step, and any layout a primitive wants beyond that
 * lives in one scratch arena shared by every layer of a model.
 * Without oneDNN, dnnl_context_create returns NULL and the engine runs the im2col + BLAS
 * kernels of layers.h. Same conventions as layers.h: forward overwrites, backward ADDS. */
#ifndef ENSDISTILL_DNNL_BACKEND_H
#define ENSDISTILL_DNNL_BACKEND_H

#include <stddef.h>

typedef struct DnnlContext DnnlContext; /* engine, stream, the shared scratch arena */
typedef struct DnnlConv DnnlConv;       /* one conv layer's shape and its primitives */

/* 1 when this build has oneDNN. */
int dnnl_backend_available(void);
/* A context, or NULL without oneDNN. Owns the scratch arena every layer created on it uses:
 * one layer runs at a time. */
DnnlContext *dnnl_context_create(void);
void dnnl_context_free(DnnlContext *ctx);
/* Bytes of the context's scratch arena and float slots (both grow when a layer is prepared for
 * a new batch size). */
size_t dnnl_context_bytes(const DnnlContext *ctx);
/* Slot `slot` (0..3) of the context's float buffers, at least n floats, 64-byte aligned: scratch
 * beside the arena for layers built on the primitives (bf16_round.h). Grows (allocating) only
 * when n exceeds every earlier request for the slot. */
float *dnnl_context_floats(DnnlContext *ctx, int slot, size_t n);
/* The instruction set oneDNN's kernels use on this CPU ("avx512_core", "avx2", ...); "none"
 * without oneDNN. */
const char *dnnl_backend_isa(void);

/* Activation layouts: `lanes` 1 is plain NCHW; 8 or 16 is oneDNN's blocked nChw8c / nChw16c
 * (channels in blocks of `lanes`, the block innermost; C padded with zeros to a multiple of
 * lanes). The lanes the engine keeps activations in between layers on this CPU: 16 with
 * AVX-512, 8 with AVX/AVX2, 1 elsewhere (and without oneDNN). */
int dnnl_backend_lanes(void);

/* 1 when oneDNN has a bf16 convolution on this CPU, with the name of its implementation in impl
 * ("brg:avx512_core_bf16", "jit:avx512_core_bf16", "ref:any", ...); 0 when it has none (every
 * CPU without AVX-512) or without oneDNN. */
int dnnl_backend_bf16_conv(char *impl, size_t impl_size);

/* How the engine stores one activation: its layout (lanes, as above) and whether its elements
 * are bf16 (train.precision bf16) rather than fp32. Gradients are always fp32. */
typedef struct {
    int lanes;
    int bf16;
} DnnlAct;

/* Conv2d out[B,OC,OH,OW] = in[B,C,H,W] (*) weight[OC,C,KS,KS] + bias[OC] (as conv2d_forward),
 * in and out stored as `in_act` / `out_act` say, their gradients fp32 in the same layouts,
 * weights plain OIHW fp32. bf16: the primitives compute in bf16: they read bf16 copies of fp32
 * inputs (weights, gradients, an fp32 input image), reordered into the scratch arena, and
 * read and write bf16 activations in place when the layouts match; the bias and the weight
 * gradients stay fp32 (oneDNN accumulates in fp32). fp32 with one plain input channel (an
 * image): the weight gradient comes from conv_wgrad_1ch (conv_wgrad.h), not oneDNN.
 * dnnl_conv_create builds the primitives for max_batch; another batch size gets its own the
 * first time it is seen (a few are kept), so only the first step at a new size allocates. */
DnnlConv *dnnl_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                           int stride, int pad, int has_bias, DnnlAct in_act, DnnlAct out_act,
                           int bf16);
void dnnl_conv_free(DnnlConv *conv);
void dnnl_conv_forward(DnnlConv *conv, float *out, const float *in, const float *weight,
                       const float *bias, int B);
/* dweight, dbias += the adjoints (each may be NULL); din += the adjoint, or din = it when
 * din_overwrite (din may be NULL). in and out (forward) in their DnnlAct types; dout and din
 * fp32. */
void dnnl_conv_backward(DnnlConv *conv, float *din, float *dweight, float *dbias,
                        const float *dout, const float *in, const float *weight, int B,
                        int din_overwrite);

/* BatchNorm2d over in[B,C,H,W] in layout `lanes` (oneDNN batch normalization with scale and
 * shift), optionally fused with the ReLU that follows it (out = max(bn(in), 0)). bf16: in and
 * out are bf16 (statistics, scale and shift fp32); backward reorders the fp32 gradients to bf16
 * and back. */
typedef struct DnnlBn DnnlBn;
DnnlBn *dnnl_bn_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int lanes, int relu,
                       int bf16);
void dnnl_bn_free(DnnlBn *bn);
/* Training: mean[C], var[C] = the batch's statistics (biased variance), written; the fused
 * ReLU's mask kept for backward. Eval: mean and var are read (the running statistics). in and
 * out point at bf16 elements when the layer was created bf16. */
void dnnl_bn_forward(DnnlBn *bn, float *out, float *mean, float *var, const float *in,
                     const float *gamma, const float *beta, int B, int training, float eps);
/* din = (or +=, unless din_overwrite) the adjoint w.r.t. in; dgamma, dbeta += theirs. dout is
 * the gradient of the output (after the fused ReLU); din and dout fp32. tmp: B*C*H*W padded
 * floats of scratch, used when din is added to (fp32 layers). */
void dnnl_bn_backward(DnnlBn *bn, float *din, float *dgamma, float *dbeta, const float *dout,
                      const float *in, const float *gamma, const float *beta, const float *mean,
                      const float *var, int B, float eps, int din_overwrite, float *tmp);

#endif
