/* fastgemm (the AVX-512 sgemm behind conv2d) against a plain triple loop on edge shapes, and
 * conv2d with one OpenBLAS thread (the only setting that uses fastgemm) against the naive
 * convolution at the cnn/ResNet layer shapes (and odd paddings for the stride-1 im2col). Skipped
 * parts say so when AVX-512 is absent. */
#include "../../src/nn/fastgemm.h"
#include "ensdistill/layers.h"

#include "check.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long lcg = 12345;

static float frand(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) & 0xFFFFFF) / (float)0x1000000 - 0.5f;
}
static float *rnd(size_t n) {
    float *p = malloc(n * sizeof(float) + 64);
    if (!p) fprintf(stderr, "out of memory\n"), exit(2);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

/* max |got - want| / (1 + |want|) */
static double max_err(const float *got, const float *want, size_t n) {
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (1.0 + fabs((double)want[i]));
        if (!(d <= e)) e = d; /* NaN counts */
    }
    return e;
}

static void gemm_case(int transA, int transB, int M, int N, int K, float beta) {
    int lda = transA ? M + 3 : K + 1, ldb = transB ? K + 2 : N + 5, ldc = N + 7;
    float *A = rnd((size_t)(transA ? K : M) * lda), *B = rnd((size_t)(transB ? N : K) * ldb);
    float *C = rnd((size_t)M * ldc), *ref = malloc(sizeof(float) * M * ldc);
    float *scratch = rnd(fastgemm_scratch_floats(N) + 1);
    size_t nscratch = fastgemm_scratch_floats(N);
    scratch[nscratch] = 777.0f;
    memcpy(ref, C, sizeof(float) * M * ldc);
    /* ref[i,j] = beta * ref + sum_k op(A)[i,k] op(B)[k,j] */
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = beta * ref[(size_t)i * ldc + j];
            for (int k = 0; k < K; k++)
                s += (double)(transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            ref[(size_t)i * ldc + j] = (float)s;
        }
    fastgemm(transA, transB, M, N, K, A, lda, B, ldb, beta, C, ldc, scratch);
    double e = max_err(C, ref, (size_t)M * ldc); /* the padding between rows must be untouched */
    int overrun = scratch[nscratch] != 777.0f;
    EXPECT(e <= 1e-5 && !overrun, "fastgemm tA=%d tB=%d M=%d N=%d K=%d beta=%g: max rel err %.3g%s",
           transA, transB, M, N, K, beta, e, overrun ? ", wrote past its scratch" : "");
    free(A), free(B), free(C), free(ref), free(scratch);
}

static void conv_case(int B, int C, int H, int OC, int KS, int stride, int pad) {
    int OH = conv2d_out_size(H, KS, stride, pad);
    size_t nin = (size_t)B * C * H * H, nout = (size_t)B * OC * OH * OH,
           nw = (size_t)OC * C * KS * KS;
    size_t nws = conv2d_workspace_floats(B, C, H, H, OC, KS, stride, pad);
    float *in = rnd(nin), *w = rnd(nw), *bias = rnd(OC), *dout = rnd(nout), *ws = rnd(nws);
    float *out = rnd(nout), *out_ref = rnd(nout);
    float *din = rnd(nin), *dw = rnd(nw), *db = rnd(OC);
    float *din_ref = malloc(nin * 4), *dw_ref = malloc(nw * 4), *db_ref = malloc(OC * 4);
    memcpy(din_ref, din, nin * 4), memcpy(dw_ref, dw, nw * 4), memcpy(db_ref, db, OC * 4);
    conv2d_forward(out, in, w, bias, B, C, H, H, OC, KS, stride, pad, ws);
    conv2d_backward(din, dw, db, dout, in, w, B, C, H, H, OC, KS, stride, pad, ws);
    conv2d_forward_naive(out_ref, in, w, bias, B, C, H, H, OC, KS, stride, pad);
    conv2d_backward_naive(din_ref, dw_ref, db_ref, dout, in, w, B, C, H, H, OC, KS, stride, pad);
    double e[3] = {max_err(out, out_ref, nout), max_err(din, din_ref, nin),
                   max_err(dw, dw_ref, nw)};
    const char *name[3] = {"out", "din", "dweight"};
    for (int i = 0; i < 3; i++)
        if (e[i] > 1e-4) {
            EXPECT(0, "conv2d (1 thread) B=%d C=%d H=%d OC=%d KS=%d s=%d p=%d: %s max rel err %.3g",
                   B, C, H, OC, KS, stride, pad, name[i], e[i]);
        }
    free(in), free(w), free(bias), free(dout), free(ws), free(out), free(out_ref);
    free(din), free(dw), free(db), free(din_ref), free(dw_ref), free(db_ref);
}

int main(void) {
    openblas_set_num_threads(1);
    if (!fastgemm_enabled())
        printf("fastgemm not enabled in this build (no AVX-512): checking its BLAS fallback\n");
    /* tile edges (M % 8, N % 48), K across the 256-deep blocks, M across the 96-row blocks */
    int shapes[][3] = {{1, 1, 1},      {8, 48, 1},    {7, 47, 3},     {9, 49, 255},  {64, 980, 800},
                       {800, 100, 64}, {97, 50, 257}, {16, 144, 513}, {33, 96, 256}, {5, 300, 20}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            gemm_case(t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2],
                      (float)((s + t) % 2));
    conv_case(6, 32, 14, 64, 5, 1, 2); /* cnn conv2 */
    conv_case(8, 1, 28, 32, 5, 1, 2);  /* cnn conv1 */
    conv_case(4, 16, 32, 16, 3, 1, 1); /* resnet stage 1 */
    conv_case(5, 16, 32, 32, 3, 2, 1); /* resnet downsampling */
    conv_case(9, 64, 8, 64, 3, 1, 1);  /* resnet stage 3, several chunks */
    conv_case(3, 3, 17, 5, 3, 1, 3);   /* padding wider than the kernel, rows across 16 lanes */
    conv_case(2, 2, 33, 3, 4, 1, 0);   /* even kernel, no padding, 30-wide output rows */
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("fastgemm: all products and convolutions match\n");
    return 0;
}
