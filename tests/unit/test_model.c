/* The model engine end to end: finite logits, a full-model directional-derivative check
 * (central differences along a random direction of the trainable parameters, kann style) for
 * every architecture in tiny form, batches smaller than max_batch after larger ones, the
 * consistency of mvconv's trained and untrained noise weights, sum_of and random_features
 * wiring, BatchNorm bookkeeping, and the init distributions and determinism. */
#include "ensdistill/model.h"
#include "ensdistill/rng.h"

#include "check.h"
#include "tiny_models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void fill_normal(float *x, size_t n, uint64_t stream, float scale) {
    Rng r = rng_make(1234, stream);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r) * scale;
}

static size_t input_size(const Model *m) {
    return (size_t)m->spec.C * m->spec.H * m->spec.W;
}

/* f = sum(r * logits) */
static double objective(Model *m, const float *x, const int64_t *ids, int B, const float *r,
                        int training) {
    const float *lg = model_forward(m, x, ids, B, training);
    double f = 0.0;
    for (int i = 0; i < B * m->spec.num_classes; i++) f += (double)r[i] * lg[i];
    return f;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Central difference of f along a random unit direction d of the trainable parameters against
 * the analytic grads . d. training: BN uses batch statistics in every forward. */
static void check_directional(const ModelSpec *s, int B, int training, double h, double tol) {
    Model *m = model_create(s);
    model_init(m, 7, rng_stream(RNG_PURPOSE_INIT, 0, 0, 0));
    size_t nin = (size_t)B * input_size(m), K = (size_t)s->num_classes;
    float *x = malloc(nin * sizeof(float)), *r = malloc(B * K * sizeof(float));
    int64_t ids[64];
    for (int b = 0; b < B; b++) ids[b] = 3 * b + 1;
    fill_normal(x, nin, 1, 1.0f);
    fill_normal(r, B * K, 2, 1.0f);
    size_t lo = m->trainable_begin, n = m->trainable_end - lo;
    float *p0 = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float));
    memcpy(p0, m->params + lo, n * sizeof(float));

    const float *lg = model_forward(m, x, ids, B, training);
    int finite = all_finite(lg, B * K);
    model_backward(m, r);
    /* d = unit(unit(grads) + unit(random)): half along the computed gradient, so the analytic
     * derivative is large (no cancellation drowned by float32 noise), half random. A wrong
     * gradient g' still fails: the true derivative along g' is not |g'|. */
    fill_normal(d, n, 3, 1.0f);
    double nd = 0.0, ng = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        nd += (double)d[i] * d[i];
        ng += (double)m->grads[lo + i] * m->grads[lo + i];
    }
    for (size_t i = 0; i < n; i++) {
        d[i] = (float)(d[i] / sqrt(nd) + (ng > 0.0 ? m->grads[lo + i] / sqrt(ng) : 0.0));
        norm += (double)d[i] * d[i];
    }
    for (size_t i = 0; i < n; i++) d[i] = (float)(d[i] / sqrt(norm));
    double analytic = 0.0;
    for (size_t i = 0; i < n; i++) analytic += (double)m->grads[lo + i] * d[i];
    finite = finite && all_finite(m->grads, m->tensors.param_floats);
    /* frozen parameters get no gradient */
    double frozen = 0.0;
    for (size_t i = 0; i < lo; i++) frozen += fabs(m->grads[i]);

    for (size_t i = 0; i < n; i++) m->params[lo + i] = (float)(p0[i] + h * d[i]);
    double fp = objective(m, x, ids, B, r, training);
    for (size_t i = 0; i < n; i++) m->params[lo + i] = (float)(p0[i] - h * d[i]);
    double fm = objective(m, x, ids, B, r, training);
    memcpy(m->params + lo, p0, n * sizeof(float));
    double numeric = (fp - fm) / (2.0 * h);
    double rel = fabs(numeric - analytic) / fmax(fmax(fabs(numeric), fabs(analytic)), 1e-6);
    int ok = finite && rel < tol && frozen == 0.0 && fabs(analytic) > 1e-6;

    /* Then tensor by tensor, along that tensor's own gradient (random where it is zero): a
     * tensor whose gradient is missing or scaled shows here even when the whole-model check,
     * dominated by the largest gradients, does not. */
    float *g = malloc(m->tensors.param_floats * sizeof(float));
    memcpy(g, m->grads, m->tensors.param_floats * sizeof(float));
    double worst = 0.0;
    const char *worst_name = "";
    for (int t = 0; t < m->tensors.count; t++) {
        const TensorInfo *ti = &m->tensors.items[t];
        if (ti->kind != TENSOR_PARAM || !ti->trainable) continue;
        size_t off = ti->offset - lo, nt = ti->numel;
        double gn = 0.0;
        for (size_t i = 0; i < nt; i++) gn += (double)g[ti->offset + i] * g[ti->offset + i];
        fill_normal(d + off, nt, 100 + t, 1.0f);
        double dn = 0.0;
        for (size_t i = 0; i < nt; i++) {
            if (gn > 0.0) d[off + i] = (float)(g[ti->offset + i] / sqrt(gn));
            dn += (double)d[off + i] * d[off + i];
        }
        double an = 0.0;
        for (size_t i = 0; i < nt; i++) {
            d[off + i] = (float)(d[off + i] / sqrt(dn));
            an += (double)g[ti->offset + i] * d[off + i];
        }
        float *pt = m->params + ti->offset;
        for (size_t i = 0; i < nt; i++) pt[i] = (float)(p0[off + i] + h * d[off + i]);
        double tp = objective(m, x, ids, B, r, training);
        for (size_t i = 0; i < nt; i++) pt[i] = (float)(p0[off + i] - h * d[off + i]);
        double tm = objective(m, x, ids, B, r, training);
        memcpy(pt, p0 + off, nt * sizeof(float));
        double num = (tp - tm) / (2.0 * h);
        double e = fabs(num - an) / fmax(fmax(fabs(num), fabs(an)), 1e-4);
        if (e > worst) {
            worst = e;
            worst_name = ti->name;
        }
    }
    free(g);
    ok = ok && worst < tol;
    printf("%-14s sum_of=%d rf=%d B=%d %s: directional derivative numeric %.7g analytic %.7g "
           "rel err %.2e; per tensor worst %.2e (%s) (tol %.0e) %s\n",
           s->arch, s->sum_of, s->random_features, B, training ? "train" : "eval ", numeric,
           analytic, rel, worst, worst_name, tol, ok ? "ok" : "FAIL");
    EXPECT(ok, "%s: directional derivative check", s->arch);
    if (!ok) {
        if (!finite) printf("  non-finite logits or gradients\n");
        if (frozen != 0.0) printf("  frozen parameters got gradient %g\n", frozen);
    }
    free(x);
    free(r);
    free(p0);
    free(d);
    model_free(m);
}

/* A batch of 3 after a batch of max_batch = 5: logits equal the first rows of the big batch
 * (eval mode), and the gradient equals the big batch's with zero dlogits on the extra rows
 * (stale activations or gradients beyond B would show). */
static void check_batch_sizes(const ModelSpec *s0) {
    ModelSpec s = *s0;
    s.max_batch = 5;
    Model *m = model_create(&s);
    model_init(m, 11, 0);
    size_t in = input_size(m), K = (size_t)s.num_classes, P = m->tensors.param_floats;
    float *x = malloc(5 * in * sizeof(float)), *r = calloc(5 * K, sizeof(float));
    float *logits5 = malloc(5 * K * sizeof(float)), *g5 = malloc(P * sizeof(float));
    fill_normal(x, 5 * in, 4, 1.0f);
    fill_normal(r, 3 * K, 5, 1.0f); /* rows 3, 4 stay zero */
    int64_t ids[5] = {0, 1, 2, 3, 4};

    int training = strncmp(s.arch, "resnet", 6) != 0 && strncmp(s.arch, "wrn", 3) != 0;
    memcpy(logits5, model_forward(m, x, ids, 5, 0), 5 * K * sizeof(float));
    const float *l3 = model_forward(m, x, ids, 3, 0);
    double worst = 0.0;
    for (size_t i = 0; i < 3 * K; i++)
        worst = fmax(worst, fabs(l3[i] - logits5[i]) / fmax(1e-3, fabs(logits5[i])));
    EXPECT(worst < 1e-5, "%s: logits of a batch of 3 differ from a batch of 5 by %.2e", s.arch,
           worst);
    if (training) { /* no BatchNorm: per-sample gradients add up */
        model_forward(m, x, ids, 5, 1);
        model_backward(m, r);
        memcpy(g5, m->grads, P * sizeof(float));
        /* dirty the arenas with a different full batch first */
        fill_normal(x + 3 * in, 2 * in, 6, 3.0f);
        model_forward(m, x, ids, 5, 1);
        model_backward(m, r);
        model_forward(m, x, ids, 3, 1);
        model_backward(m, r);
        double gworst = 0.0, gscale = 0.0;
        for (size_t i = 0; i < P; i++) gscale = fmax(gscale, fabs(g5[i]));
        for (size_t i = 0; i < P; i++) gworst = fmax(gworst, fabs(m->grads[i] - g5[i]));
        EXPECT(gworst <= 1e-5 * gscale,
               "%s: gradient of a batch of 3 differs from the padded batch of 5 by %.2e (scale "
               "%.2e)",
               s.arch, gworst, gscale);
    }
    printf("%-14s batches 5 then 3: logits max rel diff %.1e%s\n", s.arch, worst,
           training ? ", gradients compared" : "");
    free(x);
    free(r);
    free(logits5);
    free(g5);
    model_free(m);
}

/* mvconv: a sample whose noise coordinates are trained in model A (n_noise = 60) and
 * untrained in model B (n_noise = 30) gets the same logits: the trained weights start from the
 * very draws the untrained ones use. */
static void check_mvconv_noise_consistency(void) {
    ModelSpec s = tiny_spec("mvconv", 6, 1, 8, 4, 4);
    s.mv_noise_sigma = 0.7f;
    s.mv_noise_coords = 60;
    Model *a = model_create(&s);
    s.mv_noise_coords = 30;
    Model *b = model_create(&s);
    model_init(a, 5, 9);
    model_init(b, 5, 9);
    float x[4 * 6 * 8];
    fill_normal(x, sizeof(x) / sizeof(x[0]), 8, 0.2f);
    int64_t ids[4] = {6, 7, 8, 9}; /* coords 36..59: trained in a, untrained in b */
    const float *la = model_forward(a, x, ids, 4, 1);
    float keep[16];
    memcpy(keep, la, sizeof(keep));
    const float *lb = model_forward(b, x, ids, 4, 1);
    double worst = 0.0;
    for (int i = 0; i < 16; i++) worst = fmax(worst, fabs(keep[i] - lb[i]));
    int64_t ids0[4] = {0, 0, 0, 0};
    const float *l0 = model_forward(b, x, ids0, 4, 1);
    double moved = 0.0; /* and the noise does change the output */
    for (int i = 0; i < 16; i++) moved = fmax(moved, fabs(keep[i] - l0[i]));
    printf("mvconv noise: trained vs untrained coordinates max diff %.2e, vs other ids %.2e\n",
           worst, moved);
    EXPECT(worst < 1e-6 && moved > 1e-4,
           "mvconv noise weights: trained/untrained init differ by %g (or noise has no effect: "
           "%g)",
           worst, moved);
    model_free(a);
    model_free(b);
}

static double tensor_std(const Model *m, const char *name, double *mean_out, double *maxabs) {
    int i = tensor_table_find(&m->tensors, name);
    if (i < 0) {
        EXPECT(0, "missing tensor %s", name);
        return 0.0;
    }
    const TensorInfo *t = &m->tensors.items[i];
    const float *p = m->params + t->offset;
    double s = 0.0, s2 = 0.0, mx = 0.0;
    for (size_t j = 0; j < t->numel; j++) {
        s += p[j];
        s2 += (double)p[j] * p[j];
        mx = fmax(mx, fabs(p[j]));
    }
    *mean_out = s / t->numel;
    if (maxabs) *maxabs = mx;
    return sqrt(s2 / t->numel - *mean_out * *mean_out);
}

static void expect_std(const Model *m, const char *name, double want_std, double tol) {
    double mean, mx;
    double sd = tensor_std(m, name, &mean, &mx);
    int ok = fabs(sd / want_std - 1.0) < tol && fabs(mean) < 4.0 * want_std / 30.0;
    printf("init %-16s %-28s std %.5f (want %.5f) mean %+.5f %s\n", m->spec.arch, name, sd,
           want_std, mean, ok ? "ok" : "FAIL");
    EXPECT(ok, "%s %s: init std or mean", m->spec.arch, name);
}

static void expect_uniform(const Model *m, const char *name, double bound) {
    double mean, mx;
    double sd = tensor_std(m, name, &mean, &mx);
    int i = tensor_table_find(&m->tensors, name);
    size_t n = i >= 0 ? m->tensors.items[i].numel : 1;
    /* the std of n uniforms is within ~5/sqrt(n) of bound/sqrt(3) (relative), the max close
     * to the bound for large n */
    int ok = mx <= bound && mx > (n > 1000 ? 0.99 : 0.3) * bound &&
             fabs(sd / (bound / sqrt(3.0)) - 1.0) < fmax(0.02, 5.0 / sqrt((double)n));
    printf("init %-16s %-28s U(+-%.5f): max |w| %.5f std %.5f %s\n", m->spec.arch, name, bound,
           mx, sd, ok ? "ok" : "FAIL");
    EXPECT(ok, "%s %s: uniform init", m->spec.arch, name);
}

static void check_init(void) {
    ModelSpec s = tiny_spec("resnet-20", 3, 32, 32, 10, 1);
    Model *m = model_create(&s);
    model_init(m, 1, 2);
    expect_std(m, "layer3.1.conv1.weight", sqrt(2.0 / (64 * 9)), 0.03); /* fan_in (akamaster) */
    expect_std(m, "layer2.0.conv1.weight", sqrt(2.0 / (16 * 9)), 0.05);
    expect_std(m, "linear.weight", sqrt(2.0 / 64), 0.15);
    expect_uniform(m, "linear.bias", 1.0 / 8.0);
    /* BN */
    int g = tensor_table_find(&m->tensors, "layer1.0.bn1.weight");
    int v = tensor_table_find(&m->tensors, "layer1.0.bn1.running_var");
    EXPECT(m->params[m->tensors.items[g].offset] == 1.0f &&
               m->buffers[m->tensors.items[v].offset] == 1.0f,
           "BN gamma / running_var are not 1 after init");
    /* determinism: same seed same weights, other seed other weights */
    float *copy = malloc(m->tensors.param_floats * sizeof(float));
    memcpy(copy, m->params, m->tensors.param_floats * sizeof(float));
    model_init(m, 1, 2);
    EXPECT(memcmp(copy, m->params, m->tensors.param_floats * sizeof(float)) == 0,
           "model_init is not deterministic");
    model_init(m, 1, 3);
    EXPECT(memcmp(copy, m->params, 64) != 0, "another stream gave the same weights");
    /* sum_of: copy 0 equals the single net, copy 1 differs */
    ModelSpec s2 = s;
    s2.sum_of = 2;
    Model *m2 = model_create(&s2);
    model_init(m2, 1, 2);
    size_t n1 = m->tensors.param_floats;
    EXPECT(memcmp(copy, m2->params, n1 * sizeof(float)) == 0,
           "sum_of copy 0 does not equal the single net with the same seed");
    EXPECT(memcmp(m2->params, m2->params + n1, 64 * sizeof(float)) != 0,
           "sum_of copies 0 and 1 start from the same weights");
    free(copy);
    model_free(m2);
    model_free(m);

    s = tiny_spec("wrn-16-4", 3, 32, 32, 10, 1);
    m = model_create(&s);
    model_init(m, 1, 2);
    expect_std(m, "block3.layer.1.conv1.weight", sqrt(2.0 / (256 * 9)), 0.02); /* fan_out */
    expect_std(m, "block1.layer.0.convShortcut.weight", sqrt(2.0 / 64), 0.1);
    expect_uniform(m, "fc.weight", 1.0 / 16.0);
    double mean, mx;
    tensor_std(m, "fc.bias", &mean, &mx);
    EXPECT(mx == 0.0, "wrn fc.bias is not zero");
    model_free(m);

    s = tiny_spec("cnn", 1, 28, 28, 10, 1);
    s.hidden = 128;
    m = model_create(&s);
    model_init(m, 1, 2);
    expect_uniform(m, "conv2.weight", 1.0 / sqrt(32 * 25));
    expect_uniform(m, "fc1.weight", 1.0 / sqrt(3136));
    expect_uniform(m, "conv1.bias", 1.0 / 5.0);
    model_free(m);

    s = tiny_spec("mvconv", 9, 1, 400, 10, 1);
    s.mv_filters = 20;
    s.init_std = 0.05f;
    m = model_create(&s);
    model_init(m, 1, 2);
    expect_std(m, "weight", 0.05, 0.03);
    model_free(m);
}

/* num_batches_tracked counts training forwards; eval forwards leave the statistics alone. */
static void check_bn_bookkeeping(void) {
    ModelSpec s = tiny_spec("resnet-8", 3, 8, 8, 4, 4);
    Model *m = model_create(&s);
    model_init(m, 3, 0);
    float x[4 * 3 * 8 * 8];
    fill_normal(x, sizeof(x) / sizeof(x[0]), 12, 1.0f);
    for (int i = 0; i < 3; i++) model_forward(m, x, NULL, 4, 1);
    int nbt = tensor_table_find(&m->tensors, "layer3.0.bn2.num_batches_tracked");
    int rm = tensor_table_find(&m->tensors, "bn1.running_mean");
    float count = m->buffers[m->tensors.items[nbt].offset];
    float mean0 = m->buffers[m->tensors.items[rm].offset];
    model_forward(m, x, NULL, 4, 0);
    EXPECT(count == 3.0f && m->buffers[m->tensors.items[nbt].offset] == 3.0f,
           "num_batches_tracked is %g after 3 training forwards and one eval", count);
    EXPECT(mean0 != 0.0f && m->buffers[m->tensors.items[rm].offset] == mean0,
           "running mean did not move in training or moved in eval (%g)", mean0);
    printf("batchnorm bookkeeping: num_batches_tracked %g, running_mean[0] %g\n", count, mean0);
    model_free(m);
}

int main(void) {
    /* Full-model directional derivatives (float32 forward). ReLU, max-pool and BatchNorm put
     * kinks and float32 noise into the finite difference: about 1% here, against errors of
     * order one from a miswired graph; smooth nets are held to 1e-3. (tests/unit/
     * test_reference.c compares resnet-8 to PyTorch to float32 rounding.) */
    ModelSpec s;
    s = tiny_spec("cnn", 1, 8, 8, 5, 4);
    check_directional(&s, 4, 1, 1e-3, 3e-2);
    s = tiny_spec("mlp", 2, 3, 3, 5, 4);
    check_directional(&s, 4, 1, 1e-3, 1e-3);
    s = tiny_spec("resnet-8", 3, 8, 8, 4, 6);
    check_directional(&s, 6, 1, 1e-3, 3e-2);
    s = tiny_spec("resnet-8-proj", 3, 8, 8, 4, 6);
    check_directional(&s, 6, 1, 1e-3, 3e-2);
    s = tiny_spec("wrn-10-2", 3, 8, 8, 4, 6);
    check_directional(&s, 6, 1, 1e-3, 3e-2);
    s = tiny_spec("cnn", 1, 8, 8, 5, 4);
    s.sum_of = 2;
    check_directional(&s, 4, 1, 1e-3, 3e-2);
    s = tiny_spec("cnn", 1, 8, 8, 5, 4); /* eval mode: the same net without BN */
    check_directional(&s, 4, 0, 1e-3, 3e-2);
    s = tiny_spec("resnet-8", 3, 8, 8, 4, 6);
    s.random_features = 1;
    check_directional(&s, 6, 1, 1e-3, 1e-3);
    s = tiny_spec("mvconv", 5, 1, 7, 3, 4);
    check_directional(&s, 4, 1, 1e-3, 1e-3);
    s.mv_noise_coords = 12; /* ids 1, 4: trained; 7, 10: untrained coordinates */
    s.mv_noise_sigma = 0.8f;
    check_directional(&s, 4, 1, 1e-3, 1e-3);
    s.sum_of = 2;
    check_directional(&s, 4, 1, 1e-3, 1e-3);

    /* Smaller batches after bigger ones; B = max_batch. */
    s = tiny_spec("cnn", 1, 8, 8, 5, 5);
    check_batch_sizes(&s);
    s = tiny_spec("mlp", 1, 6, 6, 5, 5);
    s.sum_of = 2;
    check_batch_sizes(&s);
    s = tiny_spec("resnet-8", 3, 8, 8, 4, 5);
    check_batch_sizes(&s);

    check_mvconv_noise_consistency();
    check_bn_bookkeeping();
    check_init();

    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all model checks passed\n");
    return 0;
}
