/* Threads and the machine they run on. One threading runtime per process: OpenMP runs our own
 * loops and oneDNN's kernels; OpenBLAS gets the same count. */
#ifndef ENSDISTILL_THREADS_H
#define ENSDISTILL_THREADS_H

#include <omp.h>
#include <stddef.h>

/* Sets the threads of every kernel of this process (OpenMP and OpenBLAS) to n >= 1. */
void threads_set(int n);
/* The threads the kernels use now. */
int threads_get(void);
/* CPUs this process may run on (its affinity mask, as a launcher's binding leaves it). */
int threads_cpus_given(void);

/* What the timings ran on, for benchmark reports. */
typedef struct {
    char model[128];   /* /proc/cpuinfo "model name", or "unknown" */
    int family, model_number, stepping; /* /proc/cpuinfo "cpu family", "model", "stepping"
                                         * (x86; -1 when absent): "AMD EPYC" alone does not tell
                                         * a Zen 4 (family 25) from a Zen 5 (family 26) */
    char isa[64];      /* the widest of avx512f / avx2 / sse4.2 the CPU offers, or "other" */
    char kernels[64];  /* what the conv kernels use: "onednn:<isa>" or "blas" */
    int cpus_online;
    double fma_peak_gflops; /* one core, measured by threads_measure_fma_peak (0 until then) */
} CpuInfo;
/* Fills model, family, model_number, stepping, isa, cpus_online (kernels and peak are left to
 * the caller). */
void threads_cpu_describe(CpuInfo *info);
/* FP32 multiply-add peak of one core in GFLOP/s, measured: independent FMA chains on the
 * widest vectors this build was compiled for (16 lanes with AVX-512, 8 with AVX2, scalar
 * otherwise) for about `seconds`. Also returns the vector width used in *lanes. */
double threads_measure_fma_peak(double seconds, int *lanes);
/* 1 when the CPU has bf16 dot-product instructions (/proc/cpuinfo: avx512_bf16 or amx_bf16). */
int threads_cpu_has_bf16(void);
/* bf16 multiply-add peak of one core in GFLOP/s, measured like the FMA peak with independent
 * chains of vdpbf16ps (32 bf16 products summed into 16 fp32 lanes: 64 FLOP each); 0 when the
 * CPU lacks avx512_bf16. */
double threads_measure_bf16_peak(double seconds);

/* Our parallel loops: ED_PARALLEL_FOR(cond, for (...) body) runs the for statement on the OpenMP
 * threads (schedule static) when cond holds and more than one thread is set, and on this thread
 * otherwise WITHOUT entering a parallel region: libgomp allocates and frees a team for every
 * region that runs on one thread (an `if` clause that is false included), which would be heap
 * calls in every training step. ED_PARALLEL_FOR_SIMD adds `simd` (and `omp simd` serially).
 * The loop's arithmetic must not depend on the split (src/nn/parallel.h). */
#define ED_PRAGMA_(text) _Pragma(#text)
#define ED_PARALLEL_FOR(cond, ...)                                                                 \
    do {                                                                                           \
        if ((cond) && omp_get_max_threads() > 1) {                                                 \
            ED_PRAGMA_(omp parallel for schedule(static))                                          \
            __VA_ARGS__                                                                            \
        } else {                                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)
#define ED_PARALLEL_FOR_SIMD(cond, ...)                                                            \
    do {                                                                                           \
        if ((cond) && omp_get_max_threads() > 1) {                                                 \
            ED_PRAGMA_(omp parallel for simd schedule(static))                                     \
            __VA_ARGS__                                                                            \
        } else {                                                                                   \
            ED_PRAGMA_(omp simd)                                                                   \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

#endif
