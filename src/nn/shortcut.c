/* He et al.'s parameter-free CIFAR ResNet shortcut (option A): keep every stride-th row and
 * column (x[:, :, ::stride, ::stride]) and pad the channels with zeros. */
#include "ensdistill/error.h"
#include "ensdistill/layers.h"
#include "parallel.h"

#include <string.h>

/* out[b, pad_front + c, oh, ow] = in[b, c, oh*stride, ow*stride]; other channels 0 */
void shortcut_pad_forward(float *out, const float *in, int B, int C, int H, int W, int OC,
                          int stride, int pad_front) {
    ED_CHECK(stride >= 1 && pad_front >= 0 && pad_front + C <= OC,
             "shortcut_pad: C=%d OC=%d pad_front=%d stride=%d", C, OC, pad_front, stride);
    const int OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
    const size_t ohw = (size_t)OH * OW;
    ED_PARALLEL_FOR((size_t)B * OC * ohw >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * OC * ohw;
        memset(o, 0, sizeof(float) * pad_front * ohw);
        memset(o + (size_t)(pad_front + C) * ohw, 0, sizeof(float) * (OC - pad_front - C) * ohw);
        for (int c = 0; c < C; c++) {
            const float *x = in + ((size_t)b * C + c) * H * W;
            float *y = o + (size_t)(pad_front + c) * ohw;
            if (stride == 1) {
                memcpy(y, x, sizeof(float) * ohw);
                continue;
            }
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    y[oh * OW + ow] = x[(size_t)oh * stride * W + (size_t)ow * stride];
        }
    });
}

/* din[b, c, oh*stride, ow*stride] += dout[b, pad_front + c, oh, ow] */
void shortcut_pad_backward(float *din, const float *dout, int B, int C, int H, int W, int OC,
                           int stride, int pad_front) {
    const int OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
    const size_t ohw = (size_t)OH * OW;
    ED_PARALLEL_FOR((size_t)B * OC * ohw >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            float *dx = din + ((size_t)b * C + c) * H * W;
            const float *dy = dout + ((size_t)b * OC + pad_front + c) * ohw;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    dx[(size_t)oh * stride * W + (size_t)ow * stride] += dy[oh * OW + ow];
        }
    });
}
