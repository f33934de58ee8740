/* The weight and bias gradients of a 3x3 convolution between 8-lane channel-blocked
 * activations (conv_wgrad.h):
 *   dweight[oc, ic, kh, kw] = sum over b, oh, ow of dout[b, oc, oh, ow] * in[b, ic, ih, iw],
 *   ih = oh * stride + kh - pad, iw = ow * stride + kw - pad (zero outside the image).
 * Tasks are (a chunk of CONV_WGRAD_CHUNK images, 8 or 16 output channels, a block of 8 input
 * channels). A task sweeps its images once per (kh, pair of input channels): 12 sums, 3 kw x
 * 2 input channels x 2 vectors of 8 output channels, stay in registers over a whole image, and
 * each pixel costs 2 vector loads of dout and 6 broadcasts of in for 12 FMAs. The chunks' sums
 * go to scratch and are added in chunk order, as in conv_wgrad.c. */
#include "conv_wgrad.h"

#include "ensdistill/error.h"
#include "ensdistill/layers.h" /* conv2d_out_size */
#include "ensdistill/threads.h"
#include "vec8.h"

#include <string.h>

#define KS 3
#define TAPS (KS * KS)
#define LANES 8

int conv_wgrad3_fits(int C, int OC, int KS_, int pad, int L) {
    return KS_ == KS && L == LANES && C % LANES == 0 && OC % LANES == 0 && pad >= 0 &&
           pad < KS;
}

/* output-channel vectors per task: 2 where OC is a multiple of 16 */
static int task_vectors(int OC) {
    return OC % (2 * LANES) == 0 ? 2 : 1;
}

/* tasks per chunk of images */
static int chunk_tasks(int C, int OC) {
    return OC / LANES / task_vectors(OC) * (C / LANES);
}

size_t conv_wgrad3_scratch(int B, int C, int OC) {
    const size_t chunks = (size_t)(B + CONV_WGRAD_CHUNK - 1) / CONV_WGRAD_CHUNK;
    return chunks * (size_t)OC * ((size_t)C * TAPS + 1);
}

/* a[v][kw][i] += dout[v] * t[kw][i]: one output pixel (its one or two vectors of output
 * channels at d0, d1), tap kw reading input channel i at t[kw] */
static inline __attribute__((always_inline)) void
pixel_sums(v8f a[2][KS][2], const float *d0, const float *d1, const float *const t[KS],
           const int NV) {
    const v8f dv0 = v8f_load(d0);
    const v8f dv1 = NV == 2 ? v8f_load(d1) : dv0;
    for (int kw = 0; kw < KS; kw++)
        for (int i = 0; i < 2; i++) {
            const float s = t[kw][i];
            a[0][kw][i] += dv0 * s;
            if (NV == 2) a[1][kw][i] += dv1 * s;
        }
}

static const float zeros[2];

/* The sums of one output row: pixels [mlo, mhi) have all three taps inside the input row x;
 * at the others a tap outside reads zeros (sizes and strides of conv_wgrad3) */
static inline __attribute__((always_inline)) void
row_sums(v8f a[2][KS][2], const float *d0, const float *d1, const float *x, int W, int OW,
         int stride, int pad, int mlo, int mhi, const int NV) {
    for (int ow = 0; ow < OW; ow++) {
        if (ow == mlo && mlo < mhi) { /* the inside, with nothing to check */
            for (; ow < mhi; ow++) {
                const float *xp = x + (ptrdiff_t)(ow * stride - pad) * LANES;
                const float *const t[KS] = {xp, xp + LANES, xp + 2 * LANES};
                pixel_sums(a, d0 + (size_t)ow * LANES, d1 + (size_t)ow * LANES, t, NV);
            }
            if (ow == OW) break;
        }
        const float *t[KS];
        for (int kw = 0; kw < KS; kw++) {
            const int iw = ow * stride + kw - pad;
            t[kw] = iw >= 0 && iw < W ? x + (size_t)iw * LANES : zeros;
        }
        pixel_sums(a, d0 + (size_t)ow * LANES, d1 + (size_t)ow * LANES, t, NV);
    }
}

/* acc[v][ic][kh * KS + kw] += one image's sums for the task's channels (`x`: the image's block of
 * 8 input channels, d0/d1: its one or two blocks of output channels) */
static inline __attribute__((always_inline)) void
image_sums(v8f acc[2][LANES][TAPS], const float *d0, const float *d1, const float *x, int H, int W,
           int OH, int OW, int stride, int pad, int mlo, int mhi, const int NV) {
    for (int kh = 0; kh < KS; kh++)
        for (int ic = 0; ic < LANES; ic += 2) {
            v8f a[2][KS][2];
            for (int v = 0; v < NV; v++)
                for (int kw = 0; kw < KS; kw++)
                    for (int i = 0; i < 2; i++) a[v][kw][i] = acc[v][ic + i][kh * KS + kw];
            for (int oh = 0; oh < OH; oh++) {
                const int ih = oh * stride + kh - pad;
                if (ih < 0 || ih >= H) continue;
                row_sums(a, d0 + (size_t)oh * OW * LANES, d1 + (size_t)oh * OW * LANES,
                         x + ((size_t)ih * W * LANES) + ic, W, OW, stride, pad, mlo, mhi, NV);
            }
            for (int v = 0; v < NV; v++)
                for (int kw = 0; kw < KS; kw++)
                    for (int i = 0; i < 2; i++) acc[v][ic + i][kh * KS + kw] = a[v][kw][i];
        }
}

/* Task t's partial sums into part ([OC][C][KS][KS], then [OC] biases: only the tasks of the
 * first input block write those) */
static void task(float *part, int t, const float *dout, const float *in, int B, int C, int H,
                 int W, int OC, int stride, int pad, int bias_on) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    const int NV = task_vectors(OC), ICB = C / LANES, OCB = OC / LANES;
    const int per_chunk = chunk_tasks(C, OC), n = CONV_WGRAD_CHUNK;
    const int c = t / per_chunk, g = t % per_chunk / ICB, icb = t % ICB;
    const int b0 = c * n, b1 = b0 + n < B ? b0 + n : B;
    /* [mlo, mhi): the ow whose taps all fall inside: ow * stride - pad >= 0 and
     * ow * stride - pad + KS - 1 < W */
    const int mlo = (pad + stride - 1) / stride;
    int mhi = W - KS + pad >= 0 ? (W - KS + pad) / stride + 1 : 0;
    if (mhi > OW) mhi = OW;
    v8f acc[2][LANES][TAPS], bias[2];
    memset(acc, 0, sizeof(acc));
    memset(bias, 0, sizeof(bias));
    const size_t in_img = (size_t)H * W * LANES, out_img = (size_t)OH * OW * LANES;
    for (int b = b0; b < b1; b++) {
        const float *x = in + ((size_t)b * ICB + icb) * in_img;
        const float *d0 = dout + ((size_t)b * OCB + g * NV) * out_img;
        const float *d1 = d0 + out_img;
        if (NV == 2)
            image_sums(acc, d0, d1, x, H, W, OH, OW, stride, pad, mlo, mhi, 2);
        else
            image_sums(acc, d0, d1, x, H, W, OH, OW, stride, pad, mlo, mhi, 1);
        if (bias_on && icb == 0)
            for (int v = 0; v < NV; v++)
                for (size_t p = 0; p < (size_t)OH * OW; p++)
                    bias[v] += v8f_load((v ? d1 : d0) + p * LANES);
    }
    for (int v = 0; v < NV; v++)
        for (int l = 0; l < LANES; l++) {
            const int oc = (g * NV + v) * LANES + l;
            float *w = part + ((size_t)oc * C + (size_t)icb * LANES) * TAPS;
            for (int ic = 0; ic < LANES; ic++)
                for (int k = 0; k < TAPS; k++) w[ic * TAPS + k] = acc[v][ic][k][l];
            if (bias_on && icb == 0) part[(size_t)OC * C * TAPS + oc] = bias[v][l];
        }
}

void conv_wgrad3(float *dweight, float *dbias, const float *dout, const float *in, int B, int C,
                 int H, int W, int OC, int stride, int pad, float *scratch) {
    ED_CHECK(conv_wgrad3_fits(C, OC, KS, pad, LANES), "conv_wgrad3: %d -> %d channels, pad %d", C,
             OC, pad);
    const int chunks = (B + CONV_WGRAD_CHUNK - 1) / CONV_WGRAD_CHUNK;
    const int per_chunk = chunk_tasks(C, OC);
    const size_t weights = (size_t)OC * C * TAPS, per_part = weights + OC;
    ED_PARALLEL_FOR(chunks * per_chunk > 1, for (int t = 0; t < chunks * per_chunk; t++) {
        task(scratch + (size_t)(t / per_chunk) * per_part, t, dout, in, B, C, H, W, OC, stride,
             pad, dbias != NULL);
    });
    /* dweight += the chunks' sums, in chunk order, split over the weights; then dbias */
    const size_t span = 4096, spans = (weights + span - 1) / span;
    ED_PARALLEL_FOR(spans > 1, for (size_t s = 0; s < spans; s++) {
        const size_t i0 = s * span, i1 = i0 + span < weights ? i0 + span : weights;
        for (int c = 0; c < chunks; c++) {
            const float *part = scratch + (size_t)c * per_part;
            for (size_t i = i0; i < i1; i++) dweight[i] += part[i];
        }
    });
    for (int c = 0; dbias && c < chunks; c++)
        for (int oc = 0; oc < OC; oc++) dbias[oc] += scratch[(size_t)c * per_part + weights + oc];
}
