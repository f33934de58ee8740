/* data_load: picks the source named by the config (which reads only what the limits keep, into
 * the caller's DataAlloc), then checks it and sets the sample ids and the normalisation
 * statistics. The Dataset bookkeeping every source shares is in dataset.c. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

/* Passes the call on to the real allocator and remembers it: data_load_into checks that the
 * source asked once and kept the shapes it asked for. */
typedef struct {
    DataAlloc base; /* first: a DataAlloc * to this is a RecordingAlloc * */
    DataAlloc *inner;
    int calls;
    size_t bytes[2][DATA_ARRAYS];
} RecordingAlloc;

static void recording_arrays(DataAlloc *self, DataSplit *split,
                             const size_t bytes[2][DATA_ARRAYS]) {
    RecordingAlloc *r = (RecordingAlloc *)self;
    r->calls++;
    ED_CHECK(r->calls == 1, "a data source asked for its arrays %d times (once, please)", r->calls);
    memcpy(r->bytes, bytes, sizeof(r->bytes));
    r->inner->arrays(r->inner, split, bytes);
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

/* The source left a sane shape, at most keep samples, and the arrays it asked for. */
static void check_loaded(const Dataset *ds, const size_t asked[DATA_ARRAYS], int keep) {
    ED_CHECK(ds->N >= 0 && ds->C > 0 && ds->H > 0 && ds->W > 0 && ds->K > 0,
             "%s: source left bad shape %d x %d x %d x %d, K %d", ds->name, ds->N, ds->C, ds->H,
             ds->W, ds->K);
    ED_CHECK((ds->u8 != NULL) != (ds->f32 != NULL) || ds->N == 0, "%s: needs exactly one of u8/f32",
             ds->name);
    ED_CHECK(ds->labels != NULL || ds->N == 0, "%s: no labels", ds->name);
    ED_CHECK(keep <= 0 || ds->N <= keep, "%s: %d samples kept for a limit of %d", ds->name, ds->N,
             keep);
    size_t bytes[DATA_ARRAYS];
    dataset_array_bytes(ds, bytes);
    for (int a = 0; a < DATA_ARRAYS; a++)
        ED_CHECK(bytes[a] == asked[a], "%s: array %d holds %zu bytes, the source asked for %zu",
                 ds->name, a, bytes[a], asked[a]);
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
    data_load_into(split, cfg, &data_alloc_heap);
}

void data_load_into(DataSplit *split, const DataConfig *cfg, DataAlloc *alloc) {
    memset(split, 0, sizeof(*split));
    RecordingAlloc rec = {.base = {recording_arrays}, .inner = alloc};
    const int tk = cfg->train_limit, vk = cfg->test_limit;
    int generated = 0;
    switch (cfg->source) {
    case SOURCE_FASHION_MNIST:
        idx_load(split, cfg->path[0] ? cfg->path : FASHION_MNIST_DEFAULT_DIR, "fashion-mnist", tk,
                 vk, &rec.base);
        break;
    case SOURCE_MNIST:
        if (!cfg->path[0]) ed_fail("data.path: source mnist needs the directory of the IDX files");
        idx_load(split, cfg->path, "mnist", tk, vk, &rec.base);
        break;
    case SOURCE_CIFAR10:
    case SOURCE_CIFAR100:
        if (!cfg->path[0])
            ed_fail("data.path: source %s needs the directory of the .bin files",
                    config_source_names[cfg->source]);
        cifar_load(split, cfg->path, cfg->source == SOURCE_CIFAR100,
                   cfg->source == SOURCE_CIFAR100 && cfg->labels == LABELS_COARSE, tk, vk,
                   &rec.base);
        break;
    case SOURCE_HDF5:
        if (!cfg->path[0]) ed_fail("data.path: source hdf5 needs the .h5 file");
        h5data_read_first(split, cfg->path, tk, vk, &rec.base);
        generated = split->train.views != NULL; /* multi-view data written by datagen */
        break;
    case SOURCE_MULTIVIEW:
        multiview_generate(split, &cfg->multiview, tk, vk, &rec.base);
        generated = 1;
        break;
    case SOURCE_TOY2:
        toy2_generate(split, &cfg->multiview, tk, vk, &rec.base);
        generated = 1;
        break;
    default:
        ED_DIE("data.source %d: not a DataSource (the config's validation passes only those)",
               (int)cfg->source);
    }
    ED_CHECK(rec.calls == 1, "data source %s never asked for its arrays",
             config_source_names[cfg->source]);
    check_loaded(&split->train, rec.bytes[0], tk);
    check_loaded(&split->test, rec.bytes[1], vk);
    const char *where = cfg->source == SOURCE_HDF5 ? cfg->path : config_source_names[cfg->source];
    check_finite(&split->train, where, "train");
    check_finite(&split->test, where, "test");
    split->train.id_base = 0;
    split->test.id_base = split->train.N;
    /* Multi-view patches are not image channels: they are never normalised. */
    if (cfg->normalize && !generated) dataset_compute_normalization(&split->train, &split->test);
}
