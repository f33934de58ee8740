/* 64-bit FNV-1a (see hash.h). */
#include "ensdistill/hash.h"

uint64_t hash_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * UINT64_C(1099511628211);
    return h;
}
