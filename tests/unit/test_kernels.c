/* Fast kernels against their plain twins (conv2d, linear, mvconv) on random shapes, and the
 * forward values of the other layers and losses against definitions written out here.
 * Prints the worst error of each family; exits 1 if any exceeds its tolerance. */
#include "../../src/nn/bf16_inline.h"
#include "../../src/nn/conv_wgrad.h"
#include "../../src/nn/nn_internal.h"
#include "../../src/nn/srelu_inline.h"
#include "ensdistill/alloc.h"
#include "ensdistill/layers.h"
#include "ensdistill/loss.h"
#include "ensdistill/rng.h"

#include "check.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Rng rng;

static void fill_normal(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = scale * rng_normal(&rng);
}

static int rand_int(int lo, int hi) { /* inclusive */
    return lo + (int)rng_below(&rng, (uint32_t)(hi - lo + 1));
}

/* max |a - b| / max(1, max |b|): a relative error that tolerates values near zero */
static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0.0, m = 1.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d; /* NaN counts as an error */
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return e / m;
}

/* Records the worst errors of a family and reports the cases above tolerance. The tolerance
 * applies to the relative error. */
typedef struct {
    const char *name;
    double tol, worst, worst_abs;
    int cases;
} Family;

static void family_add(Family *f, double err, const char *what) {
    f->cases++;
    if (!(err <= f->worst)) f->worst = err;
    EXPECT(err <= f->tol, "%s: %s error %.3g > %.3g", f->name, what, err, f->tol);
}

/* got against want: the largest absolute difference and rel_err */
static void family_cmp(Family *f, const float *got, const float *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= f->worst_abs)) f->worst_abs = d;
    }
    family_add(f, rel_err(got, want, n), what);
}

static void family_report(const Family *f) {
    printf("%-22s %4d comparisons, worst abs error %.3g, worst relative %.3g (tolerance %.3g)\n",
           f->name, f->cases, f->worst_abs, f->worst, f->tol);
}

#define GUARD 64
#define GUARD_VALUE 12345.0f

/* ---- conv2d: fast vs naive ---- */
static void conv_case(Family *fam, int B, int C, int H, int W, int OC, int KS, int stride, int pad,
                      int with_bias, int with_din, int ws_batch) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    if (OH <= 0 || OW <= 0) return;
    char what[160];
    snprintf(what, sizeof what, "B=%d C=%d %dx%d OC=%d KS=%d s=%d p=%d bias=%d din=%d ws(B=%d)", B,
             C, H, W, OC, KS, stride, pad, with_bias, with_din, ws_batch);
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * OC * OH * OW,
           nw = (size_t)OC * C * KS * KS;
    size_t nws = conv2d_workspace_floats(ws_batch, C, H, W, OC, KS, stride, pad);
    float *in = xfloats(nin), *w = xfloats(nw), *bias = xfloats(OC);
    float *out = xfloats(nout), *out_ref = xfloats(nout), *dout = xfloats(nout);
    float *ws = xfloats(nws + GUARD);
    float *din = xfloats(nin), *din_ref = xfloats(nin), *dw = xfloats(nw), *dw_ref = xfloats(nw);
    float *db = xfloats(OC), *db_ref = xfloats(OC);
    fill_normal(in, nin, 1.0f);
    fill_normal(w, nw, 0.3f);
    fill_normal(bias, OC, 1.0f);
    fill_normal(dout, nout, 1.0f);
    /* backward accumulates: start both from the same nonzero gradients */
    fill_normal(din, nin, 1.0f);
    fill_normal(dw, nw, 1.0f);
    fill_normal(db, OC, 1.0f);
    memcpy(din_ref, din, nin * sizeof(float));
    memcpy(dw_ref, dw, nw * sizeof(float));
    memcpy(db_ref, db, OC * sizeof(float));
    for (int i = 0; i < GUARD; i++)
        ws[nws + i] = GUARD_VALUE;

    conv2d_forward(out, in, w, with_bias ? bias : NULL, B, C, H, W, OC, KS, stride, pad, ws);
    conv2d_forward_naive(out_ref, in, w, with_bias ? bias : NULL, B, C, H, W, OC, KS, stride, pad);
    conv2d_backward(with_din ? din : NULL, dw, with_bias ? db : NULL, dout, in, w, B, C, H, W, OC,
                    KS, stride, pad, ws);
    conv2d_backward_naive(with_din ? din_ref : NULL, dw_ref, with_bias ? db_ref : NULL, dout, in, w,
                          B, C, H, W, OC, KS, stride, pad);
    char buf[200];
    snprintf(buf, sizeof buf, "%s out", what);
    family_cmp(fam, out, out_ref, nout, buf);
    snprintf(buf, sizeof buf, "%s din", what);
    family_cmp(fam, din, din_ref, nin, buf);
    snprintf(buf, sizeof buf, "%s dweight", what);
    family_cmp(fam, dw, dw_ref, nw, buf);
    snprintf(buf, sizeof buf, "%s dbias", what);
    family_cmp(fam, db, db_ref, OC, buf);
    for (int i = 0; i < GUARD; i++)
        if (ws[nws + i] != GUARD_VALUE) {
            EXPECT(0, "conv2d: %s wrote past its workspace (%zu floats)", what, nws);
            break;
        }
    free(in), free(w), free(bias), free(out), free(out_ref), free(dout), free(ws);
    free(din), free(din_ref), free(dw), free(dw_ref), free(db), free(db_ref);
}

static void test_conv2d(void) {
    Family fam = {"conv2d fast/naive", 2e-5, 0, 0, 0};
    /* the paths that matter, named */
    conv_case(&fam, 3, 5, 8, 8, 7, 1, 1, 0, 1, 1, 3); /* 1x1 stride 1: no im2col */
    conv_case(&fam, 3, 5, 9, 7, 7, 1, 2, 0, 0, 1, 3); /* 1x1 stride 2: im2col */
    /* batches that the chunking does not divide (with 1024-column chunks: 1 x 7, 2+2+2+2+2+1,
     * 16+4, 6+1) */
    conv_case(&fam, 7, 3, 32, 32, 4, 3, 1, 1, 1, 1, 7);
    conv_case(&fam, 11, 2, 28, 28, 3, 5, 1, 2, 1, 0, 11);
    conv_case(&fam, 20, 4, 8, 8, 5, 3, 1, 1, 1, 1, 20);
    conv_case(&fam, 7, 3, 14, 14, 4, 5, 1, 2, 1, 1, 7);
    conv_case(&fam, 5, 4, 9, 6, 6, 3, 2, 1, 1, 1, 5);     /* stride 2, non-square, odd */
    conv_case(&fam, 2, 3, 4, 5, 3, 5, 1, 2, 1, 1, 2);     /* kernel larger than the image */
    conv_case(&fam, 2, 2, 3, 3, 2, 3, 3, 2, 1, 1, 2);     /* padding >= stride, tiny image */
    conv_case(&fam, 3, 3, 10, 10, 4, 3, 1, 1, 1, 1, 8);   /* workspace sized for a larger batch */
    conv_case(&fam, 1, 16, 16, 16, 16, 3, 1, 1, 0, 1, 1); /* a single sample */
    /* random shapes */
    for (int t = 0; t < 40; t++) {
        int KS = rand_int(1, 5), stride = rand_int(1, 3),
            pad = rand_int(0, KS - 1 < 2 ? KS - 1 : 2);
        if (t % 8 == 0) KS = 1, stride = 1, pad = 0;
        int H = rand_int(KS > pad ? KS - pad : 1, 20), W = rand_int(KS > pad ? KS - pad : 1, 20);
        int B = rand_int(1, 9), C = rand_int(1, 6), OC = rand_int(1, 8);
        conv_case(&fam, B, C, H, W, OC, KS, stride, pad, rand_int(0, 1), rand_int(0, 1),
                  B + rand_int(0, 3));
    }
    /* larger images, where several chunks (and a remainder) are needed */
    for (int t = 0; t < 6; t++) {
        int KS = 2 * rand_int(0, 2) + 1, H = rand_int(24, 40), W = rand_int(24, 40);
        conv_case(&fam, rand_int(5, 13), rand_int(1, 3), H, W, rand_int(2, 5), KS, rand_int(1, 2),
                  KS / 2, 1, 1, 13);
    }
    family_report(&fam);

    /* the workspace must not shrink as the batch grows (the model sizes it for its largest) */
    int monotone = 1;
    for (int B = 1; B <= 300 && monotone; B++) {
        size_t a = conv2d_workspace_floats(B, 16, 32, 32, 16, 3, 1, 1);
        size_t b = conv2d_workspace_floats(B + 1, 16, 32, 32, 16, 3, 1, 1);
        if (b < a)
            monotone = 0, printf("FAIL conv2d workspace shrinks from B=%d to B=%d\n", B, B + 1);
    }
    size_t big = conv2d_workspace_floats(128, 640, 8, 8, 640, 3, 1, 1);
    size_t one = (size_t)640 * 9 * 64;
    printf("conv2d workspace: WRN stage-3 layer at B=128: %.1f MB (%.1f samples of im2col)\n",
           big * 4.0 / 1e6, (double)big / one);
    if (big > ((size_t)16 << 20) + one) {
        printf("FAIL conv2d workspace exceeds its 64 MB budget\n");
        monotone = 0;
    }
    EXPECT(monotone, "conv2d workspace: monotone in B and within its 64 MB budget");
}

/* ---- linear: fast vs naive ---- */
static void test_linear(void) {
    Family fam = {"linear fast/naive", 2e-5, 0, 0, 0};
    for (int t = 0; t < 25; t++) {
        int B = rand_int(1, 40), IN = rand_int(1, 300), OUT = rand_int(1, 30);
        int with_bias = t % 3 != 0, with_din = t % 4 != 1;
        size_t nin = (size_t)B * IN, nout = (size_t)B * OUT, nw = (size_t)OUT * IN;
        float *in = xfloats(nin), *w = xfloats(nw), *bias = xfloats(OUT), *out = xfloats(nout);
        float *out_ref = xfloats(nout), *dout = xfloats(nout), *din = xfloats(nin);
        float *din_ref = xfloats(nin), *dw = xfloats(nw), *dw_ref = xfloats(nw);
        float *db = xfloats(OUT), *db_ref = xfloats(OUT);
        fill_normal(in, nin, 1.0f);
        fill_normal(w, nw, 0.2f);
        fill_normal(bias, OUT, 1.0f);
        fill_normal(dout, nout, 1.0f);
        fill_normal(din, nin, 1.0f);
        fill_normal(dw, nw, 1.0f);
        fill_normal(db, OUT, 1.0f);
        memcpy(din_ref, din, nin * 4), memcpy(dw_ref, dw, nw * 4), memcpy(db_ref, db, OUT * 4);
        const float *bp = with_bias ? bias : NULL;
        linear_forward(out, in, w, bp, B, IN, OUT);
        linear_forward_naive(out_ref, in, w, bp, B, IN, OUT);
        linear_backward(with_din ? din : NULL, dw, with_bias ? db : NULL, dout, in, w, B, IN, OUT);
        linear_backward_naive(with_din ? din_ref : NULL, dw_ref, with_bias ? db_ref : NULL, dout,
                              in, w, B, IN, OUT);
        char what[120];
        snprintf(what, sizeof what, "B=%d IN=%d OUT=%d bias=%d din=%d", B, IN, OUT, with_bias,
                 with_din);
        family_cmp(&fam, out, out_ref, nout, what);
        family_cmp(&fam, din, din_ref, nin, what);
        family_cmp(&fam, dw, dw_ref, nw, what);
        family_cmp(&fam, db, db_ref, OUT, what);
        free(in), free(w), free(bias), free(out), free(out_ref), free(dout), free(din);
        free(din_ref), free(dw), free(dw_ref), free(db), free(db_ref);
    }
    family_report(&fam);
}

/* ---- mvconv: fast vs naive, with and without noise ---- */
static float test_noise_init(const void *ctx, int row, int64_t coord) {
    const uint64_t *seed = ctx;
    return rng_normal_at(*seed, 77, (uint64_t)coord * 1000003u + (uint64_t)row);
}

static void test_mvconv(void) {
    Family fam = {"mvconv fast/naive", 2e-5, 0, 0, 0};
    static const uint64_t noise_seed = 99;
    for (int t = 0; t < 16; t++) {
        int B = rand_int(1, 6), P = rand_int(1, 9), D = rand_int(1, 40), K = rand_int(1, 5),
            M = rand_int(1, 6);
        if (t == 15) K = 10, M = 1700; /* wider than the backward's stack block */
        int KM = K * M,
            noise_kind = t % 4; /* 0 none, 1 trained + init, 2 trained only, 3 init only */
        float q = (float)rand_int(2, 4), rho = 0.3f;
        int64_t n_noise = noise_kind == 3 ? 0 : rand_int(1, 4 * P);
        size_t nin = (size_t)B * P * D, nw = (size_t)KM * D, npre = (size_t)B * P * KM;
        float *in = xfloats(nin), *w = xfloats(nw), *nwts = xfloats((size_t)KM * n_noise + 1);
        float *out = xfloats((size_t)B * K), *out_ref = xfloats((size_t)B * K);
        float *pre = xfloats(npre), *pre_ref = xfloats(npre), *dout = xfloats((size_t)B * K);
        float *dw = xfloats(nw), *dw_ref = xfloats(nw);
        float *dn = xfloats((size_t)KM * n_noise + 1), *dn_ref = xfloats((size_t)KM * n_noise + 1);
        int64_t ids[8];
        for (int b = 0; b < B; b++)
            ids[b] = rand_int(0, 5);
        fill_normal(in, nin, 1.0f);
        fill_normal(w, nw, 0.3f);
        fill_normal(nwts, (size_t)KM * n_noise, 0.5f);
        fill_normal(dout, (size_t)B * K, 1.0f);
        MvNoise noise = {noise_kind == 3 ? NULL : nwts,
                         n_noise,
                         0.7f,
                         ids,
                         noise_kind == 2 ? NULL : test_noise_init,
                         &noise_seed};
        const MvNoise *np = noise_kind == 0 ? NULL : &noise;
        mvconv_forward(out, pre, in, w, np, B, P, D, K, M, q, rho);
        mvconv_forward_naive(out_ref, pre_ref, in, w, np, B, P, D, K, M, q, rho);
        mvconv_backward(dw, dn, dout, pre, in, np, B, P, D, K, M, q, rho);
        mvconv_backward_naive(dw_ref, dn_ref, dout, pre_ref, in, np, B, P, D, K, M, q, rho);
        char what[120];
        snprintf(what, sizeof what, "B=%d P=%d D=%d K=%d M=%d noise=%d", B, P, D, K, M, noise_kind);
        family_cmp(&fam, pre, pre_ref, npre, what);
        family_cmp(&fam, out, out_ref, (size_t)B * K, what);
        family_cmp(&fam, dw, dw_ref, nw, what);
        family_cmp(&fam, dn, dn_ref, (size_t)KM * n_noise, what);
        free(in), free(w), free(nwts), free(out), free(out_ref), free(pre), free(pre_ref);
        free(dout), free(dw), free(dw_ref), free(dn), free(dn_ref);
    }
    family_report(&fam);
}

/* ---- batchnorm forward against the formula in double ---- */
static void test_batchnorm(void) {
    Family fam = {"batchnorm forward", 1e-5, 0, 0, 0};
    const int shapes[][3] = {{4, 3, 25}, {128, 5, 1}, {2, 2, 1024}, {3, 1, 7}};
    for (int s = 0; s < 4; s++) {
        int B = shapes[s][0], C = shapes[s][1], HW = shapes[s][2];
        size_t n = (size_t)B * C * HW;
        float *in = xfloats(n), *out = xfloats(n), *gamma = xfloats(C), *beta = xfloats(C);
        float *rm = xfloats(C), *rv = xfloats(C), *mean = xfloats(C), *invstd = xfloats(C);
        float *ref = xfloats(n);
        fill_normal(in, n, 3.0f);
        for (size_t i = 0; i < n; i++)
            in[i] += 50.0f; /* a large mean tests the two-pass sums */
        fill_normal(gamma, C, 1.0f);
        fill_normal(beta, C, 1.0f);
        for (int c = 0; c < C; c++)
            rm[c] = 0.5f, rv[c] = 2.0f;
        const float momentum = 0.1f, eps = 1e-5f;
        batchnorm_forward(out, mean, invstd, in, gamma, beta, rm, rv, B, C, HW, momentum, eps, 1);
        float stats[2][8];
        for (int c = 0; c < C; c++) {
            double s1 = 0, s2 = 0;
            size_t N = (size_t)B * HW;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++)
                    s1 += in[((size_t)b * C + c) * HW + i];
            double m = s1 / N;
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    double d = in[((size_t)b * C + c) * HW + i] - m;
                    s2 += d * d;
                }
            double var = s2 / N, inv = 1.0 / sqrt(var + eps);
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    size_t k = ((size_t)b * C + c) * HW + i;
                    ref[k] = (float)((in[k] - m) * inv * gamma[c] + beta[c]);
                }
            stats[0][c] = (float)(0.9 * 0.5 + 0.1 * m);
            stats[1][c] = (float)(0.9 * 2.0 + 0.1 * s2 / (N - 1));
            float sm = (float)m, si = (float)inv;
            family_cmp(&fam, &mean[c], &sm, 1, "saved mean");
            family_cmp(&fam, &invstd[c], &si, 1, "saved invstd");
        }
        char what[80];
        snprintf(what, sizeof what, "training B=%d C=%d HW=%d", B, C, HW);
        family_cmp(&fam, out, ref, n, what);
        family_cmp(&fam, rm, stats[0], C, "running mean update");
        family_cmp(&fam, rv, stats[1], C, "running var update (unbiased)");
        /* eval: the running statistics, left unchanged */
        const float rm0 = rm[0], rv0 = rv[0];
        batchnorm_forward(out, NULL, NULL, in, gamma, beta, rm, rv, B, C, HW, momentum, eps, 0);
        for (int c = 0; c < C; c++)
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    size_t k = ((size_t)b * C + c) * HW + i;
                    ref[k] =
                        (float)((in[k] - rm[c]) / sqrt((double)rv[c] + eps) * gamma[c] + beta[c]);
                }
        snprintf(what, sizeof what, "eval B=%d C=%d HW=%d", B, C, HW);
        family_cmp(&fam, out, ref, n, what);
        EXPECT(rm[0] == rm0 && rv[0] == rv0, "batchnorm eval changed the running statistics");
        free(in), free(out), free(gamma), free(beta), free(rm), free(rv), free(mean), free(invstd),
            free(ref);
    }
    family_report(&fam);
}

/* ---- maxpool (both the 2x2 fast path and the general loop) against the definition ---- */
static void test_maxpool_random(void) {
    int bad = 0, cases = 0;
    for (int t = 0; t < 30; t++) {
        int KS = t % 3 == 0 ? 2 : rand_int(1, 4), stride = t % 3 == 0 ? 2 : rand_int(1, 3);
        int pad = t % 3 == 0 ? 0 : rand_int(0, KS / 2);
        int B = rand_int(1, 3), C = rand_int(1, 4), H = rand_int(KS, 13), W = rand_int(KS, 13);
        int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
        size_t nin = (size_t)B * C * H * W, nout = (size_t)B * C * OH * OW;
        float *x = xfloats(nin), *y = xfloats(nout);
        int32_t *am = xmalloc(nout * sizeof(int32_t));
        for (size_t i = 0; i < nin; i++) /* few distinct values: ties; some -inf and NaN */
            x[i] = t % 5 == 4 && i % 11 == 3  ? NAN
                   : t % 5 == 3 && i % 3 == 0 ? -INFINITY
                                              : (float)rand_int(-3, 3);
        maxpool_forward(y, am, x, B, C, H, W, KS, stride, pad);
        for (size_t bc = 0; bc < (size_t)B * C; bc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    /* PyTorch's rule: start at the first input of the window, move to a larger
                     * value or a NaN */
                    float best = -INFINITY;
                    int at = -1;
                    for (int kh = 0; kh < KS; kh++)
                        for (int kw = 0; kw < KS; kw++) {
                            int ih = oh * stride - pad + kh, iw = ow * stride - pad + kw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            float v = x[bc * H * W + ih * W + iw];
                            if (at < 0) at = ih * W + iw;
                            if (v > best || isnan(v)) best = v, at = ih * W + iw;
                        }
                    size_t o = bc * OH * OW + oh * OW + ow;
                    int same = (y[o] == best || (isnan(y[o]) && isnan(best))) && am[o] == at;
                    cases++;
                    if (!same && bad++ < 5)
                        printf("FAIL maxpool B%d C%d %dx%d KS%d s%d p%d at (%zu,%d,%d): got %g@%d "
                               "want %g@%d\n",
                               B, C, H, W, KS, stride, pad, bc, oh, ow, y[o], am[o], best, at);
                }
        free(x), free(y), free(am);
    }
    EXPECT(bad == 0, "maxpool: %d outputs differ from the definition", bad);
    printf("maxpool vs definition  %d outputs, %d wrong (ties, -inf, NaN included)\n", cases, bad);
}

/* ---- pooling, shortcut, srelu: small cases with values worked out by hand ---- */
static void expect(const char *what, const float *got, const float *want, size_t n, double tol) {
    double e = rel_err(got, want, n);
    EXPECT(e <= tol, "%s: relative error %.3g", what, e);
    if (!(e <= tol))
        for (size_t i = 0; i < n; i++)
            printf("  [%zu] got %.7g want %.7g\n", i, got[i], want[i]);
}

static void test_small_layers(void) {
    /* 1 x 1 x 4 x 4 image 0..15 */
    float img[16];
    for (int i = 0; i < 16; i++)
        img[i] = (float)((i * 7) % 16); /* a permutation of 0..15 */
    /* rows: 0 7 14 5 | 12 3 10 1 | 8 15 6 13 | 4 11 2 9 */
    float out[16];
    int32_t am[16];
    maxpool_forward(out, am, img, 1, 1, 4, 4, 2, 2, 0);
    expect("maxpool 2x2/2", out, (const float[]){12, 14, 15, 13}, 4, 0);
    float amf[4] = {(float)am[0], (float)am[1], (float)am[2], (float)am[3]};
    expect("maxpool argmax", amf, (const float[]){4, 2, 9, 11}, 4, 0);
    maxpool_forward(out, am, img, 1, 1, 4, 4, 3, 2, 1); /* windows rows/cols {-1,0,1}, {1,2,3} */
    expect("maxpool 3x3/2 pad 1", out, (const float[]){12, 14, 15, 15}, 4, 0);
    float ties[4] = {1, 1, 1, 1};
    maxpool_forward(out, am, ties, 1, 1, 2, 2, 2, 2, 0);
    EXPECT(am[0] == 0, "maxpool tie: argmax %d, want the first (0)", am[0]);
    float din[16] = {0};
    maxpool_forward(out, am, img, 1, 1, 4, 4, 2, 2, 0);
    maxpool_backward(din, (const float[]){1, 2, 3, 4}, am, 1, 1, 4, 4, 2, 2, 0);
    float want_din[16] = {0};
    want_din[4] = 1, want_din[2] = 2, want_din[9] = 3, want_din[11] = 4;
    expect("maxpool backward", din, want_din, 16, 0);

    global_avgpool_forward(out, img, 1, 1, 16);
    expect("global avgpool", out, (const float[]){7.5f}, 1, 1e-7);

    /* shortcut: 1 x 2 x 3 x 3 -> 1 x 5 x 2 x 2, stride 2, pad_front 2 */
    float x[18], y[20];
    for (int i = 0; i < 18; i++)
        x[i] = (float)(i + 1);
    shortcut_pad_forward(y, x, 1, 2, 3, 3, 5, 2, 2);
    expect("shortcut_pad", y,
           (const float[]){0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 7, 9, 10, 12, 16, 18, 0, 0, 0, 0}, 20, 0);

    /* srelu, q = 3, rho = 0.5: 0.25^3 / (3 * 0.25) = 1/48 at z = 0.25; 2 - (2/3) 0.5 at z = 2 */
    const float zs[5] = {-1.0f, 0.0f, 0.25f, 0.5f, 2.0f};
    float v[5], g[5];
    for (int i = 0; i < 5; i++)
        v[i] = srelu_value(zs[i], 3.0f, 0.5f), g[i] = srelu_derivative(zs[i], 3.0f, 0.5f);
    expect("srelu values", v, (const float[]){0, 0, 1.0f / 48, 0.5f / 3, 2.0f - 1.0f / 3}, 5, 1e-6);
    expect("srelu gradients", g, (const float[]){0, 0, 0.25f, 1.0f, 1.0f}, 5, 1e-6);
    /* a non-integer q (the powf path): q = 2.5, rho = 0.5 at z = 0.25: 0.25^2.5 / (2.5 * 0.5^1.5)
     */
    float v25[2] = {srelu_value(0.25f, 2.5f, 0.5f), srelu_derivative(0.25f, 2.5f, 0.5f)};
    expect("srelu q=2.5", v25,
           (const float[]){(float)(pow(0.25, 2.5) / (2.5 * pow(0.5, 1.5))), (float)pow(0.5, 1.5)},
           2, 1e-6);
    /* value and slope continuous at rho */
    const float rho = 0.37f, q = 4.0f, h = 1e-4f;
    float lr[2] = {srelu_value(rho - h, q, rho), srelu_derivative(rho - h, q, rho)};
    float rr[2] = {srelu_value(rho + h, q, rho), srelu_derivative(rho + h, q, rho)};
    expect("srelu continuity at rho", lr, rr, 2, 1e-3);
    printf("small layers (pool, shortcut, srelu): checked against worked values\n");
}

/* ---- losses against their definitions, written with explicit softmax ---- */
static void test_losses(void) {
    Family fam = {"losses", 1e-6, 0, 0, 0};
    enum { B = 6, K = 7 };
    float s[B * K], t[B * K], d[B * K];
    int32_t y[B];
    for (int t2 = 0; t2 < 4; t2++) {
        float shift = t2 == 3 ? 500.0f : 0.0f; /* large logits: exp overflows without the shift */
        fill_normal(s, B * K, 2.0f), fill_normal(t, B * K, 3.0f);
        for (int i = 0; i < B * K; i++)
            s[i] += shift, t[i] -= shift;
        for (int b = 0; b < B; b++)
            y[b] = rand_int(0, K - 1);
        const float T = t2 % 2 ? 4.0f : 1.0f, alpha = t2 == 0 ? 0.0f : 0.9f;
        double ce = 0, kd = 0;
        int hits = 0;
        for (int b = 0; b < B; b++) {
            double m = -1e30, mt = -1e30;
            for (int k = 0; k < K; k++)
                m = fmax(m, s[b * K + k]), mt = fmax(mt, t[b * K + k]);
            double z = 0, zT = 0, ztT = 0;
            for (int k = 0; k < K; k++) {
                z += exp(s[b * K + k] - m);
                zT += exp((s[b * K + k] - m) / T);
                ztT += exp((t[b * K + k] - mt) / T);
            }
            double ce_b = -log(exp(s[b * K + y[b]] - m) / z), kl = 0;
            for (int k = 0; k < K; k++) {
                double p = exp((t[b * K + k] - mt) / T) / ztT,
                       qq = exp((s[b * K + k] - m) / T) / zT;
                kl += p * log(p / qq);
            }
            ce += ce_b;
            kd += alpha * T * T * kl + (1 - alpha) * ce_b;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (s[b * K + k] > s[b * K + best]) best = k;
            hits += best == y[b];
        }
        int c1 = 0, c2 = 0;
        double got_ce = loss_cross_entropy(d, s, y, B, K, 1.0f, &c1);
        double got_kd = loss_distill(d, s, t, y, B, K, T, alpha, 1.0f, &c2);
        char what[80];
        snprintf(what, sizeof what, "cross-entropy (shift %g)", shift);
        family_add(&fam, fabs(got_ce - ce) / fmax(1.0, fabs(ce)), what);
        snprintf(what, sizeof what, "distill T=%g alpha=%g (shift %g)", T, alpha, shift);
        family_add(&fam, fabs(got_kd - kd) / fmax(1.0, fabs(kd)), what);
        EXPECT(c1 == hits && c2 == hits, "loss correct counts %d %d, want %d", c1, c2, hits);
    }
    /* a student equal to its teacher: zero KL, zero gradient */
    float dz[B * K];
    double l = loss_distill(dz, t, t, NULL, B, K, 4.0f, 1.0f, 0.5f, NULL);
    float zeros[B * K] = {0};
    family_add(&fam, fabs(l), "distill of the teacher itself");
    family_cmp(&fam, dz, zeros, B * K, "distill gradient at the teacher");
    /* softmax sums to one */
    float p[K];
    nn_softmax(p, s, K, 2.0f);
    double sum = 0;
    for (int k = 0; k < K; k++)
        sum += p[k];
    family_add(&fam, fabs(sum - 1.0), "softmax sum");
    family_report(&fam);
}

/* The blocked-layout kernels (src/nn/blocked.c) against the plain ones, for 8 and 16 lanes and
 * channel counts that do and do not fill the last block: pooling and the shortcut exactly
 * (same selections and sums per element), global average pooling to 1e-6. */
static size_t at_blocked(int b, int c, size_t hw, int C, size_t HW, int L) {
    return (((size_t)b * ((C + L - 1) / L) + c / L) * HW + hw) * L + c % L;
}
static void to_blocked(float *out, const float *in, int B, int C, size_t HW, int L) {
    memset(out, 0, (size_t)B * ((C + L - 1) / L) * L * HW * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (size_t i = 0; i < HW; i++)
                out[at_blocked(b, c, i, C, HW, L)] = in[((size_t)b * C + c) * HW + i];
}
static void test_blocked(void) {
    const int lanes[2] = {8, 16}, chans[2] = {13, 32};
    for (int li = 0; li < 2; li++)
        for (int ci = 0; ci < 2; ci++) {
            const int L = lanes[li], C = chans[ci], B = 3, H = 8, W = 6, OC = 2 * C;
            const int Cp = (C + L - 1) / L * L, OCp = (OC + L - 1) / L * L;
            const size_t n = (size_t)B * C * H * W, nb = (size_t)B * Cp * H * W;
            const size_t no = (size_t)B * C * (H / 2) * (W / 2), nob = (size_t)B * Cp * (H / 2) * (W / 2);
            const size_t ns = (size_t)B * OC * (H / 2) * (W / 2), nsb = (size_t)B * OCp * (H / 2) * (W / 2);
            float *x = xfloats(n), *xb = xfloats(nb), *y = xfloats(ns), *yb = xfloats(nsb);
            float *want = xfloats(ns > n ? ns : n), *got = xfloats(nsb > nb ? nsb : nb);
            float *dy = xfloats(ns), *dyb = xfloats(nsb), *dx = xfloats(n), *dxb = xfloats(nb);
            int32_t *am = xcalloc(no, sizeof(int32_t)), *amb = xcalloc(nob, sizeof(int32_t));
            char what[64];
            fill_normal(x, n, 1.0f);
            to_blocked(xb, x, B, C, (size_t)H * W, L);
            /* max pooling 2x2 */
            maxpool_forward(y, am, x, B, C, H, W, 2, 2, 0);
            blocked_maxpool_forward(yb, amb, xb, B, C, H, W, L, 2, 2);
            to_blocked(got, y, B, C, (size_t)(H / 2) * (W / 2), L);
            snprintf(what, sizeof what, "blocked maxpool L=%d C=%d", L, C);
            expect(what, yb, got, nob, 0.0);
            fill_normal(dy, no, 1.0f);
            to_blocked(dyb, dy, B, C, (size_t)(H / 2) * (W / 2), L);
            memset(dx, 0, n * sizeof(float));
            memset(dxb, 0, nb * sizeof(float));
            maxpool_backward(dx, dy, am, B, C, H, W, 2, 2, 0);
            blocked_maxpool_backward(dxb, dyb, amb, B, C, H, W, L, 2, 2, 0);
            to_blocked(got, dx, B, C, (size_t)H * W, L);
            snprintf(what, sizeof what, "blocked maxpool backward L=%d C=%d", L, C);
            expect(what, dxb, got, nb, 0.0);
            /* the same, written over what was there (the first contribution) */
            fill_normal(dxb, nb, 1.0f);
            blocked_maxpool_backward(dxb, dyb, amb, B, C, H, W, L, 2, 2, 1);
            snprintf(what, sizeof what, "blocked maxpool backward, written, L=%d C=%d", L, C);
            expect(what, dxb, got, nb, 0.0);
            EXPECT(blocked_maxpool_backward_writes(H, W, L, 2, 2) &&
                       !blocked_maxpool_backward_writes(H + 1, W, L, 2, 2) &&
                       !blocked_maxpool_backward_writes(H, W, L, 3, 2),
                   "blocked maxpool backward writes where it cannot, or not where it can");
            /* global average pooling: plain [B, C] out */
            global_avgpool_forward(want, x, B, C, H * W);
            blocked_gap_forward(got, xb, B, C, H * W, L);
            snprintf(what, sizeof what, "blocked gap L=%d C=%d", L, C);
            expect(what, got, want, (size_t)B * C, 1e-6);
            memset(dx, 0, n * sizeof(float));
            memset(dxb, 0, nb * sizeof(float));
            global_avgpool_backward(dx, dy, B, C, H * W);
            blocked_gap_backward(dxb, dy, B, C, H * W, L);
            to_blocked(got, dx, B, C, (size_t)H * W, L);
            snprintf(what, sizeof what, "blocked gap backward L=%d C=%d", L, C);
            expect(what, dxb, got, nb, 1e-6);
            /* option-A shortcut, stride 2, C -> 2C channels */
            shortcut_pad_forward(y, x, B, C, H, W, OC, 2, C / 2);
            blocked_shortcut_forward(yb, xb, B, C, H, W, OC, 2, C / 2, L);
            to_blocked(got, y, B, OC, (size_t)(H / 2) * (W / 2), L);
            snprintf(what, sizeof what, "blocked shortcut L=%d C=%d", L, C);
            expect(what, yb, got, nsb, 0.0);
            fill_normal(dy, ns, 1.0f);
            to_blocked(dyb, dy, B, OC, (size_t)(H / 2) * (W / 2), L);
            memset(dx, 0, n * sizeof(float));
            memset(dxb, 0, nb * sizeof(float));
            shortcut_pad_backward(dx, dy, B, C, H, W, OC, 2, C / 2);
            blocked_shortcut_backward(dxb, dyb, B, C, H, W, OC, 2, C / 2, L);
            to_blocked(got, dx, B, C, (size_t)H * W, L);
            snprintf(what, sizeof what, "blocked shortcut backward L=%d C=%d", L, C);
            expect(what, dxb, got, nb, 0.0);
            /* flatten's copy to plain and its adjoint */
            blocked_to_plain(got, xb, B, C, H * W, L);
            snprintf(what, sizeof what, "blocked to plain L=%d C=%d", L, C);
            expect(what, got, x, n, 0.0);
            memset(dxb, 0, nb * sizeof(float));
            blocked_from_plain_add(dxb, x, B, C, H * W, L);
            snprintf(what, sizeof what, "blocked from plain L=%d C=%d", L, C);
            expect(what, dxb, xb, nb, 0.0);
            float *all[] = {x, xb, y, yb, want, got, dy, dyb, dx, dxb};
            for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) free(all[i]);
            free(am);
            free(amb);
        }
}

/* bf16 rounding: to nearest, ties to even; NaN stays NaN, overflow goes to infinity */
static void test_bf16_rounding(void) {
    const float cases[][2] = {
        {1.0f, 1.0f},
        {1.0f + 0x1p-8f, 1.0f},                      /* a tie, to the even 1.0 */
        {1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-6f},        /* a tie, to the even neighbour above */
        {1.0f + 0x1p-8f + 0x1p-20f, 1.0f + 0x1p-7f}, /* above the tie */
        {-2.5f, -2.5f},
        {3.4e38f, INFINITY},
        {-INFINITY, -INFINITY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const float got = bf16_to_f32(f32_to_bf16(cases[i][0]));
        if (got != cases[i][1]) {
            fprintf(stderr, "FAIL bf16 rounding of %.9g: %.9g, want %.9g\n", cases[i][0], got,
                    cases[i][1]);
            failures++;
        }
    }
    const float nan = bf16_to_f32(f32_to_bf16(NAN));
    if (nan == nan) {
        fprintf(stderr, "FAIL bf16 rounding of NaN is not NaN\n");
        failures++;
    }
}

/* x rounded to bf16: as floats in r, as bf16 in h */
static void bf16_round(float *r, uint16_t *h, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h[i] = f32_to_bf16(x[i]);
        r[i] = bf16_to_f32(h[i]);
    }
}

static void widen(float *out, const uint16_t *h, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(h[i]);
}

/* The bf16 kernels against the fp32 ones on bf16-rounded inputs: equal (only the add rounds,
 * and its result must be the fp32 sum rounded). */
static void test_blocked_bf16(void) {
    const int lanes[2] = {8, 16}, chans[2] = {13, 32};
    for (int li = 0; li < 2; li++)
        for (int ci = 0; ci < 2; ci++) {
            const int L = lanes[li], C = chans[ci], B = 3, H = 8, W = 6, OC = 2 * C;
            const int Cp = (C + L - 1) / L * L, OCp = (OC + L - 1) / L * L;
            const size_t n = (size_t)B * C * H * W, nb = (size_t)B * Cp * H * W;
            const size_t nob = (size_t)B * Cp * (H / 2) * (W / 2);
            const size_t nsb = (size_t)B * OCp * (H / 2) * (W / 2), big = nsb > nb ? nsb : nb;
            float *x = xfloats(n), *xb = xfloats(nb), *xr = xfloats(nb), *want = xfloats(big);
            float *got = xfloats(big), *dy = xfloats(nb), *dx = xfloats(nb), *dx2 = xfloats(nb);
            uint16_t *xh = xcalloc(nb, 2), *yh = xcalloc(big, 2), *zh = xcalloc(nb, 2);
            int32_t *am = xcalloc(nob, sizeof(int32_t)), *am16 = xcalloc(nob, sizeof(int32_t));
            char what[64];
            fill_normal(x, n, 1.0f);
            to_blocked(xb, x, B, C, (size_t)H * W, L);
            bf16_round(xr, xh, xb, nb);
            blocked_maxpool_forward(want, am, xr, B, C, H, W, L, 2, 2);
            blocked_maxpool_forward_bf16(yh, am16, xh, B, C, H, W, L, 2, 2);
            widen(got, yh, nob);
            snprintf(what, sizeof what, "bf16 blocked maxpool L=%d C=%d", L, C);
            expect(what, got, want, nob, 0.0);
            for (size_t i = 0; i < nob; i++) got[i] = (float)(am16[i] - am[i]);
            memset(want, 0, nob * sizeof(float));
            expect("bf16 blocked maxpool argmax", got, want, nob, 0.0);
            blocked_gap_forward(want, xr, B, C, H * W, L);
            blocked_gap_forward_bf16(got, xh, B, C, H * W, L);
            snprintf(what, sizeof what, "bf16 blocked gap L=%d C=%d", L, C);
            expect(what, got, want, (size_t)B * C, 0.0);
            blocked_shortcut_forward(want, xr, B, C, H, W, OC, 2, C / 2, L);
            blocked_shortcut_forward_bf16(yh, xh, B, C, H, W, OC, 2, C / 2, L);
            widen(got, yh, nsb);
            snprintf(what, sizeof what, "bf16 blocked shortcut L=%d C=%d", L, C);
            expect(what, got, want, nsb, 0.0);
            blocked_to_plain(want, xr, B, C, H * W, L);
            blocked_to_plain_bf16(got, xh, B, C, H * W, L);
            snprintf(what, sizeof what, "bf16 blocked to plain L=%d C=%d", L, C);
            expect(what, got, want, n, 0.0);
            /* elementwise: ReLU and its mask, the residual add */
            relu_forward(want, xr, nb);
            relu_forward_bf16(yh, xh, nb);
            widen(got, yh, nb);
            expect("bf16 relu", got, want, nb, 0.0);
            fill_normal(dy, nb, 1.0f);
            memset(dx, 0, nb * sizeof(float));
            memset(dx2, 0, nb * sizeof(float));
            relu_backward(dx, dy, want, nb);
            relu_backward_bf16(dx2, dy, yh, nb, 0);
            expect("bf16 relu backward", dx2, dx, nb, 0.0);
            fill_normal(dx2, nb, 1.0f); /* written over what was there */
            relu_backward_bf16(dx2, dy, yh, nb, 1);
            expect("bf16 relu backward, written", dx2, dx, nb, 0.0);
            fill_normal(dx2, nb, 1.0f);
            relu_backward_write(dx2, dy, want, nb);
            expect("relu backward, written", dx2, dx, nb, 0.0);
            add_forward(want, xr, got, nb); /* xr + relu(xr), rounded below */
            for (size_t i = 0; i < nb; i++) want[i] = bf16_to_f32(f32_to_bf16(want[i]));
            add_forward_bf16(zh, xh, yh, nb);
            widen(got, zh, nb);
            expect("bf16 add", got, want, nb, 0.0);
            float *all[] = {x, xb, xr, want, got, dy, dx, dx2};
            for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) free(all[i]);
            void *rest[] = {xh, yh, zh, am, am16};
            for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) free(rest[i]);
        }
}

/* The one-channel weight gradient (conv_wgrad.h) against conv2d_backward_naive, with dout in
 * each layout, on shapes that take its specialised paths (KS 3 and 5 at 8 and 16 lanes) and
 * its general one, a last block of channels only partly used, a batch that is not a whole
 * number of chunks, stride 2 and no padding; and the same bits at 1 and 2 threads. */
static void test_conv_wgrad(void) {
    static const int shapes[][7] = {
        /* B, H, W, OC, KS, stride, pad */
        {9, 28, 28, 32, 5, 1, 2}, {3, 10, 12, 13, 3, 1, 1}, {17, 9, 7, 16, 3, 2, 1},
        {4, 8, 8, 5, 4, 2, 0},    {2, 6, 5, 20, 7, 1, 3},   {5, 11, 11, 8, 5, 2, 1},
    };
    static const int lanes[] = {1, 8, 16};
    double worst = 0.0;
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++)
        for (size_t li = 0; li < sizeof(lanes) / sizeof(lanes[0]); li++) {
            const int *sh = shapes[si], L = lanes[li];
            const int B = sh[0], H = sh[1], W = sh[2], OC = sh[3], KS = sh[4], s = sh[5], p = sh[6];
            const int OH = conv2d_out_size(H, KS, s, p), OW = conv2d_out_size(W, KS, s, p);
            const size_t nin = (size_t)B * H * W, nout = (size_t)B * OC * OH * OW;
            const size_t noutb = (size_t)B * ((OC + L - 1) / L) * L * OH * OW;
            const size_t nw = (size_t)OC * KS * KS;
            float *in = xmalloc(nin * sizeof(float)), *dout = xmalloc(nout * sizeof(float));
            float *doutb = xmalloc(noutb * sizeof(float));
            float *dw0 = xmalloc(nw * sizeof(float)), *db0 = xmalloc(OC * sizeof(float));
            float *dw[2], *db[2];
            float *scratch = xmalloc(conv_wgrad_1ch_scratch(B, OC, KS) * sizeof(float));
            fill_normal(in, nin, 1.0f);
            fill_normal(dout, nout, 1.0f);
            fill_normal(dw0, nw, 1.0f);
            fill_normal(db0, OC, 1.0f);
            to_blocked(doutb, dout, B, OC, (size_t)OH * OW, L);
            for (int t = 0; t < 2; t++) {
                dw[t] = xmalloc(nw * sizeof(float));
                db[t] = xmalloc(OC * sizeof(float));
                memcpy(dw[t], dw0, nw * sizeof(float));
                memcpy(db[t], db0, OC * sizeof(float));
                omp_set_num_threads(t + 1);
                conv_wgrad_1ch(dw[t], db[t], doutb, in, B, H, W, OC, KS, s, p, L, scratch);
            }
            omp_set_num_threads(1);
            conv2d_backward_naive(NULL, dw0, db0, dout, in, NULL, B, 1, H, W, OC, KS, s, p);
            char what[96];
            snprintf(what, sizeof what, "conv_wgrad_1ch B=%d %dx%d OC=%d KS=%d s=%d p=%d L=%d", B,
                     H, W, OC, KS, s, p, L);
            const double e = rel_err(dw[0], dw0, nw), eb = rel_err(db[0], db0, OC);
            if (e > worst) worst = e;
            EXPECT(e <= 1e-5 && eb <= 1e-5, "%s: relative error %.3g (weights), %.3g (bias)",
                   what, e, eb);
            EXPECT(!memcmp(dw[0], dw[1], nw * sizeof(float)) &&
                       !memcmp(db[0], db[1], OC * sizeof(float)),
                   "%s: 1 and 2 threads differ", what);
            float *all[] = {in, dout, doutb, dw0, db0, dw[0], dw[1], db[0], db[1], scratch};
            for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) free(all[i]);
        }
    printf("conv_wgrad_1ch: worst relative error %.3g\n", worst);
}

/* The 3x3 weight gradient on 8-lane blocked activations (conv_wgrad.h) against
 * conv2d_backward_naive: 16 output channels a task and 8 (OC 8, 24), stride 1 and 2, pad 0, 1
 * and 2, widths where the edge taps and the last stride-2 column fall outside, a 1x1 image, a
 * batch that is not a whole number of chunks; and the same bits at 1 and 2 threads. */
static void test_conv_wgrad3(void) {
    static const int shapes[][7] = {
        /* B, C, H, W, OC, stride, pad */
        {9, 16, 10, 12, 32, 1, 1}, {3, 8, 7, 9, 8, 2, 1}, {17, 24, 6, 6, 24, 1, 1},
        {4, 16, 9, 8, 16, 2, 0},   {2, 8, 5, 5, 16, 1, 2}, {5, 16, 1, 1, 16, 1, 1},
    };
    const int L = 8;
    double worst = 0.0;
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        const int *sh = shapes[si];
        const int B = sh[0], C = sh[1], H = sh[2], W = sh[3], OC = sh[4], s = sh[5], p = sh[6];
        const int OH = conv2d_out_size(H, 3, s, p), OW = conv2d_out_size(W, 3, s, p);
        const size_t nin = (size_t)B * C * H * W, nout = (size_t)B * OC * OH * OW;
        const size_t nw = (size_t)OC * C * 9;
        float *in = xmalloc(nin * sizeof(float)), *dout = xmalloc(nout * sizeof(float));
        float *inb = xmalloc(nin * sizeof(float)), *doutb = xmalloc(nout * sizeof(float));
        float *dw0 = xmalloc(nw * sizeof(float)), *db0 = xmalloc(OC * sizeof(float));
        float *dw[2], *db[2];
        float *scratch = xmalloc(conv_wgrad3_scratch(B, C, OC) * sizeof(float));
        EXPECT(conv_wgrad3_fits(C, OC, 3, p, L), "conv_wgrad3 refuses C=%d OC=%d pad %d", C, OC,
               p);
        fill_normal(in, nin, 1.0f);
        fill_normal(dout, nout, 1.0f);
        fill_normal(dw0, nw, 1.0f);
        fill_normal(db0, OC, 1.0f);
        to_blocked(inb, in, B, C, (size_t)H * W, L);
        to_blocked(doutb, dout, B, OC, (size_t)OH * OW, L);
        for (int t = 0; t < 2; t++) {
            dw[t] = xmalloc(nw * sizeof(float));
            db[t] = xmalloc(OC * sizeof(float));
            memcpy(dw[t], dw0, nw * sizeof(float));
            memcpy(db[t], db0, OC * sizeof(float));
            omp_set_num_threads(t + 1);
            conv_wgrad3(dw[t], db[t], doutb, inb, B, C, H, W, OC, s, p, scratch);
        }
        omp_set_num_threads(1);
        conv2d_backward_naive(NULL, dw0, db0, dout, in, NULL, B, C, H, W, OC, 3, s, p);
        char what[96];
        snprintf(what, sizeof what, "conv_wgrad3 B=%d C=%d %dx%d OC=%d s=%d p=%d", B, C, H, W, OC,
                 s, p);
        const double e = rel_err(dw[0], dw0, nw), eb = rel_err(db[0], db0, OC);
        if (e > worst) worst = e;
        EXPECT(e <= 1e-5 && eb <= 1e-5, "%s: relative error %.3g (weights), %.3g (bias)", what, e,
               eb);
        EXPECT(!memcmp(dw[0], dw[1], nw * sizeof(float)) &&
                   !memcmp(db[0], db[1], OC * sizeof(float)),
               "%s: 1 and 2 threads differ", what);
        float *all[] = {in, dout, inb, doutb, dw0, db0, dw[0], dw[1], db[0], db[1], scratch};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) free(all[i]);
    }
    EXPECT(!conv_wgrad3_fits(12, 16, 3, 1, 8) && !conv_wgrad3_fits(16, 16, 5, 2, 8) &&
               !conv_wgrad3_fits(16, 16, 3, 1, 16),
           "conv_wgrad3 takes a shape it cannot");
    printf("conv_wgrad3: worst relative error %.3g\n", worst);
}

int main(void) {
    rng = rng_make(2024, rng_stream(RNG_PURPOSE_TEST, 1, 0, 0));
    test_conv2d();
    test_linear();
    test_mvconv();
    test_batchnorm();
    test_maxpool_random();
    test_small_layers();
    test_losses();
    test_blocked();
    test_conv_wgrad();
    test_conv_wgrad3();
    test_bf16_rounding();
    test_blocked_bf16();
    if (failures) {
        printf("kernels: %d FAILED\n", failures);
        return 1;
    }
    printf("kernels: all passed\n");
    return 0;
}
