/* Private to src/nn: the layers' kernels on oneDNN (C API, dnnl.h), for the build that has it
 * (ED_HAVE_DNNL). A layer's primitives are created once per batch size and executed with no
 * allocation; the tensors the engine sees stay plain NCHW float32 (PyTorch's layout), and the
 * primitives' own (blocked) layouts live in one scratch arena shared by every layer of a model.
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
/* Bytes of the context's scratch arena (grows when a layer is prepared for a new batch size). */
size_t dnnl_context_bytes(const DnnlContext *ctx);
/* The instruction set oneDNN's kernels use on this CPU ("avx512_core", "avx2", ...); "none"
 * without oneDNN. */
const char *dnnl_backend_isa(void);

/* Conv2d out[B,OC,OH,OW] = in[B,C,H,W] (*) weight[OC,C,KS,KS] + bias[OC] (as conv2d_forward).
 * dnnl_conv_create builds the primitives for max_batch; another batch size gets its own the
 * first time it is seen (a few are kept), so only the first step at a new size allocates. */
DnnlConv *dnnl_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                           int stride, int pad, int has_bias);
void dnnl_conv_free(DnnlConv *conv);
void dnnl_conv_forward(DnnlConv *conv, float *out, const float *in, const float *weight,
                       const float *bias, int B);
/* din, dweight, dbias += the adjoints (each may be NULL). */
void dnnl_conv_backward(DnnlConv *conv, float *din, float *dweight, float *dbias,
                        const float *dout, const float *in, const float *weight, int B);

#endif
