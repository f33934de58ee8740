/* Private to src/nn: a Goto-style sgemm with an 8x48 AVX-512 micro-kernel (24 zmm
 * accumulators, A broadcast from memory), for the convolution's three products. Without
 * AVX-512 it is never enabled and conv2d.c calls cblas_sgemm. */
#include "fastgemm.h"

#include "ensdistill/error.h"

#include <cblas.h>
#include <stdint.h>
#include <string.h>

#define MR 8
#define NR 48
#define KC 256
#define MC 96
#ifndef FASTGEMM_DIRECT_M
#define FASTGEMM_DIRECT_M 128
#endif

#ifdef __AVX512F__
#include <immintrin.h>

int fastgemm_enabled(void) {
    return openblas_get_num_threads() == 1;
}
#else
int fastgemm_enabled(void) {
    return 0;
}
#endif

size_t fastgemm_scratch_floats(int max_n) {
    size_t np = ((size_t)max_n + NR - 1) / NR * NR;
    return (size_t)MC * KC + (size_t)KC * np + 16; /* +16: room to align to 64 bytes */
}

#ifdef __AVX512F__
/* Ap[panel][k][MR] = op(A)[i0 + panel*MR + r, k0 + k], zero past M */
static void pack_a(float *Ap, int transA, const float *A, int lda, int i0, int mc, int k0, int kc) {
    for (int p = 0; p < mc; p += MR) {
        int rows = mc - p < MR ? mc - p : MR;
        float *dst = Ap + (size_t)p * kc;
        if (transA) { /* op(A)[i,k] = A[k*lda + i]: each k gives MR contiguous floats */
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(k0 + k) * lda + i0 + p;
                int r = 0;
                for (; r < rows; r++)
                    dst[k * MR + r] = src[r];
                for (; r < MR; r++)
                    dst[k * MR + r] = 0.0f;
            }
        } else {
            for (int r = 0; r < MR; r++) {
                if (r >= rows) {
                    for (int k = 0; k < kc; k++)
                        dst[k * MR + r] = 0.0f;
                    continue;
                }
                const float *src = A + (size_t)(i0 + p + r) * lda + k0;
                for (int k = 0; k < kc; k++)
                    dst[k * MR + r] = src[k];
            }
        }
    }
}

/* Bp[panel][k][NR] = op(B)[k0 + k, panel*NR + c], zero past N */
static void pack_b(float *Bp, int transB, const float *B, int ldb, int N, int k0, int kc) {
    for (int j = 0; j < N; j += NR) {
        int cols = N - j < NR ? N - j : NR;
        float *dst = Bp + (size_t)j * kc;
        if (!transB) {
            if (cols == NR) {
                for (int k = 0; k < kc; k++) {
                    const float *src = B + (size_t)(k0 + k) * ldb + j;
                    _mm512_storeu_ps(dst + k * NR, _mm512_loadu_ps(src));
                    _mm512_storeu_ps(dst + k * NR + 16, _mm512_loadu_ps(src + 16));
                    _mm512_storeu_ps(dst + k * NR + 32, _mm512_loadu_ps(src + 32));
                }
            } else {
                for (int k = 0; k < kc; k++) {
                    const float *src = B + (size_t)(k0 + k) * ldb + j;
                    int c = 0;
                    for (; c < cols; c++)
                        dst[k * NR + c] = src[c];
                    for (; c < NR; c++)
                        dst[k * NR + c] = 0.0f;
                }
            }
        } else { /* op(B)[k,j] = B[j*ldb + k]: transpose in blocks of 16 k that stay in L1 */
            for (int kb = 0; kb < kc; kb += 16) {
                int kn = kc - kb < 16 ? kc - kb : 16;
                for (int c = 0; c < NR; c++) {
                    float *d = dst + (size_t)kb * NR + c;
                    if (c >= cols) {
                        for (int k = 0; k < kn; k++)
                            d[k * NR] = 0.0f;
                        continue;
                    }
                    const float *src = B + (size_t)(j + c) * ldb + k0 + kb;
                    for (int k = 0; k < kn; k++)
                        d[k * NR] = src[k];
                }
            }
        }
    }
}

/* C[MR,NR] (ldc) = (accumulate ? C : 0) + Ap[kc][MR] * B[kc][NR], row k of B at B + k*ldb;
 * columns past cols are read as zeros (cols < NR only for unpacked B). */
static inline void kernel_8x48(int kc, const float *Ap, const float *Bp, size_t ldb, int cols,
                               float *C, size_t ldc, int accumulate) {
    __m512 c[MR][3];
    __mmask16 m[3];
    for (int v = 0; v < 3; v++) {
        int n = cols - 16 * v;
        m[v] = n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
    }
    for (int r = 0; r < MR; r++)
        c[r][0] = c[r][1] = c[r][2] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0, b1, b2;
        if (cols == NR) {
            b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16), b2 = _mm512_loadu_ps(Bp + 32);
        } else {
            b0 = _mm512_maskz_loadu_ps(m[0], Bp), b1 = _mm512_maskz_loadu_ps(m[1], Bp + 16);
            b2 = _mm512_maskz_loadu_ps(m[2], Bp + 32);
        }
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(Ap[r]);
            c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
            c[r][2] = _mm512_fmadd_ps(a, b2, c[r][2]);
        }
        Ap += MR;
        Bp += ldb;
    }
    for (int r = 0; r < MR; r++) {
        float *o = C + r * ldc;
        for (int v = 0; v < 3; v++) {
            __m512 x = c[r][v];
            if (accumulate) x = _mm512_add_ps(x, _mm512_loadu_ps(o + 16 * v));
            _mm512_storeu_ps(o + 16 * v, x);
        }
    }
}

void fastgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, float *scratch) {
    ED_CHECK(beta == 0.0f || beta == 1.0f, "fastgemm: beta must be 0 or 1, got %g", beta);
    float *Ap = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *Bp = Ap + (size_t)MC * KC;
    float edge[MR * NR];
    if (K == 0) {
        if (beta == 0.0f)
            for (int i = 0; i < M; i++)
                memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        int accumulate = k0 > 0 || beta != 0.0f;
        /* up to 16 row panels reuse B too little to repay packing it: read it in place (+15-40%
         * on the conv shapes; 800-row products lose 7% without packing) */
        int direct = !transB && M <= FASTGEMM_DIRECT_M;
        if (!direct) pack_b(Bp, transB, B, ldb, N, k0, kc);
        for (int i0 = 0; i0 < M; i0 += MC) {
            int mc = M - i0 < MC ? M - i0 : MC;
            pack_a(Ap, transA, A, lda, i0, mc, k0, kc);
            for (int p = 0; p < mc; p += MR) {
                int rows = mc - p < MR ? mc - p : MR;
                const float *ap = Ap + (size_t)p * kc;
                for (int j = 0; j < N; j += NR) {
                    int cols = N - j < NR ? N - j : NR;
                    float *c = C + (size_t)(i0 + p) * ldc + j;
                    const float *bp = direct ? B + (size_t)k0 * ldb + j : Bp + (size_t)j * kc;
                    size_t bstride = direct ? (size_t)ldb : NR;
                    int bcols = direct ? cols : NR;
                    if (rows == MR && cols == NR) {
                        kernel_8x48(kc, ap, bp, bstride, bcols, c, (size_t)ldc, accumulate);
                        continue;
                    }
                    kernel_8x48(kc, ap, bp, bstride, bcols, edge, NR, 0);
                    for (int r = 0; r < rows; r++)
                        for (int q = 0; q < cols; q++)
                            c[(size_t)r * ldc + q] =
                                (accumulate ? c[(size_t)r * ldc + q] : 0.0f) + edge[r * NR + q];
                }
            }
        }
    }
}
#else
void fastgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, float *scratch) {
    (void)scratch;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}
#endif
