/* The weight and bias gradients of a one-channel-input convolution (conv_wgrad.h):
 *   dweight[oc, kh, kw] = sum over b, oh, ow of dout[b, oc, oh, ow] * in[b, ih, iw],
 *   ih = oh * stride + kh - pad, iw = ow * stride + kw - pad (zero outside the image).
 * Work is split into tasks of (a chunk of CONV_WGRAD_CHUNK images, a block of L output
 * channels); each task sums its images in order into its own partial sums in scratch, and the
 * partials are then added chunk by chunk. Inside a task the block's lanes are the vector: one
 * input value, broadcast, times L channels of dout, into the KS accumulators of a kernel row,
 * which the compiler keeps in registers where KS and L are constants (task's dispatch). */
#include "conv_wgrad.h"

#include "ensdistill/error.h"
#include "ensdistill/layers.h" /* conv2d_out_size */
#include "ensdistill/threads.h"
#include "vec8.h"

#include <string.h>

#define MAX_KS 7
#define MAX_ROW 2048 /* floats of a zero-padded input row */

int conv_wgrad_1ch_fits(int W, int KS, int pad, int L) {
    return KS >= 1 && KS <= MAX_KS && pad >= 0 && W + 2 * pad <= MAX_ROW &&
           (L == 1 || L == 8 || L == 16);
}

size_t conv_wgrad_1ch_scratch(int B, int OC, int KS) {
    const size_t chunks = (size_t)(B + CONV_WGRAD_CHUNK - 1) / CONV_WGRAD_CHUNK;
    return chunks * (size_t)OC * (KS * KS + 1);
}

/* acc[kw][v] += sum over ow of d[ow][8v .. 8v+7] * xp[ow*stride + kw], for one output row d
 * (OW pixels of 8 * NV lanes) and one input row xp, zero-padded (pad zeros before it) */
static inline __attribute__((always_inline)) void
tap_row(v8f (*acc)[2], const float *d, const float *xp, int OW, int KS, int stride, const int NV) {
    v8f a[MAX_KS][2];
    for (int kw = 0; kw < KS; kw++)
        for (int v = 0; v < NV; v++)
            a[kw][v] = acc[kw][v];
    for (int ow = 0; ow < OW; ow++) {
        const float *x = xp + ow * stride;
        v8f dv[2];
        for (int v = 0; v < NV; v++)
            dv[v] = v8f_load(d + ((size_t)ow * NV + v) * 8);
        for (int kw = 0; kw < KS; kw++)
            for (int v = 0; v < NV; v++)
                a[kw][v] += dv[v] * x[kw];
    }
    for (int kw = 0; kw < KS; kw++)
        for (int v = 0; v < NV; v++)
            acc[kw][v] = a[kw][v];
}

/* One task's sums over images b0..b1-1 of block `blk` (8 * NV channels): acc[kh*KS + kw][v],
 * bias[v] */
static inline __attribute__((always_inline)) void
task_sums(v8f (*acc)[2], v8f *bias, const float *dout, const float *in, int b0, int b1, int blk,
          int H, int W, int OC, int KS, int stride, int pad, const int NV) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    const int L = 8 * NV, blocks = (OC + L - 1) / L;
    float xp[MAX_ROW]; /* an input row, zero-padded */
    memset(xp, 0, (size_t)(W + 2 * pad) * sizeof(float));
    for (int b = b0; b < b1; b++) {
        const float *x = in + (size_t)b * H * W;
        const float *d = dout + ((size_t)b * blocks + blk) * OH * OW * L;
        for (int kh = 0; kh < KS; kh++)
            for (int oh = 0; oh < OH; oh++) {
                const int ih = oh * stride + kh - pad;
                if (ih < 0 || ih >= H) continue;
                memcpy(xp + pad, x + (size_t)ih * W, (size_t)W * sizeof(float));
                tap_row(acc + kh * KS, d + (size_t)oh * OW * L, xp, OW, KS, stride, NV);
            }
        for (int p = 0; p < OH * OW; p++)
            for (int v = 0; v < NV; v++)
                bias[v] += v8f_load(d + ((size_t)p * NV + v) * 8);
    }
}

/* The same sums for plain dout (L 1: the tests' layout), one channel at a time */
static void task_sums_plain(float *acc, float *bias, const float *dout, const float *in, int b0,
                            int b1, int oc, int H, int W, int OC, int KS, int stride, int pad) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    for (int b = b0; b < b1; b++) {
        const float *x = in + (size_t)b * H * W;
        const float *d = dout + ((size_t)b * OC + oc) * OH * OW;
        for (int kh = 0; kh < KS; kh++)
            for (int kw = 0; kw < KS; kw++)
                for (int oh = 0; oh < OH; oh++) {
                    const int ih = oh * stride + kh - pad;
                    if (ih < 0 || ih >= H) continue;
                    for (int ow = 0; ow < OW; ow++) {
                        const int iw = ow * stride + kw - pad;
                        if (iw >= 0 && iw < W)
                            acc[kh * KS + kw] += d[oh * OW + ow] * x[(size_t)ih * W + iw];
                    }
                }
        for (int p = 0; p < OH * OW; p++)
            *bias += d[p];
    }
}

/* Task t's partial sums into part ([OC][taps], then [OC] biases) */
static void task(float *part, int t, const float *dout, const float *in, int B, int H, int W,
                 int OC, int KS, int stride, int pad, int L) {
    const int blocks = (OC + L - 1) / L, taps = KS * KS;
    const int c = t / blocks, blk = t % blocks;
    const int b0 = c * CONV_WGRAD_CHUNK;
    const int b1 = b0 + CONV_WGRAD_CHUNK < B ? b0 + CONV_WGRAD_CHUNK : B;
    if (L == 1) {
        float acc[MAX_KS * MAX_KS] = {0}, bias = 0.0f;
        task_sums_plain(acc, &bias, dout, in, b0, b1, blk, H, W, OC, KS, stride, pad);
        memcpy(part + (size_t)blk * taps, acc, (size_t)taps * sizeof(float));
        part[(size_t)OC * taps + blk] = bias;
        return;
    }
    v8f acc[MAX_KS * MAX_KS][2], bias[2];
    memset(acc, 0, sizeof(acc));
    memset(bias, 0, sizeof(bias));
    if (L == 8 && KS == 5)
        task_sums(acc, bias, dout, in, b0, b1, blk, H, W, OC, 5, stride, pad, 1);
    else if (L == 8 && KS == 3)
        task_sums(acc, bias, dout, in, b0, b1, blk, H, W, OC, 3, stride, pad, 1);
    else if (L == 16 && KS == 5)
        task_sums(acc, bias, dout, in, b0, b1, blk, H, W, OC, 5, stride, pad, 2);
    else if (L == 16 && KS == 3)
        task_sums(acc, bias, dout, in, b0, b1, blk, H, W, OC, 3, stride, pad, 2);
    else
        task_sums(acc, bias, dout, in, b0, b1, blk, H, W, OC, KS, stride, pad, L / 8);
    for (int l = 0; l < L && blk * L + l < OC; l++) {
        const int oc = blk * L + l;
        for (int k = 0; k < taps; k++)
            part[(size_t)oc * taps + k] = acc[k][l / 8][l % 8];
        part[(size_t)OC * taps + oc] = bias[l / 8][l % 8];
    }
}

void conv_wgrad_1ch(float *dweight, float *dbias, const float *dout, const float *in, int B, int H,
                    int W, int OC, int KS, int stride, int pad, int L, float *scratch) {
    ED_CHECK(conv_wgrad_1ch_fits(W, KS, pad, L),
             "conv_wgrad_1ch: width %d, kernel %d, pad %d, %d lanes", W, KS, pad, L);
    const int chunks = (B + CONV_WGRAD_CHUNK - 1) / CONV_WGRAD_CHUNK;
    const int blocks = (OC + L - 1) / L, taps = KS * KS;
    /* partial sums of chunk c: scratch + c * OC * (taps + 1), [oc][taps] then [oc] biases */
    const size_t per_chunk = (size_t)OC * (taps + 1);
    ED_PARALLEL_FOR(chunks * blocks > 1, for (int t = 0; t < chunks * blocks; t++) {
        task(scratch + (size_t)(t / blocks) * per_chunk, t, dout, in, B, H, W, OC, KS, stride,
             pad, L);
    });
    for (int c = 0; c < chunks; c++) {
        const float *part = scratch + (size_t)c * per_chunk;
        for (size_t i = 0; i < (size_t)OC * taps; i++)
            dweight[i] += part[i];
        if (dbias)
            for (int oc = 0; oc < OC; oc++)
                dbias[oc] += part[(size_t)OC * taps + oc];
    }
}
