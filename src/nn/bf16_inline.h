/* Private to src/nn: bfloat16 elements as the activation arena stores them in train.precision
 * bf16 (the upper 16 bits of an IEEE float). Widening is exact; narrowing rounds to the
 * nearest, ties to even, as oneDNN's reorders do, and keeps a NaN a (quiet) NaN. */
#ifndef ENSDISTILL_BF16_INLINE_H
#define ENSDISTILL_BF16_INLINE_H

#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#endif
