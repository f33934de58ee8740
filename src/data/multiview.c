/* The paper's multi-view data (Allen-Zhu & Li, section 2) and its two-class toy.
 * Every class j has two orthonormal view vectors v_{j,1}, v_{j,2} in R^d; a sample is P patches
 * x_p in R^d stored as f32 [N, P, 1, d]. Everything is a pure function of multiview.seed: views
 * from stream (DATA, role 1), train sample i from stream (DATA, role 2, epoch field i), test sample
 * i from (DATA, role 3, i); so a sample never depends on ranks, on N or on the other samples. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MV_ROLE_VIEWS = 1, MV_ROLE_TRAIN = 2, MV_ROLE_TEST = 3 };
enum { MV_KIND_MULTIVIEW = 0, MV_KIND_TOY2 = 1 }; /* the index field of the streams */

#define TOY2_OFF_WEIGHT 0.1

static void check_range(const char *key_lo, double lo, double hi) {
    if (!(lo >= 0.0 && hi >= lo))
        ed_fail("data.multiview.%s: needs 0 <= lo <= hi, got [%g, %g]", key_lo, lo, hi);
}

static void mv_validate(const MultiviewConfig *mv, int k, int extra_patches, const char *src) {
    if (k < 2) ed_fail("data.multiview.k: needs at least 2 classes, got %d", k);
    if (mv->d < 2 * k)
        ed_fail("data.multiview.d: %d is too small for %d classes (two orthonormal views per class "
                "need d >= 2k = %d)",
                mv->d, k, 2 * k);
    if (mv->patches_per_view < 1)
        ed_fail("data.multiview.patches_per_view: needs at least 1, got %d", mv->patches_per_view);
    if (mv->patches < 2 * mv->patches_per_view + extra_patches)
        ed_fail("data.multiview.patches: %d is too few: the two views of a class take 2 x "
                "patches_per_view = %d patches%s",
                mv->patches, 2 * mv->patches_per_view,
                extra_patches ? ", +1 for the off-class patch of toy2" : "");
    if (mv->n_train < 1 || mv->n_test < 1)
        ed_fail("data.multiview.n_train / n_test: need at least 1 sample each, got %d and %d",
                mv->n_train, mv->n_test);
    if ((int64_t)mv->n_train * mv->patches * mv->d > ((int64_t)1 << 34))
        ed_fail("data.multiview: n_train * patches * d = %lld floats is too large (%s)",
                (long long)mv->n_train * mv->patches * mv->d, src);
    if (!(mv->mu >= 0.0 && mv->mu <= 1.0))
        ed_fail("data.multiview.mu: must be in [0, 1], got %g", mv->mu);
    if (!(mv->off_prob >= 0.0 && mv->off_prob <= 1.0))
        ed_fail("data.multiview.off_prob: must be in [0, 1], got %g", mv->off_prob);
    if (!(mv->weak_scale >= 0.0))
        ed_fail("data.multiview.weak_scale: must be >= 0, got %g", mv->weak_scale);
    if (!(mv->feature_noise >= 0.0))
        ed_fail("data.multiview.feature_noise: must be >= 0, got %g", mv->feature_noise);
    if (!(mv->sigma >= 0.0)) ed_fail("data.multiview.sigma: must be >= 0, got %g", mv->sigma);
    check_range("view_lo / view_hi", mv->view_lo, mv->view_hi);
    check_range("off_mv_lo / off_mv_hi", mv->off_mv_lo, mv->off_mv_hi);
    check_range("off_sv_lo / off_sv_hi", mv->off_sv_lo, mv->off_sv_hi);
    ED_CHECK(mv->noise == NOISE_GAUSS || mv->noise == NOISE_ORTH, "data.multiview.noise %d",
             (int)mv->noise);
}

/* views[k, 2, d]: Gram-Schmidt (twice, in double) on standard normal draws. */
static float *make_views(int k, int d, uint64_t seed, unsigned kind) {
    int nv = 2 * k;
    double *v = xmalloc((size_t)nv * d * sizeof(double));
    Rng r = rng_make(seed, rng_stream(RNG_PURPOSE_DATA, MV_ROLE_VIEWS, kind, 0));
    for (int a = 0; a < nv; a++) {
        double *va = v + (size_t)a * d;
        for (int j = 0; j < d; j++)
            va[j] = rng_normal(&r);
        /* v_a -= <v_a, v_b> v_b for every earlier v_b; twice for full precision */
        for (int pass = 0; pass < 2; pass++)
            for (int b = 0; b < a; b++) {
                const double *vb = v + (size_t)b * d;
                double dot = 0.0;
                for (int j = 0; j < d; j++)
                    dot += va[j] * vb[j];
                for (int j = 0; j < d; j++)
                    va[j] -= dot * vb[j];
            }
        double norm = 0.0;
        for (int j = 0; j < d; j++)
            norm += va[j] * va[j];
        norm = sqrt(norm);
        ED_CHECK(norm > 1e-6, "view %d is degenerate after Gram-Schmidt (norm %g)", a, norm);
        for (int j = 0; j < d; j++)
            va[j] /= norm;
    }
    float *out = xmalloc((size_t)nv * d * sizeof(float));
    for (size_t i = 0; i < (size_t)nv * d; i++)
        out[i] = (float)v[i];
    free(v);
    return out;
}

static inline double uniform(Rng *r, double lo, double hi) {
    return lo + (hi - lo) * rng_uniform_double(r);
}

/* patch[d] += w * v[d] */
static inline void add_scaled(float *patch, const float *v, double w, int d) {
    for (int j = 0; j < d; j++)
        patch[j] += (float)(w * v[j]);
}

/* The parts every sample shares: feature noise and dense Gaussian noise on all P patches. */
static void add_noise(float *x, const float *views, const MultiviewConfig *mv, int k, Rng *r) {
    int P = mv->patches, d = mv->d;
    if (mv->feature_noise > 0.0)
        for (int p = 0; p < P; p++) {
            /* x_p += U[0, gamma] * v, v one of the 2k views at random */
            double g = uniform(r, 0.0, mv->feature_noise);
            int a = (int)rng_below(r, (uint32_t)(2 * k));
            add_scaled(x + (size_t)p * d, views + (size_t)a * d, g, d);
        }
    if (mv->noise == NOISE_GAUSS && mv->sigma > 0.0) {
        /* x_p += N(0, sigma^2 / d I) */
        double s = mv->sigma / sqrt((double)d);
        for (size_t j = 0; j < (size_t)P * d; j++)
            x[j] += (float)(s * rng_normal(r));
    }
}

/* One multi-view sample into x[P, d]; returns its tag (1 multi-view, 0 single-view). */
static int multiview_sample(float *x, int32_t *label, const float *views, const MultiviewConfig *mv,
                            Rng *r, int *perm) {
    int k = mv->k, P = mv->patches, d = mv->d, ppv = mv->patches_per_view;
    memset(x, 0, (size_t)P * d * sizeof(float));
    int y = (int)rng_below(r, (uint32_t)k);
    int single = rng_uniform_double(r) < mv->mu;
    rng_permutation(r, P, perm);
    int next = 0;
    const float *vy = views + (size_t)y * 2 * d;
    if (!single) {
        /* both views, each in ppv patches at weight U[lo, hi] */
        for (int l = 0; l < 2; l++)
            for (int t = 0; t < ppv; t++)
                add_scaled(x + (size_t)perm[next++] * d, vy + (size_t)l * d,
                           uniform(r, mv->view_lo, mv->view_hi), d);
    } else {
        /* one view at U[lo, hi], the other at weak_scale * U[lo, hi] */
        int strong = (int)rng_below(r, 2);
        for (int t = 0; t < ppv; t++)
            add_scaled(x + (size_t)perm[next++] * d, vy + (size_t)strong * d,
                       uniform(r, mv->view_lo, mv->view_hi), d);
        for (int t = 0; t < ppv; t++)
            add_scaled(x + (size_t)perm[next++] * d, vy + (size_t)(1 - strong) * d,
                       mv->weak_scale * uniform(r, mv->view_lo, mv->view_hi), d);
    }
    /* off-class views: each other class with probability off_prob, one of its two views, in its
     * own patch; the draws are made for every class so the stream layout never shifts */
    double lo = single ? mv->off_sv_lo : mv->off_mv_lo, hi = single ? mv->off_sv_hi : mv->off_mv_hi;
    for (int j = 0; j < k; j++) {
        if (j == y) continue;
        double u = rng_uniform_double(r);
        int l = (int)rng_below(r, 2);
        double w = uniform(r, lo, hi);
        if (u < mv->off_prob && next < P)
            add_scaled(x + (size_t)perm[next++] * d, views + ((size_t)j * 2 + l) * d, w, d);
    }
    add_noise(x, views, mv, k, r);
    *label = y;
    return !single;
}

/* One toy2 sample: class y shows both views (80%), only v_{y,1} (10%) or only v_{y,2} (10%),
 * and one view of the other class at weight 0.1. */
static int toy2_sample(float *x, int32_t *label, const float *views, const MultiviewConfig *mv,
                       Rng *r, int *perm) {
    int P = mv->patches, d = mv->d, ppv = mv->patches_per_view;
    memset(x, 0, (size_t)P * d * sizeof(float));
    int y = (int)rng_below(r, 2);
    double u = rng_uniform_double(r);
    int show[2] = {u < 0.9, u < 0.8 || u >= 0.9};
    rng_permutation(r, P, perm);
    int next = 0;
    for (int l = 0; l < 2; l++)
        for (int t = 0; t < ppv; t++) {
            double w = uniform(r, mv->view_lo, mv->view_hi);
            if (show[l])
                add_scaled(x + (size_t)perm[next++] * d, views + ((size_t)y * 2 + l) * d, w, d);
        }
    int l = (int)rng_below(r, 2);
    add_scaled(x + (size_t)perm[next++] * d, views + ((size_t)(1 - y) * 2 + l) * d, TOY2_OFF_WEIGHT,
               d);
    add_noise(x, views, mv, 2, r);
    *label = y;
    return show[0] && show[1];
}

typedef int (*SampleFn)(float *, int32_t *, const float *, const MultiviewConfig *, Rng *, int *);

/* Names ds and sets its shape: the first `keep` of N samples (keep <= 0: all). */
static void part_shape(Dataset *ds, const char *name, const char *part, int N, int keep, int k,
                       const MultiviewConfig *mv) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "%s/%s", name, part);
    ds->N = data_keep(N, keep);
    ds->C = mv->patches;
    ds->H = 1;
    ds->W = mv->d;
    ds->K = k;
    ds->D = mv->d;
    ds->orth_noise = mv->noise == NOISE_ORTH;
    ds->noise_sigma = ds->orth_noise ? (float)mv->sigma : 0.0f;
}

/* Samples 0 .. ds->N - 1 of the part into ds's arrays (sample i depends on i only). */
static void generate_part(Dataset *ds, int role, unsigned kind, const float *views,
                          const MultiviewConfig *mv, SampleFn sample) {
    int P = mv->patches, d = mv->d;
    memcpy(ds->views, views, (size_t)ds->K * 2 * d * sizeof(float));
    int *perm = xmalloc((size_t)P * sizeof(int));
    for (int i = 0; i < ds->N; i++) {
        Rng r = rng_make((uint64_t)mv->seed,
                         rng_stream(RNG_PURPOSE_DATA, (unsigned)role, kind, (uint32_t)i));
        ds->tags[i] =
            (uint8_t)sample(ds->f32 + (size_t)i * P * d, &ds->labels[i], views, mv, &r, perm);
    }
    free(perm);
}

static void generate(DataSplit *split, const MultiviewConfig *mv, int k, unsigned kind,
                     const char *name, SampleFn sample, int train_keep, int test_keep,
                     DataAlloc *alloc) {
    float *views = make_views(k, mv->d, (uint64_t)mv->seed, kind);
    part_shape(&split->train, name, "train", mv->n_train, train_keep, k, mv);
    part_shape(&split->test, name, "test", mv->n_test, test_keep, k, mv);
    size_t bytes[2][DATA_ARRAYS] = {{0}};
    for (int p = 0; p < 2; p++) {
        const Dataset *ds = p ? &split->test : &split->train;
        size_t n = (size_t)ds->N;
        bytes[p][DATA_F32] = n * dataset_sample_floats(ds) * sizeof(float);
        bytes[p][DATA_LABELS] = n * sizeof(int32_t);
        bytes[p][DATA_TAGS] = n;
        bytes[p][DATA_VIEWS] = (size_t)k * 2 * mv->d * sizeof(float);
    }
    alloc->arrays(alloc, split, bytes);
    generate_part(&split->train, MV_ROLE_TRAIN, kind, views, mv, sample);
    generate_part(&split->test, MV_ROLE_TEST, kind, views, mv, sample);
    free(views);
}

void multiview_generate(DataSplit *split, const MultiviewConfig *mv, int train_keep, int test_keep,
                        DataAlloc *alloc) {
    mv_validate(mv, mv->k, 0, "multiview");
    generate(split, mv, mv->k, MV_KIND_MULTIVIEW, "multiview", multiview_sample, train_keep,
             test_keep, alloc);
}

void toy2_generate(DataSplit *split, const MultiviewConfig *mv, int train_keep, int test_keep,
                   DataAlloc *alloc) {
    mv_validate(mv, 2, 1, "toy2");
    MultiviewConfig m = *mv;
    m.k = 2;
    generate(split, &m, 2, MV_KIND_TOY2, "toy2", toy2_sample, train_keep, test_keep, alloc);
}
