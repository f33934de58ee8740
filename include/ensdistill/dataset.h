/* Data sets in memory and the minibatches made from them.
 * A data set is held in its stored type (uint8 stays uint8 until a batch is made); a run holds
 * it once per node (shared_data.h's data_load_shared). Sources: IDX (MNIST / Fashion-MNIST, gzip
 * or plain), CIFAR-10/100 binary, generic HDF5 (/train and /test groups, each /images and
 * /labels), the paper's multi-view generator and its two-class toy. */
#ifndef ENSDISTILL_DATASET_H
#define ENSDISTILL_DATASET_H

#include "ensdistill/config.h"

#include <stddef.h>
#include <stdint.h>

#define DATASET_MAX_CHANNELS 16

typedef struct {
    char name[64];     /* "fashion-mnist/train", ... for messages */
    int N, C, H, W, K; /* samples, channels, height, width, classes */
    uint8_t *u8;       /* [N, C, H, W] or NULL */
    float *f32;        /* [N, C, H, W] or NULL (multi-view: [N, P, 1, D]) */
    int32_t *labels;   /* [N], in [0, K) */
    uint8_t *tags;     /* [N] multi-view data: 1 multi-view, 0 single-view; else NULL */
    int normalize;     /* apply (x - mean[c]) / std[c] when making a batch */
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS]; /* u8 data: after / 255 */
    int64_t id_base; /* sample i has id id_base + i (train 0, test N_train) */
    /* multi-view data */
    int orth_noise; /* 1: each patch also carries sparse orthogonal noise */
    float noise_sigma;
    float *views; /* [K, 2, D] the view vectors v_{j,1}, v_{j,2}, or NULL */
    int D;        /* view dimension (multi-view) */
} Dataset;

typedef struct {
    Dataset train, test;
} DataSplit;

/* The arrays of one part of a data split, in the order DataAlloc sizes them. */
enum { DATA_U8, DATA_F32, DATA_LABELS, DATA_TAGS, DATA_VIEWS, DATA_ARRAYS };

/* Where a source puts the arrays it reads. A source learns every shape first (headers, file
 * sizes, dataset dimensions; N after the limits), then calls arrays() exactly once, before it
 * reads a sample, and writes each sample straight into the memory it gets: no source holds a
 * second copy (only small per-chunk buffers). bytes[part][array] (part 0 train, 1 test) is 0
 * for an absent array; arrays() sets the pointers of split->train and split->test (NULL where
 * 0 bytes). data_load uses data_alloc_heap; data_load_shared carves a node's shared window. */
typedef struct DataAlloc DataAlloc;
struct DataAlloc {
    void (*arrays)(DataAlloc *self, DataSplit *split, const size_t bytes[2][DATA_ARRAYS]);
};
/* An xmalloc per array; datasplit_free releases them. */
extern DataAlloc data_alloc_heap;

/* Loads (or generates) train and test as the config says, into arrays from alloc: only the
 * first train_limit / test_limit samples are ever stored; sets the sample ids and computes the
 * normalisation statistics from the training set. Bad or missing files are user errors naming
 * the file (ed_fail). */
void data_load_into(DataSplit *split, const DataConfig *cfg, DataAlloc *alloc);
/* data_load_into with data_alloc_heap. */
void data_load(DataSplit *split, const DataConfig *cfg);
void dataset_free(Dataset *ds);
void datasplit_free(DataSplit *split);
/* Bytes the data set holds in memory. */
size_t dataset_bytes(const Dataset *ds);
/* The sizes of ds's arrays (0 for an absent one) from its shape and which pointers are set. */
void dataset_array_bytes(const Dataset *ds, size_t bytes[DATA_ARRAYS]);
/* Array a (DATA_U8 ... DATA_VIEWS) of ds: its pointer, or sets it. */
void *dataset_array(const Dataset *ds, int a);
void dataset_set_array(Dataset *ds, int a, void *p);
/* Floats per sample in a batch: C*H*W. */
static inline size_t dataset_sample_floats(const Dataset *ds) {
    return (size_t)ds->C * ds->H * ds->W;
}

/* Augmentation of one batch: each sample's randomness is keyed by (seed, stream, sample id),
 * stream = rng_stream(RNG_PURPOSE_AUGMENT, role, model index, epoch), so it does not depend on
 * ranks, shards or batch position. */
typedef struct {
    int crop_pad; /* random crop with this much zero padding; 0 = none */
    int flip;     /* random horizontal flip */
    uint64_t seed, stream;
} Augment;

/* x[B, C*H*W] (normalised floats), labels[B] and ids[B] for samples idx[0..B) of ds.
 * aug may be NULL (no augmentation). labels / ids may be NULL. */
void dataset_make_batch(const Dataset *ds, const int *idx, int B, float *x, int32_t *labels,
                        int64_t *ids, const Augment *aug);

/* The raw IDX readers, for tests: a whole file into ds (xmalloc). Each dies with ed_fail naming
 * the file on error. */
void idx_read_images(Dataset *ds, const char *path); /* fills N, C=1, H, W, u8 */
void idx_read_labels(Dataset *ds, const char *path); /* fills labels (N must match; < K if K set) */

/* The sources. Each fills split->train and split->test (N, C, H, W, K, pixels, labels, and for
 * generated data tags, views, D, orth noise), keeping only the first train_keep / test_keep
 * samples (<= 0: all), in arrays from alloc (see DataAlloc); data_load then sets the sample ids
 * and the normalisation statistics. Every one dies with ed_fail naming the file on bad input. */
/* DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; K = 10. Every byte of the files is
 * read and checked (a sample past a limit is read through a small buffer and dropped). */
void idx_load(DataSplit *split, const char *dir, const char *name, int train_keep, int test_keep,
              DataAlloc *alloc);
/* CIFAR-10 (DIR/data_batch_1..5.bin, test_batch.bin; K = 10) or CIFAR-100 (DIR/train.bin,
 * test.bin; K = 100 fine or 20 coarse). DIR may also be the folder holding the official
 * cifar-10-batches-bin/ or cifar-100-binary/. Every record is read and checked, like IDX. */
void cifar_load(DataSplit *split, const char *dir, int cifar100, int coarse, int train_keep,
                int test_keep, DataAlloc *alloc);
/* The generic HDF5 layout (see h5data.c and the README): /train and /test, each with images
 * [N,C,H,W] (or [N,H,W,C] with attribute layout="NHWC"; or [N,H,W]), labels [N], optional tags;
 * optional /views [K,2,D] and root attributes num_classes, orth_noise, noise_sigma. Reads by
 * hyperslab, a few MB of rows at a time: nothing past train_keep / test_keep is read. */
void h5data_read_first(DataSplit *split, const char *path, int train_keep, int test_keep,
                       DataAlloc *alloc);
/* All of it, into data_alloc_heap. */
void h5data_read(DataSplit *split, const char *path);
/* Writes split in that layout to path (through path.tmp and a rename), with root attributes
 * format, source, num_classes and, for generated data, noise, sigma, seed, orth_noise,
 * noise_sigma; config_text (may be NULL) is stored as attribute "config". */
void h5data_write(const DataSplit *split, const DataConfig *cfg, const char *config_text,
                  const char *path);
/* The paper's multi-view data from cfg (see multiview.c): f32 [N, P, 1, d], tags, views. A
 * sample depends only on the seed and its index, so a limit generates the first ones only. */
void multiview_generate(DataSplit *split, const MultiviewConfig *mv, int train_keep, int test_keep,
                        DataAlloc *alloc);
/* The paper's two-class toy: k = 2, same storage; uses d, patches, patches_per_view, view_lo/hi,
 * noise, sigma, seed, n_train, n_test of cfg. */
void toy2_generate(DataSplit *split, const MultiviewConfig *mv, int train_keep, int test_keep,
                   DataAlloc *alloc);

/* For a source: how many of n samples to keep (keep <= 0 or >= n: all). */
static inline int data_keep(int n, int keep) {
    return keep > 0 && keep < n ? keep : n;
}
/* mean/std per channel from train (double accumulation; u8 after / 255), copied to test; sets
 * normalize on both. */
void dataset_compute_normalization(Dataset *train, Dataset *test);
/* The data fingerprint (fingerprint.c) into out: one line of "key=value" words naming the
 * source, shapes, sample counts, 64-bit hashes of the training and test labels and samples
 * (after the limits: together, and labels and samples apart), the normalisation and the
 * orthogonal noise. run.h5 (attribute data_fingerprint) and RUN_DIR/data.fingerprint store
 * it; a resume and distill.teacher compare it. size: 1024 is enough for DATASET_MAX_CHANNELS
 * channels. */
void data_fingerprint(const DataSplit *d, const DataConfig *cfg, char *out, size_t size);
/* 0 when the two fingerprints agree; else 1 and what differs, in words, into why. */
int data_fingerprint_diff(const char *ours, const char *theirs, char *why, size_t size);
/* "fashion-mnist/train: 60000 x 1 x 28 x 28 uint8, 10 classes, 47.3 MB" into buf. */
const char *dataset_describe(const Dataset *ds, char *buf, size_t size);

#endif
