/* Philox-4x32-10 and the draws built on it (see rng.h). Constants from Random123. */
#include "ensdistill/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void rng_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static void block_at(uint64_t seed, uint64_t stream, uint64_t position, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)position, (uint32_t)(position >> 32), (uint32_t)stream,
                       (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    rng_philox4x32_10(ctr, key, out);
}

uint64_t rng_stream(unsigned purpose, unsigned role, unsigned index, uint32_t epoch) {
    const uint64_t p = purpose & ((1u << RNG_STREAM_PURPOSE_BITS) - 1),
                   r = role & ((1u << RNG_STREAM_ROLE_BITS) - 1),
                   i = index & ((1u << RNG_STREAM_INDEX_BITS) - 1);
    return (p << RNG_STREAM_PURPOSE_SHIFT) | (r << RNG_STREAM_ROLE_SHIFT) |
           (i << RNG_STREAM_INDEX_SHIFT) | epoch;
}

Rng rng_make(uint64_t seed, uint64_t stream) {
    Rng r = {.seed = seed, .stream = stream, .position = 0, .used = 4};
    return r;
}

uint32_t rng_u32(Rng *r) {
    if (r->used >= 4) {
        block_at(r->seed, r->stream, r->position++, r->buf);
        r->used = 0;
    }
    return r->buf[r->used++];
}

float rng_uniform(Rng *r) {
    return (float)(rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

double rng_uniform_double(Rng *r) {
    uint64_t hi = rng_u32(r) >> 5, lo = rng_u32(r) >> 6; /* 27 + 26 bits */
    return (double)(hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0);
}

static float box_muller(uint32_t a, uint32_t b) {
    /* u1 in (0, 1] so the log is finite; u2 in [0, 1). */
    double u1 = ((a >> 8) + 1.0) * (1.0 / 16777216.0);
    double u2 = (b >> 8) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float rng_normal(Rng *r) {
    uint32_t a = rng_u32(r), b = rng_u32(r);
    return box_muller(a, b);
}

uint32_t rng_below(Rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection of the biased low range. */
    uint64_t m = (uint64_t)rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void rng_permutation(Rng *r, int n, int *out) {
    for (int i = 0; i < n; i++) out[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

float rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t position) {
    uint32_t b[4];
    block_at(seed, stream, position, b);
    return (float)(b[0] >> 8) * (1.0f / 16777216.0f);
}

float rng_normal_at(uint64_t seed, uint64_t stream, uint64_t position) {
    uint32_t b[4];
    block_at(seed, stream, position, b);
    return box_muller(b[0], b[1]);
}
