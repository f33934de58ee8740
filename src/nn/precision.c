/* train.precision (precision.h): whether this CPU and build can run it. */
#include "ensdistill/precision.h"

#include "bf16_round.h"
#include "dnnl_backend.h"
#include "ensdistill/model.h"
#include "ensdistill/threads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *precision_describe(Precision p) {
    if (p == PRECISION_FP32) return "fp32";
    return bf16_round_enabled() ? "bf16 mixed precision, emulated by rounding on fp32 kernels"
                                : "bf16 mixed precision";
}

int precision_check(Precision p, const char *arch, char *why, size_t why_size) {
    if (p == PRECISION_FP32) return 0;
    ArchName name;
    if (model_arch_parse(arch, &name, NULL, 0) == 0 &&
        (name.kind == ARCH_MLP || name.kind == ARCH_MVCONV)) {
        snprintf(why, why_size,
                 "train.precision bf16 runs a model's convolutions and their activations in "
                 "bf16, and model.arch %s has none; use train.precision: fp32",
                 arch);
        return -1;
    }
    if (!dnnl_backend_available()) {
        snprintf(why, why_size,
                 "train.precision bf16 runs on oneDNN's kernels, and this build has none "
                 "(install libdnnl-dev and rebuild), or use train.precision: fp32");
        return -1;
    }
    if (bf16_round_enabled()) return 0; /* fp32 kernels between roundings: any CPU */
    char impl[128];
    if (!dnnl_backend_bf16_conv(impl, sizeof(impl))) {
        snprintf(why, why_size,
                 "train.precision bf16: oneDNN has no bf16 convolution on this CPU (it runs %s "
                 "here): bf16 needs avx512_bf16 (AMD Zen 4 and later, Intel Cooper Lake and "
                 "later) or AMX; use train.precision: fp32 (%s=round emulates bf16 by rounding "
                 "on fp32 kernels, to measure its accuracy, not its speed)",
                 dnnl_backend_isa(), PRECISION_EMULATED_ENV);
        return -1;
    }
    const char *env = getenv(PRECISION_EMULATED_ENV);
    if (!threads_cpu_has_bf16() && !(env && strcmp(env, "1") == 0)) {
        snprintf(why, why_size,
                 "train.precision bf16: this CPU lacks the avx512_bf16 instructions (and AMX), "
                 "so oneDNN would emulate bf16 (%s) at several times the time of fp32; use "
                 "train.precision: fp32 (%s=1 runs it anyway, to test the bf16 path; =round "
                 "emulates bf16 by rounding on fp32 kernels, to measure its accuracy)",
                 impl, PRECISION_EMULATED_ENV);
        return -1;
    }
    return 0;
}
