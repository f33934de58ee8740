/* Threads (threads.h): OpenMP and OpenBLAS set together; the CPUs a launcher gave this process;
 * the CPU's name and a measured FMA peak for benchmark reports. */
#define _GNU_SOURCE
#include "ensdistill/threads.h"
#include "ensdistill/clock.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void threads_set(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int threads_get(void) {
    return omp_get_max_threads();
}

int threads_cpus_given(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void threads_cpu_describe(CpuInfo *info) {
    memset(info, 0, sizeof(*info));
    snprintf(info->model, sizeof(info->model), "unknown");
    snprintf(info->isa, sizeof(info->isa), "other");
    info->family = info->model_number = info->stepping = -1;
    info->cpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[4096];
    int have_model = 0, have_flags = 0;
    while (fgets(line, sizeof(line), f) && !(have_model && have_flags)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *value = colon + 1 + (colon[1] == ' ');
        value[strcspn(value, "\n")] = '\0';
        size_t key_len = strcspn(line, "\t:"); /* keys are padded with tabs before the colon */
        int *number = key_len == 10 && strncmp(line, "cpu family", 10) == 0 ? &info->family
                      : key_len == 5 && strncmp(line, "model", 5) == 0     ? &info->model_number
                      : key_len == 8 && strncmp(line, "stepping", 8) == 0  ? &info->stepping
                                                                            : NULL;
        if (number) {
            if (*number < 0) sscanf(value, "%d", number);
        } else if (!have_model && strncmp(line, "model name", 10) == 0) {
            snprintf(info->model, sizeof(info->model), "%s", value);
            have_model = 1;
        } else if (!have_flags && strncmp(line, "flags", 5) == 0) {
            /* " flag " with spaces around, so avx512f does not match avx512fp16 */
            char padded[4096 + 2];
            snprintf(padded, sizeof(padded), " %s ", value);
            const char *isa = strstr(padded, " avx512f ")  ? "avx512f"
                              : strstr(padded, " avx2 ")   ? "avx2"
                              : strstr(padded, " sse4_2 ") ? "sse4.2"
                                                           : "other";
            snprintf(info->isa, sizeof(info->isa), "%s", isa);
            have_flags = 1;
        }
    }
    fclose(f);
}

#if defined(__AVX512F__)
#include <immintrin.h>
#define LANES 16
typedef __m512 vec;
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VSET(x) _mm512_set1_ps(x)
static float vsum(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LANES 8
typedef __m256 vec;
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VSET(x) _mm256_set1_ps(x)
static float vsum(vec v) {
    float t[8];
    _mm256_storeu_ps(t, v);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
#define LANES 1
typedef float vec;
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VSET(x) (x)
static float vsum(vec v) { return v; }
#endif

/* 12 independent chains hide the FMA latency (4 cycles) on two FMA pipes. */
enum { CHAINS = 12, INNER = 4096 };
double threads_measure_fma_peak(double seconds, int *lanes) {
    vec acc[CHAINS];
    for (int k = 0; k < CHAINS; k++) acc[k] = VSET(0.001f * k);
    const vec a = VSET(0.999999f), b = VSET(1e-7f);
    double best = 0.0, t_end = clock_now_seconds() + seconds;
    while (clock_now_seconds() < t_end) {
        double t0 = clock_now_seconds();
        for (int i = 0; i < INNER; i++)
            for (int k = 0; k < CHAINS; k++) acc[k] = VFMA(acc[k], a, b);
        double dt = clock_now_seconds() - t0;
        double gflops = 2.0 * LANES * CHAINS * INNER / dt / 1e9;
        if (gflops > best) best = gflops;
    }
    float sink = 0.0f;
    for (int k = 0; k < CHAINS; k++) sink += vsum(acc[k]);
    if (sink == 12345.678f) printf(" "); /* keeps the chains alive */
    if (lanes) *lanes = LANES;
    return best;
}

int threads_cpu_has_bf16(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[8192];
    int found = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "flags", 5) != 0) continue;
        char padded[8192 + 2];
        line[strcspn(line, "\n")] = '\0';
        snprintf(padded, sizeof(padded), " %s ", strchr(line, ':') ? strchr(line, ':') + 1 : "");
        found = strstr(padded, " avx512_bf16 ") || strstr(padded, " amx_bf16 ");
        break;
    }
    fclose(f);
    return found;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* vdpbf16ps: acc[16 fp32] += sum of the 32 bf16 products of a and b, pairwise. Compiled for
 * avx512bf16 whatever -march says; called only where the CPU has it. */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_peak(double seconds) {
    __m512 acc[CHAINS];
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_set1_ps(0.001f * k);
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-7f), _mm512_set1_ps(1e-7f));
    double best = 0.0, t_end = clock_now_seconds() + seconds;
    while (clock_now_seconds() < t_end) {
        double t0 = clock_now_seconds();
        for (int i = 0; i < INNER; i++)
            for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_dpbf16_ps(acc[k], a, b);
        double dt = clock_now_seconds() - t0;
        double gflops = 64.0 * CHAINS * INNER / dt / 1e9;
        if (gflops > best) best = gflops;
    }
    float sink = 0.0f;
    for (int k = 0; k < CHAINS; k++) sink += _mm512_reduce_add_ps(acc[k]);
    if (sink == 12345.678f) printf(" "); /* keeps the chains alive */
    return best;
}
#endif

double threads_measure_bf16_peak(double seconds) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (threads_cpu_has_bf16() && __builtin_cpu_supports("avx512f")) return bf16_peak(seconds);
#endif
    (void)seconds;
    return 0.0;
}
