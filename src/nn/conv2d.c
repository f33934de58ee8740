/* 2-D convolution (PyTorch Conv2d semantics: cross-correlation, NCHW, weight[OC,C,KS,KS]).
 * Fast path: im2col of a chunk of samples + one sgemm per chunk; 1x1 stride-1 pad-0
 * convolutions multiply the input directly; the products are OpenBLAS's sgemm. The plain loops
 * at the end are the tests' reference. */
#include "ensdistill/error.h"
#include "ensdistill/layers.h"
#include "vecsum.h"

#include <cblas.h>
#include <string.h>

/* Chunking policy: im2col enough samples at once that the sgemm has at least target columns
 * (tiny images make thin, slow products), but never more than CONV_MAX_WORKSPACE floats of
 * scratch unless one sample alone needs more. Larger chunks lose more to cache misses than they
 * gain in sgemm width: on the 2-core development machine (2 MB L2) 512-1024 columns beat 4096
 * by 30-60% with OpenBLAS on ResNet-20 and cnn layers. */
#ifndef CONV_TARGET_COLS
#define CONV_TARGET_COLS 1024
#endif
#define CONV_MAX_WORKSPACE ((size_t)16 << 20)

/* GCC turns short copy and zero-fill loops into memcpy / memset calls, which cost more than
 * the copy itself for rows of a few dozen floats: keep them inline here. */
#if defined(__GNUC__) && !defined(__clang__)
#define INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define INLINE_LOOPS
#endif

static int is_pointwise(int KS, int stride, int pad) {
    return KS == 1 && stride == 1 && pad == 0;
}

/* Samples per chunk for a batch of B; nondecreasing in B and in target. */
static int chunk_for(size_t target, int B, int C, int H, int W, int OC, int KS, int stride,
                     int pad) {
    size_t ohw = (size_t)conv2d_out_size(H, KS, stride, pad) * conv2d_out_size(W, KS, stride, pad);
    size_t per_sample = ((size_t)C * KS * KS + OC) * ohw; /* im2col columns + gathered output */
    int nb = (int)((target + ohw - 1) / ohw);
    if (nb > B) nb = B;
    while (nb > 1 && (size_t)nb * per_sample > CONV_MAX_WORKSPACE)
        nb--;
    return nb < 1 ? 1 : nb;
}

/* Samples per chunk. */
static int conv2d_chunk(int B, int C, int H, int W, int OC, int KS, int stride, int pad) {
    return chunk_for(CONV_TARGET_COLS, B, C, H, W, OC, KS, stride, pad);
}

/* Workspace layout: col[nb*C*KS*KS*OH*OW] | gathered[nb*OC*OH*OW] (nb > 1) | padded[C*Hp*Wp]
 * (pad > 0: one zero-padded sample, or its gradient) */
static size_t padded_floats(int C, int H, int W, int pad) {
    return pad > 0 ? (size_t)C * (H + 2 * pad) * (W + 2 * pad) : 0;
}

size_t conv2d_workspace_floats(int B, int C, int H, int W, int OC, int KS, int stride, int pad) {
    if (is_pointwise(KS, stride, pad)) return 0;
    size_t ohw = (size_t)conv2d_out_size(H, KS, stride, pad) * conv2d_out_size(W, KS, stride, pad);
    int nb = chunk_for(CONV_TARGET_COLS, B, C, H, W, OC, KS, stride, pad);
    size_t col = (size_t)nb * C * KS * KS * ohw;
    size_t gathered = nb > 1 ? (size_t)nb * OC * ohw : 0; /* one sample writes out directly */
    return col + gathered + padded_floats(C, H, W, pad);
}

/* C[M,N] = beta * C + op(A)[M,K] * op(B)[K,N] (row-major, beta 0 or 1) */
static void gemm(int transA, int transB, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* padded[C, H+2p, W+2p] = img[C,H,W] with a border of p zeros */
INLINE_LOOPS static void pad_image(float *padded, const float *img, int C, int H, int W, int pad) {
    const int Hp = H + 2 * pad, Wp = W + 2 * pad;
    for (int c = 0; c < C; c++) {
        float *p = padded + (size_t)c * Hp * Wp;
        for (int i = 0; i < pad * Wp; i++)
            p[i] = 0.0f, p[(size_t)(Hp - pad) * Wp + i] = 0.0f;
        for (int h = 0; h < H; h++) {
            float *r = p + (size_t)(h + pad) * Wp;
            const float *x = img + ((size_t)c * H + h) * W;
            for (int i = 0; i < pad; i++)
                r[i] = 0.0f, r[Wp - 1 - i] = 0.0f;
            for (int w = 0; w < W; w++)
                r[pad + w] = x[w];
        }
    }
}

/* col[C*KS*KS, ld] (columns col0 .. col0+OH*OW) = the receptive fields of img[C,Hp,Wp] (already
 * padded): row (c, kh, kw), column (oh, ow) holds img[c, oh*stride + kh, ow*stride + kw]. */
INLINE_LOOPS static void im2col(float *col, size_t ld, const float *img, int C, int Hp, int Wp,
                                int KS, int stride, int OH, int OW) {
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KS; kh++)
            for (int kw = 0; kw < KS; kw++) {
                float *row = col + (size_t)((c * KS + kh) * KS + kw) * ld;
                const float *src = img + ((size_t)c * Hp + kh) * Wp + kw;
                for (int oh = 0; oh < OH; oh++) {
                    float *d = row + (size_t)oh * OW;
                    const float *x = src + (size_t)oh * stride * Wp;
                    if (stride == 1)
                        for (int ow = 0; ow < OW; ow++)
                            d[ow] = x[ow];
                    else
                        for (int ow = 0; ow < OW; ow++)
                            d[ow] = x[ow * stride];
                }
            }
}

/* img[C,Hp,Wp] += col2im(col): the adjoint of im2col. */
static void col2im_add(float *img, const float *col, size_t ld, int C, int Hp, int Wp, int KS,
                       int stride, int OH, int OW) {
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KS; kh++)
            for (int kw = 0; kw < KS; kw++) {
                const float *row = col + (size_t)((c * KS + kh) * KS + kw) * ld;
                float *dst = img + ((size_t)c * Hp + kh) * Wp + kw;
                for (int oh = 0; oh < OH; oh++) {
                    const float *g = row + (size_t)oh * OW;
                    float *x = dst + (size_t)oh * stride * Wp;
                    if (stride == 1)
                        for (int ow = 0; ow < OW; ow++)
                            x[ow] += g[ow];
                    else
                        for (int ow = 0; ow < OW; ow++)
                            x[ow * stride] += g[ow];
                }
            }
}

/* din[C,H,W] += the interior of padded[C, H+2p, W+2p] */
static void unpad_add(float *din, const float *padded, int C, int H, int W, int pad) {
    const int Hp = H + 2 * pad, Wp = W + 2 * pad;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < H; h++) {
            const float *r = padded + ((size_t)c * Hp + h + pad) * Wp + pad;
            float *x = din + ((size_t)c * H + h) * W;
            for (int w = 0; w < W; w++)
                x[w] += r[w];
        }
}

/* col[C*KS*KS, ld] (columns from col0) = im2col of one sample x[C,H,W]; padded is scratch. */
static void sample_im2col(float *col, size_t ld, const float *x, float *padded, int C, int H, int W,
                          int KS, int stride, int pad, int OH, int OW) {
    if (pad > 0) pad_image(padded, x, C, H, W, pad), x = padded;
    im2col(col, ld, x, C, H + 2 * pad, W + 2 * pad, KS, stride, OH, OW);
}

/* dx[C,H,W] += col2im(col) for one sample; padded is scratch. */
static void sample_col2im_add(float *dx, const float *col, size_t ld, float *padded, int C, int H,
                              int W, int KS, int stride, int pad, int OH, int OW) {
    if (pad == 0) {
        col2im_add(dx, col, ld, C, H, W, KS, stride, OH, OW);
        return;
    }
    memset(padded, 0, sizeof(float) * padded_floats(C, H, W, pad));
    col2im_add(padded, col, ld, C, H + 2 * pad, W + 2 * pad, KS, stride, OH, OW);
    unpad_add(dx, padded, C, H, W, pad);
}

/* o[oc, i] = g[oc*ldg + i] + bias[oc] for i < n (o may be g) */
static void add_bias(float *o, const float *g, size_t ldg, const float *bias, int OC, size_t n) {
    for (int oc = 0; oc < OC; oc++) {
        const float v = bias[oc];
        const float *x = g + oc * ldg;
        float *y = o + oc * n;
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] + v;
    }
}

void conv2d_forward(float *out, const float *in, const float *weight, const float *bias, int B,
                    int C, int H, int W, int OC, int KS, int stride, int pad, float *workspace) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    ED_CHECK(OH > 0 && OW > 0, "conv2d: empty output for %dx%d input, KS=%d stride=%d pad=%d", H, W,
             KS, stride, pad);
    const size_t ohw = (size_t)OH * OW, chw = (size_t)C * H * W, ckk = (size_t)C * KS * KS;
    if (is_pointwise(KS, stride, pad)) {
        /* out[b] (OC x HW) = weight (OC x C) * in[b] (C x HW) */
        for (int b = 0; b < B; b++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)ohw, C, 1.0f, weight, C,
                        in + b * chw, (int)ohw, 0.0f, out + b * OC * ohw, (int)ohw);
    } else {
        ED_CHECK(workspace, "conv2d_forward: workspace is NULL");
        const int nb_max = conv2d_chunk(B, C, H, W, OC, KS, stride, pad);
        float *col = workspace;
        float *gathered = workspace + (size_t)nb_max * ckk * ohw;
        float *padded = gathered + (nb_max > 1 ? (size_t)nb_max * OC * ohw : 0);
        for (int b0 = 0; b0 < B; b0 += nb_max) {
            int nb = B - b0 < nb_max ? B - b0 : nb_max;
            size_t ld = (size_t)nb * ohw;
            for (int j = 0; j < nb; j++) {
                sample_im2col(col + j * ohw, ld, in + (b0 + j) * chw, padded, C, H, W, KS, stride,
                              pad, OH, OW);
            }
            if (nb == 1) {
                /* out[b] (OC x OHW) = weight (OC x CKK) * col (CKK x OHW) + bias */
                float *o = out + b0 * OC * ohw;
                gemm(0, 0, OC, (int)ohw, (int)ckk, weight, (int)ckk, col, (int)ld, 0.0f, o,
                     (int)ohw);
                if (bias) add_bias(o, o, ohw, bias, OC, ohw);
                continue;
            }
            /* gathered (OC x nb*OHW) = weight (OC x CKK) * col (CKK x nb*OHW), then scatter with
             * the bias added while the chunk is in cache */
            gemm(0, 0, OC, (int)ld, (int)ckk, weight, (int)ckk, col, (int)ld, 0.0f, gathered,
                 (int)ld);
            for (int j = 0; j < nb; j++) {
                float *o = out + (size_t)(b0 + j) * OC * ohw;
                if (bias) {
                    add_bias(o, gathered + j * ohw, ld, bias, OC, ohw);
                    continue;
                }
                for (int oc = 0; oc < OC; oc++)
                    memcpy(o + oc * ohw, gathered + oc * ld + j * ohw, sizeof(float) * ohw);
            }
        }
        return;
    }
    if (bias)
        for (int b = 0; b < B; b++)
            add_bias(out + (size_t)b * OC * ohw, out + (size_t)b * OC * ohw, ohw, bias, OC, ohw);
}

void conv2d_backward(float *din, float *dweight, float *dbias, const float *dout, const float *in,
                     const float *weight, int B, int C, int H, int W, int OC, int KS, int stride,
                     int pad, float *workspace) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    const size_t ohw = (size_t)OH * OW, chw = (size_t)C * H * W, ckk = (size_t)C * KS * KS;
    /* dbias[oc] += sum over b, oh, ow of dout */
    if (dbias)
        for (int oc = 0; oc < OC; oc++) {
            double s = 0.0;
            for (int b = 0; b < B; b++)
                s += vec_sum(dout + ((size_t)b * OC + oc) * ohw, ohw);
            dbias[oc] += (float)s;
        }
    if (is_pointwise(KS, stride, pad)) {
        for (int b = 0; b < B; b++) {
            const float *g = dout + b * OC * ohw, *x = in + b * chw;
            /* dweight (OC x C) += dout[b] (OC x HW) * in[b]^T (HW x C) */
            if (dweight)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, (int)ohw, 1.0f, g,
                            (int)ohw, x, (int)ohw, 1.0f, dweight, C);
            /* din[b] (C x HW) += weight^T (C x OC) * dout[b] (OC x HW) */
            if (din)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, (int)ohw, OC, 1.0f, weight,
                            C, g, (int)ohw, 1.0f, din + b * chw, (int)ohw);
        }
        return;
    }
    if (!dweight && !din) return;
    ED_CHECK(workspace, "conv2d_backward: workspace is NULL");
    const int nb_max = conv2d_chunk(B, C, H, W, OC, KS, stride, pad);
    float *col = workspace;
    float *gathered = workspace + (size_t)nb_max * ckk * ohw;
    float *padded = gathered + (nb_max > 1 ? (size_t)nb_max * OC * ohw : 0);
    for (int b0 = 0; b0 < B; b0 += nb_max) {
        int nb = B - b0 < nb_max ? B - b0 : nb_max;
        size_t ld = (size_t)nb * ohw;
        const float *g = dout + b0 * OC * ohw; /* nb == 1: already OC x OHW */
        if (nb > 1) {
            for (int j = 0; j < nb; j++)
                for (int oc = 0; oc < OC; oc++)
                    memcpy(gathered + oc * ld + j * ohw, dout + ((size_t)(b0 + j) * OC + oc) * ohw,
                           sizeof(float) * ohw);
            g = gathered;
        }
        if (dweight) {
            for (int j = 0; j < nb; j++) {
                sample_im2col(col + j * ohw, ld, in + (b0 + j) * chw, padded, C, H, W, KS, stride,
                              pad, OH, OW);
            }
            /* dweight (OC x CKK) += dout (OC x nb*OHW) * col^T (nb*OHW x CKK) */
            gemm(0, 1, OC, (int)ckk, (int)ld, g, (int)ld, col, (int)ld, 1.0f, dweight, (int)ckk);
        }
        if (din) {
            /* dcol (CKK x nb*OHW) = weight^T (CKK x OC) * dout (OC x nb*OHW); din += col2im */
            gemm(1, 0, (int)ckk, (int)ld, OC, weight, (int)ckk, g, (int)ld, 0.0f, col, (int)ld);
            for (int j = 0; j < nb; j++)
                sample_col2im_add(din + (b0 + j) * chw, col + j * ohw, ld, padded, C, H, W, KS,
                                  stride, pad, OH, OW);
        }
    }
}

/* ---- reference: the definition, loop by loop ---- */

/* out[b,oc,oh,ow] = bias[oc] + sum_{c,kh,kw} in[b,c,oh*s-p+kh,ow*s-p+kw] * weight[oc,c,kh,kw] */
void conv2d_forward_naive(float *out, const float *in, const float *weight, const float *bias,
                          int B, int C, int H, int W, int OC, int KS, int stride, int pad) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KS; kh++)
                            for (int kw = 0; kw < KS; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += (double)in[(((size_t)b * C + c) * H + ih) * W + iw] *
                                     weight[(((size_t)oc * C + c) * KS + kh) * KS + kw];
                            }
                    out[(((size_t)b * OC + oc) * OH + oh) * OW + ow] = (float)s;
                }
}

/* din, dweight, dbias += the adjoints of conv2d_forward_naive for dout */
void conv2d_backward_naive(float *din, float *dweight, float *dbias, const float *dout,
                           const float *in, const float *weight, int B, int C, int H, int W, int OC,
                           int KS, int stride, int pad) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float g = dout[(((size_t)b * OC + oc) * OH + oh) * OW + ow];
                    if (dbias) dbias[oc] += g;
                    for (int c = 0; c < C; c++)
                        for (int kh = 0; kh < KS; kh++)
                            for (int kw = 0; kw < KS; kw++) {
                                int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                size_t xi = (((size_t)b * C + c) * H + ih) * W + iw;
                                size_t wi = (((size_t)oc * C + c) * KS + kh) * KS + kw;
                                if (dweight) dweight[wi] += g * in[xi];
                                if (din) din[xi] += g * weight[wi];
                            }
                }
}
