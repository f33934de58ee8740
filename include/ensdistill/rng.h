/* Counter-based random numbers: Philox-4x32-10 (Salmon et al., SC'11).
 * A draw is a pure function of (seed, stream, position), so a result never depends on which
 * rank draws it or how many ranks there are. Streams name what the numbers are for: pack them
 * with rng_stream(purpose, role, index, epoch). The Rng struct is plain data: copy it into a
 * checkpoint and back to resume the exact sequence. */
#ifndef ENSDISTILL_RNG_H
#define ENSDISTILL_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t seed;     /* the key */
    uint64_t stream;   /* high half of the counter */
    uint64_t position; /* low half of the counter: the next block of four words */
    uint32_t buf[4];   /* the current block */
    uint32_t used;     /* words of buf already handed out (4 = empty) */
} Rng;

/* What a stream is used for (the top byte of a stream). */
enum {
    RNG_PURPOSE_INIT = 1,    /* weight initialisation */
    RNG_PURPOSE_ORDER = 2,   /* minibatch order, one stream per epoch */
    RNG_PURPOSE_AUGMENT = 3, /* per-sample augmentation, keyed by epoch */
    RNG_PURPOSE_DATA = 4,    /* synthetic data generation */
    RNG_PURPOSE_TEST = 5     /* tests and benchmarks */
};

/* A stream's 64 bits, high to low: purpose (8), role (8), index (16), epoch or any sub-key
 * (32). Wider values are truncated to their field. */
#define RNG_STREAM_EPOCH_BITS 32
#define RNG_STREAM_INDEX_BITS 16
#define RNG_STREAM_ROLE_BITS 8
#define RNG_STREAM_PURPOSE_BITS 8
#define RNG_STREAM_INDEX_SHIFT RNG_STREAM_EPOCH_BITS
#define RNG_STREAM_ROLE_SHIFT (RNG_STREAM_INDEX_SHIFT + RNG_STREAM_INDEX_BITS)
#define RNG_STREAM_PURPOSE_SHIFT (RNG_STREAM_ROLE_SHIFT + RNG_STREAM_ROLE_BITS)
_Static_assert(RNG_STREAM_PURPOSE_SHIFT + RNG_STREAM_PURPOSE_BITS == 64,
               "the stream fields fill 64 bits exactly");
uint64_t rng_stream(unsigned purpose, unsigned role, unsigned index, uint32_t epoch);

/* The ten-round Philox-4x32 bijection: out = philox(counter, key). */
void rng_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

Rng rng_make(uint64_t seed, uint64_t stream);
uint32_t rng_u32(Rng *r);
/* Uniform in [0, 1), 24 random bits. */
float rng_uniform(Rng *r);
/* Uniform in [0, 1), 53 random bits. */
double rng_uniform_double(Rng *r);
/* Standard normal (Box-Muller on two fresh uniforms; one normal per call). */
float rng_normal(Rng *r);
/* Uniform integer in [0, n), without modulo bias. */
uint32_t rng_below(Rng *r, uint32_t n);
/* out[0..n) = a uniformly random permutation of 0..n-1 (Fisher-Yates). */
void rng_permutation(Rng *r, int n, int *out);

/* Stateless draws at one position of a stream: the same value at any time, on any rank. */
float rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t position);
float rng_normal_at(uint64_t seed, uint64_t stream, uint64_t position);

#endif
