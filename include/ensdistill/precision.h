/* train.precision: whether this CPU and build can train in it. fp32 everywhere, or bf16 mixed
 * precision: the convolutions (forward, backward data, backward weights) and batch norm in bf16
 * on oneDNN, the activations between the convolutions (pooling, shortcuts, ReLU, residual adds)
 * stored in bf16; fp32 for the master weights, momentum, every gradient, the linear layers, the
 * losses, logits and collectives. */
#ifndef ENSDISTILL_PRECISION_H
#define ENSDISTILL_PRECISION_H

#include "ensdistill/nn_kinds.h" /* Precision */

#include <stddef.h>

/* The environment variable that lets bf16 run where oneDNN only emulates it (a CPU without
 * avx512_bf16 and AMX). "1": on oneDNN's bf16 kernels, slow where the CPU lacks the
 * instructions, for testing the bf16 path on such a CPU. "round": on the fp32 kernels with every
 * bf16 primitive's rounding applied (src/nn/bf16_round.h), on any CPU, at about fp32's speed,
 * for measuring bf16's accuracy where no bf16 unit is at hand. */
#define PRECISION_EMULATED_ENV "ENSDISTILL_BF16_EMULATED"

/* 0 when this process can train model `arch` in `p`; -1 with the reason in why, naming what is
 * missing and what to use instead:
 * - bf16 needs oneDNN and a model with convolutions (cnn, resnet, wrn; not mlp or mvconv);
 * - oneDNN must have a bf16 convolution on this CPU (none without AVX-512);
 * - and the CPU must have avx512_bf16 or AMX: elsewhere oneDNN emulates bf16 at several times
 *   the time of fp32, which no one wants by accident (PRECISION_EMULATED_ENV=1 allows it).
 * PRECISION_EMULATED_ENV=round skips the last two: no bf16 primitive runs. */
int precision_check(Precision p, const char *arch, char *why, size_t why_size);

/* How precision p runs in this process, for logs: "fp32", "bf16 mixed precision", or, with
 * PRECISION_EMULATED_ENV=round, "bf16 mixed precision, emulated by rounding on fp32 kernels". */
const char *precision_describe(Precision p);

#endif
