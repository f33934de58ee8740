/* The experiment config: one plain struct (no pointers, so rank 0 parses and MPI_Bcast sends
 * its bytes), parsed from YAML against a schema that documents every key (config_print_docs
 * writes the README table). Unknown keys, wrong types and out-of-range values are errors that
 * name file:line, the key and, for unknown keys, the nearest valid one. */
#ifndef ENSDISTILL_CONFIG_H
#define ENSDISTILL_CONFIG_H

#include "ensdistill/fsutil.h"
#include "ensdistill/nn_kinds.h" /* ScheduleKind, Combine, Precision */

#include <stdint.h>
#include <stdio.h>

#define CFG_STR 256
#define CFG_MAX_LIST 16

/* The keys whose value is one of a few names are C enums in Config. The schema maps the names
 * (as the YAML spells them) to the values: <enum>_names[value] is the name, for messages and
 * files. */
typedef enum {
    SOURCE_FASHION_MNIST,
    SOURCE_MNIST,
    SOURCE_CIFAR10,
    SOURCE_CIFAR100,
    SOURCE_HDF5,
    SOURCE_MULTIVIEW,
    SOURCE_TOY2,
} DataSource;
typedef enum { LABELS_FINE, LABELS_COARSE } LabelSet; /* cifar100's 100 or 20 classes */
typedef enum { NOISE_GAUSS, NOISE_ORTH } NoiseKind;    /* multi-view patch noise */
extern const char *const config_source_names[];        /* "fashion-mnist", ..., "toy2" */
extern const char *const config_labels_names[];        /* "fine", "coarse" */
extern const char *const config_noise_names[];         /* "gauss", "orth" */
extern const char *const config_schedule_names[];      /* "constant", "multistep", "cosine" */
extern const char *const config_precision_names[];     /* "fp32", "bf16" */
extern const char *const config_combine_names[];        /* "logits", "probs" */
extern const char *const config_codistill_mode_names[]; /* "logits", "checkpoints" */

typedef struct {
    int k, d, patches;      /* classes, dimension, patches per sample P */
    int patches_per_view;   /* patches that carry each present view */
    int n_train, n_test;
    double mu;              /* fraction of single-view samples */
    double view_lo, view_hi; /* weight of a present view ~ U[lo, hi] */
    double weak_scale;      /* single-view samples: the other view at this fraction (rho_sv) */
    double off_prob;        /* each off-class view present with this probability (s/k) */
    double off_mv_lo, off_mv_hi; /* its weight in multi-view samples */
    double off_sv_lo, off_sv_hi; /* its weight in single-view samples */
    double feature_noise;   /* gamma: each patch gets U[0, gamma] times a random view vector */
    NoiseKind noise;
    double sigma;           /* noise norm (orth) or scale (gauss: N(0, sigma^2/d I)) */
    int64_t seed;
} MultiviewConfig;

typedef struct {
    DataSource source;
    char path[ED_PATH_MAX];  /* directory (idx, cifar) or .h5 file (hdf5) */
    int augment;          /* random crop + flip */
    int crop_pad;         /* zero padding of the random crop */
    int flip;             /* random horizontal flip */
    LabelSet labels;      /* cifar100: fine or coarse */
    int normalize;        /* per-channel mean/std from the training set */
    int train_limit, test_limit; /* use only the first n samples; 0 = all */
    MultiviewConfig multiview;
} DataConfig;

typedef struct {
    char arch[CFG_STR];
    int hidden;           /* mlp / cnn hidden width; 0 = the arch's default */
    int filters;          /* mvconv: filters per class (m) */
    double srelu_q, srelu_rho; /* mvconv smoothed ReLU */
    double init_std;      /* mvconv initial weight std */
    int random_features;  /* freeze all but the last layer */
} ModelConfig;

typedef struct {
    int epochs;
    int batch_size;       /* 0 = full batch ("full" in YAML) */
    double lr, momentum, weight_decay;
    int nesterov;
    ScheduleKind schedule;
    int milestones[CFG_MAX_LIST];
    int n_milestones;
    double gamma;         /* multistep factor */
    double warmup_epochs;
    double clip_norm;
    int eval_every;       /* test accuracy every n epochs (and the last); 0 = only at the end */
    Precision precision;  /* fp32, or bf16 mixed precision (precision.h) */
} TrainConfig;

typedef struct {
    int members;          /* L */
    int64_t seed;
    Combine combine;      /* mean of logits or of probabilities */
} EnsembleConfig;

/* distill.codistill.mode: how co-distilled members see their peers (codistill.c). */
typedef enum { CODISTILL_LOGITS, CODISTILL_CHECKPOINTS } CodistillMode;

typedef struct {
    double weight;        /* w: loss = (1 - w) CE + w T^2 KL(peers_T || own_T) */
    double temperature;   /* T */
    int burn_in;          /* epochs of plain CE before the peers' term starts */
    CodistillMode mode;   /* logits: the peers' logits of the same batch, every step;
                             checkpoints: the peers' weights every `period` steps */
    int period;           /* checkpoints: steps between weight exchanges */
} CodistillConfig;

typedef struct {
    int kd, self, sum;    /* which students run (list "students: [kd, self, sum, codistill]") */
    int codistilled;      /* ... and the L co-distilled members (codistill.c) */
    int seeds;            /* number of KD students (and self students) */
    /* The students' loss and lr: one value each, or lists to sweep (one student per
     * combination, times seeds); n_* >= 1 values each. */
    double temperature[CFG_MAX_LIST], alpha[CFG_MAX_LIST];
    int n_temperature, n_alpha;
    int epochs;           /* students' epochs; 0 = train.epochs */
    double lr[CFG_MAX_LIST]; /* students' lr; 0 = train.lr */
    int n_lr;
    int sum_epochs;       /* the sum control's epochs; 0 = train.epochs */
    double sum_lr;        /* the sum control's lr; 0 = train.lr */
    char teacher[ED_PATH_MAX]; /* RUN_DIR of a finished run whose members are reused; "" = none */
    CodistillConfig codistill;
} DistillConfig;

typedef struct {
    int ranks_per_model;  /* g */
    double grad_bucket_mb; /* all-reduce bucket (MiB); 0 = one bucket */
    int grad_overlap;      /* start each bucket's sum during backward */
    int threads;          /* threads per rank; 0 = auto (the CPUs the rank was given) */
} ParallelConfig;

typedef struct {
    char dir[ED_PATH_MAX];   /* RUN_DIR */
    int every_epochs;
    int deflate;          /* 0 = off, 1..9 gzip level */
} CheckpointConfig;

typedef struct {
    int batch_size;       /* evaluation batch */
    int ece_bins;
} EvalConfig;

typedef struct {
    char name[CFG_STR];
    char source_file[ED_PATH_MAX]; /* the YAML file it came from */
    DataConfig data;
    ModelConfig model;
    TrainConfig train;
    EnsembleConfig ensemble;
    DistillConfig distill;
    ParallelConfig parallel;
    CheckpointConfig checkpoint;
    EvalConfig eval;
} Config;

/* Fills every key with its default. */
void config_defaults(Config *c);
/* Parses path (YAML) over the defaults, then applies overrides "a.b=value" in order, then
 * validates. Returns 0, or -1 with a one-line message in err ("FILE:LINE: key: what is wrong"). */
int config_load(Config *c, const char *path, int n_overrides, char *const *overrides, char *err,
                size_t err_size);
/* The same from YAML text (a config stored in a checkpoint); name stands for the file in
 * messages. */
int config_load_text(Config *c, const char *text, const char *name, char *err, size_t err_size);
/* The first key, in schema order, where a and b differ among the keys that shape what a run
 * computes (every key but the parallel and checkpoint sections, and those starting with one of
 * the NULL-terminated prefixes in ignore, which may be NULL; data.path compared as the file
 * system resolves it). Returns 1 with the key and both values (as YAML text), or 0. */
int config_first_difference(const Config *a, const Config *b, const char *const *ignore,
                            char *key, size_t key_size, char *value_a, char *value_b,
                            size_t value_size);
/* Applies one "a.b=value" override. Returns 0 or -1 with a message. */
int config_set(Config *c, const char *assignment, char *err, size_t err_size);
/* Cross-key checks (ranges, consistency). Returns 0 or -1 with a message. */
int config_validate(const Config *c, char *err, size_t err_size);
/* The resolved config as YAML that config_load reads back to an equal Config (malloc'd). */
char *config_to_yaml(const Config *c);
/* 0 when a and b agree on every key of the named sections (NULL-terminated: "data", "model",
 * ...); else 1 and the first key that differs with both values ("data.train_limit: 5000 here,
 * 10000 there") in why. */
int config_diff(const Config *a, const Config *b, const char *const *sections, char *why,
                size_t size);
/* The Markdown table of every key: key | type | default | meaning. */
void config_print_docs(FILE *out);

#endif
