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
/* dst[0..n) = src[0..n), dst[n..width) = 0: one row of a packed panel at the matrix edge */
static inline void copy_padded(float *dst, const float *src, int n, int width) {
    int i = 0;
    for (; i < n; i++) dst[i] = src[i];
    for (; i < width; i++) dst[i] = 0.0f;
}

/* Ap[panel][k][MR] = op(A)[i0 + panel*MR + r, k0 + k], zero past M */
static void pack_a(float *Ap, int transA, const float *A, int lda, int i0, int mc, int k0, int kc) {
    for (int p = 0; p < mc; p += MR) {
        int rows = mc - p < MR ? mc - p : MR;
        float *dst = Ap + (size_t)p * kc;
        if (transA) { /* op(A)[i,k] = A[k*lda + i]: each k gives MR contiguous floats */
            for (int k = 0; k < kc; k++) {
                copy_padded(dst + k * MR, A + (size_t)(k0 + k) * lda + i0 + p, rows, MR);
            }
        } else if (rows == MR && (size_t)MR * lda < ((size_t)1 << 29)) {
            /* op(A)[i,k] = A[i*lda + k]: gather the MR rows' k-th entries */
            const __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                    _mm256_set1_epi32(lda));
            const float *src = A + (size_t)(i0 + p) * lda + k0;
            for (int k = 0; k < kc; k++)
                _mm256_storeu_ps(dst + k * MR, _mm256_i32gather_ps(src + k, step, 4));
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
                    copy_padded(dst + k * NR, B + (size_t)(k0 + k) * ldb + j, cols, NR);
                }
            }
        } else if (cols == NR && (size_t)NR * ldb < ((size_t)1 << 29)) {
            /* op(B)[k,j] = B[j*ldb + k]: gather 16 columns (rows of B) per k */
            const __m512i step = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(ldb));
            for (int v = 0; v < 3; v++) {
                const float *src = B + (size_t)(j + 16 * v) * ldb + k0;
                for (int k = 0; k < kc; k++)
                    _mm512_storeu_ps(dst + k * NR + 16 * v, _mm512_i32gather_ps(step, src + k, 4));
            }
        } else { /* the same one by one, zero past N, in blocks of 16 k that stay in L1 */
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

/* Tile of dot products: acc[i][j] = sum_k a[i][k] * b[j][k] over k < K, for 4 rows of A and
 * 6 rows of B, each contiguous in k (the A * B^T of dweight = dout * col^T). No packing: 16
 * k at a time in 24 accumulators, one horizontal sum each at the end. */
static void dot_tile_4x6(float acc[4][6], const float *const a[4], const float *const b[6], int K) {
    __m512 c[4][6];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++)
            c[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 bv[6];
        for (int j = 0; j < 6; j++)
            bv[j] = _mm512_loadu_ps(b[j] + k);
        for (int i = 0; i < 4; i++) {
            __m512 av = _mm512_loadu_ps(a[i] + k);
            for (int j = 0; j < 6; j++)
                c[i][j] = _mm512_fmadd_ps(av, bv[j], c[i][j]);
        }
    }
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 bv[6];
        for (int j = 0; j < 6; j++)
            bv[j] = _mm512_maskz_loadu_ps(m, b[j] + k);
        for (int i = 0; i < 4; i++) {
            __m512 av = _mm512_maskz_loadu_ps(m, a[i] + k);
            for (int j = 0; j < 6; j++)
                c[i][j] = _mm512_fmadd_ps(av, bv[j], c[i][j]);
        }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++)
            acc[i][j] = _mm512_reduce_add_ps(c[i][j]);
}

/* C[M,N] = beta * C + A[M,K] * B[N,K]^T, both row-major and contiguous in k. Rows past the
 * edge of a tile repeat the last row and are not stored. */
static void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    for (int j0 = 0; j0 < N; j0 += 6) {
        const float *b[6];
        for (int j = 0; j < 6; j++)
            b[j] = B + (size_t)(j0 + j < N ? j0 + j : N - 1) * ldb;
        for (int i0 = 0; i0 < M; i0 += 4) {
            const float *a[4];
            for (int i = 0; i < 4; i++)
                a[i] = A + (size_t)(i0 + i < M ? i0 + i : M - 1) * lda;
            float acc[4][6];
            dot_tile_4x6(acc, a, b, K);
            for (int i = 0; i < 4 && i0 + i < M; i++)
                for (int j = 0; j < 6 && j0 + j < N; j++) {
                    float *o = C + (size_t)(i0 + i) * ldc + j0 + j;
                    *o = (beta != 0.0f ? *o : 0.0f) + acc[i][j];
                }
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
    /* A * B^T with few rows (dweight of 16 channels) or few columns (dweight of a 1-channel
     * input): dot products beat packing B with gathers (73 vs 57 GFLOP/s at 16x144x1024; 73 vs
     * 28 at 32x25x784); from 32 rows the packed kernel wins (89 vs 74 at 32x288x256). */
    if (!transA && transB && (M <= 16 || N < NR)) {
        gemm_nt(M, N, K, A, lda, B, ldb, beta, C, ldc);
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
