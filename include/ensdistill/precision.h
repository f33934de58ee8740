/* The arithmetic a model trains in (train.precision). fp32 everywhere, or bf16 mixed precision:
 * the layers in bf16 on CPUs with bf16 instructions, with fp32 master weights, momentum, weight
 * gradients, losses, logits and collectives. */
#ifndef ENSDISTILL_PRECISION_H
#define ENSDISTILL_PRECISION_H

#include <stddef.h>

typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 } Precision;

/* 0 when this process can train in `p` on this CPU; -1 with the reason in why (naming the
 * instruction set that is missing, and what to use instead). bf16 needs oneDNN's kernels and a
 * CPU with avx512_bf16 (or AMX): without it oneDNN either has no bf16 kernels (AVX2-only CPUs)
 * or emulates them at 3-4x the time of fp32 (AVX-512 without bf16), which no one wants by
 * accident. */
int precision_check(Precision p, char *why, size_t why_size);

#endif
