/* Minibatches and augmentation: without augmentation a batch is the samples / 255 (or
 * normalised); a random crop is exactly a shift by (dy, dx) in [-pad, pad] with zeros filled in;
 * a flip is exactly a mirror; every shift and both flips occur; the same (seed, stream, sample id)
 * gives the same result whatever the batch position or order; another epoch's stream or another
 * seed gives other results; padded pixels become -mean/std when normalised; float data too.
 * Also times a CIFAR-sized batch of 128. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"

#include "ensdistill/rng.h"
#include <stdarg.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

enum { N = 64, C = 3, H = 5, W = 6, PAD = 2 };

static Dataset make_u8(void) {
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    snprintf(ds.name, sizeof(ds.name), "synthetic");
    ds.N = N, ds.C = C, ds.H = H, ds.W = W, ds.K = 10;
    ds.u8 = xmalloc((size_t)N * C * H * W);
    ds.labels = xmalloc(N * sizeof(int32_t));
    for (int i = 0; i < N * C * H * W; i++)
        ds.u8[i] = (uint8_t)(1 + (i * 37) % 250); /* no 0 */
    for (int i = 0; i < N; i++)
        ds.labels[i] = i % 10;
    ds.id_base = 1000;
    return ds;
}

/* Pixel (c, y, x) of sample i after shift (dy, dx) and optional flip, before scaling: -1 = pad. */
static int ref_pixel(const Dataset *ds, int i, int c, int y, int x, int dy, int dx, int flip) {
    int sx = flip ? W - 1 - x + dx : x + dx, sy = y + dy;
    if (sy < 0 || sy >= H || sx < 0 || sx >= W) return -1;
    return ds->u8[(((size_t)i * C + c) * H + sy) * W + sx];
}

/* Finds the (dy, dx, flip) that reproduces out[C*H*W] (to float rounding; pads exactly 0);
 * returns 0 if none. */
static int find_transform(const Dataset *ds, int i, const float *out, int *rdy, int *rdx,
                          int *rflip) {
    for (int flip = 0; flip < 2; flip++)
        for (int dy = -PAD; dy <= PAD; dy++)
            for (int dx = -PAD; dx <= PAD; dx++) {
                int match = 1;
                for (int c = 0; c < C && match; c++)
                    for (int y = 0; y < H && match; y++)
                        for (int x = 0; x < W && match; x++) {
                            int v = ref_pixel(ds, i, c, y, x, dy, dx, flip);
                            float want = v < 0 ? 0.0f : v / 255.0f;
                            match = fabsf(out[(c * H + y) * W + x] - want) < 1e-6f;
                        }
                if (match) {
                    *rdy = dy, *rdx = dx, *rflip = flip;
                    return 1;
                }
            }
    return 0;
}

static void test_plain(Dataset *ds) {
    int idx[3] = {5, 0, 63};
    float x[3 * C * H * W];
    int32_t lab[3];
    int64_t ids[3];
    dataset_make_batch(ds, idx, 3, x, lab, ids, NULL);
    int bad = 0;
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < C * H * W; j++)
            bad += fabsf(x[b * C * H * W + j] - ds->u8[(size_t)idx[b] * C * H * W + j] / 255.0f) >
                   1e-6f;
    EXPECT(bad == 0, "plain batch: %d values differ from pixel / 255", bad);
    EXPECT(lab[0] == 5 && lab[2] == 3 && ids[0] == 1005 && ids[1] == 1000 && ids[2] == 1063,
           "labels %d %d ids %lld %lld", lab[0], lab[2], (long long)ids[0], (long long)ids[2]);
    report("plain batch: pixels / 255, labels, ids = id_base + index\n");
}

static void test_crop_flip(Dataset *ds) {
    int idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = i;
    float *x = xfloats((size_t)N * C * H * W), *y = xfloats((size_t)N * C * H * W);
    Augment aug = {
        .crop_pad = PAD, .flip = 1, .seed = 42, .stream = rng_stream(RNG_PURPOSE_AUGMENT, 1, 3, 0)};
    dataset_make_batch(ds, idx, N, x, NULL, NULL, &aug);
    int seen[2 * PAD + 1][2 * PAD + 1] = {{0}}, flips = 0, unmatched = 0;
    int tdy[N], tdx[N], tfl[N];
    for (int i = 0; i < N; i++) {
        if (!find_transform(ds, i, x + (size_t)i * C * H * W, &tdy[i], &tdx[i], &tfl[i])) {
            unmatched++;
            continue;
        }
        seen[tdy[i] + PAD][tdx[i] + PAD]++;
        flips += tfl[i];
    }
    EXPECT(unmatched == 0, "%d samples are not a shift with zeros and/or a mirror", unmatched);
    int shifts_seen = 0;
    for (int a = 0; a < 2 * PAD + 1; a++)
        for (int b = 0; b < 2 * PAD + 1; b++)
            shifts_seen += seen[a][b] > 0;
    /* 64 draws over 25 shifts: each is missed with probability (24/25)^64 = 7%, so demand 18 */
    EXPECT(shifts_seen >= 18, "only %d of 25 shifts occur in 64 samples", shifts_seen);
    EXPECT(flips >= 16 && flips <= 48, "%d of 64 samples flipped", flips);
    report("crop + flip: every sample is a zero-filled shift and/or a mirror (%d shifts seen, "
           "%d flips)\n",
           shifts_seen, flips);

    /* same key, other batch order and position: the same result per sample */
    int rev[N];
    for (int i = 0; i < N; i++)
        rev[i] = N - 1 - i;
    dataset_make_batch(ds, rev, N, y, NULL, NULL, &aug);
    int diff = 0;
    for (int i = 0; i < N; i++)
        diff += memcmp(x + (size_t)i * C * H * W, y + (size_t)(N - 1 - i) * C * H * W,
                       sizeof(float) * C * H * W) != 0;
    EXPECT(diff == 0, "%d samples change with their batch position", diff);
    /* a shard: samples 10..19 alone */
    dataset_make_batch(ds, idx + 10, 10, y, NULL, NULL, &aug);
    EXPECT(memcmp(x + (size_t)10 * C * H * W, y, sizeof(float) * 10 * C * H * W) == 0,
           "a shard of the batch differs");
    /* another epoch: other transforms */
    Augment aug2 = aug;
    aug2.stream = rng_stream(RNG_PURPOSE_AUGMENT, 1, 3, 1);
    dataset_make_batch(ds, idx, N, y, NULL, NULL, &aug2);
    int changed = 0;
    for (int i = 0; i < N; i++)
        changed += memcmp(x + (size_t)i * C * H * W, y + (size_t)i * C * H * W,
                          sizeof(float) * C * H * W) != 0;
    EXPECT(changed > N / 2, "next epoch: only %d of %d samples transformed differently", changed,
           N);
    /* another seed (model) */
    aug2 = aug;
    aug2.seed = 43;
    dataset_make_batch(ds, idx, N, y, NULL, NULL, &aug2);
    int changed_seed = 0;
    for (int i = 0; i < N; i++)
        changed_seed += memcmp(x + (size_t)i * C * H * W, y + (size_t)i * C * H * W,
                               sizeof(float) * C * H * W) != 0;
    EXPECT(changed_seed > N / 2, "other seed: only %d samples differ", changed_seed);
    report("same key same result (any order, any shard); other epoch %d/%d and other seed "
           "%d/%d differ\n",
           changed, N, changed_seed, N);

    /* crop only: never flipped; flip only: identity or exact mirror, both occur */
    Augment crop = aug, flip = aug;
    crop.flip = 0;
    flip.crop_pad = 0;
    dataset_make_batch(ds, idx, N, x, NULL, NULL, &crop);
    dataset_make_batch(ds, idx, N, y, NULL, NULL, &flip);
    int bad = 0, mirrored = 0, nonzero_shift = 0;
    for (int i = 0; i < N; i++) {
        int dy, dx, fl;
        if (!find_transform(ds, i, x + (size_t)i * C * H * W, &dy, &dx, &fl) || fl)
            bad++;
        else
            nonzero_shift += dy || dx;
        if (!find_transform(ds, i, y + (size_t)i * C * H * W, &dy, &dx, &fl) || dy || dx)
            bad++;
        else
            mirrored += fl;
    }
    EXPECT(bad == 0 && mirrored > 0 && mirrored < N && nonzero_shift > N / 2,
           "crop only / flip only: %d bad, %d mirrored, %d shifted", bad, mirrored, nonzero_shift);
    report("crop only is a pure shift (%d shifted), flip only a pure mirror (%d mirrored)\n",
           nonzero_shift, mirrored);

    /* normalised: the padded pixels are (0 - mean) / std, the others (p/255 - mean) / std */
    ds->normalize = 1;
    for (int c = 0; c < C; c++)
        ds->mean[c] = 0.2f + 0.1f * c, ds->std[c] = 0.5f - 0.1f * c;
    dataset_make_batch(ds, idx, N, y, NULL, NULL, &crop);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        int dy, dx, fl;
        find_transform(ds, i, x + (size_t)i * C * H * W, &dy, &dx, &fl); /* from the crop batch */
        for (int c = 0; c < C; c++)
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++) {
                    int v = ref_pixel(ds, i, c, yy, xx, dy, dx, 0);
                    double want = ((v < 0 ? 0 : v / 255.0) - ds->mean[c]) / ds->std[c];
                    worst =
                        fmax(worst, fabs(y[(size_t)i * C * H * W + (c * H + yy) * W + xx] - want));
                }
    }
    EXPECT(worst < 1e-5, "normalised crop: max error %g", worst);
    report("normalised crop: padded pixels at -mean/std, max error %.1e\n", worst);
    ds->normalize = 0;

    /* float data: the same transforms as the uint8 data holding the same values */
    Dataset fd = *ds;
    fd.u8 = NULL;
    fd.f32 = xfloats((size_t)N * C * H * W);
    for (size_t j = 0; j < (size_t)N * C * H * W; j++)
        fd.f32[j] = ds->u8[j] / 255.0f;
    dataset_make_batch(ds, idx, N, x, NULL, NULL, &aug);
    dataset_make_batch(&fd, idx, N, y, NULL, NULL, &aug);
    worst = 0;
    for (size_t j = 0; j < (size_t)N * C * H * W; j++)
        worst = fmax(worst, fabs(x[j] - y[j]));
    EXPECT(worst < 1e-6, "float data: max difference to uint8 %g", worst);
    report("float data augmented like uint8 data (max difference %.1e)\n", worst);
    free(fd.f32);
    free(x);
    free(y);
}

static void bench_cifar_batch(void) {
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    ds.N = 1024, ds.C = 3, ds.H = 32, ds.W = 32, ds.K = 10;
    ds.u8 = xmalloc((size_t)1024 * 3072);
    ds.labels = xcalloc(1024, sizeof(int32_t));
    for (size_t j = 0; j < (size_t)1024 * 3072; j++)
        ds.u8[j] = (uint8_t)(j * 131);
    ds.normalize = 1;
    for (int c = 0; c < 3; c++)
        ds.mean[c] = 0.5f, ds.std[c] = 0.25f;
    int idx[128];
    float *x = xfloats((size_t)128 * 3072);
    Augment aug = {.crop_pad = 4, .flip = 1, .seed = 1, .stream = 5};
    struct timespec t0, t1;
    int reps = 200;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++) {
        for (int b = 0; b < 128; b++)
            idx[b] = (r * 128 + b * 7) % 1024;
        aug.stream = (uint64_t)r;
        dataset_make_batch(&ds, idx, 128, x, NULL, NULL, &aug);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("info CIFAR batch of 128 with crop 4 + flip + normalise: %.1f us (%.0f images/s)\n",
           1e6 * s / reps, 128.0 * reps / s);
    free(x);
    dataset_free(&ds);
}

int main(void) {
    Dataset ds = make_u8();
    test_plain(&ds);
    test_crop_flip(&ds);
    dataset_free(&ds);
    bench_cifar_batch();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all batch / augmentation tests passed\n");
    return 0;
}
