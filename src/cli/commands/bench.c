/* ensdistill bench MODEL: times the training step the run uses (nn's step_run: forward, loss,
 * backward, gradient sum, clip, SGD update) of an architecture on random data, and reports
 * images/s (min / median / max over the timed steps) and the achieved GFLOP/s.
 * analysis/bench_torch.py runs the same step in PyTorch. */
#include "ensdistill/alloc.h"
#include "ensdistill/cli.h"
#include "ensdistill/clock.h"
#include "ensdistill/codistill.h"
#include "ensdistill/ensemble.h"
#include "ensdistill/error.h"
#include "ensdistill/gradsum.h"
#include "ensdistill/model.h"
#include "ensdistill/precision.h"
#include "ensdistill/rng.h"
#include "ensdistill/step.h"
#include "ensdistill/threads.h"

#include <malloc.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *bench_usage =
    "usage: ensdistill bench MODEL [--batch B] [--threads T] [--steps N] [--warmup W]\n"
    "                        [--input CxHxW] [--classes K] [--hidden H] [--sum-of L]\n"
    "                        [--random-features] [--filters M] [--noise-coords N] [--profile]\n"
    "                        [--kd] [--clip C] [--grad-sum [--bucket-mb MB] [--no-overlap]]\n"
    "                        [--backend auto|onednn|blas] [--codistill L]\n"
    "                        [--precision fp32|bf16]\n"
    "  MODEL: mlp, cnn, resnet-<6n+2>[-proj], wrn-<6n+4>-<k>, mvconv\n"
    "  times the training step of a run (forward + loss + backward + SGD update with momentum\n"
    "  0.9, Nesterov, weight decay 5e-4) on random data; defaults: batch 128, threads 1, 20\n"
    "  steps after 3 warm-up steps, input 1x28x28 (mlp, cnn), 3x32x32 (resnet, wrn), 10x1x64\n"
    "  (mvconv), 10 classes, cross-entropy, no clipping, no gradient sum.\n"
    "  --kd: the distillation loss (T 4, alpha 0.9) against random teacher logits.\n"
    "  --clip C: clip the gradient norm to C (train.clip_norm).\n"
    "  --grad-sum: sum the gradient over all ranks as ranks_per_model > 1 does: one\n"
    "  all-reduce per bucket of --bucket-mb MiB (parallel.grad_bucket_mb, default 1; 0 =\n"
    "  one bucket), each started as backward finishes it, unless --no-overlap\n"
    "  (parallel.grad_overlap false: all started after backward). mpirun -n 2 ensdistill\n"
    "  bench ... --grad-sum times a 2-rank sum; each rank steps on its own batch, rank 0\n"
    "  prints.\n"
    "  --codistill L: the co-distillation step of mode logits, one member per rank (mpirun -n\n"
    "  L): forward, the members' logits summed in fixed point with one MPI_Allreduce (B x K\n"
    "  int64), the loss against the other members' mean (T 1, weight 0.5), backward, update;\n"
    "  reports the exchange's share of the step.\n"
    "  --profile adds the time per phase, per layer kind and the slowest layers.\n"
    "  --backend picks the conv kernels: oneDNN or im2col + BLAS (auto: oneDNN when the build\n"
    "  has it).\n"
    "  --precision bf16 (train.precision) runs the convolutions, batch norm and the\n"
    "  activations in bf16; refused, saying why, where the CPU lacks avx512_bf16 and AMX.\n"
    "  bench then also measures the bf16 peak (vdpbf16ps chains) and reports the step's\n"
    "  share of it.\n";

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A positive integer option value, or a user error naming the option. */
static int parse_positive(const char *opt, const char *value) {
    char *end;
    long v = strtol(value, &end, 10);
    if (end == value || *end || v < 1 || v > 1000000000)
        ed_fail("bench: %s needs a positive integer, got '%s'", opt, value);
    return (int)v;
}

static double load_average(void) {
    double load = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1.0;
        fclose(f);
    }
    return load;
}

/* What the command line asked for. */
typedef struct {
    const char *arch;
    int batch, threads, steps, warmup, classes, profile;
    int C, H, W; /* input shape; 0: the architecture's usual one */
    int hidden, sum_of, random_features, filters;
    int kd, grad_sum, overlap, codistill;
    double clip, bucket_mb;
    int backend;
    int precision; /* Precision */
    long long noise_coords;
} BenchArgs;

/* An option that takes a value: --name value. */
static void parse_valued(BenchArgs *a, const char *opt, const char *v) {
    if (strcmp(opt, "--batch") == 0) a->batch = parse_positive(opt, v);
    else if (strcmp(opt, "--threads") == 0) a->threads = parse_positive(opt, v);
    else if (strcmp(opt, "--steps") == 0) a->steps = parse_positive(opt, v);
    else if (strcmp(opt, "--warmup") == 0)
        a->warmup = strcmp(v, "0") == 0 ? 0 : parse_positive(opt, v);
    else if (strcmp(opt, "--classes") == 0) a->classes = parse_positive(opt, v);
    else if (strcmp(opt, "--hidden") == 0) a->hidden = parse_positive(opt, v);
    else if (strcmp(opt, "--sum-of") == 0) a->sum_of = parse_positive(opt, v);
    else if (strcmp(opt, "--filters") == 0) a->filters = parse_positive(opt, v);
    else if (strcmp(opt, "--codistill") == 0) a->codistill = parse_positive(opt, v);
    else if (strcmp(opt, "--noise-coords") == 0) a->noise_coords = parse_positive(opt, v);
    else if (strcmp(opt, "--clip") == 0) {
        char *end;
        a->clip = strtod(v, &end);
        if (end == v || *end || !(a->clip > 0.0))
            ed_fail("bench: --clip needs a positive number, got '%s'", v);
    } else if (strcmp(opt, "--bucket-mb") == 0) {
        char *end;
        a->bucket_mb = strtod(v, &end);
        if (end == v || *end || !(a->bucket_mb >= 0.0 && a->bucket_mb <= 1048576.0))
            ed_fail("bench: --bucket-mb needs a number in [0, 1048576], got '%s'", v);
    } else if (strcmp(opt, "--backend") == 0) {
        if (strcmp(v, "auto") == 0) a->backend = MODEL_BACKEND_AUTO;
        else if (strcmp(v, "onednn") == 0) a->backend = MODEL_BACKEND_ONEDNN;
        else if (strcmp(v, "blas") == 0) a->backend = MODEL_BACKEND_BLAS;
        else ed_fail("bench: --backend is auto, onednn or blas, not '%s'", v);
    } else if (strcmp(opt, "--precision") == 0) {
        if (strcmp(v, "fp32") == 0) a->precision = PRECISION_FP32;
        else if (strcmp(v, "bf16") == 0) a->precision = PRECISION_BF16;
        else ed_fail("bench: --precision is fp32 or bf16, not '%s'", v);
    } else if (strcmp(opt, "--input") == 0) {
        char extra;
        if (sscanf(v, "%dx%dx%d%c", &a->C, &a->H, &a->W, &extra) != 3 || a->C < 1 || a->H < 1 ||
            a->W < 1)
            ed_fail("bench: --input needs CxHxW (e.g. 3x32x32), got '%s'", v);
    } else
        ed_fail("bench: unknown option '%s'\n%s", opt, bench_usage);
}

/* The command line into a; the input shape from the parsed architecture unless --input gave
 * one. Returns 1 when it printed the usage (--help), else 0; bad arguments: ed_fail. */
static int parse_args(int argc, char **argv, BenchArgs *a) {
    *a = (BenchArgs){.batch = 128, .threads = 1, .steps = 20, .warmup = 3, .classes = 10,
                     .sum_of = 1, .filters = 8, .overlap = 1, .bucket_mb = 1.0,
                     .backend = MODEL_BACKEND_AUTO};
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            fputs(bench_usage, stdout);
            return 1;
        } else if (strcmp(opt, "--profile") == 0) {
            a->profile = 1;
        } else if (strcmp(opt, "--random-features") == 0) {
            a->random_features = 1;
        } else if (strcmp(opt, "--kd") == 0) {
            a->kd = 1;
        } else if (strcmp(opt, "--grad-sum") == 0) {
            a->grad_sum = 1;
        } else if (strcmp(opt, "--no-overlap") == 0) {
            a->overlap = 0;
        } else if (opt[0] == '-' && opt[1] == '-') {
            if (i + 1 >= argc) ed_fail("bench: %s needs a value\n%s", opt, bench_usage);
            parse_valued(a, opt, argv[++i]);
        } else if (!a->arch) {
            a->arch = opt;
        } else {
            ed_fail("bench: unexpected argument '%s'\n%s", opt, bench_usage);
        }
    }
    if (!a->arch) ed_fail("bench: which model? (e.g. ensdistill bench resnet-20)\n%s", bench_usage);
    ArchName kind;
    char err[256];
    if (model_arch_parse(a->arch, &kind, err, sizeof(err)) != 0) ed_fail("bench: %s", err);
    if (a->C == 0) {
        if (kind.kind == ARCH_RESNET || kind.kind == ARCH_WRN)
            a->C = 3, a->H = 32, a->W = 32;
        else if (kind.kind == ARCH_MVCONV)
            a->C = 10, a->H = 1, a->W = 64;
        else
            a->C = 1, a->H = 28, a->W = 28;
    }
    return 0;
}

/* The model, one random batch (and teacher logits with --kd) and the step that trains on it. */
typedef struct {
    Model *m;
    Step *step;
    GroupSum *gs;
    StepBatch sb;
    float *x, *teacher;
    int64_t *logit_sum, *scratch; /* --codistill: the members' fixed-point sum (+ 1 slot the run
                                   * uses for its stop flag) and codistill_peers' scratch */
    int32_t *labels;
    int64_t *ids;
    int rank, ranks;
} Bench;

static void bench_setup(const BenchArgs *a, Bench *bn) {
    memset(bn, 0, sizeof(*bn));
    MPI_Comm_rank(MPI_COMM_WORLD, &bn->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &bn->ranks);
    if (a->codistill && (a->codistill != bn->ranks || bn->ranks < 2 || a->kd || a->grad_sum))
        ed_fail("bench: --codistill L runs one member per rank: start it with mpirun -n L, L >= 2, "
                "without --kd or --grad-sum (here %d rank(s), L = %d)",
                bn->ranks, a->codistill);
    ModelSpec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.arch, sizeof(spec.arch), "%s", a->arch); /* parse_args checked its length */
    spec.C = a->C;
    spec.H = a->H;
    spec.W = a->W;
    spec.num_classes = a->classes;
    spec.max_batch = a->batch;
    spec.sum_of = a->sum_of;
    spec.random_features = a->random_features;
    spec.hidden = a->hidden;
    spec.mv_filters = a->filters;
    spec.srelu_q = 3.0f;
    spec.srelu_rho = 0.1f;
    spec.init_std = 0.05f;
    spec.mv_noise_coords = a->noise_coords;
    spec.mv_noise_sigma = a->noise_coords > 0 ? 0.5f : 0.0f;
    spec.backend = a->backend;
    spec.precision = a->precision;
    bn->m = model_create(&spec);
    model_init(bn->m, 1, rng_stream(RNG_PURPOSE_TEST, 0, 0, 0));
    model_set_profiling(bn->m, 0);

    const int B = a->batch, K = a->classes;
    size_t in_size = (size_t)a->C * a->H * a->W;
    bn->x = xfloats((size_t)B * in_size);
    bn->teacher = a->kd || a->codistill ? xfloats((size_t)B * K) : NULL;
    if (a->codistill) {
        bn->logit_sum = xcalloc((size_t)B * K + 1, sizeof(int64_t));
        bn->scratch = xcalloc((size_t)B * K, sizeof(int64_t));
    }
    bn->labels = xmalloc((size_t)B * sizeof(int32_t));
    bn->ids = xmalloc((size_t)B * sizeof(int64_t));
    Rng r = rng_make(2, rng_stream(RNG_PURPOSE_TEST, 1, (unsigned)bn->rank, 0));
    for (size_t i = 0; i < (size_t)B * in_size; i++) bn->x[i] = rng_normal(&r);
    for (int b = 0; b < B; b++) {
        bn->labels[b] = (int32_t)rng_below(&r, (uint32_t)K);
        bn->ids[b] = b;
    }
    if (a->kd)
        for (size_t i = 0; i < (size_t)B * K; i++) bn->teacher[i] = 3.0f * rng_normal(&r);
    const size_t bucket = group_sum_bucket_floats(a->bucket_mb);
    bn->gs = a->grad_sum ? group_sum_create(MPI_COMM_WORLD) : NULL;
    StepOptions opt = {.momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1,
                       .clip_norm = a->clip, .temperature = a->codistill ? 1.0f : 4.0f,
                       .alpha = a->codistill ? 0.5f : 0.9f};
    if (bn->gs) opt.sum = group_sum_hooks(bn->gs, bucket, a->overlap);
    bn->step = step_create(bn->m, &opt);
    bn->sb = (StepBatch){.x = bn->x, .labels = bn->labels, .ids = bn->ids,
                         .teacher = bn->teacher, .B = B,
                         .global_B = B * (a->grad_sum ? bn->ranks : 1)};
}

static void bench_free(Bench *bn) {
    free(bn->x);
    free(bn->teacher);
    free(bn->logit_sum);
    free(bn->scratch);
    step_free(bn->step);
    group_sum_free(bn->gs);
    free(bn->labels);
    free(bn->ids);
    model_free(bn->m);
}

/* What the timed steps measured, and the machine around them. */
typedef struct {
    double *seconds, *cpu; /* [steps] wall and process CPU time of each timed step, sorted */
    double loss;           /* of the last step */
    StepTimes part;        /* the timed steps' phases, summed */
    struct mallinfo2 heap_before, heap_after;
    double load_before, load_after;
    struct rusage usage;
    CpuInfo cpu_info;
    double peak;      /* FMA GFLOP/s of one core, measured */
    double bf16_peak; /* --precision bf16: vdpbf16ps GFLOP/s of one core (0 without the ISA) */
    int lanes;
    double exchange, exchange_min; /* --codistill: the logit exchange, summed and fastest */
} Timings;

/* One co-distillation step of mode logits (codistill.c's exchange_logits and peers_mean on one
 * member per rank): forward, the fixed-point sum of every rank's logits, the peers' mean as
 * the teacher, the rest of the step. The exchange is timed into t when times is set. */
static double codistill_step(const BenchArgs *a, Bench *bn, Timings *t, StepTimes *times) {
    const int B = a->batch, K = a->classes;
    const float *logits = step_forward(bn->step, &bn->sb, times);
    double e0 = clock_now_seconds();
    memset(bn->logit_sum, 0, ((size_t)B * K + 1) * sizeof(int64_t));
    if (ensemble_accumulate(bn->logit_sum, NULL, logits, B, K, COMBINE_LOGITS) != 0)
        ed_fail("bench: the logits left the fixed-point range");
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, bn->logit_sum, B * K + 1, MPI_INT64_T, MPI_SUM,
                            MPI_COMM_WORLD));
    codistill_peers(bn->teacher, bn->scratch, bn->logit_sum, logits, B, K, a->codistill);
    if (times) {
        double e = clock_now_seconds() - e0;
        t->exchange += e;
        t->exchange_min = fmin(t->exchange_min, e);
    }
    bn->sb.teacher = bn->teacher;
    return step_finish(bn->step, &bn->sb, logits, 0.01f, NULL, times);
}

/* warmup + steps training steps; the last `steps` timed. */
static void bench_time(const BenchArgs *a, Bench *bn, Timings *t) {
    memset(t, 0, sizeof(*t));
    threads_cpu_describe(&t->cpu_info);
    t->lanes = 1;
    t->peak = threads_measure_fma_peak(0.3, &t->lanes);
    if (a->precision == PRECISION_BF16) t->bf16_peak = threads_measure_bf16_peak(0.3);
    t->exchange_min = INFINITY;
    t->load_before = load_average();
    t->seconds = xmalloc((size_t)a->steps * sizeof(double));
    t->cpu = xmalloc((size_t)a->steps * sizeof(double));
    for (int s = 0; s < a->warmup + a->steps; s++) {
        if (s == a->warmup && a->profile) model_set_profiling(bn->m, 1);
        if (s == a->warmup) t->heap_before = mallinfo2();
        /* ranks start together: the gradient sum then waits only for the slower backward */
        if (a->grad_sum || a->codistill) MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
        StepTimes *times = s >= a->warmup ? &t->part : NULL;
        double c0 = clock_cpu_seconds(), t0 = clock_now_seconds();
        t->loss = a->codistill ? codistill_step(a, bn, t, times)
                               : step_run(bn->step, &bn->sb, 0.01f, NULL, times);
        double t1 = clock_now_seconds();
        if (s >= a->warmup) {
            t->seconds[s - a->warmup] = t1 - t0;
            t->cpu[s - a->warmup] = clock_cpu_seconds() - c0;
        }
    }
    t->load_after = load_average();
    t->heap_after = mallinfo2();
    getrusage(RUSAGE_SELF, &t->usage);
    qsort(t->seconds, (size_t)a->steps, sizeof(double), cmp_double);
    qsort(t->cpu, (size_t)a->steps, sizeof(double), cmp_double);
}

/* The median of n sorted values. */
static double median(const double *v, int n) {
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Rank 0 prints the machine, the setup and what the timed steps measured. */
static void bench_report(const BenchArgs *a, const Bench *bn, const Timings *t) {
    if (bn->rank != 0) return;
    const Model *m = bn->m;
    const int batch = a->batch, steps = a->steps, threads = a->threads;
    const double flops = model_forward_flops(m), step_flops = 3.0 * flops * batch;
    const CpuInfo *ci = &t->cpu_info;
    printf("cpu: %s (family %d model %d stepping %d), %d CPUs online, widest ISA %s; "
           "kernels: %s (%s)\n",
           ci->model, ci->family, ci->model_number, ci->stepping, ci->cpus_online, ci->isa,
           model_backend_name(m), model_backend_isa(m));
    printf("FMA peak %.1f GFLOP/s per core, measured: 12 independent chains of %d-lane fp32 "
           "FMAs for 0.3 s, best 4096-iteration block\n",
           t->peak, t->lanes);
    if (a->precision == PRECISION_BF16)
        printf("bf16 peak %.1f GFLOP/s per core, measured: 12 independent chains of vdpbf16ps "
               "(64 FLOP each) for 0.3 s%s\n",
               t->bf16_peak, t->bf16_peak > 0 ? "" : " (this CPU has no avx512_bf16)");
    printf("bench %s: input %dx%dx%d, %d classes, batch %d, %d thread(s), %zu params (%zu "
           "trainable), %.1f MFLOP forward per sample, %.1f MiB of arenas, %s kernels, %s\n",
           a->arch, a->C, a->H, a->W, a->classes, batch, threads, model_param_count(m),
           model_trainable_count(m), flops / 1e6, model_bytes(m) / 1048576.0,
           model_backend_name(m),
           precision_describe(a->precision));
    printf("step = forward + %s + backward%s%s + sgd_step (momentum 0.9, Nesterov, weight "
           "decay 5e-4); %d warm-up + %d timed steps\n",
           a->kd          ? "distillation loss (T 4, alpha 0.9)"
           : a->codistill ? "logit all-reduce + co-distillation loss (T 1, weight 0.5)"
                          : "cross-entropy",
           a->grad_sum ? " + gradient sum" : "", a->clip > 0 ? " + clip" : "", a->warmup, steps);
    if (a->grad_sum)
        printf("gradient sum over %d rank(s), batch %d on each: %d bucket(s) of up to %.3g "
               "MiB (%s), %s\n",
               bn->ranks, batch, bn->step->n_buckets,
               bn->step->bucket * sizeof(float) / 1048576.0, group_sum_method(),
               a->overlap ? "each started as backward finishes it (overlapped)"
                          : "all started after backward (not overlapped)");
    const double t_min = t->seconds[0], t_med = median(t->seconds, steps),
                 t_max = t->seconds[steps - 1], cpu_med = median(t->cpu, steps);
    const long long heap_delta = (long long)t->heap_after.uordblks -
                                 (long long)t->heap_before.uordblks;
    const StepTimes *part = &t->part;
    printf("seconds/step  min %.4f  median %.4f  max %.4f   (final loss %.4f)\n", t_min, t_med,
           t_max, t->loss / batch);
    printf("images/s      min %.1f  median %.1f  max %.1f\n", batch / t_max, batch / t_med,
           batch / t_min);
    printf("CPU s/step    median %.4f over %d thread(s): %.1f images per CPU-second (steadier "
           "than wall time when the machine is shared)\n",
           cpu_med, threads, batch / cpu_med);
    printf("GFLOP/s       median %.1f  best %.1f   (3 x forward FLOPs per sample, the usual "
           "forward + backward estimate; conv and linear multiply-adds only): %.0f%% of the "
           "FMA peak of %d core(s)\n",
           step_flops / t_med / 1e9, step_flops / t_min / 1e9,
           100.0 * step_flops / t_med / 1e9 / (t->peak * threads), threads);
    if (t->bf16_peak > 0)
        printf("              %.0f%% of the bf16 peak of %d core(s)\n",
               100.0 * step_flops / t_med / 1e9 / (t->bf16_peak * threads), threads);
    printf("memory        peak RSS %.1f MiB; heap in use %.1f MiB before the timed steps, %.1f "
           "after (%+lld bytes; mmapped %zu -> %zu bytes)\n",
           t->usage.ru_maxrss / 1024.0, t->heap_before.uordblks / 1048576.0,
           t->heap_after.uordblks / 1048576.0, heap_delta, t->heap_before.hblkhd,
           t->heap_after.hblkhd);
    /* the 1-minute load average before we started counts other processes only */
    printf("load average  %.2f before, %.2f after, %ld core(s) online%s\n", t->load_before,
           t->load_after, sysconf(_SC_NPROCESSORS_ONLN),
           t->load_before >= 0.5 ? ": other processes were running, timings may be pessimistic"
                                 : "");
    printf("RESULT arch=%s batch=%d threads=%d images_per_s_min=%.2f images_per_s_median=%.2f "
           "images_per_s_max=%.2f gflops_median=%.2f images_per_cpu_s=%.2f backend=%s "
           "kernels_isa=%s fma_peak_gflops=%.1f peak_rss_mib=%.1f arenas_mib=%.1f "
           "heap_delta_bytes=%lld grad_sum_ms=%.3f grad_sum_fraction=%.4f precision=%s "
           "bf16_peak_gflops=%.1f\n",
           a->arch, batch, threads, batch / t_max, batch / t_med, batch / t_min,
           step_flops / t_med / 1e9, batch / cpu_med, model_backend_name(m),
           model_backend_isa(m), t->peak, t->usage.ru_maxrss / 1024.0,
           model_bytes(m) / 1048576.0, heap_delta, 1e3 * part->seconds[STEP_GRAD_SUM] / steps,
           part->seconds[STEP_GRAD_SUM] / fmax(step_times_total(part), 1e-30),
           a->precision == PRECISION_BF16 ? "bf16" : "fp32", t->bf16_peak);
    if (a->codistill) {
        /* the exchange runs between step_forward and step_finish: not in part's phases */
        const double step = step_times_total(part) + t->exchange;
        printf("codistill     %d ranks, one member each: the logit exchange (fixed-point sum of "
               "%d x %d logits, one MPI_Allreduce of %zu bytes, the peers' mean) %.3f ms per "
               "step (fastest %.3f), %.2f%% of the step's %.3f ms (mean; it includes waiting "
               "for the slowest rank's forward)\n",
               a->codistill, batch, a->classes,
               ((size_t)batch * a->classes + 1) * sizeof(int64_t), 1e3 * t->exchange / steps,
               1e3 * t->exchange_min, 100.0 * t->exchange / fmax(step, 1e-30),
               1e3 * step / steps);
    }
    if (a->profile) {
        printf("ms per step (mean): forward %.2f  loss %.2f  backward %.2f  gradient sum %.2f  "
               "clip + sgd_step %.2f\n",
               1e3 * part->seconds[STEP_FORWARD] / steps, 1e3 * part->seconds[STEP_LOSS] / steps,
               1e3 * part->seconds[STEP_BACKWARD] / steps,
               1e3 * part->seconds[STEP_GRAD_SUM] / steps,
               1e3 * part->seconds[STEP_UPDATE] / steps);
        model_print_profile(bn->m, stdout);
    }
    fflush(stdout);
}

int cmd_bench(int argc, char **argv) {
    BenchArgs args;
    if (parse_args(argc, argv, &args)) return 0;
    threads_set(args.threads); /* OpenMP and OpenBLAS, before the model's kernels are made */
    Bench bn;
    bench_setup(&args, &bn);
    Timings t;
    bench_time(&args, &bn, &t);
    bench_report(&args, &bn, &t);
    free(t.seconds);
    free(t.cpu);
    bench_free(&bn);
    return 0;
}
