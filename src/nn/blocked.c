/* The engine's own kernels for activations in oneDNN's blocked layouts (nChw8c, nChw16c; see
 * dnnl_backend.h): max pooling, global average pooling, the option-A shortcut and the reorder
 * to plain at a flatten. Element (b, c, hw) of a [B, C, HW] tensor with `lanes` L lives at
 * ((b * ceil(C/L) + c/L) * HW + hw) * L + c%L; lanes 1 is plain NCHW. Padding channels are 0. */
#include "nn_internal.h"

#include "ensdistill/error.h"
#include "parallel.h"

#include <math.h>
#include <string.h>

static inline size_t blocked_at(int b, int c, size_t hw, int C, size_t HW, int L) {
    const int Cb = (C + L - 1) / L;
    return (((size_t)b * Cb + c / L) * HW + hw) * L + c % L;
}

/* out = max over KS x KS windows (no padding), argmax = the window's spatial index, chosen as
 * maxpool_forward does (first maximum; NaN propagates). */
void blocked_maxpool_forward(float *out, int32_t *argmax, const float *in, int B, int C, int H,
                             int W, int L, int KS, int stride) {
    const int OH = conv2d_out_size(H, KS, stride, 0), OW = conv2d_out_size(W, KS, stride, 0);
    const size_t images = (size_t)B * ((C + L - 1) / L);
    ED_PARALLEL_FOR(images * H * W * L >= PAR_MIN_WORK, for (size_t bc = 0; bc < images; bc++) {
        const float *x = in + bc * H * W * L;
        float *y = out + bc * OH * OW * L;
        int32_t *am = argmax + bc * OH * OW * L;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int l = 0; l < L; l++) {
                    float best = -INFINITY;
                    int32_t at = (oh * stride) * W + ow * stride;
                    for (int kh = 0; kh < KS; kh++)
                        for (int kw = 0; kw < KS; kw++) {
                            const int32_t i = (oh * stride + kh) * W + ow * stride + kw;
                            const float v = x[(size_t)i * L + l];
                            const int take = v > best || v != v;
                            best = take ? v : best;
                            at = take ? i : at;
                        }
                    y[((size_t)oh * OW + ow) * L + l] = best;
                    am[((size_t)oh * OW + ow) * L + l] = at;
                }
    });
}

/* din[argmax] += dout */
void blocked_maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int C,
                              int H, int W, int L, int KS, int stride) {
    const int OH = conv2d_out_size(H, KS, stride, 0), OW = conv2d_out_size(W, KS, stride, 0);
    const size_t images = (size_t)B * ((C + L - 1) / L);
    ED_PARALLEL_FOR(images * H * W * L >= PAR_MIN_WORK, for (size_t bc = 0; bc < images; bc++) {
        float *dx = din + bc * H * W * L;
        const float *dy = dout + bc * OH * OW * L;
        const int32_t *am = argmax + bc * OH * OW * L;
        for (size_t o = 0; o < (size_t)OH * OW; o++)
            for (int l = 0; l < L; l++) dx[(size_t)am[o * L + l] * L + l] += dy[o * L + l];
    });
}

/* out[b,c] (plain) = (1 / HW) * sum_hw in[b,c,hw] */
void blocked_gap_forward(float *out, const float *in, int B, int C, int HW, int L) {
    ED_PARALLEL_FOR((size_t)B * C * HW >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int i = 0; i < HW; i++) s += in[blocked_at(b, c, i, C, HW, L)];
            out[(size_t)b * C + c] = (float)(s / HW);
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

/* out[b, pad_front + c, oh, ow] = in[b, c, oh*stride, ow*stride]; other channels 0 */
void blocked_shortcut_forward(float *out, const float *in, int B, int C, int H, int W, int OC,
                              int stride, int pad_front, int L) {
    ED_CHECK(stride >= 1 && pad_front >= 0 && pad_front + C <= OC,
             "shortcut_pad: C=%d OC=%d pad_front=%d stride=%d", C, OC, pad_front, stride);
    const int OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
    const size_t ohw = (size_t)OH * OW, hw = (size_t)H * W;
    const size_t per_out = (size_t)((OC + L - 1) / L) * L * ohw;
    ED_PARALLEL_FOR((size_t)B * OC * ohw >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        memset(out + (size_t)b * per_out, 0, per_out * sizeof(float));
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    out[blocked_at(b, pad_front + c, (size_t)oh * OW + ow, OC, ohw, L)] =
                        in[blocked_at(b, c, (size_t)oh * stride * W + (size_t)ow * stride, C, hw,
                                      L)];
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

/* out[b, c, hw] (plain) = in[b, c, hw] (blocked) */
void blocked_to_plain(float *out, const float *in, int B, int C, int HW, int L) {
    ED_PARALLEL_FOR((size_t)B * C * HW >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                out[((size_t)b * C + c) * HW + i] = in[blocked_at(b, c, i, C, HW, L)];
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
