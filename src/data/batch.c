/* Minibatches: gather samples idx[0..B) into floats, normalise, and augment (random crop with
 * zero padding, random horizontal flip). Runs every step: no allocation, plain loops.
 * Order of operations is torchvision's: pad the raw image with zeros (black), crop, flip, then
 * x = (pixel / 255 - mean[c]) / std[c]; so a padded pixel becomes -mean[c] / std[c]. */
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/rng.h"
#include "ensdistill/threads.h"

#include <string.h>

/* Each sample's draws sit at positions id * AUG_SLOTS + {0, 1, 2} of the augment stream. */
#define AUG_SLOTS 4

/* out[H, W] = scale * in[y + dy, flip ? W-1-x+dx : x+dx] + shift, and shift (= scale * 0 + shift)
 * where the source pixel falls outside the image. */
#define AUG_PLANE(T)                                                                               \
    static void plane_##T(float *out, const T *in, int H, int W, int dy, int dx, int flip,         \
                          float scale, float shift) {                                              \
        for (int y = 0; y < H; y++) {                                                              \
            float *o = out + (size_t)y * W;                                                        \
            int sy = y + dy;                                                                       \
            if (sy < 0 || sy >= H) {                                                               \
                for (int x = 0; x < W; x++)                                                        \
                    o[x] = shift;                                                                  \
                continue;                                                                          \
            }                                                                                      \
            const T *row = in + (size_t)sy * W;                                                    \
            if (!flip) {                                                                           \
                /* o[x] = row[x + dx] for 0 <= x + dx < W */                                       \
                int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? W - dx : W;                               \
                if (x0 > W) x0 = W;                                                                \
                if (x1 < x0) x1 = x0;                                                              \
                for (int x = 0; x < x0; x++)                                                       \
                    o[x] = shift;                                                                  \
                for (int x = x0; x < x1; x++)                                                      \
                    o[x] = scale * (float)row[x + dx] + shift;                                     \
                for (int x = x1; x < W; x++)                                                       \
                    o[x] = shift;                                                                  \
            } else {                                                                               \
                /* o[x] = row[W - 1 - x + dx] for 0 <= W - 1 - x + dx < W */                       \
                int x0 = dx > 0 ? dx : 0, x1 = dx < 0 ? W + dx : W;                                \
                if (x0 > W) x0 = W;                                                                \
                if (x1 < x0) x1 = x0;                                                              \
                for (int x = 0; x < x0; x++)                                                       \
                    o[x] = shift;                                                                  \
                for (int x = x0; x < x1; x++)                                                      \
                    o[x] = scale * (float)row[W - 1 - x + dx] + shift;                             \
                for (int x = x1; x < W; x++)                                                       \
                    o[x] = shift;                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
AUG_PLANE(uint8_t)
AUG_PLANE(float)

/* The shift in [-pad, pad] from a uniform draw u in [0, 1). */
static inline int shift_from(float u, int pad) {
    int s = (int)(u * (float)(2 * pad + 1)) - pad;
    return s > pad ? pad : s;
}

void dataset_make_batch(const Dataset *ds, const int *idx, int B, float *x, int32_t *labels,
                        int64_t *ids, const Augment *aug) {
    const int C = ds->C, H = ds->H, W = ds->W;
    const size_t per = dataset_sample_floats(ds), plane = (size_t)H * W;
    const float base = ds->u8 ? 1.0f / 255.0f : 1.0f;
    /* samples are independent: any thread count gives the same batch */
    ED_PARALLEL_FOR((size_t)B * per >= 32768, for (int b = 0; b < B; b++) {
        int i = idx[b];
        ED_CHECK(i >= 0 && i < ds->N, "%s: sample index %d outside [0, %d)", ds->name, i, ds->N);
        int64_t id = ds->id_base + i;
        if (labels) labels[b] = ds->labels[i];
        if (ids) ids[b] = id;
        int dy = 0, dx = 0, flip = 0;
        if (aug) {
            uint64_t pos = (uint64_t)id * AUG_SLOTS;
            if (aug->crop_pad > 0) {
                dy = shift_from(rng_uniform_at(aug->seed, aug->stream, pos + 0), aug->crop_pad);
                dx = shift_from(rng_uniform_at(aug->seed, aug->stream, pos + 1), aug->crop_pad);
            }
            if (aug->flip) flip = rng_uniform_at(aug->seed, aug->stream, pos + 2) < 0.5f;
        }
        float *out = x + (size_t)b * per;
        if (!ds->normalize && !dy && !dx && !flip && ds->f32) {
            memcpy(out, ds->f32 + (size_t)i * per, per * sizeof(float));
            continue;
        }
        for (int c = 0; c < C; c++) {
            /* x = (pixel * base - mean) / std = pixel * scale + shift */
            float scale = base, shift = 0.0f;
            if (ds->normalize) {
                scale = base / ds->std[c];
                shift = -ds->mean[c] / ds->std[c];
            }
            size_t off = (size_t)i * per + (size_t)c * plane;
            if (ds->u8)
                plane_uint8_t(out + c * plane, ds->u8 + off, H, W, dy, dx, flip, scale, shift);
            else
                plane_float(out + c * plane, ds->f32 + off, H, W, dy, dx, flip, scale, shift);
        }
    });
}
