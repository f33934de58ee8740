/* Pooling: max (with the argmax saved for backward) and global average over H*W. */
#include "ensdistill/error.h"
#include "ensdistill/layers.h"
#include "parallel.h"
#include "vecsum.h"

#include <math.h>
#include <string.h>

/* The common 2x2, stride 2, no padding case, written out (the compiler vectorises it):
 * the same selection rule as the general loop below, in the same order. */
static void maxpool2x2_forward(float *out, int32_t *argmax, const float *in, int BC, int H, int W) {
    const int OH = H / 2, OW = W / 2;
    ED_PARALLEL_FOR((size_t)BC * H * W >= PAR_MIN_WORK, for (size_t bc = 0; bc < (size_t)BC; bc++) {
        const float *x = in + bc * H * W;
        float *y = out + bc * OH * OW;
        int32_t *am = argmax + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = x + (size_t)2 * oh * W, *r1 = r0 + W;
            const int32_t i0 = 2 * oh * W;
            for (int ow = 0; ow < OW; ow++) {
                const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                float best = a;
                int32_t at = i0 + 2 * ow;
                int take = b > best || b != b;
                best = take ? b : best, at = take ? i0 + 2 * ow + 1 : at;
                take = c > best || c != c;
                best = take ? c : best, at = take ? i0 + W + 2 * ow : at;
                take = d > best || d != d;
                best = take ? d : best, at = take ? i0 + W + 2 * ow + 1 : at;
                y[oh * OW + ow] = best;
                am[oh * OW + ow] = at;
            }
        }
    });
}

/* out[b,c,oh,ow] = max over the window of in[b,c,oh*s-p+kh, ow*s-p+kw] (padding = -inf).
 * As PyTorch: the index starts at the window's first input, and moves to a value that is
 * larger or NaN (so NaN propagates). Branch-free selects: maxima of random data mispredict. */
void maxpool_forward(float *out, int32_t *argmax, const float *in, int B, int C, int H, int W,
                     int KS, int stride, int pad) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    ED_CHECK(OH > 0 && OW > 0 && pad * 2 <= KS, "maxpool: bad shape %dx%d KS=%d stride=%d pad=%d",
             H, W, KS, stride, pad);
    if (KS == 2 && stride == 2 && pad == 0) {
        maxpool2x2_forward(out, argmax, in, B * C, H, W);
        return;
    }
    const size_t planes = (size_t)B * C;
    ED_PARALLEL_FOR(planes * H * W >= PAR_MIN_WORK, for (size_t bc = 0; bc < planes; bc++) {
        const float *x = in + bc * H * W;
        float *y = out + bc * OH * OW;
        int32_t *am = argmax + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const int ih0 = oh * stride - pad;
            const int kh_lo = ih0 < 0 ? -ih0 : 0, kh_hi = ih0 + KS > H ? H - ih0 : KS;
            for (int ow = 0; ow < OW; ow++) {
                const int iw0 = ow * stride - pad;
                const int kw_lo = iw0 < 0 ? -iw0 : 0, kw_hi = iw0 + KS > W ? W - iw0 : KS;
                float best = -INFINITY;
                int32_t at = (ih0 + kh_lo) * W + iw0 + kw_lo;
                for (int kh = kh_lo; kh < kh_hi; kh++)
                    for (int kw = kw_lo; kw < kw_hi; kw++) {
                        const int32_t i = (ih0 + kh) * W + iw0 + kw;
                        const float v = x[i];
                        const int take = v > best || v != v;
                        best = take ? v : best;
                        at = take ? i : at;
                    }
                y[oh * OW + ow] = best;
                am[oh * OW + ow] = at;
            }
        }
    });
}

/* din[b,c,argmax] += dout[b,c,oh,ow] */
void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int C, int H,
                      int W, int KS, int stride, int pad) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    const size_t planes = (size_t)B * C;
    ED_PARALLEL_FOR(planes * H * W >= PAR_MIN_WORK, for (size_t bc = 0; bc < planes; bc++) {
        float *dx = din + bc * H * W;
        const float *dy = dout + bc * OH * OW;
        const int32_t *am = argmax + bc * OH * OW;
        for (int i = 0; i < OH * OW; i++)
            dx[am[i]] += dy[i];
    });
}

/* out[b,c] = (1 / HW) * sum_hw in[b,c,hw] */
void global_avgpool_forward(float *out, const float *in, int B, int C, int HW) {
    const size_t planes = (size_t)B * C;
    ED_PARALLEL_FOR(planes * HW >= PAR_MIN_WORK, for (size_t bc = 0; bc < planes; bc++) {
        out[bc] = (float)(vec_sum(in + bc * HW, HW) / HW);
    });
}

/* din[b,c,hw] += dout[b,c] / HW */
void global_avgpool_backward(float *din, const float *dout, int B, int C, int HW) {
    const float inv = 1.0f / (float)HW;
    const size_t planes = (size_t)B * C;
    ED_PARALLEL_FOR(planes * HW >= PAR_MIN_WORK, for (size_t bc = 0; bc < planes; bc++) {
        const float g = dout[bc] * inv;
        float *dx = din + bc * HW;
        for (int i = 0; i < HW; i++)
            dx[i] += g;
    });
}
