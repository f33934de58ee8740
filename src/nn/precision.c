/* train.precision (precision.h): whether this CPU and build can run it. */
#include "ensdistill/precision.h"

#include "dnnl_backend.h"
#include "ensdistill/threads.h"

#include <stdio.h>

int precision_check(Precision p, char *why, size_t why_size) {
    if (p == PRECISION_FP32) return 0;
    if (!dnnl_backend_available()) {
        snprintf(why, why_size,
                 "train.precision bf16 runs on oneDNN's kernels, and this build has none "
                 "(install libdnnl-dev and rebuild), or use train.precision: fp32");
        return -1;
    }
    if (!threads_cpu_has_bf16()) {
        snprintf(why, why_size,
                 "train.precision bf16: this CPU lacks the avx512_bf16 instructions (and AMX; "
                 "oneDNN runs %s here). oneDNN has no bf16 kernels for it, or emulates them at "
                 "3-4x the time of fp32; use train.precision: fp32",
                 dnnl_backend_isa());
        return -1;
    }
    snprintf(why, why_size,
             "train.precision bf16: this CPU has avx512_bf16, but this build's layers run in "
             "fp32 only (the bf16 kernels are not written yet); use train.precision: fp32");
    return -1;
}
