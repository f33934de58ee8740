/* ensdistill bench MODEL: times the training step the run uses (nn's step_run: forward, loss,
 * backward, gradient sum, clip, SGD update) of an architecture on random data, and reports
 * images/s (min / median / max over the timed steps) and the achieved GFLOP/s.
 * analysis/bench_torch.py runs the same step in PyTorch. */
#include "ensdistill/alloc.h"
#include "ensdistill/cli.h"
#include "ensdistill/error.h"
#include "ensdistill/gradsum.h"
#include "ensdistill/model.h"
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
    "                        [--backend auto|onednn|blas]\n"
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
    "  --profile adds the time per phase, per layer kind and the slowest layers.\n"
    "  --backend picks the conv kernels: oneDNN or im2col + BLAS (auto: oneDNN when the build\n"
    "  has it).\n";

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU time of the whole process (all threads): on a busy machine it still measures the work. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

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

int cmd_bench(int argc, char **argv) {
    const char *arch = NULL;
    int batch = 128, threads = 1, steps = 20, warmup = 3, classes = 10, profile = 0;
    int C = 0, H = 0, W = 0, hidden = 0, sum_of = 1, random_features = 0, filters = 8;
    int kd = 0, grad_sum = 0, overlap = 1;
    double clip = 0.0, bucket_mb = 1.0;
    int backend = MODEL_BACKEND_AUTO;
    long long noise_coords = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(bench_usage, stdout);
            return 0;
        } else if (strcmp(a, "--profile") == 0) {
            profile = 1;
        } else if (strcmp(a, "--random-features") == 0) {
            random_features = 1;
        } else if (strcmp(a, "--kd") == 0) {
            kd = 1;
        } else if (strcmp(a, "--grad-sum") == 0) {
            grad_sum = 1;
        } else if (strcmp(a, "--no-overlap") == 0) {
            overlap = 0;
        } else if (a[0] == '-' && a[1] == '-') {
            if (!v) ed_fail("bench: %s needs a value\n%s", a, bench_usage);
            i++;
            if (strcmp(a, "--batch") == 0) batch = parse_positive(a, v);
            else if (strcmp(a, "--threads") == 0) threads = parse_positive(a, v);
            else if (strcmp(a, "--steps") == 0) steps = parse_positive(a, v);
            else if (strcmp(a, "--warmup") == 0) warmup = strcmp(v, "0") == 0 ? 0 : parse_positive(a, v);
            else if (strcmp(a, "--classes") == 0) classes = parse_positive(a, v);
            else if (strcmp(a, "--hidden") == 0) hidden = parse_positive(a, v);
            else if (strcmp(a, "--sum-of") == 0) sum_of = parse_positive(a, v);
            else if (strcmp(a, "--filters") == 0) filters = parse_positive(a, v);
            else if (strcmp(a, "--noise-coords") == 0) noise_coords = parse_positive(a, v);
            else if (strcmp(a, "--clip") == 0) {
                char *end;
                clip = strtod(v, &end);
                if (end == v || *end || !(clip > 0.0))
                    ed_fail("bench: --clip needs a positive number, got '%s'", v);
            } else if (strcmp(a, "--bucket-mb") == 0) {
                char *end;
                bucket_mb = strtod(v, &end);
                if (end == v || *end || !(bucket_mb >= 0.0 && bucket_mb <= 1048576.0))
                    ed_fail("bench: --bucket-mb needs a number in [0, 1048576], got '%s'", v);
            } else if (strcmp(a, "--backend") == 0) {
                if (strcmp(v, "auto") == 0) backend = MODEL_BACKEND_AUTO;
                else if (strcmp(v, "onednn") == 0) backend = MODEL_BACKEND_ONEDNN;
                else if (strcmp(v, "blas") == 0) backend = MODEL_BACKEND_BLAS;
                else ed_fail("bench: --backend is auto, onednn or blas, not '%s'", v);
            } else if (strcmp(a, "--input") == 0) {
                char extra;
                if (sscanf(v, "%dx%dx%d%c", &C, &H, &W, &extra) != 3 || C < 1 || H < 1 || W < 1)
                    ed_fail("bench: --input needs CxHxW (e.g. 3x32x32), got '%s'", v);
            } else
                ed_fail("bench: unknown option '%s'\n%s", a, bench_usage);
        } else if (!arch) {
            arch = a;
        } else {
            ed_fail("bench: unexpected argument '%s'\n%s", a, bench_usage);
        }
    }
    if (!arch) ed_fail("bench: which model? (e.g. ensdistill bench resnet-20)\n%s", bench_usage);
    ArchName kind;
    char err[256];
    if (model_arch_parse(arch, &kind, err, sizeof(err)) != 0) ed_fail("bench: %s", err);
    if (C == 0) {
        if (kind.kind == ARCH_RESNET || kind.kind == ARCH_WRN)
            C = 3, H = 32, W = 32;
        else if (kind.kind == ARCH_MVCONV)
            C = 10, H = 1, W = 64;
        else
            C = 1, H = 28, W = 28;
    }

    threads_set(threads);
    ModelSpec spec;
    memset(&spec, 0, sizeof(spec));
    if (strlen(arch) >= sizeof(spec.arch)) ed_fail("bench: model name '%s' is too long", arch);
    snprintf(spec.arch, sizeof(spec.arch), "%s", arch);
    spec.C = C;
    spec.H = H;
    spec.W = W;
    spec.num_classes = classes;
    spec.max_batch = batch;
    spec.sum_of = sum_of;
    spec.random_features = random_features;
    spec.hidden = hidden;
    spec.mv_filters = filters;
    spec.srelu_q = 3.0f;
    spec.srelu_rho = 0.1f;
    spec.init_std = 0.05f;
    spec.mv_noise_coords = noise_coords;
    spec.mv_noise_sigma = noise_coords > 0 ? 0.5f : 0.0f;
    spec.backend = backend;
    Model *m = model_create(&spec);
    model_init(m, 1, rng_stream(RNG_PURPOSE_TEST, 0, 0, 0));
    model_set_profiling(m, 0);

    int rank = 0, ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    size_t in_size = (size_t)C * H * W;
    float *x = xfloats((size_t)batch * in_size);
    float *teacher = kd ? xfloats((size_t)batch * classes) : NULL;
    int32_t *labels = xmalloc((size_t)batch * sizeof(int32_t));
    int64_t *ids = xmalloc((size_t)batch * sizeof(int64_t));
    Rng r = rng_make(2, rng_stream(RNG_PURPOSE_TEST, 1, (unsigned)rank, 0));
    for (size_t i = 0; i < (size_t)batch * in_size; i++) x[i] = rng_normal(&r);
    for (int b = 0; b < batch; b++) {
        labels[b] = (int32_t)rng_below(&r, (uint32_t)classes);
        ids[b] = b;
    }
    if (teacher)
        for (size_t i = 0; i < (size_t)batch * classes; i++) teacher[i] = 3.0f * rng_normal(&r);
    const size_t bucket = group_sum_bucket_floats(bucket_mb);
    GroupSum *gs = grad_sum ? group_sum_create(MPI_COMM_WORLD) : NULL;
    StepOptions opt = {.momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1, .clip_norm = clip,
                       .temperature = 4.0f, .alpha = 0.9f,
                       .sum = gs ? group_sum_hooks(gs, bucket, overlap) : (GradSum){0}};
    Step *step = step_create(m, &opt);
    StepBatch sb = {.x = x, .labels = labels, .ids = ids, .teacher = teacher, .B = batch,
                    .global_B = batch * (grad_sum ? ranks : 1)};

    double flops = model_forward_flops(m);
    CpuInfo cpu_info;
    threads_cpu_describe(&cpu_info);
    int lanes = 1;
    const double peak = threads_measure_fma_peak(0.3, &lanes);
    double load_before = load_average();
    if (rank == 0) {
        printf("cpu: %s (family %d model %d stepping %d), %d CPUs online, widest ISA %s; "
               "kernels: %s (%s)\n",
               cpu_info.model, cpu_info.family, cpu_info.model_number, cpu_info.stepping,
               cpu_info.cpus_online, cpu_info.isa, model_backend_name(m), model_backend_isa(m));
        printf("FMA peak %.1f GFLOP/s per core, measured: 12 independent chains of %d-lane fp32 "
               "FMAs for 0.3 s, best 4096-iteration block\n",
               peak, lanes);
        printf("bench %s: input %dx%dx%d, %d classes, batch %d, %d thread(s), %zu params (%zu "
               "trainable), %.1f MFLOP forward per sample, %.1f MiB of arenas, %s kernels\n",
               arch, C, H, W, classes, batch, threads, model_param_count(m),
               model_trainable_count(m), flops / 1e6, model_bytes(m) / 1048576.0,
               model_backend_name(m));
        printf("step = forward + %s + backward%s%s + sgd_step (momentum 0.9, Nesterov, weight "
               "decay 5e-4); %d warm-up + %d timed steps\n",
               kd ? "distillation loss (T 4, alpha 0.9)" : "cross-entropy",
               grad_sum ? " + gradient sum" : "", clip > 0 ? " + clip" : "",
               warmup, steps);
        if (grad_sum)
            printf("gradient sum over %d rank(s), batch %d on each: %d bucket(s) of up to %.3g "
                   "MiB (%s), %s\n",
                   ranks, batch, step->n_buckets, step->bucket * sizeof(float) / 1048576.0,
                   group_sum_method(),
                   overlap ? "each started as backward finishes it (overlapped)"
                           : "all started after backward (not overlapped)");
        fflush(stdout);
    }

    double *seconds = xmalloc((size_t)steps * sizeof(double));
    double *cpu = xmalloc((size_t)steps * sizeof(double));
    double loss = 0.0;
    StepTimes part = {{0}};
    struct mallinfo2 heap_before = {0};
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup && profile) model_set_profiling(m, 1);
        if (s == warmup) heap_before = mallinfo2();
        /* ranks start together: the gradient sum then waits only for the slower backward */
        if (grad_sum) MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
        double c0 = cpu_seconds(), t0 = now_seconds();
        loss = step_run(step, &sb, 0.01f, NULL, s >= warmup ? &part : NULL);
        double t1 = now_seconds();
        if (s >= warmup) {
            seconds[s - warmup] = t1 - t0;
            cpu[s - warmup] = cpu_seconds() - c0;
        }
    }
    double load_after = load_average();
    struct mallinfo2 heap_after = mallinfo2();
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    qsort(seconds, (size_t)steps, sizeof(double), cmp_double);
    double t_min = seconds[0], t_med = seconds[steps / 2], t_max = seconds[steps - 1];
    if (steps % 2 == 0) t_med = 0.5 * (seconds[steps / 2 - 1] + seconds[steps / 2]);
    qsort(cpu, (size_t)steps, sizeof(double), cmp_double);
    double cpu_med = steps % 2 ? cpu[steps / 2] : 0.5 * (cpu[steps / 2 - 1] + cpu[steps / 2]);
    double step_flops = 3.0 * flops * batch;
    if (rank == 0) {
        printf("seconds/step  min %.4f  median %.4f  max %.4f   (final loss %.4f)\n", t_min, t_med,
               t_max, loss / batch);
        printf("images/s      min %.1f  median %.1f  max %.1f\n", batch / t_max, batch / t_med,
               batch / t_min);
        printf("CPU s/step    median %.4f over %d thread(s): %.1f images per CPU-second (steadier "
               "than wall time when the machine is shared)\n",
               cpu_med, threads, batch / cpu_med);
        printf("GFLOP/s       median %.1f  best %.1f   (3 x forward FLOPs per sample, the usual "
               "forward + backward estimate; conv and linear multiply-adds only): %.0f%% of the "
               "FMA peak of %d core(s)\n",
               step_flops / t_med / 1e9, step_flops / t_min / 1e9,
               100.0 * step_flops / t_med / 1e9 / (peak * threads), threads);
        printf("memory        peak RSS %.1f MiB; heap in use %.1f MiB before the timed steps, %.1f "
               "after (%+lld bytes; mmapped %zu -> %zu bytes)\n",
               usage.ru_maxrss / 1024.0, heap_before.uordblks / 1048576.0,
               heap_after.uordblks / 1048576.0,
               (long long)heap_after.uordblks - (long long)heap_before.uordblks,
               heap_before.hblkhd, heap_after.hblkhd);
        /* the 1-minute load average before we started counts other processes only */
        printf("load average  %.2f before, %.2f after, %ld core(s) online%s\n", load_before,
               load_after, sysconf(_SC_NPROCESSORS_ONLN),
               load_before >= 0.5 ? ": other processes were running, timings may be pessimistic" : "");
        printf("RESULT arch=%s batch=%d threads=%d images_per_s_min=%.2f images_per_s_median=%.2f "
               "images_per_s_max=%.2f gflops_median=%.2f images_per_cpu_s=%.2f backend=%s "
               "kernels_isa=%s fma_peak_gflops=%.1f peak_rss_mib=%.1f arenas_mib=%.1f "
               "heap_delta_bytes=%lld grad_sum_ms=%.3f grad_sum_fraction=%.4f\n",
               arch, batch, threads, batch / t_max, batch / t_med, batch / t_min,
               step_flops / t_med / 1e9, batch / cpu_med, model_backend_name(m),
               model_backend_isa(m), peak, usage.ru_maxrss / 1024.0, model_bytes(m) / 1048576.0,
               (long long)heap_after.uordblks - (long long)heap_before.uordblks,
               1e3 * part.seconds[STEP_GRAD_SUM] / steps,
               part.seconds[STEP_GRAD_SUM] / fmax(step_times_total(&part), 1e-30));
        if (profile) {
            printf("ms per step (mean): forward %.2f  loss %.2f  backward %.2f  gradient sum %.2f  "
                   "clip + sgd_step %.2f\n",
                   1e3 * part.seconds[STEP_FORWARD] / steps, 1e3 * part.seconds[STEP_LOSS] / steps,
                   1e3 * part.seconds[STEP_BACKWARD] / steps,
                   1e3 * part.seconds[STEP_GRAD_SUM] / steps,
                   1e3 * part.seconds[STEP_UPDATE] / steps);
            model_print_profile(m, stdout);
        }
    }
    free(seconds);
    free(cpu);
    free(x);
    free(teacher);
    step_free(step);
    group_sum_free(gs);
    free(labels);
    free(ids);
    model_free(m);
    return 0;
}
