/* The engine's own kernels for activations in oneDNN's blocked layouts (nChw8c, nChw16c; see
 * dnnl_backend.h): max pooling, global average pooling, the option-A shortcut and the reorder
 * to plain at a flatten. Element (b, c, hw) of a [B, C, HW] tensor with `lanes` L lives at
 * ((b * ceil(C/L) + c/L) * HW + hw) * L + c%L (blocked_at); lanes 1 is plain NCHW. Padding
 * channels are 0. The forward kernels are blocked_fwd.h's template, instantiated here for float
 * activations and in blocked_bf16.c for bf16 ones; backward reads gradients only (fp32). */
#include "nn_internal.h"

#include "ensdistill/error.h"
#include "parallel.h"
#include "vec8.h"

#include <math.h>
#include <string.h>

/* the forward kernels, on float activations */
#define ELEM float
#define LOAD(v) (v)
#define STORE(f) (f)
#define NAME(n) n
#include "blocked_fwd.h"

/* One output row of non-overlapping windows (KS == stride) of 8 * NV lanes: every input
 * position of the row's windows gathers its gradient from its own window, so there is no
 * scatter and no branch. Adding -0.0 where the position is not the window's maximum leaves every
 * float as it was, as the scatter would; with `write` the position gets its gradient or 0. */
static inline __attribute__((always_inline)) void maxpool_back_row(float *dx, const float *dy,
                                                                    const int32_t *am, int W,
                                                                    int OW, int oh, int KS,
                                                                    int write, const int NV) {
    const v8f none = (v8f){0} - 0.0f, zero = (v8f){0};
    for (int kh = 0; kh < KS; kh++)
        for (int kw = 0; kw < KS; kw++)
            for (int ow = 0; ow < OW; ow++) {
                const int32_t i = (oh * KS + kh) * W + ow * KS + kw;
                for (int v = 0; v < NV; v++) {
                    float *d = dx + ((size_t)i * NV + v) * 8;
                    const size_t o = ((size_t)ow * NV + v) * 8;
                    const v8i take = v8i_load(am + o) == i;
                    if (write)
                        v8f_store(d, v8f_select(take, v8f_load(dy + o), zero));
                    else
                        v8f_store(d, v8f_load(d) + v8f_select(take, v8f_load(dy + o), none));
                }
            }
}

int blocked_maxpool_backward_writes(int H, int W, int L, int KS, int stride) {
    return KS == stride && L % 8 == 0 && H % KS == 0 && W % KS == 0;
}

/* din[argmax] += dout (din = that, and 0 elsewhere, where `write`) */
void blocked_maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int C,
                              int H, int W, int L, int KS, int stride, int write) {
    ED_CHECK(!write || blocked_maxpool_backward_writes(H, W, L, KS, stride),
             "blocked maxpool backward cannot write a %dx%d input (window %d, stride %d)", H, W,
             KS, stride);
    const int OH = conv2d_out_size(H, KS, stride, 0), OW = conv2d_out_size(W, KS, stride, 0);
    const size_t images = (size_t)B * ((C + L - 1) / L);
    ED_PARALLEL_FOR(images * H * W * L >= PAR_MIN_WORK, for (size_t bc = 0; bc < images; bc++) {
        float *dx = din + bc * H * W * L;
        const float *dy = dout + bc * OH * OW * L;
        const int32_t *am = argmax + bc * OH * OW * L;
        if (KS != stride || L % 8) { /* overlapping windows (a position may take several
                                        gradients) or plain layout: scatter */
            for (size_t o = 0; o < (size_t)OH * OW; o++)
                for (int l = 0; l < L; l++) dx[(size_t)am[o * L + l] * L + l] += dy[o * L + l];
            continue;
        }
        for (int oh = 0; oh < OH; oh++) {
            const size_t o = (size_t)oh * OW * L;
            if (L == 8)
                maxpool_back_row(dx, dy + o, am + o, W, OW, oh, KS, write, 1);
            else
                maxpool_back_row(dx, dy + o, am + o, W, OW, oh, KS, write, L / 8);
        }
    });
}

/* din[b,c,hw] += dout[b,c] / HW */
void blocked_gap_backward(float *din, const float *dout, int B, int C, int HW, int L) {
    const float inv = 1.0f / (float)HW;
    ED_PARALLEL_FOR((size_t)B * C * HW >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            const float g = dout[(size_t)b * C + c] * inv;
            for (int i = 0; i < HW; i++) din[blocked_at(b, c, i, C, HW, L)] += g;
        }
    });
}

/* din[b, c, oh*stride, ow*stride] += dout[b, pad_front + c, oh, ow] */
void blocked_shortcut_backward(float *din, const float *dout, int B, int C, int H, int W, int OC,
                               int stride, int pad_front, int L) {
    const int OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
    const size_t ohw = (size_t)OH * OW, hw = (size_t)H * W;
    ED_PARALLEL_FOR((size_t)B * OC * ohw >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    din[blocked_at(b, c, (size_t)oh * stride * W + (size_t)ow * stride, C, hw,
                                   L)] +=
                        dout[blocked_at(b, pad_front + c, (size_t)oh * OW + ow, OC, ohw, L)];
    });
}

/* din[b, c, hw] (blocked) += dout[b, c, hw] (plain) */
void blocked_from_plain_add(float *din, const float *dout, int B, int C, int HW, int L) {
    ED_PARALLEL_FOR((size_t)B * C * HW >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                din[blocked_at(b, c, i, C, HW, L)] += dout[((size_t)b * C + c) * HW + i];
    });
}
