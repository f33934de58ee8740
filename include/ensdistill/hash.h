/* 64-bit FNV-1a (core): a cheap fingerprint of bytes, for equality checks (the data a run was
 * made on, a model's parameters across the ranks of a group), not for security. */
#ifndef ENSDISTILL_HASH_H
#define ENSDISTILL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The FNV-1a offset basis: the hash of no bytes. */
#define HASH_FNV1A_INIT UINT64_C(1469598103934665603)

/* h continued over data[0..n): start with HASH_FNV1A_INIT. */
uint64_t hash_fnv1a(uint64_t h, const void *data, size_t n);

#endif
