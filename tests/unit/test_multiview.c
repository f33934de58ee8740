/* The multi-view generator and the two-class toy: orthonormal views; every patch decoded by
 * projecting on the views, so the fraction mu of single-view samples, the off-class frequency,
 * the class balance and every weight range are checked (statistics within 4 sigma); tags;
 * determinism (same seed same bytes, other seed other bytes, a smaller N is a prefix); dense
 * Gaussian noise of variance sigma^2/d; feature noise; toy2's 80/10/10 split; bad parameters. */
#include "ensdistill/dataset.h"

#include "ensdistill/error.h"
#include "expect_fail.h"
#include <stdarg.h>

#include <math.h>

#include "check.h"

/* |observed - expected| within 4 standard deviations of a binomial(n, p) proportion. */
static void expect_fraction(const char *what, long hits, long n, double p) {
    double f = (double)hits / n, sd = sqrt(p * (1 - p) / n);
    int ok = fabs(f - p) <= 4 * sd + 1e-12;
    printf("%s %s: %.4f (expected %.4f +- %.4f, n = %ld)\n", ok ? "ok  " : "FAIL", what, f, p,
           4 * sd, n);
    EXPECT(ok, "%s: fraction %.4f outside %.4f +- %.4f", what, f, p, 4 * sd);
    reported = failures;
}

/* The regime of issue 6, point 5, with more samples for the statistics. */
static DataConfig regime(void) {
    DataConfig c;
    memset(&c, 0, sizeof(c));
    c.source = SOURCE_MULTIVIEW;
    MultiviewConfig *m = &c.multiview;
    m->k = 10, m->d = 32, m->patches = 12, m->patches_per_view = 1;
    m->n_train = 6000, m->n_test = 1000;
    m->mu = 0.05, m->view_lo = 1.0, m->view_hi = 1.3, m->weak_scale = 0.05;
    m->off_prob = 0.3, m->off_mv_lo = 0.4, m->off_mv_hi = 0.6, m->off_sv_lo = 0.05,
    m->off_sv_hi = 0.15;
    m->feature_noise = 0.0;
    m->noise = NOISE_ORTH;
    m->sigma = 1.3;
    m->seed = 7;
    c.normalize = 1; /* must be ignored for multi-view data */
    return c;
}

static void test_views(const Dataset *ds) {
    int K = ds->K, D = ds->D;
    double worst_dot = 0, worst_norm = 0;
    for (int a = 0; a < 2 * K; a++)
        for (int b = 0; b <= a; b++) {
            double dot = 0;
            for (int j = 0; j < D; j++)
                dot += (double)ds->views[a * D + j] * ds->views[b * D + j];
            if (a == b)
                worst_norm = fmax(worst_norm, fabs(dot - 1));
            else
                worst_dot = fmax(worst_dot, fabs(dot));
        }
    EXPECT(worst_dot < 1e-5 && worst_norm < 1e-5, "views: max |<va,vb>| %g, max |norm^2-1| %g",
           worst_dot, worst_norm);
    report("views orthonormal: max |<va,vb>| = %.2e, max |norm^2 - 1| = %.2e\n", worst_dot,
           worst_norm);
}

/* Coefficients of patch x[D] on the 2K views; returns the number of non-zero ones and the
 * (last) one found in *which / *w. */
static int decode(const float *x, const Dataset *ds, int *which, double *w) {
    int n = 0;
    for (int a = 0; a < 2 * ds->K; a++) {
        double c = 0;
        for (int j = 0; j < ds->D; j++)
            c += (double)x[j] * ds->views[a * ds->D + j];
        if (fabs(c) > 1e-4) {
            n++;
            *which = a;
            *w = c;
        }
    }
    return n;
}

static int in_range(double w, double lo, double hi) {
    return w >= lo - 1e-5 && w <= hi + 1e-5;
}

static void test_regime(void) {
    DataConfig cfg = regime();
    const MultiviewConfig *m = &cfg.multiview;
    DataSplit s;
    data_load(&s, &cfg);
    const Dataset *tr = &s.train;
    EXPECT(tr->N == 6000 && s.test.N == 1000 && tr->C == 12 && tr->H == 1 && tr->W == 32 &&
               tr->D == 32 && tr->K == 10,
           "shape N %d C %d H %d W %d D %d K %d", tr->N, tr->C, tr->H, tr->W, tr->D, tr->K);
    EXPECT(tr->f32 && !tr->u8 && tr->tags && tr->views && s.test.tags && s.test.views,
           "storage: f32, tags and views on both sets");
    EXPECT(tr->orth_noise == 1 && fabsf(tr->noise_sigma - 1.3f) < 1e-6 && s.test.orth_noise == 1,
           "orth noise flag %d sigma %g", tr->orth_noise, tr->noise_sigma);
    EXPECT(!tr->normalize && !s.test.normalize, "multi-view data must not be normalised");
    EXPECT(s.test.id_base == 6000, "test id_base %lld", (long long)s.test.id_base);
    test_views(tr);

    long single = 0, off_hits = 0, off_trials = 0, class_count[10] = {0}, bad = 0;
    long strong_first = 0;
    for (int i = 0; i < tr->N; i++) {
        int y = tr->labels[i], mv = tr->tags[i];
        EXPECT(y >= 0 && y < 10 && (mv == 0 || mv == 1), "sample %d label %d tag %d", i, y, mv);
        class_count[y]++;
        single += !mv;
        int own[2] = {0, 0}, off = 0;
        double own_w[2] = {0, 0};
        for (int p = 0; p < m->patches; p++) {
            int a = -1;
            double w = 0;
            int n = decode(tr->f32 + ((size_t)i * m->patches + p) * m->d, tr, &a, &w);
            if (n == 0) continue;
            if (n > 1) {
                bad++;
                continue;
            }
            if (a / 2 == y) {
                own[a % 2]++;
                own_w[a % 2] = w;
            } else {
                off++;
                double lo = mv ? m->off_mv_lo : m->off_sv_lo, hi = mv ? m->off_mv_hi : m->off_sv_hi;
                if (!in_range(w, lo, hi)) bad++;
            }
        }
        if (own[0] != 1 || own[1] != 1) bad++;
        if (mv) {
            if (!in_range(own_w[0], 1.0, 1.3) || !in_range(own_w[1], 1.0, 1.3)) bad++;
        } else {
            int strong = own_w[0] > own_w[1] ? 0 : 1;
            strong_first += strong == 0;
            if (!in_range(own_w[strong], 1.0, 1.3) || !in_range(own_w[1 - strong], 0.05, 0.065))
                bad++;
        }
        off_hits += off;
        off_trials += m->k - 1;
    }
    EXPECT(bad == 0, "%ld patches or samples break the construction (views, weights)", bad);
    report("every patch decodes to at most one view with its weight in range\n");
    expect_fraction("single-view fraction (mu)", single, tr->N, m->mu);
    expect_fraction("off-class view frequency (off_prob)", off_hits, off_trials, m->off_prob);
    expect_fraction("class 3 frequency (1/k)", class_count[3], tr->N, 0.1);
    expect_fraction("single-view samples showing view 1 strong", strong_first, single, 0.5);
    long test_single = 0;
    for (int i = 0; i < s.test.N; i++)
        test_single += !s.test.tags[i];
    expect_fraction("test single-view fraction", test_single, s.test.N, m->mu);
    /* train and test come from different streams */
    EXPECT(memcmp(tr->f32, s.test.f32, 1000 * sizeof(float) * 12 * 32) != 0,
           "test samples repeat the training samples");
    datasplit_free(&s);
}

/* a's first b->N samples equal b's (b may be smaller: a prefix). */
static int same_split(const DataSplit *a, const DataSplit *b) {
    size_t ntr = (size_t)b->train.N * dataset_sample_floats(&b->train),
           nte = (size_t)b->test.N * dataset_sample_floats(&b->test),
           nv = (size_t)b->train.K * 2 * b->train.D;
    return memcmp(a->train.f32, b->train.f32, ntr * 4) == 0 &&
           memcmp(a->test.f32, b->test.f32, nte * 4) == 0 &&
           memcmp(a->train.labels, b->train.labels, (size_t)b->train.N * 4) == 0 &&
           memcmp(a->test.labels, b->test.labels, (size_t)b->test.N * 4) == 0 &&
           memcmp(a->train.tags, b->train.tags, (size_t)b->train.N) == 0 &&
           memcmp(a->test.tags, b->test.tags, (size_t)b->test.N) == 0 &&
           memcmp(a->train.views, b->train.views, nv * 4) == 0;
}

static void test_determinism(void) {
    DataConfig cfg = regime();
    cfg.multiview.n_train = 300;
    cfg.multiview.n_test = 100;
    cfg.multiview.noise = NOISE_GAUSS;
    cfg.multiview.feature_noise = 0.2;
    DataSplit a, b, c, d;
    data_load(&a, &cfg);
    data_load(&b, &cfg);
    EXPECT(same_split(&a, &b), "same seed: different bytes");
    cfg.multiview.seed = 8;
    data_load(&c, &cfg);
    EXPECT(memcmp(a.train.f32, c.train.f32, 300 * 12 * 32 * 4) != 0 &&
               memcmp(a.train.views, c.train.views, 20 * 32 * 4) != 0,
           "another seed gives the same data");
    cfg.multiview.seed = 7;
    cfg.multiview.n_train = 120;
    cfg.multiview.n_test = 40;
    data_load(&d, &cfg);
    EXPECT(same_split(&a, &d), "a smaller data set is not a prefix of the larger one");
    cfg.multiview.n_train = 300;
    cfg.multiview.n_test = 100;
    cfg.train_limit = 50;
    datasplit_free(&d);
    data_load(&d, &cfg);
    EXPECT(d.train.N == 50 && d.test.id_base == 50 && same_split(&a, &d), "train_limit");
    report("determinism: same seed same bytes, other seed other bytes, prefixes, limits\n");
    datasplit_free(&a);
    datasplit_free(&b);
    datasplit_free(&c);
    datasplit_free(&d);
}

/* Dense Gaussian noise: the difference to the noiseless data (same draws before the noise) has
 * mean 0 and variance sigma^2 / d per coordinate. Feature noise: each patch gains g * v_a with
 * g in [0, gamma]. */
static void test_noise(void) {
    DataConfig cfg = regime();
    MultiviewConfig *m = &cfg.multiview;
    m->n_train = 500;
    m->n_test = 10;
    DataSplit clean, noisy, feat;
    data_load(&clean, &cfg);
    m->noise = NOISE_GAUSS;
    m->sigma = 2.0;
    data_load(&noisy, &cfg);
    EXPECT(!noisy.train.orth_noise && noisy.train.noise_sigma == 0.0f, "gauss: no orth flag");
    size_t n = (size_t)500 * 12 * 32;
    double sum = 0, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)noisy.train.f32[i] - clean.train.f32[i];
        sum += e;
        ss += e * e;
    }
    double var = ss / n, want = 2.0 * 2.0 / 32, mean = sum / n;
    /* variance of the sample variance of normals: 2 var^2 / n */
    int ok = fabs(var - want) < 4 * sqrt(2.0 / n) * want && fabs(mean) < 4 * sqrt(want / n);
    EXPECT(ok, "gauss noise statistics");
    report("gauss noise: mean %.5f, variance %.5f (expected sigma^2/d = %.5f)\n", mean, var, want);

    m->noise = NOISE_ORTH;
    m->feature_noise = 0.3;
    data_load(&feat, &cfg);
    long bad = 0, present = 0;
    double gsum = 0;
    float diff[32];
    for (size_t p = 0; p < (size_t)500 * 12; p++) {
        for (int j = 0; j < 32; j++)
            diff[j] = feat.train.f32[p * 32 + j] - clean.train.f32[p * 32 + j];
        int a = -1;
        double w = 0;
        int k = decode(diff, &feat.train, &a, &w);
        if (k > 1 || (k == 1 && !in_range(w, 0.0, 0.3))) bad++;
        present += k;
        gsum += k ? w : 0;
    }
    /* E[g] = gamma / 2 (a draw below 1e-4 decodes as absent: negligible) */
    double gmean = gsum / (500 * 12);
    EXPECT(bad == 0 && present > 500 * 12 * 0.99 && fabs(gmean - 0.15) < 0.01,
           "feature noise: %ld bad patches, %ld present, mean weight %g", bad, present, gmean);
    report("feature noise: one view per patch, weight in [0, gamma], mean %.4f\n", gmean);
    datasplit_free(&clean);
    datasplit_free(&noisy);
    datasplit_free(&feat);
}

static void test_toy2(void) {
    DataConfig cfg = regime();
    cfg.source = SOURCE_TOY2;
    MultiviewConfig *m = &cfg.multiview;
    m->k = 10; /* ignored: toy2 has two classes */
    m->d = 8, m->patches = 4, m->n_train = 5000, m->n_test = 200;
    DataSplit s;
    data_load(&s, &cfg);
    const Dataset *tr = &s.train;
    EXPECT(tr->K == 2 && tr->C == 4 && tr->D == 8, "toy2 shape K %d C %d D %d", tr->K, tr->C,
           tr->D);
    long both = 0, only1 = 0, only2 = 0, class1 = 0, bad = 0;
    for (int i = 0; i < tr->N; i++) {
        int y = tr->labels[i], own[2] = {0, 0}, off = 0;
        class1 += y == 1;
        for (int p = 0; p < 4; p++) {
            int a = -1;
            double w = 0;
            int n = decode(tr->f32 + ((size_t)i * 4 + p) * 8, tr, &a, &w);
            if (n == 0) continue;
            if (n > 1)
                bad++;
            else if (a / 2 == y)
                own[a % 2]++, bad += !in_range(w, 1.0, 1.3);
            else
                off++, bad += fabs(w - 0.1) > 1e-5;
        }
        if (off != 1) bad++;
        if (own[0] && own[1])
            both++, bad += tr->tags[i] != 1;
        else if (own[0])
            only1++, bad += tr->tags[i] != 0;
        else if (own[1])
            only2++, bad += tr->tags[i] != 0;
        else
            bad++;
    }
    EXPECT(bad == 0, "toy2: %ld samples break the construction", bad);
    expect_fraction("toy2 both views", both, tr->N, 0.8);
    expect_fraction("toy2 only v1", only1, tr->N, 0.1);
    expect_fraction("toy2 only v2", only2, tr->N, 0.1);
    expect_fraction("toy2 class 1", class1, tr->N, 0.5);
    datasplit_free(&s);
}

static void load_cfg(void *p) {
    DataSplit s;
    data_load(&s, (const DataConfig *)p);
}

static void test_bad_parameters(void) {
    DataConfig cfg = regime();
    cfg.multiview.d = 19;
    expect_fail("d < 2k", load_cfg, &cfg, ED_EXIT_USER,
                "data.multiview.d: 19 is too small for 10 classes");
    cfg = regime();
    cfg.multiview.patches = 1;
    expect_fail("too few patches", load_cfg, &cfg, ED_EXIT_USER, "data.multiview.patches");
    cfg = regime();
    cfg.multiview.noise = (NoiseKind)7; /* the config's schema lets only names through */
    expect_fail("unknown noise", load_cfg, &cfg, ED_EXIT_INTERNAL, "data.multiview.noise 7");
    cfg = regime();
    cfg.multiview.mu = 1.5;
    expect_fail("mu out of range", load_cfg, &cfg, ED_EXIT_USER, "data.multiview.mu");
    cfg = regime();
    cfg.multiview.view_lo = 2.0;
    expect_fail("view_lo > view_hi", load_cfg, &cfg, ED_EXIT_USER, "view_lo / view_hi");
    cfg = regime();
    cfg.source = SOURCE_TOY2;
    cfg.multiview.patches = 2;
    expect_fail("toy2 without room for the off-class patch", load_cfg, &cfg, ED_EXIT_USER,
                "+1 for the off-class patch of toy2");
    cfg.source = (DataSource)99;
    expect_fail("unknown source", load_cfg, &cfg, ED_EXIT_INTERNAL,
                "data.source 99: not a DataSource");
}

int main(void) {
    test_regime();
    test_determinism();
    test_noise();
    test_toy2();
    test_bad_parameters();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all multi-view tests passed\n");
    return 0;
}
