/* data_load: picks the source named by the config, then applies the sample limits, the sample
 * ids and the normalisation statistics. Also the Dataset bookkeeping (free, bytes, limit,
 * describe) shared by every source. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

void dataset_free(Dataset *ds) {
    free(ds->u8);
    free(ds->f32);
    free(ds->labels);
    free(ds->tags);
    free(ds->views);
    memset(ds, 0, sizeof(*ds));
}

void datasplit_free(DataSplit *split) {
    dataset_free(&split->train);
    dataset_free(&split->test);
}

size_t dataset_bytes(const Dataset *ds) {
    size_t n = (size_t)ds->N, per = dataset_sample_floats(ds), bytes = 0;
    if (ds->u8) bytes += n * per;
    if (ds->f32) bytes += n * per * sizeof(float);
    if (ds->labels) bytes += n * sizeof(int32_t);
    if (ds->tags) bytes += n;
    if (ds->views) bytes += (size_t)ds->K * 2 * ds->D * sizeof(float);
    return bytes;
}

void dataset_limit(Dataset *ds, int n) {
    if (n <= 0 || n >= ds->N) return;
    size_t per = dataset_sample_floats(ds);
    ds->N = n;
    if (ds->u8) ds->u8 = xrealloc(ds->u8, (size_t)n * per);
    if (ds->f32) ds->f32 = xrealloc(ds->f32, (size_t)n * per * sizeof(float));
    if (ds->labels) ds->labels = xrealloc(ds->labels, (size_t)n * sizeof(int32_t));
    if (ds->tags) ds->tags = xrealloc(ds->tags, (size_t)n);
}

void dataset_compute_normalization(Dataset *train, Dataset *test) {
    int C = train->C;
    size_t HW = (size_t)train->H * train->W, N = (size_t)train->N;
    if (C > DATASET_MAX_CHANNELS)
        ed_fail("%s: data.normalize needs at most %d channels, the data have %d (set "
                "data.normalize: false)",
                train->name, DATASET_MAX_CHANNELS, C);
    if (N == 0) ed_fail("%s: no training samples to compute the normalisation from", train->name);
    double scale = train->u8 ? 1.0 / 255.0 : 1.0;
    for (int c = 0; c < C; c++) {
        /* mean = sum x / n;  var = sum (x - mean)^2 / n  (two passes, double) */
        double sum = 0.0, ss = 0.0;
        for (size_t i = 0; i < N; i++) {
            size_t off = (i * C + c) * HW;
            if (train->u8) {
                uint64_t s = 0;
                for (size_t j = 0; j < HW; j++)
                    s += train->u8[off + j];
                sum += (double)s;
            } else {
                for (size_t j = 0; j < HW; j++)
                    sum += train->f32[off + j];
            }
        }
        double mean = sum * scale / (double)(N * HW);
        for (size_t i = 0; i < N; i++) {
            size_t off = (i * C + c) * HW;
            for (size_t j = 0; j < HW; j++) {
                double x = train->u8 ? train->u8[off + j] * scale : train->f32[off + j];
                ss += (x - mean) * (x - mean);
            }
        }
        double sd = sqrt(ss / (double)(N * HW));
        train->mean[c] = (float)mean;
        train->std[c] = sd > 1e-8 ? (float)sd : 1.0f; /* a constant channel is only centred */
    }
    train->normalize = 1;
    if (test) {
        memcpy(test->mean, train->mean, sizeof(train->mean));
        memcpy(test->std, train->std, sizeof(train->std));
        test->normalize = 1;
    }
}

const char *dataset_describe(const Dataset *ds, char *buf, size_t size) {
    snprintf(buf, size, "%s: %d x %d x %d x %d %s, %d classes, %.1f MB", ds->name, ds->N, ds->C,
             ds->H, ds->W, ds->u8 ? "uint8" : "float32", ds->K, dataset_bytes(ds) / 1e6);
    return buf;
}

static void check_loaded(const Dataset *ds) {
    ED_CHECK(ds->N >= 0 && ds->C > 0 && ds->H > 0 && ds->W > 0 && ds->K > 0,
             "%s: source left bad shape %d x %d x %d x %d, K %d", ds->name, ds->N, ds->C, ds->H,
             ds->W, ds->K);
    ED_CHECK((ds->u8 != NULL) != (ds->f32 != NULL) || ds->N == 0, "%s: needs exactly one of u8/f32",
             ds->name);
    ED_CHECK(ds->labels != NULL || ds->N == 0, "%s: no labels", ds->name);
}

/* Stops naming where (the data file, or the generator), the dataset and the first sample of ds
 * with a value that is not finite: NaN or Inf would train silently into NaN weights. */
static void check_finite(const Dataset *ds, const char *where, const char *part) {
    if (ds->f32) {
        size_t S = dataset_sample_floats(ds);
        for (size_t i = 0; i < (size_t)ds->N * S; i++) {
            if (isfinite(ds->f32[i])) continue;
            size_t n = i / S, e = i % S, HW = (size_t)ds->H * ds->W;
            ed_fail("%s: /%s/images: sample %zu holds a value that is not finite (%g at [%zu, %zu, "
                    "%zu]): fix or drop that sample (or limit the data before it)",
                    where, part, n, (double)ds->f32[i], e / HW, e % HW / ds->W, e % ds->W);
        }
    }
    if (ds->views)
        for (size_t i = 0; i < (size_t)ds->K * 2 * ds->D; i++)
            if (!isfinite(ds->views[i]))
                ed_fail("%s: /views: class %zu holds a value that is not finite (%g)", where,
                        i / (2 * (size_t)ds->D), (double)ds->views[i]);
}

void data_load(DataSplit *split, const DataConfig *cfg) {
    memset(split, 0, sizeof(*split));
    int generated = 0;
    switch (cfg->source) {
    case SOURCE_FASHION_MNIST:
        idx_load(split, cfg->path[0] ? cfg->path : FASHION_MNIST_DEFAULT_DIR, "fashion-mnist");
        break;
    case SOURCE_MNIST:
        if (!cfg->path[0]) ed_fail("data.path: source mnist needs the directory of the IDX files");
        idx_load(split, cfg->path, "mnist");
        break;
    case SOURCE_CIFAR10:
    case SOURCE_CIFAR100:
        if (!cfg->path[0])
            ed_fail("data.path: source %s needs the directory of the .bin files",
                    config_source_names[cfg->source]);
        cifar_load(split, cfg->path, cfg->source == SOURCE_CIFAR100,
                   cfg->source == SOURCE_CIFAR100 && cfg->labels == LABELS_COARSE);
        break;
    case SOURCE_HDF5:
        if (!cfg->path[0]) ed_fail("data.path: source hdf5 needs the .h5 file");
        h5data_read_first(split, cfg->path, cfg->train_limit, cfg->test_limit);
        generated = split->train.views != NULL; /* multi-view data written by datagen */
        break;
    case SOURCE_MULTIVIEW:
        multiview_generate(split, &cfg->multiview);
        generated = 1;
        break;
    case SOURCE_TOY2:
        toy2_generate(split, &cfg->multiview);
        generated = 1;
        break;
    default:
        ED_DIE("data.source %d: not a DataSource (the config's validation passes only those)",
               (int)cfg->source);
    }
    check_loaded(&split->train);
    check_loaded(&split->test);
    dataset_limit(&split->train, cfg->train_limit);
    dataset_limit(&split->test, cfg->test_limit);
    const char *where = cfg->source == SOURCE_HDF5 ? cfg->path : config_source_names[cfg->source];
    check_finite(&split->train, where, "train");
    check_finite(&split->test, where, "test");
    split->train.id_base = 0;
    split->test.id_base = split->train.N;
    /* Multi-view patches are not image channels: they are never normalised. */
    if (cfg->normalize && !generated) dataset_compute_normalization(&split->train, &split->test);
}
