/* Gradient check of every layer backward and both losses: central differences of a scalar
 * objective f = sum(R * out) (R fixed random; the loss itself for losses) against the analytic
 * gradient, for every input and parameter. Two views of each gradient (as kann does, and more):
 *   - along random directions d: (f(x + eps d) - f(x - eps d)) / (2 eps) vs <grad, d>;
 *   - coordinate by coordinate (all, or 48 sampled): a wrong border pixel or channel cannot hide.
 * Kernels run in float; f is summed in double. Exits 1 if any relative error exceeds tol. */
#include "../../src/nn/srelu_inline.h"
#include "ensdistill/alloc.h"
#include "ensdistill/layers.h"
#include "ensdistill/loss.h"
#include "ensdistill/rng.h"

#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Rng rng;
static int checks;

static void fill_normal(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = scale * rng_normal(&rng);
}

/* A tensor the objective depends on, with its analytic gradient. */
typedef struct {
    const char *name;
    float *x;
    const float *grad;
    size_t n;
} Param;

typedef double (*Objective)(void *ctx);

static double central(Objective f, void *ctx, float *x, size_t n, const float *d, double eps) {
    float *saved = xfloats(n);
    memcpy(saved, x, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        x[i] = saved[i] + (float)(eps * d[i]);
    double fp = f(ctx);
    for (size_t i = 0; i < n; i++)
        x[i] = saved[i] - (float)(eps * d[i]);
    double fm = f(ctx);
    memcpy(x, saved, n * sizeof(float));
    free(saved);
    return (fp - fm) / (2 * eps);
}

/* Checks each param's gradient; eps is relative to the param's rms value (at least 1e-3). */
static void gradcheck(const char *what, Objective f, void *ctx, const Param *ps, int np, double eps,
                      double tol) {
    for (int k = 0; k < np; k++) {
        const Param *p = &ps[k];
        double rms = 0, gmax = 0;
        for (size_t i = 0; i < p->n; i++) {
            rms += (double)p->x[i] * p->x[i];
            gmax = fmax(gmax, fabs(p->grad[i]));
        }
        rms = sqrt(rms / p->n);
        const double h = eps * fmax(rms, 1e-1);
        float *d = xfloats(p->n);
        double worst_dir = 0, worst_coord = 0;
        /* random directions */
        for (int t = 0; t < 3; t++) {
            fill_normal(d, p->n, 1.0f);
            double num = central(f, ctx, p->x, p->n, d, h), ana = 0, scale = 0;
            for (size_t i = 0; i < p->n; i++) {
                ana += (double)p->grad[i] * d[i];
                scale += fabs((double)p->grad[i] * d[i]);
            }
            /* relative to the largest of |num|, |ana| and a fraction of sum |g_i d_i| (which
             * keeps a direction nearly orthogonal to the gradient from dividing by ~0) */
            double denom = fmax(fmax(fabs(num), fabs(ana)), fmax(0.05 * scale, 1e-6));
            worst_dir = fmax(worst_dir, fabs(num - ana) / denom);
        }
        /* coordinates: all of them for small tensors, else 48 spread over the tensor */
        memset(d, 0, p->n * sizeof(float));
        size_t ncoord = p->n <= 48 ? p->n : 48;
        size_t bad_i = 0;
        double bad_num = 0;
        for (size_t c = 0; c < ncoord; c++) {
            size_t i = p->n <= 48 ? c : (c == 0 ? 0 : c == 1 ? p->n - 1 : rng_below(&rng, p->n));
            d[i] = 1.0f;
            double num = central(f, ctx, p->x, p->n, d, h);
            d[i] = 0.0f;
            double e = fabs(num - p->grad[i]) / fmax(gmax, 1e-6);
            if (e > worst_coord) worst_coord = e, bad_i = i, bad_num = num;
        }
        free(d);
        checks++;
        int ok = worst_dir <= tol && worst_coord <= tol && gmax > 0;
        printf("%-4s %-44s d%-8s directional %.2e  coordinate %.2e  (|grad|max %.3g)\n",
               ok ? "ok" : "FAIL", what, p->name, worst_dir, worst_coord, gmax);
        EXPECT(ok, "%s d%s: gradient check", what, p->name);
        if (!ok) {
            if (gmax == 0) printf("     the analytic gradient is identically zero\n");
            if (worst_coord > tol)
                printf("     worst coordinate %zu: numeric %.6g analytic %.6g\n", bad_i, bad_num,
                       p->grad[bad_i]);
        }
    }
}

/* sum_i r[i] * y[i] in double */
static double dot(const float *r, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)r[i] * y[i];
    return s;
}

/* ---- linear ---- */
typedef struct {
    int B, IN, OUT;
    float *in, *w, *b, *out, *r;
} LinearCase;

static double linear_objective(void *ctx) {
    LinearCase *c = ctx;
    linear_forward(c->out, c->in, c->w, c->b, c->B, c->IN, c->OUT);
    return dot(c->r, c->out, (size_t)c->B * c->OUT);
}

static void check_linear(void) {
    LinearCase c = {4, 7, 5, 0, 0, 0, 0, 0};
    size_t nin = (size_t)c.B * c.IN, nw = (size_t)c.OUT * c.IN, nout = (size_t)c.B * c.OUT;
    c.in = xfloats(nin), c.w = xfloats(nw), c.b = xfloats(c.OUT), c.out = xfloats(nout);
    c.r = xfloats(nout);
    float *din = xfloats(nin), *dw = xfloats(nw), *db = xfloats(c.OUT);
    fill_normal(c.in, nin, 1), fill_normal(c.w, nw, 0.5f), fill_normal(c.b, c.OUT, 1);
    fill_normal(c.r, nout, 1);
    linear_objective(&c);
    linear_backward(din, dw, db, c.r, c.in, c.w, c.B, c.IN, c.OUT);
    Param ps[] = {{"in", c.in, din, nin}, {"weight", c.w, dw, nw}, {"bias", c.b, db, c.OUT}};
    gradcheck("linear 4x7 -> 5", linear_objective, &c, ps, 3, 1e-2, 1e-2);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.r), free(din), free(dw), free(db);
}

/* ---- conv2d, fast and naive ---- */
typedef struct {
    int B, C, H, W, OC, KS, stride, pad, naive;
    float *in, *w, *b, *out, *r, *ws;
} ConvCase;

static double conv_objective(void *ctx) {
    ConvCase *c = ctx;
    if (c->naive)
        conv2d_forward_naive(c->out, c->in, c->w, c->b, c->B, c->C, c->H, c->W, c->OC, c->KS,
                             c->stride, c->pad);
    else
        conv2d_forward(c->out, c->in, c->w, c->b, c->B, c->C, c->H, c->W, c->OC, c->KS, c->stride,
                       c->pad, c->ws);
    int OH = conv2d_out_size(c->H, c->KS, c->stride, c->pad);
    int OW = conv2d_out_size(c->W, c->KS, c->stride, c->pad);
    return dot(c->r, c->out, (size_t)c->B * c->OC * OH * OW);
}

static void check_conv(int B, int C, int H, int W, int OC, int KS, int stride, int pad, int bias,
                       int naive) {
    ConvCase c = {B, C, H, W, OC, KS, stride, pad, naive, 0, 0, 0, 0, 0, 0};
    int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    size_t nin = (size_t)B * C * H * W, nw = (size_t)OC * C * KS * KS,
           nout = (size_t)B * OC * OH * OW;
    c.in = xfloats(nin), c.w = xfloats(nw), c.b = bias ? xfloats(OC) : NULL;
    c.out = xfloats(nout), c.r = xfloats(nout);
    c.ws = xfloats(conv2d_workspace_floats(B, C, H, W, OC, KS, stride, pad));
    float *din = xfloats(nin), *dw = xfloats(nw), *db = xfloats(OC);
    fill_normal(c.in, nin, 1), fill_normal(c.w, nw, 0.5f), fill_normal(c.r, nout, 1);
    if (bias) fill_normal(c.b, OC, 1);
    conv_objective(&c);
    if (naive)
        conv2d_backward_naive(din, dw, bias ? db : NULL, c.r, c.in, c.w, B, C, H, W, OC, KS, stride,
                              pad);
    else
        conv2d_backward(din, dw, bias ? db : NULL, c.r, c.in, c.w, B, C, H, W, OC, KS, stride, pad,
                        c.ws);
    char what[100];
    snprintf(what, sizeof what, "conv2d%s B%d C%d %dx%d OC%d KS%d s%d p%d", naive ? "_naive" : "",
             B, C, H, W, OC, KS, stride, pad);
    Param ps[] = {{"in", c.in, din, nin}, {"weight", c.w, dw, nw}, {"bias", c.b, db, OC}};
    gradcheck(what, conv_objective, &c, ps, bias ? 3 : 2, 1e-2, 1e-2);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.r), free(c.ws), free(din), free(dw),
        free(db);
}

/* ---- batchnorm (training) ---- */
typedef struct {
    int B, C, HW;
    float *in, *gamma, *beta, *out, *r, *mean, *invstd, *rm, *rv;
} BnCase;

static double bn_objective(void *ctx) {
    BnCase *c = ctx;
    batchnorm_forward(c->out, c->mean, c->invstd, c->in, c->gamma, c->beta, c->rm, c->rv, c->B,
                      c->C, c->HW, 0.1f, 1e-5f, 1);
    return dot(c->r, c->out, (size_t)c->B * c->C * c->HW);
}

static void check_batchnorm(int B, int C, int HW) {
    BnCase c = {B, C, HW, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = (size_t)B * C * HW;
    c.in = xfloats(n), c.out = xfloats(n), c.r = xfloats(n);
    c.gamma = xfloats(C), c.beta = xfloats(C), c.mean = xfloats(C), c.invstd = xfloats(C);
    c.rm = xfloats(C), c.rv = xfloats(C);
    float *din = xfloats(n), *dg = xfloats(C), *dbeta = xfloats(C);
    fill_normal(c.in, n, 2), fill_normal(c.gamma, C, 1), fill_normal(c.beta, C, 1);
    for (size_t i = 0; i < n; i++)
        c.in[i] += 1.5f;
    fill_normal(c.r, n, 1);
    bn_objective(&c);
    batchnorm_backward(din, dg, dbeta, c.r, c.in, c.gamma, c.mean, c.invstd, B, C, HW);
    char what[100];
    snprintf(what, sizeof what, "batchnorm training B%d C%d HW%d", B, C, HW);
    Param ps[] = {{"in", c.in, din, n}, {"gamma", c.gamma, dg, C}, {"beta", c.beta, dbeta, C}};
    gradcheck(what, bn_objective, &c, ps, 3, 1e-2, 1e-2);
    free(c.in), free(c.out), free(c.r), free(c.gamma), free(c.beta), free(c.mean), free(c.invstd);
    free(c.rm), free(c.rv), free(din), free(dg), free(dbeta);
}

/* ---- elementwise: relu, srelu, add ---- */
typedef struct {
    size_t n;
    int kind; /* 0 relu, 1 srelu, 2 add */
    float q, rho;
    float *a, *b, *out, *r;
} EltCase;

static double elt_objective(void *ctx) {
    EltCase *c = ctx;
    if (c->kind == 0) relu_forward(c->out, c->a, c->n);
    if (c->kind == 1)
        for (size_t i = 0; i < c->n; i++)
            c->out[i] = srelu_value(c->a[i], c->q, c->rho);
    if (c->kind == 2) add_forward(c->out, c->a, c->b, c->n);
    return dot(c->r, c->out, c->n);
}

static void check_elementwise(void) {
    enum { N = 60 };
    EltCase c = {N, 0, 3.0f, 0.5f, xfloats(N), xfloats(N), xfloats(N), xfloats(N)};
    float *da = xfloats(N), *db = xfloats(N);
    fill_normal(c.r, N, 1);
    /* relu: inputs kept 0.1 away from the kink */
    for (int i = 0; i < N; i++) {
        float v = rng_normal(&rng);
        c.a[i] = v >= 0 ? v + 0.1f : v - 0.1f;
    }
    relu_backward(da, c.r, c.a, N);
    Param pr[] = {{"in", c.a, da, N}};
    gradcheck("relu", elt_objective, &c, pr, 1, 1e-3, 1e-2);
    /* srelu: a third of the inputs in each region (z <= 0, 0 < z <= rho, z > rho), away from
     * the region boundaries, for q = 3, 4 and 2.5 (powf) */
    for (int qi = 0; qi < 3; qi++) {
        c.kind = 1, c.q = qi == 2 ? 2.5f : qi ? 4.0f : 3.0f, c.rho = qi ? 0.8f : 0.5f;
        for (int i = 0; i < N; i++) {
            float u = rng_uniform(&rng);
            c.a[i] = i % 3 == 0   ? -0.05f - u
                     : i % 3 == 1 ? c.rho * (0.1f + 0.8f * u)
                                  : c.rho * (1.1f + 2 * u);
        }
        memset(da, 0, N * sizeof(float));
        for (int i = 0; i < N; i++)
            da[i] += c.r[i] * srelu_derivative(c.a[i], c.q, c.rho);
        char what[64];
        snprintf(what, sizeof what, "srelu q=%g rho=%g (all three regions)", c.q, c.rho);
        gradcheck(what, elt_objective, &c, pr, 1, 1e-3, 1e-2);
    }
    /* add: both operands get dout through add_backward */
    c.kind = 2;
    fill_normal(c.a, N, 1), fill_normal(c.b, N, 1);
    memset(da, 0, N * sizeof(float));
    add_backward(da, c.r, N);
    add_backward(db, c.r, N);
    Param pa[] = {{"a", c.a, da, N}, {"b", c.b, db, N}};
    gradcheck("add (add_backward)", elt_objective, &c, pa, 2, 1e-2, 1e-2);
    free(c.a), free(c.b), free(c.out), free(c.r), free(da), free(db);
}

/* ---- pooling and shortcut ---- */
typedef enum { POOL_MAX, POOL_GLOBAL_AVG, POOL_SHORTCUT } PoolKind;

typedef struct {
    PoolKind kind;
    int B, C, H, W, KS, stride, pad, OC;
    float *in, *out, *r;
    int32_t *argmax;
    size_t nout;
} PoolCase;

static double pool_objective(void *ctx) {
    PoolCase *c = ctx;
    switch (c->kind) {
    case POOL_MAX:
        maxpool_forward(c->out, c->argmax, c->in, c->B, c->C, c->H, c->W, c->KS, c->stride, c->pad);
        break;
    case POOL_GLOBAL_AVG:
        global_avgpool_forward(c->out, c->in, c->B, c->C, c->H * c->W);
        break;
    default:
        shortcut_pad_forward(c->out, c->in, c->B, c->C, c->H, c->W, c->OC, c->stride, c->pad);
    }
    return dot(c->r, c->out, c->nout);
}

static void check_pool(PoolKind kind, int B, int C, int H, int W, int KS, int stride, int pad,
                       int OC) {
    PoolCase c = {kind, B, C, H, W, KS, stride, pad, OC, 0, 0, 0, 0, 0};
    size_t nin = (size_t)B * C * H * W;
    if (kind == POOL_MAX)
        c.nout = (size_t)B * C * conv2d_out_size(H, KS, stride, pad) *
                 conv2d_out_size(W, KS, stride, pad);
    else if (kind == POOL_GLOBAL_AVG)
        c.nout = (size_t)B * C;
    else
        c.nout = (size_t)B * OC * ((H + stride - 1) / stride) * ((W + stride - 1) / stride);
    c.in = xfloats(nin), c.out = xfloats(c.nout), c.r = xfloats(c.nout);
    c.argmax = xmalloc(c.nout * sizeof(int32_t));
    float *din = xfloats(nin);
    fill_normal(c.r, c.nout, 1);
    if (kind == POOL_MAX) {
        /* distinct values 0.01 apart in random order: no perturbation changes a window's argmax */
        int *perm = xmalloc(nin * sizeof(int));
        rng_permutation(&rng, (int)nin, perm);
        for (size_t i = 0; i < nin; i++)
            c.in[i] = 0.01f * perm[i] - 1.0f;
        free(perm);
    } else
        fill_normal(c.in, nin, 1);
    pool_objective(&c);
    const char *names[] = {"maxpool", "global_avgpool", "shortcut_pad"};
    char what[100];
    if (kind == POOL_SHORTCUT)
        snprintf(what, sizeof what, "%s B%d C%d->%d %dx%d s%d front%d", names[kind], B, C, OC, H, W,
                 stride, pad);
    else
        snprintf(what, sizeof what, "%s B%d C%d %dx%d KS%d s%d p%d", names[kind], B, C, H, W, KS,
                 stride, pad);
    switch (kind) {
    case POOL_MAX:
        maxpool_backward(din, c.r, c.argmax, B, C, H, W, KS, stride, pad);
        break;
    case POOL_GLOBAL_AVG:
        global_avgpool_backward(din, c.r, B, C, H * W);
        break;
    default:
        shortcut_pad_backward(din, c.r, B, C, H, W, OC, stride, pad);
    }
    Param ps[] = {{"in", c.in, din, nin}};
    gradcheck(what, pool_objective, &c, ps, 1, kind == POOL_MAX ? 1e-3 : 1e-2, 1e-2);
    free(c.in), free(c.out), free(c.r), free(c.argmax), free(din);
}

/* ---- mvconv ---- */
typedef struct {
    int B, P, D, K, M;
    float q, rho;
    float *in, *w, *out, *pre, *r;
    MvNoise *noise;
} MvCase;

static double mv_objective(void *ctx) {
    MvCase *c = ctx;
    mvconv_forward(c->out, c->pre, c->in, c->w, c->noise, c->B, c->P, c->D, c->K, c->M, c->q,
                   c->rho);
    return dot(c->r, c->out, (size_t)c->B * c->K);
}

static float fixed_noise(const void *ctx, int row, int64_t coord) {
    (void)ctx;
    return rng_normal_at(7, 8, (uint64_t)coord * 131 + (uint64_t)row);
}

static void check_mvconv(int with_noise) {
    MvCase c = {3, 4, 6, 3, 2, 3.0f, 0.5f, 0, 0, 0, 0, 0, NULL};
    const int KM = c.K * c.M;
    size_t nin = (size_t)c.B * c.P * c.D, nw = (size_t)KM * c.D;
    c.in = xfloats(nin), c.w = xfloats(nw), c.out = xfloats((size_t)c.B * c.K);
    c.pre = xfloats((size_t)c.B * c.P * KM), c.r = xfloats((size_t)c.B * c.K);
    /* samples 0 and 1 have trained noise coordinates (0..7 < n_noise = 10: coords 8, 9 unused);
     * sample 5's coordinates 20..23 take the fixed draw */
    int64_t ids[3] = {1, 5, 0};
    const int64_t n_noise = 10;
    float *nw_ = xfloats((size_t)KM * n_noise), *dnw = xfloats((size_t)KM * n_noise);
    MvNoise noise = {nw_, n_noise, 0.8f, ids, fixed_noise, NULL};
    if (with_noise) c.noise = &noise;
    fill_normal(c.in, nin, 1), fill_normal(c.w, nw, 0.4f),
        fill_normal(nw_, (size_t)KM * n_noise, 1);
    fill_normal(c.r, (size_t)c.B * c.K, 1);
    float *dw = xfloats(nw);
    mv_objective(&c);
    /* the pre-activations must span all three sReLU regions for the check to mean much */
    int regions[3] = {0, 0, 0};
    for (size_t i = 0; i < (size_t)c.B * c.P * KM; i++)
        regions[c.pre[i] <= 0 ? 0 : c.pre[i] <= c.rho ? 1 : 2]++;
    EXPECT(regions[0] && regions[1] && regions[2],
           "mvconv check setup: pre-activations per region %d %d %d", regions[0], regions[1],
           regions[2]);
    mvconv_backward(dw, with_noise ? dnw : NULL, c.r, c.pre, c.in, c.noise, c.B, c.P, c.D, c.K, c.M,
                    c.q, c.rho);
    Param ps[] = {{"weight", c.w, dw, nw}, {"noise_w", nw_, dnw, (size_t)KM * n_noise}};
    gradcheck(with_noise ? "mvconv with orth noise (trained + fixed coords)" : "mvconv dense",
              mv_objective, &c, ps, with_noise ? 2 : 1, 1e-3, 1e-2);
    /* untouched noise coordinates (8, 9) get exactly zero gradient */
    if (with_noise)
        for (int row = 0; row < KM; row++)
            for (int64_t coord = 8; coord < 10; coord++)
                EXPECT(dnw[row * n_noise + coord] == 0.0f,
                       "mvconv: unused noise coordinate %lld got gradient %g", (long long)coord,
                       dnw[row * n_noise + coord]);
    free(c.in), free(c.w), free(c.out), free(c.pre), free(c.r), free(nw_), free(dnw), free(dw);
}

/* ---- losses ---- */
typedef struct {
    int B, K, kd;
    float T, alpha;
    float *logits, *teacher;
    int32_t *labels;
} LossCase;

static double loss_objective(void *ctx) {
    LossCase *c = ctx;
    if (c->kd)
        return loss_distill(NULL, c->logits, c->teacher, c->labels, c->B, c->K, c->T, c->alpha,
                            1.0f, NULL);
    return loss_cross_entropy(NULL, c->logits, c->labels, c->B, c->K, 1.0f, NULL);
}

static void check_loss(int kd, float T, float alpha, int with_labels) {
    LossCase c = {5, 7, kd, T, alpha, 0, 0, 0};
    size_t n = (size_t)c.B * c.K;
    c.logits = xfloats(n), c.teacher = xfloats(n);
    int32_t labels[5] = {0, 6, 3, 3, 1};
    c.labels = with_labels ? labels : NULL;
    fill_normal(c.logits, n, 2), fill_normal(c.teacher, n, 3);
    float *g = xfloats(n), *g_half = xfloats(n);
    if (kd) {
        loss_distill(g, c.logits, c.teacher, c.labels, c.B, c.K, T, alpha, 1.0f, NULL);
        loss_distill(g_half, c.logits, c.teacher, c.labels, c.B, c.K, T, alpha, 0.5f, NULL);
    } else {
        loss_cross_entropy(g, c.logits, c.labels, c.B, c.K, 1.0f, NULL);
        loss_cross_entropy(g_half, c.logits, c.labels, c.B, c.K, 0.5f, NULL);
    }
    char what[100];
    if (kd)
        snprintf(what, sizeof what, "distill T=%g alpha=%g%s", T, alpha,
                 with_labels ? "" : " (no labels)");
    else
        snprintf(what, sizeof what, "cross-entropy");
    Param ps[] = {{"logits", c.logits, g, n}};
    gradcheck(what, loss_objective, &c, ps, 1, 1e-2, 1e-2);
    for (size_t i = 0; i < n; i++)
        if (fabsf(g_half[i] - 0.5f * g[i]) > 1e-6f * (1 + fabsf(g[i]))) {
            EXPECT(0, "%s: dlogits with scale 0.5 is %g, want %g", what, g_half[i], 0.5 * g[i]);
            break;
        }
    free(c.logits), free(c.teacher), free(g), free(g_half);
}

int main(void) {
    rng = rng_make(7, rng_stream(RNG_PURPOSE_TEST, 2, 0, 0));
    check_linear();
    for (int naive = 0; naive <= 1; naive++) {
        check_conv(2, 3, 7, 5, 4, 3, 2, 1, 1, naive); /* stride 2, padding, non-square */
        check_conv(2, 3, 6, 9, 2, 5, 1, 2, 1, naive); /* K = 5, pad 2 */
        check_conv(3, 4, 5, 6, 3, 1, 1, 0, 1, naive); /* 1x1 stride 1: the no-im2col path */
        check_conv(2, 3, 7, 7, 4, 1, 2, 0, 0, naive); /* 1x1 stride 2, no bias */
        check_conv(2, 2, 8, 6, 3, 3, 1, 0, 0, naive); /* K = 3, no padding */
    }
    check_conv(9, 2, 30, 31, 2, 3, 1, 1, 1, 0); /* several chunks of samples, and a remainder */
    check_batchnorm(4, 3, 10);
    check_batchnorm(8, 5, 1); /* BatchNorm1d */
    check_elementwise();
    check_pool(POOL_MAX, 2, 3, 6, 6, 2, 2, 0, 0);
    check_pool(POOL_MAX, 2, 2, 7, 5, 3, 2, 1, 0); /* padded, overlapping windows */
    check_pool(POOL_MAX, 2, 2, 7, 5, 2, 2, 0, 0); /* 2x2 fast path, odd sizes */
    check_pool(POOL_GLOBAL_AVG, 3, 4, 5, 3, 0, 0, 0, 0);
    check_pool(POOL_SHORTCUT, 2, 3, 7, 6, 0, 2, 2,
               8); /* option A: subsample, pad channels 2 before, 3 after */
    check_pool(POOL_SHORTCUT, 2, 4, 4, 4, 1, 1, 0, 4);
    check_mvconv(0);
    check_mvconv(1);
    check_loss(0, 1, 0, 1);
    check_loss(1, 4.0f, 0.9f, 1);
    check_loss(1, 1.0f, 0.0f, 1);
    check_loss(1, 2.0f, 1.0f, 0);
    if (failures) {
        printf("gradcheck: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("gradcheck: all %d checks passed\n", checks);
    return 0;
}
