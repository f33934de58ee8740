/* bf16 by rounding (bf16_round.h): fp32 oneDNN convolutions and batch norms between roundings to
 * bf16, where the bf16 primitives round. */
#include "bf16_round.h"

#include "bf16_inline.h"
#include "ensdistill/alloc.h"
#include "ensdistill/precision.h"
#include "parallel.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int bf16_round_enabled(void) {
    const char *env = getenv(PRECISION_EMULATED_ENV);
    return env && strcmp(env, "round") == 0;
}

/* The scratch buffers of the context (dnnl_context_floats): a layer's input side, output side,
 * weights, and a backward's diff_src. */
enum { SLOT_IN, SLOT_OUT, SLOT_WEIGHT, SLOT_DIFF_SRC };

static float rounded(float x) {
    return bf16_to_f32(f32_to_bf16(x));
}

/* dst = src as fp32: widened from bf16 elements, or rounded to bf16 from fp32 ones. */
static void load(float *dst, const float *src, size_t n, int src_bf16) {
    if (src_bf16) {
        const uint16_t *h = (const uint16_t *)src;
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            dst[i] = bf16_to_f32(h[i]);
        });
    } else {
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            dst[i] = rounded(src[i]);
        });
    }
}

/* dst = src rounded to bf16: stored as bf16 elements when dst_bf16, else as fp32, written over
 * dst or added to it (fp32 only, as a reorder with a sum post-op adds). */
static void store(float *dst, const float *src, size_t n, int dst_bf16, int add) {
    if (dst_bf16) {
        uint16_t *h = (uint16_t *)dst;
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            h[i] = f32_to_bf16(src[i]);
        });
    } else if (add) {
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            dst[i] += rounded(src[i]);
        });
    } else {
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            dst[i] = rounded(src[i]);
        });
    }
}

/* Floats of one sample of a [C,H,W] activation in layout `lanes` (C padded to the lanes). */
static size_t sample_floats(int C, int H, int W, int lanes) {
    return (size_t)(C + lanes - 1) / lanes * lanes * H * W;
}

/* ---- convolution ---- */

struct RoundConv {
    DnnlContext *ctx;
    DnnlConv *f32; /* the same convolution in fp32, on fp32 activations in the same layouts */
    DnnlAct in_act, out_act;
    size_t in_floats, out_floats, weight_floats; /* per sample, per sample, in all */
};

RoundConv *round_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                             int stride, int pad, int has_bias, DnnlAct in_act, DnnlAct out_act) {
    RoundConv *r = xcalloc(1, sizeof(*r));
    const int OH = (H + 2 * pad - KS) / stride + 1, OW = (W + 2 * pad - KS) / stride + 1;
    r->ctx = ctx;
    r->in_act = in_act;
    r->out_act = out_act;
    r->f32 = dnnl_conv_create(ctx, max_batch, C, H, W, OC, KS, stride, pad, has_bias,
                              (DnnlAct){in_act.lanes, 0}, (DnnlAct){out_act.lanes, 0}, 0);
    r->in_floats = sample_floats(C, H, W, in_act.lanes);
    r->out_floats = sample_floats(OC, OH, OW, out_act.lanes);
    r->weight_floats = (size_t)OC * C * KS * KS;
    dnnl_context_floats(ctx, SLOT_IN, r->in_floats * max_batch);
    dnnl_context_floats(ctx, SLOT_OUT, r->out_floats * max_batch);
    dnnl_context_floats(ctx, SLOT_WEIGHT, r->weight_floats);
    dnnl_context_floats(ctx, SLOT_DIFF_SRC, r->in_floats * max_batch);
    return r;
}

void round_conv_free(RoundConv *r) {
    if (!r) return;
    dnnl_conv_free(r->f32);
    free(r);
}

void round_conv_forward(RoundConv *r, float *out, const float *in, const float *weight,
                        const float *bias, int B) {
    const size_t nin = r->in_floats * B, nout = r->out_floats * B;
    float *x = dnnl_context_floats(r->ctx, SLOT_IN, nin);
    float *y = dnnl_context_floats(r->ctx, SLOT_OUT, nout);
    float *w = dnnl_context_floats(r->ctx, SLOT_WEIGHT, r->weight_floats);
    load(x, in, nin, r->in_act.bf16);
    load(w, weight, r->weight_floats, 0);
    dnnl_conv_forward(r->f32, y, x, w, bias, B);
    store(out, y, nout, r->out_act.bf16, 0);
}

void round_conv_backward(RoundConv *r, float *din, float *dweight, float *dbias,
                         const float *dout, const float *in, const float *weight, int B,
                         int din_overwrite) {
    const size_t nin = r->in_floats * B, nout = r->out_floats * B;
    float *g = dnnl_context_floats(r->ctx, SLOT_OUT, nout);
    load(g, dout, nout, 0);
    if (dweight || dbias) {
        float *x = dnnl_context_floats(r->ctx, SLOT_IN, nin);
        load(x, in, nin, r->in_act.bf16);
        dnnl_conv_backward(r->f32, NULL, dweight, dbias, g, x, NULL, B, 0);
    }
    if (din) {
        float *w = dnnl_context_floats(r->ctx, SLOT_WEIGHT, r->weight_floats);
        float *d = dnnl_context_floats(r->ctx, SLOT_DIFF_SRC, nin);
        load(w, weight, r->weight_floats, 0);
        dnnl_conv_backward(r->f32, d, NULL, NULL, g, NULL, w, B, 1);
        store(din, d, nin, 0, !din_overwrite);
    }
}

/* ---- batch normalization ---- */

struct RoundBn {
    DnnlContext *ctx;
    DnnlBn *f32; /* the same batch norm in fp32 */
    size_t floats; /* per sample */
};

RoundBn *round_bn_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int lanes,
                         int relu) {
    RoundBn *r = xcalloc(1, sizeof(*r));
    r->ctx = ctx;
    r->f32 = dnnl_bn_create(ctx, max_batch, C, H, W, lanes, relu, 0);
    r->floats = sample_floats(C, H, W, lanes);
    for (int slot = SLOT_IN; slot <= SLOT_DIFF_SRC; slot++)
        if (slot != SLOT_WEIGHT) dnnl_context_floats(ctx, slot, r->floats * max_batch);
    return r;
}

void round_bn_free(RoundBn *r) {
    if (!r) return;
    dnnl_bn_free(r->f32);
    free(r);
}

void round_bn_forward(RoundBn *r, float *out, float *mean, float *var, const float *in,
                      const float *gamma, const float *beta, int B, int training, float eps) {
    const size_t n = r->floats * B;
    float *x = dnnl_context_floats(r->ctx, SLOT_IN, n);
    float *y = dnnl_context_floats(r->ctx, SLOT_OUT, n);
    load(x, in, n, 1);
    dnnl_bn_forward(r->f32, y, mean, var, x, gamma, beta, B, training, eps);
    store(out, y, n, 1, 0);
}

void round_bn_backward(RoundBn *r, float *din, float *dgamma, float *dbeta, const float *dout,
                       const float *in, const float *gamma, const float *beta, const float *mean,
                       const float *var, int B, float eps, int din_overwrite) {
    const size_t n = r->floats * B;
    float *x = dnnl_context_floats(r->ctx, SLOT_IN, n);
    float *g = dnnl_context_floats(r->ctx, SLOT_OUT, n);
    float *d = dnnl_context_floats(r->ctx, SLOT_DIFF_SRC, n);
    load(x, in, n, 1);
    load(g, dout, n, 0);
    dnnl_bn_backward(r->f32, d, dgamma, dbeta, g, x, gamma, beta, mean, var, B, eps, 1, NULL);
    if (din) store(din, d, n, 0, !din_overwrite);
}
