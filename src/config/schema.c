/* The config schema: the one table of every key (its type, field, default, range and meaning)
 * and the generic per-type code that reads, checks and writes a value. Everything else in
 * src/config (YAML parsing, --set, defaults, validation, the dump, the docs) walks this table. */
#include "config_internal.h"

#include "ensdistill/error.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Offset of a Config field, and a compile error when the field does not have C type T. A key's
 * YAML path is its field's name in Config (#f): "train.lr" is c.train.lr. */
#define FIELD(f, T)                                                                                \
    (offsetof(Config, f) + 0 * sizeof(char[_Generic((((Config *)0)->f), T : 1, default : -1)]))
#define SIZE(f) sizeof(((Config *)0)->f)

/* Ranges: lo, hi, open bits. */
#define ANY -INFINITY, INFINITY, 0
#define GE(a) (a), INFINITY, 0
#define GT(a) (a), INFINITY, RANGE_LO_OPEN
#define IN(a, b) (a), (b), 0
#define IN_CO(a, b) (a), (b), RANGE_HI_OPEN

#define INT(f, def, range, doc)                                                                    \
    { #f, KEY_INT, FIELD(f, int), 0, def, range, NULL, doc, NULL }
#define INT_OR(f, word, def, range, doc)                                                           \
    { #f, KEY_INT, FIELD(f, int), 0, def, range, word, doc, NULL }
#define INT64(f, def, range, doc)                                                                  \
    { #f, KEY_INT64, FIELD(f, int64_t), 0, def, range, NULL, doc, NULL }
#define FLOAT(f, def, range, doc)                                                                  \
    { #f, KEY_FLOAT, FIELD(f, double), 0, def, range, NULL, doc, NULL }
#define BOOL(f, def, doc)                                                                          \
    { #f, KEY_BOOL, FIELD(f, int), 0, def, IN(0, 1), NULL, doc, NULL }
#define STRING(f, def, doc)                                                                        \
    { #f, KEY_STRING, FIELD(f, char *), SIZE(f), def, ANY, NULL, doc, NULL }
/* A field of enum type T (stored through an int: T must be int-sized) named by names[]. */
#define ENUM(f, T, names, def, doc)                                                                \
    {                                                                                              \
        #f, KEY_ENUM, FIELD(f, T) + 0 * sizeof(char[sizeof(T) == sizeof(int) ? 1 : -1]),           \
            sizeof names / sizeof names[0], def, ANY, NULL, doc, names                             \
    }
#define INT_LIST(f, count, def, range, doc)                                                        \
    { #f, KEY_INT_LIST, FIELD(f, int *), FIELD(count, int), def, range, NULL, doc, NULL }
#define FLOAT_SWEEP(f, count, def, range, doc)                                                     \
    { #f, KEY_FLOAT_SWEEP, FIELD(f, double *), FIELD(count, int), def, range, NULL, doc, NULL }
#define FLAGS(p, first, words, def, doc)                                                           \
    { p, KEY_FLAGS, FIELD(first, int), 0, def, IN(0, 1), words, doc, NULL }

/* The names of the enum keys' values, indexed by value (a value without a name stops
 * schema_defaults). */
const char *const config_source_names[] = {
    [SOURCE_FASHION_MNIST] = "fashion-mnist",
    [SOURCE_MNIST] = "mnist",
    [SOURCE_CIFAR10] = "cifar10",
    [SOURCE_CIFAR100] = "cifar100",
    [SOURCE_HDF5] = "hdf5",
    [SOURCE_MULTIVIEW] = "multiview",
    [SOURCE_TOY2] = "toy2",
};
const char *const config_labels_names[] = {[LABELS_FINE] = "fine", [LABELS_COARSE] = "coarse"};
const char *const config_noise_names[] = {[NOISE_GAUSS] = "gauss", [NOISE_ORTH] = "orth"};
const char *const config_schedule_names[] = {
    [SCHEDULE_CONSTANT] = "constant",
    [SCHEDULE_MULTISTEP] = "multistep",
    [SCHEDULE_COSINE] = "cosine",
};
const char *const config_precision_names[] = {[PRECISION_FP32] = "fp32",
                                              [PRECISION_BF16] = "bf16"};
const char *const config_combine_names[] = {[COMBINE_LOGITS] = "logits", [COMBINE_PROBS] = "probs"};
const char *const config_codistill_mode_names[] = {[CODISTILL_LOGITS] = "logits",
                                                   [CODISTILL_CHECKPOINTS] = "checkpoints"};

/* Upper bounds of counts: far above any real run, low enough that a typo (members: 1000000000)
 * is refused by `config check` instead of stopping the run out of memory. ED_MAX_MODELS also
 * keeps every job's MPI tag (pipeline.c: 300 + job) below the 32767 MPI guarantees. */
#define ED_MAX_MODELS 10000
#define ED_MAX_EPOCHS 1000000
#define ED_MAX_SAMPLES 16777216

/* In the order of the YAML dump and the docs; each section's keys are contiguous. */
const ConfigKey config_keys[] = {
    STRING(name, "run", "experiment name (required); checkpoint.dir defaults to runs/<name>"),

    ENUM(data.source, DataSource, config_source_names, "fashion-mnist",
         "data set: IDX files, CIFAR binaries, an HDF5 data file, or a generator"),
    STRING(data.path, "",
           "directory (idx, cifar) or .h5 file (hdf5); fashion-mnist may leave it empty for "
           "/usr/share/datasets/fashion-mnist"),
    BOOL(data.augment, "false", "augment training images (random crop and flip)"),
    INT(data.crop_pad, "4", IN(0, 1024), "zero padding of the random crop; 0 = no crop"),
    BOOL(data.flip, "true", "random horizontal flip when augmenting"),
    ENUM(data.labels, LabelSet, config_labels_names, "fine",
         "cifar100: 100 fine or 20 coarse classes"),
    BOOL(data.normalize, "true", "normalise each channel by the training set's mean and std"),
    INT(data.train_limit, "0", GE(0), "use only the first n training samples; 0 = all"),
    INT(data.test_limit, "0", GE(0), "use only the first n test samples; 0 = all"),

    INT(data.multiview.k, "10", IN(2, 65536), "multiview: classes (toy2 has 2)"),
    INT(data.multiview.d, "64", IN(2, 65536),
        "dimension of a patch; at least 2k (the views are orthonormal)"),
    INT(data.multiview.patches, "12", IN(2, 4096), "patches per sample P (multiview and toy2)"),
    INT(data.multiview.patches_per_view, "1", IN(1, 2048), "patches that carry each present view"),
    INT(data.multiview.n_train, "600", IN(1, ED_MAX_SAMPLES), "training samples"),
    INT(data.multiview.n_test, "2000", IN(1, ED_MAX_SAMPLES), "test samples"),
    FLOAT(data.multiview.mu, "0.05", IN(0, 1), "fraction of single-view samples"),
    FLOAT(data.multiview.view_lo, "1.0", GE(0), "weight of a present view ~ U[view_lo, view_hi]"),
    FLOAT(data.multiview.view_hi, "1.3", GE(0), "see view_lo"),
    FLOAT(data.multiview.weak_scale, "0.05", IN(0, 1),
          "single-view samples: the other view's weight at this fraction"),
    FLOAT(data.multiview.off_prob, "0.3", IN(0, 1),
          "each other class's view is present with this probability"),
    FLOAT(data.multiview.off_mv_lo, "0.4", GE(0),
          "its weight in multi-view samples ~ U[off_mv_lo, off_mv_hi]"),
    FLOAT(data.multiview.off_mv_hi, "0.6", GE(0), "see off_mv_lo"),
    FLOAT(data.multiview.off_sv_lo, "0.05", GE(0),
          "its weight in single-view samples ~ U[off_sv_lo, off_sv_hi]"),
    FLOAT(data.multiview.off_sv_hi, "0.15", GE(0), "see off_sv_lo"),
    FLOAT(data.multiview.feature_noise, "0.0", GE(0),
          "gamma: each patch also gets U[0, gamma] times a random view"),
    ENUM(data.multiview.noise, NoiseKind, config_noise_names, "orth",
         "patch noise: gauss = N(0, sigma^2/d I); orth = orthogonal to every view, norm sigma"),
    FLOAT(data.multiview.sigma, "1.3", GE(0), "noise norm (orth) or scale (gauss)"),
    INT64(data.multiview.seed, "1", GE(0), "seed of the views and samples"),

    STRING(model.arch, "cnn",
           "architecture: mlp, cnn, mvconv, resnet-<6n+2>[-proj], wrn-<6n+4>-<k>"),
    INT(model.hidden, "0", IN(0, 65536), "mlp / cnn hidden width; 0 = the arch's default"),
    INT(model.filters, "8", IN(1, 65536), "mvconv: filters per class (m)"),
    FLOAT(model.srelu_q, "3.0", GE(1), "mvconv: exponent q of the smoothed ReLU"),
    FLOAT(model.srelu_rho, "0.3", GT(0), "mvconv: threshold rho of the smoothed ReLU"),
    FLOAT(model.init_std, "2.0e-4", GT(0), "mvconv: std of the initial weights"),
    BOOL(model.random_features, "false",
         "freeze every layer but the last at its random initialisation"),

    INT(train.epochs, "10", IN(1, ED_MAX_EPOCHS), "epochs (with batch_size full: gradient steps)"),
    INT_OR(train.batch_size, "full", "128", IN(1, ED_MAX_SAMPLES),
           "global minibatch, split over a model's ranks; full = the whole training set"),
    FLOAT(train.lr, "0.05", GT(0), "peak learning rate"),
    FLOAT(train.momentum, "0.9", IN_CO(0, 1), "SGD momentum"),
    FLOAT(train.weight_decay, "5.0e-4", GE(0), "L2 weight decay"),
    BOOL(train.nesterov, "true", "Nesterov momentum"),
    ENUM(train.schedule, ScheduleKind, config_schedule_names, "cosine",
         "learning-rate schedule after the warmup"),
    INT_LIST(train.milestones, train.n_milestones, "[]", IN(1, ED_MAX_EPOCHS),
             "multistep: epochs at which the lr is multiplied by gamma"),
    FLOAT(train.gamma, "0.1", GT(0), "multistep factor"),
    FLOAT(train.warmup_epochs, "0.0", GE(0), "linear warmup from 0 (may be fractional)"),
    FLOAT(train.clip_norm, "0.0", GE(0),
          "scale each step's gradient to at most this global L2 norm (PyTorch's "
          "clip_grad_norm_); 0 = off"),
    INT(train.eval_every, "1", IN(0, ED_MAX_EPOCHS),
        "test accuracy every n epochs and at the last; 0 = only at the end"),
    ENUM(train.precision, Precision, config_precision_names, "fp32",
         "fp32, or bf16 mixed precision on oneDNN: convolutions, batch norm and the "
         "activations between them in bf16; weights, gradients, losses and logits fp32 "
         "(refused at start on a CPU without avx512_bf16 or AMX, and for mlp and mvconv)"),

    INT(ensemble.members, "4", IN(1, ED_MAX_MODELS), "number of members L"),
    INT64(ensemble.seed, "1", GE(0), "member l is initialised from (seed, l)"),
    ENUM(ensemble.combine, Combine, config_combine_names, "logits",
         "the teacher is the mean of the members' logits or of their probabilities"),

    FLAGS("distill.students", distill.kd, "kd|self|sum|codistill", "[kd, self, sum]",
          "students after the ensemble: kd (from the ensemble), self (from member 0), sum "
          "(the train-the-sum control); codistill: L more members (ensemble.members) that "
          "train together, each distilling from its peers (distill.codistill)"),
    INT(distill.seeds, "1", IN(1, ED_MAX_MODELS), "number of KD students (and of self students)"),
    FLOAT_SWEEP(distill.temperature, distill.n_temperature, "4.0", GT(0),
                "softmax temperature T; a list sweeps (one student per combination)"),
    FLOAT_SWEEP(distill.alpha, distill.n_alpha, "0.9", IN(0, 1),
                "loss = alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(labels); a list sweeps"),
    INT(distill.epochs, "0", IN(0, ED_MAX_EPOCHS), "students' epochs; 0 = train.epochs"),
    FLOAT_SWEEP(distill.lr, distill.n_lr, "0.0", GE(0),
                "students' peak lr; 0 = train.lr; a list sweeps"),
    INT(distill.sum_epochs, "0", IN(0, ED_MAX_EPOCHS),
        "the sum control's epochs; 0 = train.epochs"),
    FLOAT(distill.sum_lr, "0.0", GE(0), "the sum control's peak lr; 0 = train.lr"),
    STRING(distill.teacher, "",
           "RUN_DIR of a finished run: its members and teacher are read (and verified) instead "
           "of trained; data, model, train and ensemble must be that run's"),
    FLOAT(distill.codistill.weight, "0.5", IN(0, 1),
          "co-distilled members: loss = (1 - w) CE(labels) + w T^2 KL(peers_T || own_T), "
          "peers = the mean of the other members' logits"),
    FLOAT(distill.codistill.temperature, "1.0", GT(0), "co-distillation temperature T"),
    INT(distill.codistill.burn_in, "0", IN(0, ED_MAX_EPOCHS),
        "epochs of plain cross-entropy before the peers' term starts (at most train.epochs)"),
    ENUM(distill.codistill.mode, CodistillMode, config_codistill_mode_names, "logits",
         "logits: every step the members sum their logits on the same minibatch (one "
         "all-reduce); checkpoints: every period steps they exchange weights and each runs "
         "its peers' stale copies on its own batch"),
    INT(distill.codistill.period, "50", IN(1, 1000000000),
        "checkpoints mode: steps between weight exchanges"),

    INT(parallel.ranks_per_model, "1", IN(1, 1048576),
        "ranks that train one model data-parallel; must divide the number of ranks"),
    FLOAT(parallel.grad_bucket_mb, "1.0", IN(0, 1048576),
          "ranks_per_model > 1: MiB of gradient per all-reduce bucket; 0 = one bucket"),
    BOOL(parallel.grad_overlap, "true",
         "ranks_per_model > 1: sum each bucket while backward computes the rest"),
    INT_OR(parallel.threads, "auto", "auto", IN(1, 4096),
           "threads per rank (OpenMP: oneDNN and our loops; OpenBLAS); auto = the CPUs the rank "
           "was given"),

    STRING(checkpoint.dir, "", "run directory RUN_DIR; empty = runs/<name>"),
    INT(checkpoint.every_epochs, "1", IN(0, ED_MAX_EPOCHS),
        "checkpoint every n epochs; 0 = only when a model completes"),
    INT(checkpoint.deflate, "0", IN(0, 9), "gzip level of checkpoints; 0 = off"),

    INT(eval.batch_size, "500", IN(1, 1048576), "evaluation batch"),
    INT(eval.ece_bins, "15", IN(1, 10000), "bins of the expected calibration error"),
};
const int config_n_keys = (int)(sizeof config_keys / sizeof config_keys[0]);
_Static_assert(sizeof config_keys / sizeof config_keys[0] <= CONFIG_MAX_KEYS,
               "raise CONFIG_MAX_KEYS");
_Static_assert(offsetof(Config, distill.self) == offsetof(Config, distill.kd) + sizeof(int) &&
                   offsetof(Config, distill.sum) == offsetof(Config, distill.kd) + 2 * sizeof(int) &&
                   offsetof(Config, distill.codistilled) ==
                       offsetof(Config, distill.kd) + 3 * sizeof(int),
               "distill.students sets kd, self, sum, codistilled as consecutive ints");

/* ---- lookup and suggestions ---- */

int schema_find(const char *path) {
    for (int i = 0; i < config_n_keys; i++)
        if (strcmp(config_keys[i].path, path) == 0) return i;
    return -1;
}

int schema_is_section(const char *path) {
    size_t n = strlen(path);
    for (int i = 0; i < config_n_keys; i++)
        if (strncmp(config_keys[i].path, path, n) == 0 && config_keys[i].path[n] == '.') return 1;
    return 0;
}

/* Optimal string alignment distance: edits, with a swap of neighbours counting as one. */
static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++)
        d[i][0] = i;
    for (int j = 0; j <= m; j++)
        d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

static const char *leaf(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* Scores cand (a key or a section) against the unknown path; keeps the best in best. */
static void consider(const char *path, const char *cand, char *best, size_t size, int *best_score,
                     int *best_full) {
    int full = edit_distance(path, cand);
    int part = edit_distance(leaf(path), leaf(cand));
    int score = full < part ? full : part;
    if (score < *best_score || (score == *best_score && full < *best_full)) {
        snprintf(best, size, "%s", cand);
        *best_score = score;
        *best_full = full;
    }
}

void schema_suggest(const char *path, char *out, size_t size) {
    /* candidates: every key and every section; score = min(distance of full paths, of leaves),
     * so "train.lrr" finds train.lr and a key put in the wrong section finds its own */
    char best[CFG_STR] = "", section[CFG_STR];
    int best_score = 1 << 20, best_full = 1 << 20;
    for (int i = 0; i < config_n_keys; i++) {
        const char *key = config_keys[i].path;
        consider(path, key, best, sizeof best, &best_score, &best_full);
        for (const char *dot = strchr(key, '.'); dot; dot = strchr(dot + 1, '.')) {
            snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
            consider(path, section, best, sizeof best, &best_score, &best_full);
        }
    }
    int len = (int)strlen(leaf(path));
    int limit = (len + 1) / 3 > 1 ? (len + 1) / 3 : 1;
    if (best_score <= limit)
        snprintf(out, size, " (did you mean '%s'?)", best);
    else
        snprintf(out, size, " (every key is listed by 'ensdistill config docs')");
}

/* ---- values ---- */

void value_add(ConfigValue *v, const char *text, size_t len) {
    if (v->n < CFG_MAX_LIST) {
        if (len >= ED_PATH_MAX) {
            v->too_long = 1;
            len = ED_PATH_MAX - 1;
        }
        memcpy(v->item[v->n], text, len);
        v->item[v->n][len] = '\0';
    }
    v->n++;
}

void value_from_text(ConfigValue *v, const ConfigKey *k, const char *text) {
    memset(v, 0, sizeof *v);
    if (k->type != KEY_INT_LIST && k->type != KEY_FLAGS &&
        !(k->type == KEY_FLOAT_SWEEP && strpbrk(text, ",["))) {
        value_add(v, text, strlen(text));
        return;
    }
    /* "a,b", "[a, b]", "[]" or "" */
    v->is_list = 1;
    size_t len = strlen(text);
    while (len && (text[0] == ' ' || text[0] == '['))
        text++, len--;
    while (len && (text[len - 1] == ' ' || text[len - 1] == ']'))
        len--;
    while (len) {
        const char *comma = memchr(text, ',', len);
        size_t n = comma ? (size_t)(comma - text) : len, m = n;
        const char *item = text;
        while (m && *item == ' ')
            item++, m--;
        while (m && item[m - 1] == ' ')
            m--;
        value_add(v, item, m);
        if (!comma) break;
        text += n + 1;
        len -= n + 1;
    }
}

/* The text of a value for a message: quoted, shortened. */
static const char *shown(const char *text, char *buf, size_t size) {
    if (strlen(text) > 40)
        snprintf(buf, size, "'%.37s...'", text);
    else
        snprintf(buf, size, "'%s'", text);
    return buf;
}

/* 0, -1 (not an integer) or -2 (too large for long long). */
static int parse_int64(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end != '\0') return -1;
    if (errno == ERANGE) return -2;
    *out = x;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(x)) return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

/* Index of word in "a|b|c", or -1. */
static int word_index(const char *words, const char *word) {
    size_t n = strlen(word);
    const char *p = words;
    for (int i = 0;; i++) {
        if (strncmp(p, word, n) == 0 && (p[n] == '|' || p[n] == '\0')) return i;
        if (!(p = strchr(p, '|'))) return -1;
        p++;
    }
}

static int count_words(const char *words) {
    int n = 1;
    for (const char *p = words; (p = strchr(p, '|')); p++)
        n++;
    return n;
}

/* "a, b, c" from "a|b|c". */
static const char *words_text(const char *words, char *buf, size_t size) {
    size_t j = 0;
    for (const char *p = words; *p && j + 3 < size; p++) {
        if (*p == '|') {
            buf[j++] = ',';
            buf[j++] = ' ';
        } else {
            buf[j++] = *p;
        }
    }
    buf[j] = '\0';
    return buf;
}

/* Value of an enum key whose name is text, or -1. */
static int name_index(const ConfigKey *k, const char *text) {
    for (size_t i = 0; i < k->aux; i++)
        if (strcmp(k->names[i], text) == 0) return (int)i;
    return -1;
}

/* "a, b, c" from an enum key's names. */
static const char *names_text(const ConfigKey *k, char *buf, size_t size) {
    size_t j = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k->aux && j < size; i++)
        j += (size_t)snprintf(buf + j, size - j, "%s%s", i ? ", " : "", k->names[i]);
    return buf;
}

static void number_text(double x, char *buf, size_t size) {
    snprintf(buf, size, "%.15g", x);
}

static void range_text(const ConfigKey *k, char *buf, size_t size) {
    char lo[32], hi[32];
    number_text(k->lo, lo, sizeof lo);
    number_text(k->hi, hi, sizeof hi);
    int has_lo = isfinite(k->lo), has_hi = isfinite(k->hi);
    if (has_lo && has_hi)
        snprintf(buf, size, "in %c%s, %s%c", k->open & RANGE_LO_OPEN ? '(' : '[', lo, hi,
                 k->open & RANGE_HI_OPEN ? ')' : ']');
    else if (has_lo)
        snprintf(buf, size, "%s %s", k->open & RANGE_LO_OPEN ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, size, "%s %s", k->open & RANGE_HI_OPEN ? "<" : "<=", hi);
    else
        buf[0] = '\0';
}

static int in_range(const ConfigKey *k, double x) {
    if (k->open & RANGE_LO_OPEN ? !(x > k->lo) : !(x >= k->lo)) return 0;
    if (k->open & RANGE_HI_OPEN ? !(x < k->hi) : !(x <= k->hi)) return 0;
    return 1;
}

/* "must be >= 1, got 0" (with "or 'full'" for keys with a word) into msg; returns -1. */
static int range_error(const ConfigKey *k, const char *text, char *msg, size_t size) {
    char range[96];
    range_text(k, range, sizeof range);
    snprintf(msg, size, "must be %s%s%s%s, got %.40s", range, k->words ? " or '" : "",
             k->words ? k->words : "", k->words ? "'" : "", text);
    return -1;
}

/* Parses one integer item of key k (range included); -1 with msg. */
static int parse_int_item(const ConfigKey *k, const char *text, long long lo, long long hi,
                          long long *out, char *msg, size_t size) {
    char buf[64];
    if (k->words && strcmp(text, k->words) == 0) return *out = 0, 0;
    int rc = parse_int64(text, out);
    if (rc == -1) {
        snprintf(msg, size, "expected an integer%s%s%s, got %s", k->words ? " or '" : "",
                 k->words ? k->words : "", k->words ? "'" : "", shown(text, buf, sizeof buf));
        return -1;
    }
    if (rc == -2 || *out < lo || *out > hi)
        return snprintf(msg, size, "%s is out of the range of the integer type",
                        shown(text, buf, sizeof buf)),
               -1;
    if (!in_range(k, (double)*out)) return range_error(k, text, msg, size);
    return 0;
}

int key_apply(Config *c, const ConfigKey *k, const ConfigValue *v, char *msg, size_t size) {
    char *field = (char *)c + k->offset;
    char buf[64], list[128];
    int is_list_key = k->type == KEY_INT_LIST || k->type == KEY_FLAGS || k->type == KEY_FLOAT_SWEEP;
    if (v->too_long) return snprintf(msg, size, "value too long"), -1;
    if (!is_list_key && (v->is_list || v->n != 1)) {
        snprintf(msg, size, "expected a single value, got a list");
        return -1;
    }
    /* a list key given one scalar: a list of one item, or of none when it is empty */
    int n = v->n == 1 && !v->is_list && v->item[0][0] == '\0' ? 0 : v->n;
    const char *text = v->item[0];
    switch (k->type) {
    case KEY_INT: {
        long long x;
        if (parse_int_item(k, text, INT_MIN, INT_MAX, &x, msg, size) != 0) return -1;
        *(int *)field = (int)x;
        return 0;
    }
    case KEY_INT64: {
        long long x;
        if (parse_int_item(k, text, INT64_MIN, INT64_MAX, &x, msg, size) != 0) return -1;
        *(int64_t *)field = (int64_t)x;
        return 0;
    }
    case KEY_FLOAT: {
        double x;
        if (parse_double(text, &x) != 0)
            return snprintf(msg, size, "expected a number, got %s", shown(text, buf, sizeof buf)),
                   -1;
        if (!in_range(k, x)) return range_error(k, text, msg, size);
        *(double *)field = x;
        return 0;
    }
    case KEY_BOOL:
        if (parse_bool(text, (int *)field) != 0)
            return snprintf(msg, size, "expected true or false, got %s",
                            shown(text, buf, sizeof buf)),
                   -1;
        return 0;
    case KEY_STRING:
        if (strlen(text) >= k->aux)
            return snprintf(msg, size, "longer than %zu characters", k->aux - 1), -1;
        strcpy(field, text);
        return 0;
    case KEY_ENUM: {
        int value = name_index(k, text);
        if (value < 0) {
            snprintf(msg, size, "must be one of %s; got %s", names_text(k, list, sizeof list),
                     shown(text, buf, sizeof buf));
            return -1;
        }
        *(int *)field = value;
        return 0;
    }
    case KEY_INT_LIST: {
        if (n > CFG_MAX_LIST)
            return snprintf(msg, size, "at most %d items, got %d", CFG_MAX_LIST, n), -1;
        int *items = (int *)field;
        for (int i = 0; i < n; i++) {
            long long x;
            if (parse_int_item(k, v->item[i], INT_MIN, INT_MAX, &x, msg, size) != 0) return -1;
            items[i] = (int)x;
        }
        for (int i = n; i < CFG_MAX_LIST; i++)
            items[i] = 0;
        *(int *)((char *)c + k->aux) = n;
        return 0;
    }
    case KEY_FLOAT_SWEEP: {
        if (n < 1) return snprintf(msg, size, "needs a number or a list of numbers"), -1;
        if (n > CFG_MAX_LIST)
            return snprintf(msg, size, "at most %d items, got %d", CFG_MAX_LIST, n), -1;
        double *items = (double *)field;
        for (int i = 0; i < n; i++) {
            double x;
            if (parse_double(v->item[i], &x) != 0)
                return snprintf(msg, size, "expected a number, got %s",
                                shown(v->item[i], buf, sizeof buf)),
                       -1;
            if (!in_range(k, x)) return range_error(k, v->item[i], msg, size);
            for (int j = 0; j < i; j++)
                if (items[j] == x)
                    return snprintf(msg, size, "%s listed twice", shown(v->item[i], buf, sizeof buf)),
                           -1;
            items[i] = x;
        }
        for (int i = n; i < CFG_MAX_LIST; i++)
            items[i] = 0;
        *(int *)((char *)c + k->aux) = n;
        return 0;
    }
    case KEY_FLAGS: {
        int *flags = (int *)field, set[CFG_MAX_LIST] = {0};
        if (n > CFG_MAX_LIST)
            return snprintf(msg, size, "at most %d items, got %d", CFG_MAX_LIST, n), -1;
        for (int i = 0; i < n; i++) {
            int w = word_index(k->words, v->item[i]);
            if (w < 0) {
                snprintf(msg, size, "items must be from %s; got %s",
                         words_text(k->words, list, sizeof list),
                         shown(v->item[i], buf, sizeof buf));
                return -1;
            }
            if (set[w]++)
                return snprintf(msg, size, "%s listed twice", shown(v->item[i], buf, sizeof buf)),
                       -1;
        }
        int n_words = count_words(k->words);
        for (int w = 0; w < n_words; w++)
            flags[w] = set[w] ? 1 : 0;
        return 0;
    }
    }
    ED_DIE("bad key type %d", (int)k->type);
}

/* ---- checking a stored value, writing it, describing its type ---- */

static void float_text(double x, char *buf, size_t size);

int key_check(const Config *c, const ConfigKey *k, char *msg, size_t size) {
    const char *field = (const char *)c + k->offset;
    char text[ED_PATH_MAX + 64], list[128];
    switch (k->type) {
    case KEY_INT:
    case KEY_INT64:
    case KEY_FLOAT: {
        double x = k->type == KEY_INT     ? *(const int *)field
                   : k->type == KEY_INT64 ? (double)*(const int64_t *)field
                                          : *(const double *)field;
        if (k->words && x == 0) return 0;
        if (isfinite(x) && in_range(k, x)) return 0;
        key_format(c, k, text, sizeof text);
        return range_error(k, text, msg, size);
    }
    case KEY_BOOL:
        if (*(const int *)field == 0 || *(const int *)field == 1) return 0;
        return snprintf(msg, size, "must be true or false, got %d", *(const int *)field), -1;
    case KEY_STRING:
        if (!memchr(field, '\0', k->aux)) return snprintf(msg, size, "not a terminated string"), -1;
        return 0;
    case KEY_ENUM: {
        int value = *(const int *)field;
        if (value >= 0 && (size_t)value < k->aux) return 0;
        return snprintf(msg, size, "must be one of %s; got the value %d",
                        names_text(k, list, sizeof list), value),
               -1;
    }
    case KEY_INT_LIST: {
        int n = *(const int *)((const char *)c + k->aux);
        if (n < 0 || n > CFG_MAX_LIST)
            return snprintf(msg, size, "must hold 0 to %d items, got %d", CFG_MAX_LIST, n), -1;
        for (int i = 0; i < n; i++) {
            int x = ((const int *)field)[i];
            if (!in_range(k, x)) {
                snprintf(text, sizeof text, "%d", x);
                return range_error(k, text, msg, size);
            }
        }
        return 0;
    }
    case KEY_FLOAT_SWEEP: {
        int n = *(const int *)((const char *)c + k->aux);
        if (n < 1 || n > CFG_MAX_LIST)
            return snprintf(msg, size, "must hold 1 to %d items, got %d", CFG_MAX_LIST, n), -1;
        for (int i = 0; i < n; i++) {
            double x = ((const double *)field)[i];
            if (!(isfinite(x) && in_range(k, x))) {
                float_text(x, text, sizeof text);
                return range_error(k, text, msg, size);
            }
        }
        return 0;
    }
    case KEY_FLAGS:
        for (int w = 0; w < count_words(k->words); w++)
            if (((const int *)field)[w] != 0 && ((const int *)field)[w] != 1)
                return snprintf(msg, size, "flag %d must be 0 or 1", w), -1;
        return 0;
    }
    ED_DIE("bad key type %d", (int)k->type);
}

/* The shortest text that reads back to the same double, with a '.' so YAML sees a float. */
static void float_text(double x, char *buf, size_t size) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    if (strchr(buf, '.')) return;
    char text[48];
    const char *e = strchr(buf, 'e');
    snprintf(text, sizeof text, "%.*s.0%s", (int)(e ? (size_t)(e - buf) : strlen(buf)), buf,
             e ? e : "");
    snprintf(buf, size, "%s", text);
}

/* A string as a YAML scalar: plain when no YAML reader could take it for anything else,
 * double-quoted otherwise. */
static void string_text(const char *s, char *buf, size_t size) {
    static const char *special[] = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"};
    int plain =
        (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_' || s[0] == '/';
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-", *p) !=
                NULL;
    for (size_t i = 0; plain && i < sizeof special / sizeof *special; i++)
        if (strcasecmp(s, special[i]) == 0) plain = 0;
    if (plain) {
        snprintf(buf, size, "%s", s);
        return;
    }
    size_t j = 0;
    buf[j++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && j + 6 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buf[j++] = '\\';
            buf[j++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            j += (size_t)snprintf(buf + j, size - j, "\\x%02x", *p);
        } else {
            buf[j++] = (char)*p;
        }
    }
    buf[j++] = '"';
    buf[j] = '\0';
}

void key_format(const Config *c, const ConfigKey *k, char *buf, size_t size) {
    const char *field = (const char *)c + k->offset;
    size_t j = 0;
    switch (k->type) {
    case KEY_INT:
        if (k->words && *(const int *)field == 0)
            snprintf(buf, size, "%s", k->words);
        else
            snprintf(buf, size, "%d", *(const int *)field);
        return;
    case KEY_INT64:
        snprintf(buf, size, "%" PRId64, *(const int64_t *)field);
        return;
    case KEY_FLOAT:
        float_text(*(const double *)field, buf, size);
        return;
    case KEY_BOOL:
        snprintf(buf, size, "%s", *(const int *)field ? "true" : "false");
        return;
    case KEY_STRING:
        string_text(field, buf, size);
        return;
    case KEY_ENUM: {
        int value = *(const int *)field;
        ED_CHECK(value >= 0 && (size_t)value < k->aux, "%s: bad value %d", k->path, value);
        string_text(k->names[value], buf, size);
        return;
    }
    case KEY_INT_LIST:
        j += (size_t)snprintf(buf, size, "[");
        for (int i = 0; i < *(const int *)((const char *)c + k->aux) && j < size; i++)
            j +=
                (size_t)snprintf(buf + j, size - j, "%s%d", i ? ", " : "", ((const int *)field)[i]);
        if (j < size) snprintf(buf + j, size - j, "]");
        return;
    case KEY_FLOAT_SWEEP: { /* one value as a scalar (the configs read as before), else a list */
        int n = *(const int *)((const char *)c + k->aux);
        char item[64];
        if (n == 1) {
            float_text(*(const double *)field, buf, size);
            return;
        }
        j += (size_t)snprintf(buf, size, "[");
        for (int i = 0; i < n && j < size; i++) {
            float_text(((const double *)field)[i], item, sizeof item);
            j += (size_t)snprintf(buf + j, size - j, "%s%s", i ? ", " : "", item);
        }
        if (j < size) snprintf(buf + j, size - j, "]");
        return;
    }
    case KEY_FLAGS: {
        int first = 1;
        j += (size_t)snprintf(buf, size, "[");
        const char *word = k->words;
        for (int w = 0; word && j < size; w++) {
            int len = (int)strcspn(word, "|");
            if (((const int *)field)[w]) {
                j += (size_t)snprintf(buf + j, size - j, "%s%.*s", first ? "" : ", ", len, word);
                first = 0;
            }
            word = word[len] ? word + len + 1 : NULL;
        }
        if (j < size) snprintf(buf + j, size - j, "]");
        return;
    }
    }
    ED_DIE("bad key type %d", (int)k->type);
}

void key_type_text(const ConfigKey *k, char *buf, size_t size) {
    char range[96], list[128];
    range_text(k, range, sizeof range);
    const char *sep = range[0] ? " " : "";
    switch (k->type) {
    case KEY_INT:
    case KEY_INT64:
        snprintf(buf, size, "int%s%s%s%s%s", sep, range, k->words ? " or `" : "",
                 k->words ? k->words : "", k->words ? "`" : "");
        return;
    case KEY_FLOAT:
        snprintf(buf, size, "float%s%s", sep, range);
        return;
    case KEY_BOOL:
        snprintf(buf, size, "bool");
        return;
    case KEY_STRING:
        snprintf(buf, size, "string");
        return;
    case KEY_ENUM:
        snprintf(buf, size, "one of: %s", names_text(k, list, sizeof list));
        return;
    case KEY_INT_LIST:
        snprintf(buf, size, "list of int%s%s", sep, range);
        return;
    case KEY_FLOAT_SWEEP:
        snprintf(buf, size, "float%s%s, or a list of them", sep, range);
        return;
    case KEY_FLAGS:
        snprintf(buf, size, "list from: %s", words_text(k->words, list, sizeof list));
        return;
    }
    ED_DIE("bad key type %d", (int)k->type);
}

void schema_defaults(Config *c) {
    ConfigValue v;
    char msg[256];
    memset(c, 0, sizeof *c); /* padding too, so configs compare with memcmp */
    for (int i = 0; i < config_n_keys; i++) {
        for (size_t n = 0; config_keys[i].type == KEY_ENUM && n < config_keys[i].aux; n++)
            ED_CHECK(config_keys[i].names[n], "%s: enum value %zu has no name",
                     config_keys[i].path, n);
        value_from_text(&v, &config_keys[i], config_keys[i].def);
        ED_CHECK(key_apply(c, &config_keys[i], &v, msg, sizeof msg) == 0, "default of %s: %s",
                 config_keys[i].path, msg);
    }
}
