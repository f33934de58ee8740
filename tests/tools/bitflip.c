/* bitflip: flips single bits of a checkpoint or of a run.h5 and asks every reader the program
 * has whether it takes the damaged copy for valid data. The readers of a checkpoint are those of
 * `inspect` (ckpt_info + h5_verify_file for a run directory, ckpt_describe for one file), of
 * `eval` and resume (ckpt_read into the model the file describes, ckpt_read_logits,
 * ckpt_read_config) and of distill.teacher (ckpt_read_other_run: a member of another run). Those
 * of a run.h5: `inspect` (runfile_describe), the results table (runfile_read_results),
 * distill.teacher (runfile_read_teacher_run: fingerprint and teacher logits) and
 * h5_verify_file. (The copy of a run.h5 sits beside a link to the original's models/, so that
 * its external links resolve.) Each flip is one of:
 *   detected  at least one reader refused the copy and none returned data that differs
 *   benign    every reader accepted it and returned exactly the original's data (the bit is
 *             unused: padding, free space, a reserved field)
 *   SILENT    a reader accepted it and returned data that differs from the original's
 *   CRASH     a reader died of a signal or hung
 * Usage: bitflip FILE.h5 [--all | --random N] [--seed S] [--work DIR]   (a checkpoint or run.h5)
 *   --all       every byte of the file (bit = a hash of the offset)
 *   --random N  N random (offset, bit) pairs (default 200)
 * Prints the counts and each SILENT / CRASH offset; exits 1 if there is any. The readers stop
 * the process on damage (ed_fail), so each runs in a forked child. */
#define _GNU_SOURCE
#include "ensdistill/checkpoint.h"
#include "ensdistill/describe.h"
#include "ensdistill/h5file.h"
#include "ensdistill/model.h"
#include "ensdistill/runfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { R_ACCEPT_SAME = 0, R_REFUSED = 1, R_ACCEPT_DIFFERENT = 2 };

/* What the readers return for one file, to compare a damaged copy with the original. */
typedef struct {
    CkptInfo info;
    long n_datasets;
    char *describe; /* ckpt_describe's text */
    float *params, *buffers, *momentum;
    ModelState st;
    float *train_logits, *test_logits;
    int have_train, have_test;
    char *config;
    /* run.h5 */
    ResultRow *rows;
    int n_rows;
    TeacherRun teacher;
} Reading;

static CkptInfo g_info; /* the original's attributes: the model to build */

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bitflip: cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    if (!b || fread(b, 1, *n, f) != *n) exit(2);
    fclose(f);
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "bitflip: cannot write %s\n", path);
        exit(2);
    }
}

/* ---- the readers; each returns R_* (in a child, a refusal may also be ed_fail's exit 2) ---- */

static int read_inspect_dir(const char *path, const Reading *orig) {
    CkptInfo info;
    char err[512];
    if (ckpt_info(path, &info, err, sizeof err) != 0) return R_REFUSED;
    if (h5_verify_file(path, err, sizeof err) < 0) return R_REFUSED;
    return memcmp(&info, &orig->info, sizeof info) == 0 ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

static char *describe_text(const char *path, int *rc) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    *rc = ckpt_describe(path, out, 1);
    fclose(out);
    return text;
}

static int read_inspect_file(const char *path, const Reading *orig) {
    int rc;
    char *text = describe_text(path, &rc);
    int r = rc != 0 ? R_REFUSED : strcmp(text, orig->describe) == 0 ? R_ACCEPT_SAME
                                                                     : R_ACCEPT_DIFFERENT;
    free(text);
    return r;
}

static Model *build_model(void) {
    ModelSpec spec = g_info.spec;
    spec.max_batch = 1;
    Model *m = model_create(&spec);
    memset(m->params, 0x5a, m->tensors.param_floats * sizeof(float));
    memset(m->momentum, 0x5a, m->tensors.param_floats * sizeof(float));
    if (m->tensors.buffer_floats) memset(m->buffers, 0x5a, m->tensors.buffer_floats * sizeof(float));
    return m;
}

/* As resume does: role, index and seed expected. Fills r when given (the original). */
/* other_run: as distill.teacher reads a member of another run (ckpt_read_other_run). */
static int read_load(const char *path, const Reading *orig, Reading *r, int other_run) {
    Model *m = build_model();
    ModelState st;
    memset(&st, 0, sizeof st);
    snprintf(st.role, sizeof st.role, "%s", g_info.role);
    st.index = g_info.index;
    st.seed = g_info.seed;
    if ((other_run ? ckpt_read_other_run(path, m, &st) : ckpt_read(path, m, &st)) != 0)
        return R_REFUSED;
    size_t P = m->tensors.param_floats * sizeof(float), B = m->tensors.buffer_floats * sizeof(float);
    if (r) {
        r->params = malloc(P ? P : 1);
        r->momentum = malloc(P ? P : 1);
        r->buffers = malloc(B ? B : 1);
        memcpy(r->params, m->params, P);
        memcpy(r->momentum, m->momentum, P);
        if (B) memcpy(r->buffers, m->buffers, B);
        r->st = st;
        return R_ACCEPT_SAME;
    }
    int same = memcmp(m->params, orig->params, P) == 0 &&
               memcmp(m->momentum, orig->momentum, P) == 0 &&
               (B == 0 || memcmp(m->buffers, orig->buffers, B) == 0) &&
               st.epoch == orig->st.epoch && st.step_in_epoch == orig->st.step_in_epoch &&
               st.step == orig->st.step && st.complete == orig->st.complete &&
               st.epochs_total == orig->st.epochs_total &&
               memcmp(&st.partial_loss, &orig->st.partial_loss, 4 * sizeof(double)) == 0 &&
               st.n_history == orig->st.n_history &&
               (st.n_history == 0 ||
                memcmp(st.history, orig->st.history, (size_t)st.n_history * sizeof(EpochRecord)) == 0);
    return same ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

static int read_logits(const char *path, const Reading *orig, const char *which) {
    int train = strcmp(which, "train") == 0;
    int n = train ? g_info.n_train_logits : g_info.n_test_logits, K = g_info.spec.num_classes;
    if (n == 0) return R_ACCEPT_SAME;
    size_t bytes = (size_t)n * K * sizeof(float);
    float *out = malloc(bytes);
    if (ckpt_read_logits(path, which, out, n, K) != 0) return R_REFUSED;
    int same = memcmp(out, train ? orig->train_logits : orig->test_logits, bytes) == 0;
    free(out);
    return same ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

static int read_config(const char *path, const Reading *orig) {
    char *text = ckpt_read_config(path);
    if (!text) return R_REFUSED;
    int same = strcmp(text, orig->config) == 0;
    free(text);
    return same ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

/* ---- the readers of a run.h5 ---- */

static char *run_describe_text(const char *path, int *rc) {
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    *rc = runfile_describe(path, out);
    fclose(out);
    return text;
}

static int read_run_inspect(const char *path, const Reading *orig) {
    int rc;
    char *text = run_describe_text(path, &rc);
    int r = rc != 0 ? R_REFUSED : strcmp(text, orig->describe) == 0 ? R_ACCEPT_SAME
                                                                     : R_ACCEPT_DIFFERENT;
    free(text);
    return r;
}

static int read_run_results(const char *path, const Reading *orig, Reading *r) {
    ResultRow *rows;
    int n;
    char err[512];
    if (runfile_read_results(path, &rows, &n, err, sizeof err) != 0) return R_REFUSED;
    if (r) {
        r->rows = rows;
        r->n_rows = n;
        return R_ACCEPT_SAME;
    }
    int same = n == orig->n_rows && memcmp(rows, orig->rows, (size_t)n * sizeof *rows) == 0;
    free(rows);
    return same ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

static int read_run_teacher(const char *path, const Reading *orig, Reading *r) {
    TeacherRun t;
    char err[1024];
    if (runfile_read_teacher_run(path, &t, err, sizeof err) != 0) return R_REFUSED;
    if (r) {
        r->teacher = t;
        return R_ACCEPT_SAME;
    }
    const TeacherRun *o = &orig->teacher;
    int same = t.n_train == o->n_train && t.n_test == o->n_test && t.K == o->K &&
               strcmp(t.data_fingerprint, o->data_fingerprint) == 0 &&
               memcmp(t.train_logits, o->train_logits, (size_t)t.n_train * t.K * 4) == 0 &&
               memcmp(t.test_logits, o->test_logits, (size_t)t.n_test * t.K * 4) == 0;
    teacher_run_free(&t);
    return same ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

static int read_run_verify(const char *path, const Reading *orig) {
    char err[512];
    long n = h5_verify_file(path, err, sizeof err);
    return n < 0 ? R_REFUSED : n == orig->n_datasets ? R_ACCEPT_SAME : R_ACCEPT_DIFFERENT;
}

static int g_run_file; /* the file is a run.h5: its readers, not a checkpoint's */
#define N_CKPT_READERS 7
#define N_RUN_READERS 4
#define N_READERS 7
static const char *const reader_names[N_READERS] = {"inspect RUN_DIR", "inspect FILE",
                                                    "eval/resume load", "logits train",
                                                    "logits test", "config",
                                                    "distill.teacher member"};
static const char *const run_reader_names[N_RUN_READERS] = {
    "inspect run.h5", "results table", "distill.teacher run.h5", "verify"};
#define READER_NAME(k) (g_run_file ? run_reader_names[k] : reader_names[k])

/* Runs reader k on path in a child (stderr silenced); R_*, or -1 when it crashed or hung. */
static int run_reader(int k, const char *path, const Reading *orig) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        alarm(20);
        int r;
        if (g_run_file)
            r = k == 0   ? read_run_inspect(path, orig)
                : k == 1 ? read_run_results(path, orig, NULL)
                : k == 2 ? read_run_teacher(path, orig, NULL)
                         : read_run_verify(path, orig);
        else
            r = k == 0   ? read_inspect_dir(path, orig)
                : k == 1 ? read_inspect_file(path, orig)
                : k == 2 ? read_load(path, orig, NULL, 0)
                : k == 3 ? read_logits(path, orig, "train")
                : k == 4 ? read_logits(path, orig, "test")
                : k == 5 ? read_config(path, orig)
                         : read_load(path, orig, NULL, 1);
        _exit(r == R_REFUSED ? 10 : r == R_ACCEPT_SAME ? 11 : 12);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    if (!WIFEXITED(status)) return -1;
    int code = WEXITSTATUS(status);
    if (code == 11) return R_ACCEPT_SAME;
    if (code == 12) return R_ACCEPT_DIFFERENT;
    if (code == 10 || code == 2) return R_REFUSED; /* 2: ed_fail */
    return -1;
}

/* splitmix64 */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int main(int argc, char **argv) {
    const char *src = NULL, *work = NULL;
    long n_random = 200;
    int all = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all"))
            all = 1;
        else if (!strcmp(argv[i], "--random") && i + 1 < argc)
            n_random = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--work") && i + 1 < argc)
            work = argv[++i];
        else if (argv[i][0] != '-' && !src)
            src = argv[i];
        else {
            fprintf(stderr, "usage: bitflip FILE.h5 [--all | --random N] [--seed S] [--work DIR]\n");
            return 2;
        }
    }
    if (!src) {
        fprintf(stderr, "usage: bitflip FILE.h5 [--all | --random N] [--seed S] [--work DIR]\n");
        return 2;
    }
    char dir[4096], path[4200];
    if (work)
        snprintf(dir, sizeof dir, "%s", work);
    else {
        snprintf(dir, sizeof dir, "%s/bitflip.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) return 2;
    }
    const char *base = strrchr(src, '/');
    snprintf(path, sizeof path, "%s/%s", dir, base ? base + 1 : src);

    size_t n;
    unsigned char *orig_bytes = read_all(src, &n);
    write_all(path, orig_bytes, n);

    /* the original, read by every reader */
    Reading orig;
    memset(&orig, 0, sizeof orig);
    char err[1024], format[64];
    if (h5_file_format(path, format, sizeof format, err, sizeof err) != 0) {
        fprintf(stderr, "bitflip: %s is not a readable ensdistill file: %s\n", src, err);
        return 2;
    }
    g_run_file = strcmp(format, RUNFILE_FORMAT) == 0;
    const int n_readers = g_run_file ? N_RUN_READERS : N_CKPT_READERS;
    if (g_run_file) {
        /* the external links of the copy resolve to the original's models */
        char models[4200], target[4200];
        snprintf(models, sizeof models, "%s/models", dir);
        snprintf(target, sizeof target, "%.*s/models", base ? (int)(base - src) : 1,
                 base ? src : ".");
        char *abs = realpath(target, NULL);
        if (!abs || (symlink(abs, models) != 0 && errno != EEXIST)) {
            fprintf(stderr, "bitflip: cannot link %s to %s\n", models, target);
            return 2;
        }
        free(abs);
        orig.n_datasets = h5_verify_file(path, err, sizeof err);
        int rc;
        orig.describe = run_describe_text(path, &rc);
        if (orig.n_datasets < 0 || rc != 0 || read_run_results(path, NULL, &orig) != R_ACCEPT_SAME ||
            read_run_teacher(path, NULL, &orig) != R_ACCEPT_SAME) {
            fprintf(stderr, "bitflip: the original %s does not verify\n", src);
            return 2;
        }
    } else {
        if (ckpt_info(path, &orig.info, err, sizeof err) != 0) {
            fprintf(stderr, "bitflip: %s is not a readable checkpoint: %s\n", src, err);
            return 2;
        }
        g_info = orig.info;
        orig.n_datasets = h5_verify_file(path, err, sizeof err);
        int rc;
        orig.describe = describe_text(path, &rc);
        if (orig.n_datasets < 0 || rc != 0 || read_load(path, NULL, &orig, 0) != R_ACCEPT_SAME) {
            fprintf(stderr, "bitflip: the original %s does not verify\n", src);
            return 2;
        }
        int K = g_info.spec.num_classes;
        if (g_info.n_train_logits) {
            orig.train_logits = malloc((size_t)g_info.n_train_logits * K * sizeof(float));
            ckpt_read_logits(path, "train", orig.train_logits, g_info.n_train_logits, K);
        }
        if (g_info.n_test_logits) {
            orig.test_logits = malloc((size_t)g_info.n_test_logits * K * sizeof(float));
            ckpt_read_logits(path, "test", orig.test_logits, g_info.n_test_logits, K);
        }
        orig.config = ckpt_read_config(path);
        if (!orig.config) return 2;
    }

    long count = all ? (long)n : n_random;
    long detected = 0, benign = 0, silent = 0, crashed = 0;
    long refused_by[N_READERS] = {0};
    unsigned char *bytes = malloc(n);
    printf("bitflip: %s, %zu bytes, %ld datasets; %s\n", src, n, orig.n_datasets,
           all ? "every byte" : "random offsets");
    for (long i = 0; i < count; i++) {
        uint64_t h = mix(seed * 0x100000001b3ull + (uint64_t)i);
        size_t off = all ? (size_t)i : (size_t)(h % n);
        int bit = (int)((all ? mix(seed + off) : h >> 32) % 8);
        memcpy(bytes, orig_bytes, n);
        bytes[off] ^= (unsigned char)(1u << bit);
        write_all(path, bytes, n);
        int any_refused = 0, any_different = 0, any_crash = 0;
        for (int k = 0; k < n_readers; k++) {
            int r = run_reader(k, path, &orig);
            if (r == R_REFUSED) any_refused = 1, refused_by[k]++;
            if (r == R_ACCEPT_DIFFERENT) {
                any_different = 1;
                printf("SILENT offset %zu bit %d: %s accepted different data\n", off, bit,
                       READER_NAME(k));
            }
            if (r < 0) {
                any_crash = 1;
                printf("CRASH  offset %zu bit %d: %s died or hung\n", off, bit, READER_NAME(k));
            }
        }
        if (any_crash)
            crashed++;
        else if (any_different)
            silent++;
        else if (any_refused)
            detected++;
        else
            benign++;
        if (count >= 1000 && (i + 1) % (count / 10) == 0) {
            printf("  %ld/%ld: detected %ld, benign %ld, silent %ld, crash %ld\n", i + 1, count,
                   detected, benign, silent, crashed);
            fflush(stdout);
        }
    }
    printf("flips %ld: detected %ld, benign %ld (unused bytes), SILENT %ld, CRASH %ld\n", count,
           detected, benign, silent, crashed);
    printf("refusals by reader:");
    for (int k = 0; k < n_readers; k++)
        printf(" %s %ld%s", READER_NAME(k), refused_by[k], k + 1 < n_readers ? "," : "\n");
    unlink(path);
    if (g_run_file) {
        char models[4200];
        snprintf(models, sizeof models, "%s/models", dir);
        unlink(models);
    }
    if (!work) rmdir(dir);
    return silent || crashed ? 1 : 0;
}
