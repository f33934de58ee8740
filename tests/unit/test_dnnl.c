/* The oneDNN kernels (src/nn/dnnl_backend.c) against the naive reference kernels of layers.h:
 * conv2d forward, and backward adding into nonzero din / dweight / dbias, on the shapes our
 * architectures use and a few odd ones, at the batch the layer was built for and at smaller
 * ones; each case runs twice and must give bitwise the same results (determinism at a fixed
 * thread count). Then whole models (cnn, resnet with both shortcuts, wrn) built on each backend
 * from the same weights: logits, parameter gradients and BatchNorm statistics after forward +
 * backward must agree. Without oneDNN in the build it says so and passes (exit 0).
 * bf16 (train.precision), where precision_check allows it: the same conv cases against the
 * naive kernels run on inputs rounded to bf16 (so only the bf16 outputs' rounding and the
 * summation order differ), deterministic too; and the models in bf16 against fp32. The same for
 * bf16 by rounding (ENSDISTILL_BF16_EMULATED=round), which runs wherever oneDNN does, and where
 * the bf16 kernels run too, the models by rounding against them: the same roundings, so far
 * closer than bf16 to fp32. */
#include "../../src/nn/bf16_inline.h"
#include "../../src/nn/bf16_round.h"
#include "../../src/nn/dnnl_backend.h"
#include "ensdistill/alloc.h"
#include "ensdistill/layers.h"
#include "ensdistill/model.h"
#include "ensdistill/precision.h"
#include "ensdistill/rng.h"

#include "check.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Rng rng;
static double worst;

static void fill_normal(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(&rng);
}

/* max |got - want| / max(1, max |want|) */
static void compare(const float *got, const float *want, size_t n, const char *what,
                    const char *tensor, double tol) {
    double e = 0.0, m = 1.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e)) e = d;
        if (fabs(want[i]) > m) m = fabs(want[i]);
    }
    e /= m;
    if (e > worst) worst = e;
    EXPECT(e <= tol, "conv %s %s: relative error %.3g > %.3g", what, tensor, e, tol);
}

static void same_bits(const float *a, const float *b, size_t n, const char *what,
                      const char *tensor) {
    EXPECT(memcmp(a, b, n * sizeof(float)) == 0,
           "conv %s %s: two identical runs differ (not deterministic)", what, tensor);
}

/* x rounded to the nearest bf16 (ties to even), as oneDNN's reorders round */
static void round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

static int bf16; /* the conv cases run in bf16 */

static void conv_case(DnnlContext *ctx, int max_batch, int B, int C, int H, int W, int OC, int KS,
                      int stride, int pad, int with_bias, int with_din) {
    const int OH = conv2d_out_size(H, KS, stride, pad), OW = conv2d_out_size(W, KS, stride, pad);
    char what[160];
    snprintf(what, sizeof what,
             "%sB=%d (built for %d) C=%d %dx%d OC=%d KS=%d s=%d p=%d bias=%d din=%d",
             bf16 ? "bf16 " : "", B, max_batch, C, H, W, OC, KS, stride, pad, with_bias, with_din);
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * OC * OH * OW,
           nw = (size_t)OC * C * KS * KS;
    float *in = xfloats(nin), *w = xfloats(nw), *bias = xfloats(OC), *dout = xfloats(nout);
    float *out[2] = {xfloats(nout), xfloats(nout)}, *out_ref = xfloats(nout);
    float *din0 = xfloats(nin), *dw0 = xfloats(nw), *db0 = xfloats(OC);
    float *din[2], *dw[2], *db[2];
    float *din_ref = xfloats(nin), *dw_ref = xfloats(nw), *db_ref = xfloats(OC);
    fill_normal(in, nin, 1.0f);
    fill_normal(w, nw, 0.3f);
    fill_normal(bias, OC, 1.0f);
    fill_normal(dout, nout, 1.0f);
    fill_normal(din0, nin, 1.0f);
    fill_normal(dw0, nw, 1.0f);
    fill_normal(db0, OC, 1.0f);
    memcpy(din_ref, din0, nin * sizeof(float));
    memcpy(dw_ref, dw0, nw * sizeof(float));
    memcpy(db_ref, db0, OC * sizeof(float));
    const DnnlAct plain = {1, 0};
    const int round = bf16 && bf16_round_enabled(); /* its layer, as the model builds it */
    DnnlConv *conv = round ? NULL
                           : dnnl_conv_create(ctx, max_batch, C, H, W, OC, KS, stride, pad,
                                              with_bias, plain, plain, bf16);
    RoundConv *rconv = round ? round_conv_create(ctx, max_batch, C, H, W, OC, KS, stride, pad,
                                                 with_bias, plain, plain)
                             : NULL;
    for (int r = 0; r < 2; r++) {
        din[r] = xfloats(nin);
        dw[r] = xfloats(nw);
        db[r] = xfloats(OC);
        memcpy(din[r], din0, nin * sizeof(float));
        memcpy(dw[r], dw0, nw * sizeof(float));
        memcpy(db[r], db0, OC * sizeof(float));
        float *bias_r = with_bias ? bias : NULL, *db_r = with_bias ? db[r] : NULL;
        if (rconv) {
            round_conv_forward(rconv, out[r], in, w, bias_r, B);
            round_conv_backward(rconv, with_din ? din[r] : NULL, dw[r], db_r, dout, in, w, B, 0);
        } else {
            dnnl_conv_forward(conv, out[r], in, w, bias_r, B);
            dnnl_conv_backward(conv, with_din ? din[r] : NULL, dw[r], db_r, dout, in, w, B, 0);
        }
    }
    if (bf16) { /* the reference sees what the bf16 kernels see */
        round_bf16(in, nin);
        round_bf16(w, nw);
        round_bf16(dout, nout);
    }
    conv2d_forward_naive(out_ref, in, w, with_bias ? bias : NULL, B, C, H, W, OC, KS, stride, pad);
    conv2d_backward_naive(with_din ? din_ref : NULL, dw_ref, with_bias ? db_ref : NULL, dout, in, w,
                          B, C, H, W, OC, KS, stride, pad);
    /* bf16 outputs (out, and din before it is added) carry bf16's 2^-9 relative rounding; the
     * weight gradients are fp32 sums of exact bf16 products */
    const double tol_out = bf16 ? 8e-3 : 1e-5, tol_grad = bf16 ? 1e-4 : 1e-5;
    compare(out[0], out_ref, nout, what, "out", tol_out);
    compare(din[0], din_ref, nin, what, "din", tol_out);
    compare(dw[0], dw_ref, nw, what, "dweight", tol_grad);
    compare(db[0], db_ref, OC, what, "dbias", tol_grad);
    same_bits(out[0], out[1], nout, what, "out");
    same_bits(din[0], din[1], nin, what, "din");
    same_bits(dw[0], dw[1], nw, what, "dweight");
    same_bits(db[0], db[1], OC, what, "dbias");
    dnnl_conv_free(conv);
    round_conv_free(rconv);
    float *all[] = {in,   w,    bias,   dout,   out[0], out[1], out_ref, din0,   dw0,   db0,
                    din[0], din[1], dw[0], dw[1], db[0], db[1], din_ref, dw_ref, db_ref};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) free(all[i]);
}

/* A model of spec s, initialized, after forward + backward of max_batch (so both plans run) and
 * then of B, of sum(r * logits): the gradients and logits of the second. */
static Model *model_stepped(const ModelSpec *s, const float *x, const float *r, int B,
                            const float **logits) {
    Model *m = model_create(s);
    model_init(m, 5, 7);
    model_forward(m, x, NULL, s->max_batch, 1);
    model_backward(m, r);
    *logits = model_forward(m, x, NULL, B, 1);
    model_backward(m, r);
    return m;
}

static ModelSpec model_spec(const char *arch, int C, int H, int W, int max_batch) {
    ModelSpec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.arch, sizeof(s.arch), "%s", arch);
    s.C = C, s.H = H, s.W = W, s.num_classes = 5, s.max_batch = max_batch, s.hidden = 16;
    return s;
}

/* A model's input x[max_batch,C,H,W] and the seed of its backward r[max_batch,classes]: N(0,1). */
static void random_inputs(const ModelSpec *s, float **x, float **r) {
    const size_t nx = (size_t)s->max_batch * s->C * s->H * s->W;
    const size_t nr = (size_t)s->max_batch * s->num_classes;
    *x = xfloats(nx);
    *r = xfloats(nr);
    fill_normal(*x, nx, 1.0f);
    fill_normal(*r, nr, 1.0f);
}

/* One architecture on both backends (fp32 BLAS, the reference, against oneDNN in fp32 or, with
 * bf16 set, in bf16): same init, same input, same batch. */
static void model_case(const char *arch, int C, int H, int W, int max_batch, int B) {
    ModelSpec s = model_spec(arch, C, H, W, max_batch);
    Model *m[2];
    const float *logits[2];
    const size_t K = (size_t)s.num_classes;
    float *x, *r;
    random_inputs(&s, &x, &r);
    for (int k = 0; k < 2; k++) {
        s.backend = k == 0 ? MODEL_BACKEND_BLAS : MODEL_BACKEND_ONEDNN;
        s.precision = k == 1 && bf16 ? PRECISION_BF16 : PRECISION_FP32;
        m[k] = model_stepped(&s, x, r, B, &logits[k]);
    }
    char what[96];
    snprintf(what, sizeof what, "%smodel %s (B=%d of %d)", bf16 ? "bf16 " : "", arch, B,
             max_batch);
    /* bf16: every conv's inputs and outputs rounded to 8 bits of mantissa, layer after layer */
    const double tol = bf16 ? 5e-2 : 1e-4;
    compare(logits[1], logits[0], (size_t)B * K, what, "logits", tol);
    if (bf16) { /* the gradients through batch norm amplify the rounding: their direction */
        double dot = 0.0, n0 = 0.0, n1 = 0.0;
        for (size_t i = 0; i < m[0]->tensors.param_floats; i++) {
            dot += (double)m[0]->grads[i] * m[1]->grads[i];
            n0 += (double)m[0]->grads[i] * m[0]->grads[i];
            n1 += (double)m[1]->grads[i] * m[1]->grads[i];
        }
        const double cosine = dot / sqrt(n0 * n1), norms = sqrt(n1 / n0);
        printf("%s: gradient cosine %.5f, norm ratio %.4f\n", what, cosine, norms);
        EXPECT(cosine > 0.98 && fabs(norms - 1.0) < 0.02,
               "%s: bf16 gradient cosine %.5f, norm ratio %.4f against fp32", what, cosine, norms);
    } else {
        compare(m[1]->grads, m[0]->grads, m[0]->tensors.param_floats, what, "grads", tol);
    }
    compare(m[1]->buffers, m[0]->buffers, m[0]->tensors.buffer_floats, what, "buffers", tol);
    for (int k = 0; k < 2; k++) model_free(m[k]);
    free(x);
    free(r);
}

/* ||a - b|| / ||b|| */
static double l2_distance(const float *a, const float *b, size_t n) {
    double d = 0.0, nb = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        nb += (double)b[i] * b[i];
    }
    return sqrt(d / nb);
}

/* bf16 by rounding against oneDNN's bf16 kernels, both against oneDNN in fp32: the same
 * roundings summed in another order, so rounding must be far closer to the kernels than fp32 is.
 * Logits, parameter gradients and batch norm statistics, by relative L2 distance; `limit` is the
 * largest share of fp32's distance allowed for logits and gradients (BN statistics: 5x it).
 * Measured on Zen 3 under bf16ref: cnn and resnets 0-0.04% of fp32's distance (BN statistics
 * 0.01%), wrn-10-2 up to 2% (BN statistics 11%); leaving out the rounding of a batch norm's
 * diff_dst puts the resnets' gradients at 4-5% and wrn-10-2's at 3.4%; of the weights, every
 * model's logits and gradients at 80-180%. */
static void round_case(const char *arch, int C, int H, int W, int max_batch, int B,
                       double limit) {
    ModelSpec s = model_spec(arch, C, H, W, max_batch);
    s.backend = MODEL_BACKEND_ONEDNN;
    const char *mode[3] = {"1", "round", NULL}; /* kernels, rounding, fp32 */
    Model *m[3];
    const float *logits[3];
    const size_t K = (size_t)s.num_classes;
    float *x, *r;
    random_inputs(&s, &x, &r);
    for (int k = 0; k < 3; k++) {
        if (mode[k]) setenv(PRECISION_EMULATED_ENV, mode[k], 1);
        s.precision = mode[k] ? PRECISION_BF16 : PRECISION_FP32;
        m[k] = model_stepped(&s, x, r, B, &logits[k]);
    }
    const TensorTable *t = &m[0]->tensors;
    const struct {
        const char *name;
        const float *v[3];
        size_t n;
    } parts[3] = {{"logits", {logits[0], logits[1], logits[2]}, (size_t)B * K},
                  {"gradients", {m[0]->grads, m[1]->grads, m[2]->grads}, t->param_floats},
                  {"BN statistics", {m[0]->buffers, m[1]->buffers, m[2]->buffers},
                   t->buffer_floats}};
    for (int i = 0; i < 3; i++) {
        if (!parts[i].n) continue;
        const double to_kernels = l2_distance(parts[i].v[1], parts[i].v[0], parts[i].n);
        const double fp32_to_kernels = l2_distance(parts[i].v[2], parts[i].v[0], parts[i].n);
        printf("bf16 by rounding, model %s %s: %.3g from the kernels (fp32: %.3g)\n", arch,
               parts[i].name, to_kernels, fp32_to_kernels);
        EXPECT(to_kernels < (i == 2 ? 5 * limit : limit) * fp32_to_kernels,
               "bf16 by rounding, model %s %s: %.3g from the bf16 kernels, not far below fp32's "
               "%.3g",
               arch, parts[i].name, to_kernels, fp32_to_kernels);
    }
    for (int k = 0; k < 3; k++) model_free(m[k]);
    free(x);
    free(r);
}

static void all_models(void) {
    model_case("cnn", 1, 28, 28, 6, 5);
    model_case("resnet-8", 3, 16, 16, 6, 4);
    model_case("resnet-8-proj", 3, 16, 16, 4, 4);
    model_case("wrn-10-2", 3, 16, 16, 5, 3);
}

/* The conv cases: the layers of cnn, resnet-20 and wrn-16-4 at a small batch, a smaller batch
 * than the layer was built for, odd shapes. Then the models. */
static void all_cases(DnnlContext *ctx) {
    worst = 0.0;
    conv_case(ctx, 4, 4, 1, 28, 28, 32, 5, 1, 2, 1, 0);  /* cnn conv1 (input: no din) */
    conv_case(ctx, 4, 4, 32, 14, 14, 64, 5, 1, 2, 1, 1); /* cnn conv2 */
    conv_case(ctx, 4, 4, 3, 32, 32, 16, 3, 1, 1, 0, 0);  /* resnet stem */
    conv_case(ctx, 4, 4, 16, 32, 32, 16, 3, 1, 1, 0, 1);
    conv_case(ctx, 4, 4, 16, 32, 32, 32, 3, 2, 1, 0, 1); /* stage change, stride 2 */
    conv_case(ctx, 4, 4, 64, 8, 8, 64, 3, 1, 1, 0, 1);
    conv_case(ctx, 4, 4, 16, 32, 32, 64, 1, 1, 0, 0, 1); /* wrn 1x1 projection */
    conv_case(ctx, 4, 4, 64, 32, 32, 128, 1, 2, 0, 0, 1);
    conv_case(ctx, 8, 3, 16, 16, 16, 32, 3, 1, 1, 1, 1);
    conv_case(ctx, 5, 5, 7, 9, 11, 13, 3, 2, 1, 1, 1);
    conv_case(ctx, 2, 1, 5, 6, 7, 3, 4, 3, 2, 1, 1);
    conv_case(ctx, 3, 2, 24, 7, 7, 20, 1, 1, 0, 1, 1);
    printf("%sconv: worst relative error %.3g\n", bf16 ? "bf16 " : "", worst);
    worst = 0.0;
    all_models();
    printf("%smodels: worst relative error %.3g\n", bf16 ? "bf16 " : "", worst);
}

int main(void) {
    if (!dnnl_backend_available()) {
        printf("this build has no oneDNN (ENSDISTILL_ONEDNN=OFF or libdnnl-dev missing): "
               "nothing to test\n");
        return 0;
    }
    rng = rng_make(11, 0);
    DnnlContext *ctx = dnnl_context_create();
    printf("oneDNN ISA: %s\n", dnnl_backend_isa());
    all_cases(ctx);
    char why[512];
    bf16 = 1;
    setenv(PRECISION_EMULATED_ENV, "1", 1); /* test bf16 where oneDNN emulates it, too */
    const int kernels = precision_check(PRECISION_BF16, "cnn", why, sizeof(why)) == 0;
    if (kernels) {
        char impl[128];
        dnnl_backend_bf16_conv(impl, sizeof(impl));
        printf("bf16 convolutions: %s\n", impl);
        all_cases(ctx);
    } else {
        printf("bf16 kernels not tested: %s\n", why);
    }
    /* bf16 by rounding runs wherever oneDNN does: the same contract against the naive kernels
     * and fp32, and, where the kernels run, against them */
    setenv(PRECISION_EMULATED_ENV, "round", 1);
    printf("bf16 by rounding (%s=round):\n", PRECISION_EMULATED_ENV);
    all_cases(ctx);
    if (kernels) {
        round_case("cnn", 1, 28, 28, 6, 5, 0.01);
        round_case("resnet-8", 3, 16, 16, 6, 4, 0.01);
        round_case("resnet-8-proj", 3, 16, 16, 4, 4, 0.01);
        round_case("wrn-10-2", 3, 16, 16, 5, 3, 0.05); /* more ties land apart: see above */
    }
    dnnl_context_free(ctx);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all oneDNN kernels match the naive ones\n");
    return 0;
}
