/* Config: the schema table is well formed; defaults; a good file (block and flow style,
 * comments); every error class with its exact FILE:LINE message; --set overrides of every
 * type; cross-key validation; the to_yaml -> config_load round trip (memcmp of the structs);
 * nearest-key suggestions; the docs table. */
#include "ensdistill/cli.h"
#include "ensdistill/config.h"
#include "expect_fail.h"

#include "../../src/config/config_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>

#include "check.h"

static char dir[512], path[1024];

static void write_file(const char *file, const char *text) {
    FILE *f = fopen(file, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", file);
        exit(1);
    }
}

/* Loads text (written to path) with the overrides; returns config_load's result. */
static int load(Config *c, const char *text, int n, char *const *overrides, char *err,
                size_t size) {
    write_file(path, text);
    return config_load(c, path, n, overrides, err, size);
}

/* Expects loading text with the overrides to fail with exactly `want` ("%s" = the file). */
static void expect_error(const char *text, int n, char *const *overrides, const char *want) {
    Config c, before;
    char err[2048], expected[2048];
    config_defaults(&c);
    memcpy(&before, &c, sizeof c);
    snprintf(expected, sizeof expected, want, path);
    int rc = load(&c, text, n, overrides, err, sizeof err);
    EXPECT(rc == -1, "loading\n%s---\nsucceeded; expected: %s", text, expected);
    if (rc == -1)
        EXPECT(strcmp(err, expected) == 0, "message\n  got:  %s\n  want: %s", err, expected);
    EXPECT(memcmp(&c, &before, sizeof c) == 0, "a failed load changed the config (%s)", expected);
}

static int under(const char *key, const char *section) {
    size_t n = strlen(section);
    return strncmp(key, section, n) == 0 && key[n] == '.';
}

static void test_schema(void) {
    char section[256];
    EXPECT(config_n_keys > 60, "only %d keys", config_n_keys);
    for (int i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        EXPECT(schema_find(k->path) == i, "%s is not found at its own index (duplicate?)", k->path);
        EXPECT(k->doc && k->doc[0], "%s has no doc", k->path);
        EXPECT(k->offset < sizeof(Config), "%s: offset out of Config", k->path);
        /* the keys of a section are contiguous (the YAML dump opens each section once) */
        for (const char *dot = strchr(k->path, '.'); dot; dot = strchr(dot + 1, '.')) {
            snprintf(section, sizeof section, "%.*s", (int)(dot - k->path), k->path);
            if (i > 0 && !under(config_keys[i - 1].path, section))
                for (int j = 0; j < i; j++)
                    EXPECT(!under(config_keys[j].path, section), "section %s is split by %s",
                           section, config_keys[i - 1].path);
        }
    }
}

static void test_defaults(void) {
    Config c;
    char err[1024];
    config_defaults(&c);
    EXPECT(!strcmp(c.name, "run"), "name %s", c.name);
    EXPECT(c.data.source == SOURCE_FASHION_MNIST && c.data.path[0] == 0, "data %d '%s'",
           (int)c.data.source, c.data.path);
    EXPECT(c.data.augment == 0 && c.data.flip == 1 && c.data.crop_pad == 4 && c.data.normalize == 1,
           "data flags");
    EXPECT(c.data.labels == LABELS_FINE, "labels %d", (int)c.data.labels);
    const MultiviewConfig *mv = &c.data.multiview;
    EXPECT(mv->k == 10 && mv->d == 64 && mv->patches == 12 && mv->patches_per_view == 1 &&
               mv->n_train == 600 && mv->n_test == 2000,
           "multiview sizes");
    EXPECT(mv->mu == 0.05 && mv->view_lo == 1.0 && mv->view_hi == 1.3 && mv->weak_scale == 0.05 &&
               mv->off_prob == 0.3,
           "multiview weights");
    EXPECT(mv->off_mv_lo == 0.4 && mv->off_mv_hi == 0.6 && mv->off_sv_lo == 0.05 &&
               mv->off_sv_hi == 0.15,
           "multiview off-class weights");
    EXPECT(mv->noise == NOISE_ORTH && mv->sigma == 1.3 && mv->seed == 1 &&
               mv->feature_noise == 0,
           "noise");
    EXPECT(!strcmp(c.model.arch, "cnn") && c.model.filters == 8 && c.model.srelu_q == 3 &&
               c.model.srelu_rho == 0.3 && c.model.init_std == 2e-4 &&
               c.model.random_features == 0 && c.model.hidden == 0,
           "model");
    EXPECT(c.train.epochs == 10 && c.train.batch_size == 128 && c.train.lr == 0.05 &&
               c.train.momentum == 0.9 && c.train.weight_decay == 5e-4 && c.train.nesterov == 1 &&
               c.train.schedule == SCHEDULE_COSINE && c.train.n_milestones == 0 &&
               c.train.gamma == 0.1 && c.train.warmup_epochs == 0 && c.train.eval_every == 1,
           "train");
    EXPECT(c.ensemble.members == 4 && c.ensemble.seed == 1 && c.ensemble.combine == COMBINE_LOGITS,
           "ensemble");
    EXPECT(c.distill.kd && c.distill.self && c.distill.sum && c.distill.seeds == 1 &&
               c.distill.temperature[0] == 4 && c.distill.n_temperature == 1 &&
               c.distill.alpha[0] == 0.9 && c.distill.n_alpha == 1 && c.distill.epochs == 0 &&
               c.distill.lr[0] == 0 && c.distill.n_lr == 1,
           "distill");
    EXPECT(c.parallel.ranks_per_model == 1 && c.parallel.threads == 0, "parallel");
    EXPECT(!strcmp(c.checkpoint.dir, "runs/run") && c.checkpoint.every_epochs == 1 &&
               c.checkpoint.deflate == 0,
           "checkpoint dir %s", c.checkpoint.dir);
    EXPECT(c.eval.batch_size == 500 && c.eval.ece_bins == 15, "eval");
    EXPECT(config_validate(&c, err, sizeof err) == 0, "defaults do not validate: %s", err);

    /* an empty file with only the required name is every default; dir follows the name */
    Config e;
    char *name_run[] = {"name=run"};
    EXPECT(load(&e, "# nothing\n", 1, name_run, err, sizeof err) == 0, "empty file: %s", err);
    EXPECT(!strcmp(e.source_file, path), "source_file %s", e.source_file);
    memset(e.source_file, 0, sizeof e.source_file);
    EXPECT(memcmp(&c, &e, sizeof c) == 0, "empty file differs from the defaults");
}

static void test_good_file(void) {
    Config c;
    char err[1024];
    const char *text =
        "# a tiny multi-view run\n"
        "name: mv-test\n"
        "data:\n"
        "  source: multiview\n"
        "  multiview: {k: 4, d: 16, patches: 6, mu: 0.2, noise: gauss, seed: 12345678901}\n"
        "model: {arch: mvconv, filters: 3}\n"
        "train:\n"
        "  epochs: 7\n"
        "  batch_size: full\n"
        "  lr: 1.5e1\n"
        "  nesterov: no\n"
        "  momentum: 0.0\n"
        "  schedule: multistep\n"
        "  milestones:\n"
        "    - 3\n"
        "    - 5\n"
        "ensemble:\n"
        "  members: 3\n"
        "  combine: probs\n"
        "distill:\n"
        "  students: [kd, sum]\n"
        "  alpha: 0\n"
        "parallel: {threads: 2}\n"
        "checkpoint:\n"
        "eval.ece_bins: 10  # a dotted key is the same as the nested form\n";
    EXPECT(load(&c, text, 0, NULL, err, sizeof err) == 0, "good file: %s", err);
    EXPECT(!strcmp(c.name, "mv-test") && !strcmp(c.checkpoint.dir, "runs/mv-test"),
           "name %s dir %s", c.name, c.checkpoint.dir);
    EXPECT(c.data.source == SOURCE_MULTIVIEW && c.data.multiview.k == 4 &&
               c.data.multiview.d == 16 && c.data.multiview.patches == 6 &&
               c.data.multiview.mu == 0.2 && c.data.multiview.noise == NOISE_GAUSS &&
               c.data.multiview.seed == 12345678901LL,
           "multiview section");
    EXPECT(c.data.multiview.n_train == 600, "untouched multiview keys keep their defaults");
    EXPECT(!strcmp(c.model.arch, "mvconv") && c.model.filters == 3, "model");
    EXPECT(c.train.epochs == 7 && c.train.batch_size == 0 && c.train.lr == 15 &&
               c.train.nesterov == 0 && c.train.momentum == 0 &&
               c.train.schedule == SCHEDULE_MULTISTEP,
           "train");
    EXPECT(c.train.n_milestones == 2 && c.train.milestones[0] == 3 && c.train.milestones[1] == 5,
           "milestones");
    EXPECT(c.ensemble.members == 3 && c.ensemble.combine == COMBINE_PROBS, "ensemble");
    EXPECT(c.distill.kd == 1 && c.distill.self == 0 && c.distill.sum == 1 && c.distill.alpha[0] == 0,
           "students");
    EXPECT(c.parallel.threads == 2 && c.eval.ece_bins == 10, "parallel / eval");
}

static void test_errors(void) {
    char *set_bad_key[] = {"train.lrr=0.1"}, *set_bad_value[] = {"train.lr=fast"},
         *set_no_eq[] = {"train.lr"}, *set_section[] = {"train=3"},
         *set_range[] = {"distill.alpha=1.5"}, *set_momentum[] = {"train.momentum=0"};
    expect_error("name: x\ntrain:\n  epochs: 3\n  lrr: 0.1\n", 0, NULL,
                 "%s:4: unknown key 'train.lrr' (did you mean 'train.lr'?)");
    expect_error("train:\n  lr: 0.1\n  epochs: ten\n", 0, NULL,
                 "%s:3: train.epochs: expected an integer, got 'ten'");
    expect_error("train:\n  epochs: 2.5\n", 0, NULL,
                 "%s:2: train.epochs: expected an integer, got '2.5'");
    expect_error("train:\n  epochs: 99999999999\n", 0, NULL,
                 "%s:2: train.epochs: '99999999999' is out of the range of the integer type");
    expect_error(
        "ensemble:\n  seed: 99999999999999999999\n", 0, NULL,
        "%s:2: ensemble.seed: '99999999999999999999' is out of the range of the integer type");
    expect_error("\n\ntrain:\n  lr: -1\n", 0, NULL, "%s:4: train.lr: must be > 0, got -1");
    expect_error("train:\n  lr: .nan\n", 0, NULL, "%s:2: train.lr: expected a number, got '.nan'");
    expect_error("distill:\n  alpha: 2\n", 0, NULL,
                 "%s:2: distill.alpha: must be in [0, 1], got 2");
    expect_error("train:\n  momentum: 1\n", 0, NULL,
                 "%s:2: train.momentum: must be in [0, 1), got 1");
    expect_error("train:\n  nesterov: maybe\n", 0, NULL,
                 "%s:2: train.nesterov: expected true or false, got 'maybe'");
    expect_error("data:\n  source: cifar\n", 0, NULL,
                 "%s:2: data.source: must be one of fashion-mnist, mnist, cifar10, cifar100, hdf5, "
                 "multiview, toy2; "
                 "got 'cifar'");
    expect_error("train:\n  batch_size: 0\n", 0, NULL,
                 "%s:2: train.batch_size: must be in [1, 16777216] or 'full', got 0");
    expect_error("parallel:\n  threads: many\n", 0, NULL,
                 "%s:2: parallel.threads: expected an integer or 'auto', got 'many'");
    expect_error("distill:\n  students: [kd, teacher]\n", 0, NULL,
                 "%s:2: distill.students: items must be from kd, self, sum, codistill; got 'teacher'");
    expect_error("distill:\n  students: [kd, kd]\n", 0, NULL,
                 "%s:2: distill.students: 'kd' listed twice");
    expect_error("ensemble:\n  members: 1\ndistill:\n  students: [codistill]\n", 0, NULL,
                 "%s:4: distill.students: codistill needs ensemble.members >= 2 (each member "
                 "distils from its peers), got 1");
    expect_error("train:\n  epochs: 3\ndistill:\n  students: [codistill]\n  codistill:\n"
                 "    burn_in: 4\n",
                 0, NULL,
                 "%s:6: distill.codistill.burn_in: must be <= train.epochs = 3 (the co-distilled "
                 "members train as long as the members), got 4");
    expect_error("distill:\n  codistill:\n    mode: weights\n", 0, NULL,
                 "%s:3: distill.codistill.mode: must be one of logits, checkpoints; got 'weights'");
    expect_error(
        "train:\n  milestones: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\n", 0,
        NULL, "%s:2: train.milestones: at most 16 items, got 17");
    expect_error("train:\n  lr: [1, 2]\n", 0, NULL,
                 "%s:2: train.lr: expected a single value, got a list");
    expect_error("train:\n  lr: {a: 1}\n", 0, NULL,
                 "%s:2: train.lr: expected a value, got a mapping");
    expect_error("train:\n  lr: 0.1\n  lr: 0.2\n", 0, NULL,
                 "%s:3: duplicate key 'train.lr' (first set on line 2)");
    expect_error("train:\n  lr: 0.1\nmodel: {arch: cnn}\ntrain:\n  epochs: 2\n", 0, NULL,
                 "%s:4: duplicate section 'train' (first on line 1)");
    expect_error("name: x\ntrain: fast\n", 0, NULL,
                 "%s:2: 'train' is a section: expected its keys indented below it, got 'fast'");
    expect_error(
        "name: x\ntrain:\n  lr: [0.1\n  epochs: 2\n", 0, NULL,
        "%s:4: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence");
    expect_error("name: x\n  bad: indent\n", 0, NULL,
                 "%s:2: YAML syntax error: mapping values are not allowed in this context");
    expect_error(
        "- a\n- b\n", 0, NULL,
        "%s:1: expected a mapping of sections at the top (name: ..., data: ..., train: ...)");
    expect_error("name: a\n---\nname: b\n", 0, NULL, "%s:2: only one YAML document is allowed");
    expect_error("name: x\n", 1, set_bad_key,
                 "--set train.lrr=0.1: unknown key 'train.lrr' (did you mean 'train.lr'?)");
    expect_error("name: x\n", 1, set_bad_value,
                 "--set train.lr=fast: expected a number, got 'fast'");
    expect_error("name: x\n", 1, set_no_eq,
                 "--set train.lr: expected key=value (e.g. --set train.lr=0.1)");
    expect_error("name: x\n", 1, set_section,
                 "--set train=3: 'train' is a section: set one of its keys, like train.epochs");
    expect_error("name: x\n", 1, set_range, "--set distill.alpha=1.5: must be in [0, 1], got 1.5");

    /* cross-key checks name the line of the key they blame, or where it was set */
    expect_error("data:\n  source: multiview\n  multiview:\n    k: 10\n    d: 16\n", 0, NULL,
                 "%s:5: data.multiview.d: must be >= 2 * classes = 20 (one orthonormal vector per "
                 "view), got 16");
    expect_error("data:\n  source: multiview\n  multiview: {patches_per_view: 4, patches: 6}\n", 0,
                 NULL,
                 "%s:3: data.multiview.patches: must be >= 2 * patches_per_view = 8 (room for both "
                 "views), got 6");
    expect_error("data:\n  multiview:\n    view_lo: 2\n", 0, NULL,
                 "%s:3: data.multiview.view_lo: must be <= data.multiview.view_hi = 1.3, got 2");
    expect_error("data: {source: hdf5}\n", 0, NULL,
                 "%s: data.path: data.source hdf5 needs the path of an .h5 data file");
    expect_error(
        "data: {source: mnist, path: /d, labels: coarse}\n", 0, NULL,
        "%s:1: data.labels: 'coarse' applies only to data.source cifar100 (source is mnist)");
    expect_error("data:\n  source: cifar10\n", 0, NULL,
                 "%s: data.path: data.source cifar10 needs the directory of its files");
    expect_error("data:\n  source: toy2\n  multiview:\n    patches: 2\n", 0, NULL,
                 "%s:4: data.multiview.patches: must be >= 2 * patches_per_view + 1 = 3 (room for "
                 "both views and "
                 "toy2's off-class patch), got 2");
    expect_error("train:\n  schedule: multistep\n", 0, NULL,
                 "%s: train.milestones: schedule multistep needs at least one milestone");
    expect_error("train:\n  schedule: multistep\n  milestones: [5, 3]\n", 0, NULL,
                 "%s:3: train.milestones: must increase, got 3 after 5");
    expect_error("model:\n  arch: resnet-21\n", 0, NULL,
                 "%s:2: model.arch: model resnet-21: a CIFAR ResNet has depth 6n+2 with n >= 1 "
                 "(20, 32, 44, 56, 110, ...) and at most 2000, got 21");
    expect_error("model:\n  arch: mvconv\n", 0, NULL,
                 "%s:2: model.arch: mvconv takes patch data (data.source multiview, toy2 or hdf5), "
                 "not fashion-mnist");
    expect_error("name: a/b\n", 0, NULL,
                 "%s:1: name: use only letters, digits, '.', '_' and '-' (it names the run "
                 "directory), got 'a/b'");
    expect_error("name: ..\n", 0, NULL,
                 "%s:1: name: must not be '.' or contain '..' (it names the run directory), got "
                 "'..'");
    expect_error("name: a..b\n", 0, NULL,
                 "%s:1: name: must not be '.' or contain '..' (it names the run directory), got "
                 "'a..b'");
    expect_error("name: x\ncheckpoint:\n  dir: out/run.h5/\n", 0, NULL,
                 "%s:3: checkpoint.dir: 'out/run.h5/' is the run directory, but a name ending in "
                 ".h5 is taken for a file (RUN_DIR/run.h5 by inspect and eval): choose another name");
    expect_error("train:\n  epochs: 3\n", 0, NULL,
                 "%s: name: is required (it names the run and its directory runs/<name>); add "
                 "'name: ...' or --set name=...");
    expect_error("train:\n  epochs: 3\n", 1, set_momentum,
                 "--set train.momentum: must be > 0 when train.nesterov is true (or set "
                 "train.nesterov: false)");

    /* a missing file */
    Config c;
    char err[1024], want[1200];
    snprintf(want, sizeof want, "%s/missing.yaml: cannot open: No such file or directory", dir);
    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    EXPECT(config_load(&c, path, 0, NULL, err, sizeof err) == -1 && !strcmp(err, want),
           "missing file: %s", err);
    snprintf(path, sizeof path, "%s/test.yaml", dir);

    /* config_validate on a struct filled in code */
    config_defaults(&c);
    c.ensemble.members = 0;
    EXPECT(config_validate(&c, err, sizeof err) == -1 &&
               !strcmp(err, "ensemble.members: must be in [1, 10000], got 0"),
           "validate members: %s", err);
    config_defaults(&c);
    c.distill.temperature[0] = -2;
    strcpy(c.source_file, "x.yaml");
    EXPECT(config_validate(&c, err, sizeof err) == -1 &&
               !strcmp(err, "x.yaml: distill.temperature: must be > 0, got -2.0"),
           "validate temperature: %s", err);
}

static void test_overrides(void) {
    Config c;
    char err[1024];
    char *sets[] = {"train.epochs=3",           "train.lr=0.25",
                    "train.nesterov=false",     "name=quick",
                    "train.milestones=[2, 4]",  "train.batch_size=full",
                    "distill.students=kd",      "parallel.threads=3",
                    "ensemble.seed=5000000000", "train.schedule=multistep",
                    "data.path=/data/x y",      "train.epochs=4"};
    int n = (int)(sizeof sets / sizeof sets[0]);
    EXPECT(load(&c, "train:\n  epochs: 50\n  lr: 0.1\n", n, sets, err, sizeof err) == 0,
           "overrides: %s", err);
    EXPECT(c.train.epochs == 4, "the last override wins: epochs %d", c.train.epochs);
    EXPECT(c.train.lr == 0.25 && c.train.nesterov == 0, "lr %g nesterov %d", c.train.lr,
           c.train.nesterov);
    EXPECT(!strcmp(c.name, "quick") && !strcmp(c.checkpoint.dir, "runs/quick"), "name %s dir %s",
           c.name, c.checkpoint.dir);
    EXPECT(c.train.n_milestones == 2 && c.train.milestones[0] == 2 && c.train.milestones[1] == 4,
           "milestones");
    EXPECT(c.train.batch_size == 0, "full batch is %d", c.train.batch_size);
    EXPECT(c.distill.kd == 1 && c.distill.self == 0 && c.distill.sum == 0, "students");
    EXPECT(c.parallel.threads == 3 && c.ensemble.seed == 5000000000LL, "threads / seed");
    EXPECT(!strcmp(c.data.path, "/data/x y"), "path '%s'", c.data.path);

    /* config_set on its own; lists without brackets; empty list; words back to 0 */
    EXPECT(config_set(&c, "train.milestones=7,9,11", err, sizeof err) == 0 &&
               c.train.n_milestones == 3 && c.train.milestones[2] == 11,
           "milestones 7,9,11: %s", err);
    EXPECT(config_set(&c, "train.milestones=", err, sizeof err) == 0 && c.train.n_milestones == 0,
           "empty list");
    EXPECT(config_set(&c, "distill.students=[]", err, sizeof err) == 0 && !c.distill.kd &&
               !c.distill.self && !c.distill.sum,
           "no students");
    EXPECT(config_set(&c, "parallel.threads=auto", err, sizeof err) == 0 && c.parallel.threads == 0,
           "auto");
    EXPECT(config_set(&c, "train.batch_size=64", err, sizeof err) == 0 && c.train.batch_size == 64,
           "batch 64");
    EXPECT(config_set(&c, "data.augment=yes", err, sizeof err) == 0 && c.data.augment == 1,
           "bool yes");
    EXPECT(config_set(&c, "train.lr=1e-3", err, sizeof err) == 0 && c.train.lr == 1e-3, "lr 1e-3");
}

/* to_yaml, load it back: the same struct byte for byte. */
static void round_trip(const Config *c, const char *what) {
    char err[1024], *text = config_to_yaml(c);
    Config back;
    write_file(path, text);
    int rc = config_load(&back, path, 0, NULL, err, sizeof err);
    EXPECT(rc == 0, "%s: the dump does not load: %s\n%s", what, err, text);
    if (rc == 0) {
        memcpy(back.source_file, c->source_file, sizeof back.source_file);
        EXPECT(memcmp(&back, c, sizeof back) == 0, "%s: the reloaded config differs\n%s", what,
               text);
        char *again = config_to_yaml(&back);
        EXPECT(strcmp(again, text) == 0, "%s: dumping the reloaded config gives other text", what);
        free(again);
    }
    free(text);
}

static void test_round_trip(void) {
    Config c;
    char err[1024];
    config_defaults(&c);
    round_trip(&c, "defaults");
    char *sets[] = {"name=rt.1",
                    "data.path=/tmp/odd \"dir\"\\\twith: colon # hash",
                    "data.source=cifar100",
                    "data.labels=coarse",
                    "train.lr=0.30000000000000004",
                    "train.weight_decay=1e-300",
                    "train.warmup_epochs=0.3333333333333333",
                    "train.milestones=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
                    "train.schedule=multistep",
                    "train.batch_size=full",
                    "distill.students=self",
                    "distill.temperature=20",
                    "ensemble.seed=9007199254740993",
                    "parallel.threads=7",
                    "checkpoint.dir=yes",
                    "model.arch=wrn-28-10"};
    EXPECT(load(&c, "", (int)(sizeof sets / sizeof sets[0]), sets, err, sizeof err) == 0,
           "round trip setup: %s", err);
    round_trip(&c, "odd values");
    EXPECT(!strcmp(c.data.path, "/tmp/odd \"dir\"\\\twith: colon # hash"), "path '%s'",
           c.data.path);
}

static void test_suggestions(void) {
    struct {
        const char *typo, *want;
    } cases[] = {
        {"train.epoch", "train.epochs"},
        {"train.lrr", "train.lr"},
        {"model.lr", "train.lr"},
        {"trian", "train"},
        {"ensemble.member", "ensemble.members"},
        {"distill.temprature", "distill.temperature"},
        {"data.multiview.sigm", "data.multiview.sigma"},
        {"train.batchsize", "train.batch_size"},
        {"data.multivew", "data.multiview"},
        {"students", "distill.students"},
    };
    char hint[256], want[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        schema_suggest(cases[i].typo, hint, sizeof hint);
        snprintf(want, sizeof want, " (did you mean '%s'?)", cases[i].want);
        EXPECT(!strcmp(hint, want), "suggestion for %s: '%s', want '%s'", cases[i].typo, hint,
               want);
    }
    schema_suggest("completely_unrelated", hint, sizeof hint);
    EXPECT(!strstr(hint, "did you mean"), "a far key got a suggestion: %s", hint);
}

static void test_docs(void) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print_docs(f);
    fclose(f);
    EXPECT(strncmp(text, "| key | type | default | meaning |\n|---|---|---|---|\n", 51) == 0,
           "docs header");
    int rows = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        rows++;
    EXPECT(rows == config_n_keys + 2, "docs: %d lines for %d keys", rows, config_n_keys);
    char cell[256];
    for (int i = 0; i < config_n_keys; i++) {
        snprintf(cell, sizeof cell, "| `%s` |", config_keys[i].path);
        EXPECT(strstr(text, cell), "docs lack %s", config_keys[i].path);
    }
    EXPECT(strstr(text, "| `train.batch_size` | int in [1, 16777216] or `full` | `128` |"), "batch_size row");
    free(text);
}

/* Random byte edits of a good file: each load succeeds or fails with a message that starts
 * with the file's name; none crashes (run under ASan to see it). */
static void test_mutations(void) {
    const char *good = "name: m\ndata:\n  source: multiview\n  multiview: {k: 3, d: 8, mu: 0.1}\n"
                       "model: {arch: mvconv}\ntrain:\n  epochs: 2\n  milestones: [1]\n"
                       "distill:\n  students:\n    - kd\n    - sum\n";
    const char alphabet[] = ":-[]{},#'\"\n \t&*!|>%@`.0123456789abcdekmnstz";
    size_t len = strlen(good);
    uint64_t state = 12345;
    int loaded = 0, rejected = 0;
    for (int trial = 0; trial < 1000; trial++) {
        char text[512];
        memcpy(text, good, len + 1);
        for (int e = 0; e < 1 + trial % 3; e++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(state >> 33) % len;
            text[at] = alphabet[(state >> 17) % (sizeof alphabet - 1)];
        }
        Config c;
        char err[2048] = "";
        if (load(&c, text, 0, NULL, err, sizeof err) == 0) {
            loaded++;
        } else {
            rejected++;
            if (strncmp(err, path, strlen(path)) != 0 || err[strlen(path)] != ':') {
                EXPECT(0, "mutation %d: message does not start with the file: '%s'\n%s", trial, err,
                       text);
                break;
            }
        }
    }
    EXPECT(loaded > 5 && rejected > 500, "mutations: %d loaded, %d rejected", loaded, rejected);
}

/* The command stops with status 2 and the message (in a child process: ed_fail exits). */
static void run_config_check(void *arg) {
    char *argv[] = {"check", (char *)arg, "--set", "train.epochs=3", NULL};
    cmd_config(4, argv);
}

static void test_command(void) {
    write_file(path, "name: x\ntrain:\n  epochz: 3\n");
    char want[1200];
    snprintf(want, sizeof want,
             "ensdistill: error: %s:3: unknown key 'train.epochz' (did you mean 'train.epochs'?)",
             path);
    expect_fail("config check of a bad file", run_config_check, path, 2, want);
}

int main(void) {
    test_tmpdir(dir, sizeof dir, "config");
    snprintf(path, sizeof path, "%s/test.yaml", dir);
    test_schema();
    test_defaults();
    test_good_file();
    test_errors();
    test_overrides();
    test_round_trip();
    test_suggestions();
    test_docs();
    test_mutations();
    test_command();
    test_rmdir(dir);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("config: all checks passed\n");
    return 0;
}
