/* Private to src/nn: a single-threaded AVX-512 sgemm for the convolution's products, used when
 * the build has AVX-512 and OpenBLAS runs on one thread (OpenBLAS may be pinned to an AVX2
 * kernel by OPENBLAS_CORETYPE, which halves its peak on AVX-512 machines). */
#ifndef ENSDISTILL_NN_FASTGEMM_H
#define ENSDISTILL_NN_FASTGEMM_H

#include <stddef.h>

/* 1 when fastgemm should be used instead of cblas_sgemm (AVX-512 build, one BLAS thread). */
int fastgemm_enabled(void);
/* Packing scratch, in floats, for any product with N <= max_n. */
size_t fastgemm_scratch_floats(int max_n);
/* C[M,N] = beta * C + op(A)[M,K] * op(B)[K,N], row-major; op(X) = X^T when transX; beta is 0
 * or 1. scratch holds fastgemm_scratch_floats(N) floats, 64-byte alignment not required.
 * M, N, K are cblas_sgemm's dimensions (K the inner one), the only K in src/nn that is not a
 * class count. */
void fastgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc, float *scratch);

#endif
