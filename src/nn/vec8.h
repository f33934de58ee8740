/* Private to src/nn: eight floats (or int32s) as one value, GCC's vector extension, for the few
 * loops GCC does not vectorise as written (a select inside a loop it unrolls first; sums kept
 * in registers across a loop). GCC lowers each operation to what the target has: one AVX
 * register, two SSE ones. Loads and stores go through memcpy: no alignment is assumed. */
#ifndef ENSDISTILL_NN_VEC8_H
#define ENSDISTILL_NN_VEC8_H

#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f v8f_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void v8f_store(float *p, v8f v) {
    memcpy(p, &v, sizeof(v));
}

static inline v8i v8i_load(const int32_t *p) {
    v8i v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* where mask (all ones or all zeros per lane) is set, a; elsewhere b */
static inline v8f v8f_select(v8i mask, v8f a, v8f b) {
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}

#endif
