/* The real Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist):
 * counts, shape, label range, known values looked up with Debian's python3 + gzip (first labels
 * 9 0 0 3 0 / test 9 2 1 1 6, train pixel [0, 10, 14] = 228, mean 0.28604, std 0.35302), and the
 * memory the data set holds. Prints SKIP and passes when the data set is not installed. */
#include "ensdistill/dataset.h"

#include "check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

int main(void) {
    if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0 &&
        access(FMNIST_DIR "/train-images-idx3-ubyte", R_OK) != 0) {
        printf("SKIP: %s is not installed (apt-get install dataset-fashion-mnist)\n", FMNIST_DIR);
        return 0;
    }
    DataConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.source = SOURCE_FASHION_MNIST; /* empty path: the default dir */
    cfg.normalize = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    DataSplit s;
    data_load(&s, &cfg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const Dataset *tr = &s.train, *te = &s.test;
    EXPECT(tr->N == 60000 && te->N == 10000, "N %d / %d", tr->N, te->N);
    EXPECT(tr->C == 1 && tr->H == 28 && tr->W == 28 && te->H == 28 && te->W == 28 && tr->K == 10,
           "shape %d x %d x %d, K %d", tr->C, tr->H, tr->W, tr->K);
    int bad = 0, counts[10] = {0};
    for (int i = 0; i < tr->N; i++) {
        if (tr->labels[i] < 0 || tr->labels[i] >= 10)
            bad++;
        else
            counts[tr->labels[i]]++;
    }
    for (int i = 0; i < te->N; i++)
        bad += te->labels[i] < 0 || te->labels[i] >= 10;
    EXPECT(bad == 0, "%d labels out of range", bad);
    for (int c = 0; c < 10; c++)
        EXPECT(counts[c] == 6000, "class %d has %d samples", c, counts[c]);
    int want_tr[5] = {9, 0, 0, 3, 0}, want_te[5] = {9, 2, 1, 1, 6};
    for (int i = 0; i < 5; i++) {
        EXPECT(tr->labels[i] == want_tr[i], "train label %d = %d, expected %d", i, tr->labels[i],
               want_tr[i]);
        EXPECT(te->labels[i] == want_te[i], "test label %d = %d, expected %d", i, te->labels[i],
               want_te[i]);
    }
    EXPECT(tr->u8[10 * 28 + 14] == 228, "pixel [0,10,14] = %d, expected 228", tr->u8[10 * 28 + 14]);
    EXPECT(fabs(tr->mean[0] - 0.2860406) < 1e-5 && fabs(tr->std[0] - 0.3530242) < 1e-5,
           "mean %.7f std %.7f, expected 0.2860406 0.3530242", tr->mean[0], tr->std[0]);
    size_t bytes = dataset_bytes(tr) + dataset_bytes(te);
    EXPECT(bytes == 60000 * 784 + 60000 * 4 + 10000 * 784 + 10000 * 4, "bytes %zu", bytes);
    char l1[200], l2[200];
    printf("%s\n%s\n", dataset_describe(tr, l1, sizeof(l1)), dataset_describe(te, l2, sizeof(l2)));
    printf("train + test in memory: %zu bytes (%.2f MB), loaded in %.2f s\n", bytes, bytes / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    datasplit_free(&s);
    if (failures) return 1;
    printf("Fashion-MNIST checks passed\n");
    return 0;
}
