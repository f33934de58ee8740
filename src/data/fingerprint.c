/* The data fingerprint: what a run trained on, as one line of "key=value" words, stored in
 * run.h5 so that a run reusing another's teacher (distill.teacher) can refuse other data and
 * say which part differs. */
#include "ensdistill/dataset.h"

#include "ensdistill/error.h"
#include "ensdistill/hash.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FNV_START HASH_FNV1A_INIT

/* The stored samples (uint8 or float32 bytes), then the multi-view tags, continued from h. */
static uint64_t samples_hash(uint64_t h, const Dataset *ds) {
    const size_t n = (size_t)ds->N * ds->C * ds->H * ds->W;
    if (ds->u8) h = hash_fnv1a(h, ds->u8, n);
    if (ds->f32) h = hash_fnv1a(h, ds->f32, n * sizeof(float));
    if (ds->tags) h = hash_fnv1a(h, ds->tags, (size_t)ds->N);
    return h;
}

static uint64_t labels_hash(const Dataset *ds) {
    return hash_fnv1a(FNV_START, ds->labels, (size_t)ds->N * sizeof(int32_t));
}

/* Labels, then the samples: the train_hash / test_hash of every fingerprint so far. */
static uint64_t dataset_hash(const Dataset *ds) {
    return samples_hash(labels_hash(ds), ds);
}

static void append(char *out, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t size, size_t *used, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *used, size - *used, fmt, ap);
    va_end(ap);
    ED_CHECK(n >= 0 && (size_t)n < size - *used, "data fingerprint longer than %zu bytes", size);
    *used += (size_t)n;
}

void data_fingerprint(const DataSplit *d, const DataConfig *cfg, char *out, size_t size) {
    const Dataset *tr = &d->train, *te = &d->test;
    size_t used = 0;
    out[0] = '\0';
    append(out, size, &used, "source=%s shape=%dx%dx%d classes=%d train=%d test=%d",
           config_source_names[cfg->source], tr->C, tr->H, tr->W, tr->K, tr->N, te->N);
    append(out, size, &used, " train_hash=%016llx test_hash=%016llx",
           (unsigned long long)dataset_hash(tr), (unsigned long long)dataset_hash(te));
    /* the same split in two, to say which changed (fingerprints before these have none) */
    append(out, size, &used, " train_labels=%016llx train_samples=%016llx",
           (unsigned long long)labels_hash(tr), (unsigned long long)samples_hash(FNV_START, tr));
    append(out, size, &used, " test_labels=%016llx test_samples=%016llx",
           (unsigned long long)labels_hash(te), (unsigned long long)samples_hash(FNV_START, te));
    append(out, size, &used, " normalize=%d", tr->normalize);
    if (tr->normalize) {
        append(out, size, &used, " mean=");
        for (int c = 0; c < tr->C; c++) append(out, size, &used, "%s%.9g", c ? "," : "", tr->mean[c]);
        append(out, size, &used, " std=");
        for (int c = 0; c < tr->C; c++) append(out, size, &used, "%s%.9g", c ? "," : "", tr->std[c]);
    }
    append(out, size, &used, " orth_noise=%d noise_sigma=%.9g", tr->orth_noise,
           (double)tr->noise_sigma);
}

/* The value of key in a fingerprint line into val ("" when absent). */
static void value_of(const char *line, const char *key, char *val, size_t size) {
    size_t k = strlen(key);
    val[0] = '\0';
    for (const char *p = line; p && *p;) {
        while (*p == ' ') p++;
        if (strncmp(p, key, k) == 0 && p[k] == '=') {
            const char *v = p + k + 1, *end = strchr(v, ' ');
            size_t n = end ? (size_t)(end - v) : strlen(v);
            if (n >= size) n = size - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            return;
        }
        p = strchr(p, ' ');
    }
}

static const char *fingerprint_meaning(const char *key) {
    if (!strcmp(key, "train_labels")) return "the training labels differ";
    if (!strcmp(key, "test_labels")) return "the test labels differ";
    if (!strcmp(key, "train_samples")) return "the training samples differ (their labels do not)";
    if (!strcmp(key, "test_samples")) return "the test samples differ (their labels do not)";
    if (!strcmp(key, "train_hash")) return "the training labels or samples differ";
    if (!strcmp(key, "test_hash")) return "the test labels or samples differ";
    if (!strcmp(key, "train")) return "the number of training samples differs";
    if (!strcmp(key, "test")) return "the number of test samples differs";
    if (!strcmp(key, "mean") || !strcmp(key, "std") || !strcmp(key, "normalize"))
        return "the normalisation differs";
    return "the data differ";
}

int data_fingerprint_diff(const char *ours, const char *theirs, char *why, size_t size) {
    /* the four split hashes are compared only where both fingerprints have them */
    static const char *const keys[] = {"source",      "shape",        "classes",
                                       "train",       "test",         "normalize",
                                       "mean",        "std",          "orth_noise",
                                       "noise_sigma", "train_labels", "train_samples",
                                       "test_labels", "test_samples", "train_hash",
                                       "test_hash"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char a[256], b[256];
        value_of(ours, keys[i], a, sizeof(a));
        value_of(theirs, keys[i], b, sizeof(b));
        int split_hash = strstr(keys[i], "_labels") || strstr(keys[i], "_samples");
        if (split_hash && (!a[0] || !b[0])) continue;
        if (strcmp(a, b) != 0) {
            snprintf(why, size, "%s (%s: %s here, %s there)", fingerprint_meaning(keys[i]),
                     keys[i], a[0] ? a : "none", b[0] ? b : "none");
            return 1;
        }
    }
    return 0;
}
