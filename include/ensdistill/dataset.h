/* Data sets in memory and the minibatches made from them.
 * A data set is held once per rank in its stored type (uint8 stays uint8 until a batch is
 * made). Sources: IDX (MNIST / Fashion-MNIST, gzip or plain), CIFAR-10/100 binary, generic
 * HDF5 (/train and /test groups, each /images and /labels), the paper's multi-view generator
 * and its two-class toy. */
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

/* Loads (or generates) train and test as the config says; applies train_limit / test_limit
 * and computes normalisation statistics from the training set. Bad or missing files are
 * user errors naming the file (ed_fail). */
void data_load(DataSplit *split, const DataConfig *cfg);
void dataset_free(Dataset *ds);
void datasplit_free(DataSplit *split);
/* Bytes the data set holds in memory. */
size_t dataset_bytes(const Dataset *ds);
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

/* The raw readers, for tests and datagen. Each dies with ed_fail naming the file on error. */
void idx_read_images(Dataset *ds, const char *path); /* fills N, C=1, H, W, u8 */
void idx_read_labels(Dataset *ds, const char *path); /* fills labels (N must match; < K if K set) */

/* The sources. Each fills split->train and split->test (N, C, H, W, K, pixels, labels, and for
 * generated data tags, views, D, orth noise); data_load then applies the limits, the sample ids
 * and the normalisation statistics. Every one dies with ed_fail naming the file on bad input. */
/* DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; K = 10. */
void idx_load(DataSplit *split, const char *dir, const char *name);
/* CIFAR-10 (DIR/data_batch_1..5.bin, test_batch.bin; K = 10) or CIFAR-100 (DIR/train.bin,
 * test.bin; K = 100 fine or 20 coarse). DIR may also be the folder holding the official
 * cifar-10-batches-bin/ or cifar-100-binary/. */
void cifar_load(DataSplit *split, const char *dir, int cifar100, int coarse);
/* Reads one CIFAR binary file and appends its records to ds (ds->u8 / labels grow); returns the
 * number of records read. */
int cifar_read_file(Dataset *ds, const char *path, int cifar100, int coarse);
/* The generic HDF5 layout (see h5data.c and the README): /train and /test, each with images
 * [N,C,H,W] (or [N,H,W,C] with attribute layout="NHWC"; or [N,H,W]), labels [N], optional tags;
 * optional /views [K,2,D] and root attributes num_classes, orth_noise, noise_sigma. */
void h5data_read(DataSplit *split, const char *path);
/* The same, reading only the first train_keep / test_keep samples of each part by hyperslab
 * (<= 0: all): a limit never reads or holds the rest of the file. */
void h5data_read_first(DataSplit *split, const char *path, int train_keep, int test_keep);
/* Writes split in that layout to path (through path.tmp and a rename), with root attributes
 * format, source, num_classes and, for generated data, noise, sigma, seed, orth_noise,
 * noise_sigma; config_text (may be NULL) is stored as attribute "config". */
void h5data_write(const DataSplit *split, const DataConfig *cfg, const char *config_text,
                  const char *path);
/* The paper's multi-view data from cfg (see multiview.c): f32 [N, P, 1, d], tags, views. */
void multiview_generate(DataSplit *split, const MultiviewConfig *mv);
/* The paper's two-class toy: k = 2, same storage; uses d, patches, patches_per_view, view_lo/hi,
 * noise, sigma, seed, n_train, n_test of cfg. */
void toy2_generate(DataSplit *split, const MultiviewConfig *mv);

/* Keep only the first n samples (n <= 0 or n >= N: all); releases the rest. */
void dataset_limit(Dataset *ds, int n);
/* mean/std per channel from train (double accumulation; u8 after / 255), copied to test; sets
 * normalize on both. */
void dataset_compute_normalization(Dataset *train, Dataset *test);
/* The data fingerprint (fingerprint.c) into out: one line of "key=value" words naming the
 * source, shapes, sample counts, 64-bit hashes of the training and test labels and samples
 * (after the limits), the normalisation and the orthogonal noise. run.h5 stores it
 * (attribute data_fingerprint) and distill.teacher compares it. size: 1024 is enough for
 * DATASET_MAX_CHANNELS channels. */
void data_fingerprint(const DataSplit *d, const DataConfig *cfg, char *out, size_t size);
/* 0 when the two fingerprints agree; else 1 and what differs, in words, into why. */
int data_fingerprint_diff(const char *ours, const char *theirs, char *why, size_t size);
/* "fashion-mnist/train: 60000 x 1 x 28 x 28 uint8, 10 classes, 47.3 MB" into buf. */
const char *dataset_describe(const Dataset *ds, char *buf, size_t size);

#endif
