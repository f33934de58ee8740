/* The public config API (config.h): defaults, loading a file with --set overrides, cross-key
 * validation, the resolved YAML dump and the Markdown docs. Per-key work goes through the
 * schema table (schema.c); only the checks that relate several keys live here. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "config_internal.h"

#include "ensdistill/error.h"
#include "ensdistill/model.h" /* model_arch_parse */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Values that depend on other keys: checkpoint.dir defaults to runs/<name>. */
static void resolve(Config *c) {
    if (!c->checkpoint.dir[0])
        snprintf(c->checkpoint.dir, sizeof c->checkpoint.dir, "runs/%s", c->name);
}

void config_defaults(Config *c) {
    schema_defaults(c);
    resolve(c);
}

/* One "key=value"; lines[key] = -1 marks it as set on the command line (lines may be NULL). */
static int set_one(Config *c, const char *assignment, int *lines, char *err, size_t size) {
    const char *eq = strchr(assignment, '=');
    char key[CFG_STR], msg[512], hint[160];
    if (!eq || eq == assignment) {
        snprintf(err, size, "--set %s: expected key=value (e.g. --set train.lr=0.1)", assignment);
        return -1;
    }
    snprintf(key, sizeof key, "%.*s", (int)(eq - assignment), assignment);
    int k = schema_find(key);
    if (k < 0) {
        if (schema_is_section(key)) {
            for (int i = 0; i < config_n_keys; i++)
                if (strncmp(config_keys[i].path, key, strlen(key)) == 0) {
                    snprintf(err, size, "--set %s: '%s' is a section: set one of its keys, like %s",
                             assignment, key, config_keys[i].path);
                    break;
                }
        } else {
            schema_suggest(key, hint, sizeof hint);
            snprintf(err, size, "--set %s: unknown key '%s'%s", assignment, key, hint);
        }
        return -1;
    }
    ConfigValue v;
    value_from_text(&v, &config_keys[k], eq + 1);
    if (key_apply(c, &config_keys[k], &v, msg, sizeof msg) != 0) {
        snprintf(err, size, "--set %s: %s", assignment, msg);
        return -1;
    }
    if (lines) lines[k] = -1;
    return 0;
}

int config_set(Config *c, const char *assignment, char *err, size_t err_size) {
    return set_one(c, assignment, NULL, err, err_size);
}

/* ---- validation ---- */

typedef struct {
    const Config *c;
    const int *lines; /* where each key was set (see config_parse_file), or NULL */
    char *err;
    size_t size;
} Checker;

/* "FILE:LINE: key: message" into the checker's err (the line when the file set the key);
 * returns -1. */
static int bad(Checker *ck, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(Checker *ck, const char *key, const char *fmt, ...) {
    int k = schema_find(key), line = ck->lines && k >= 0 ? ck->lines[k] : 0;
    const char *file = ck->c->source_file;
    int n;
    if (file[0] && line > 0)
        n = snprintf(ck->err, ck->size, "%s:%d: %s: ", file, line, key);
    else if (line < 0)
        n = snprintf(ck->err, ck->size, "--set %s: ", key);
    else if (file[0])
        n = snprintf(ck->err, ck->size, "%s: %s: ", file, key);
    else
        n = snprintf(ck->err, ck->size, "%s: ", key);
    if (n < 0 || (size_t)n >= ck->size) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ck->err + n, ck->size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* The run's name and directory. */
static int validate_names(Checker *ck) {
    const Config *c = ck->c;
    if (!c->name[0] ||
        strspn(c->name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            strlen(c->name))
        return bad(
            ck, "name",
            "use only letters, digits, '.', '_' and '-' (it names the run directory), got '%s'",
            c->name);
    if (strcmp(c->name, ".") == 0 || strstr(c->name, ".."))
        return bad(ck, "name", "must not be '.' or contain '..' (it names the run directory), got '%s'",
                   c->name);
    if (!c->checkpoint.dir[0]) return bad(ck, "checkpoint.dir", "must not be empty");
    size_t dir_len = strlen(c->checkpoint.dir);
    while (dir_len > 1 && c->checkpoint.dir[dir_len - 1] == '/')
        dir_len--;
    if (dir_len >= 3 && strncmp(c->checkpoint.dir + dir_len - 3, ".h5", 3) == 0)
        return bad(ck, "checkpoint.dir",
                   "'%s' is the run directory, but a name ending in .h5 is taken for a file "
                   "(RUN_DIR/run.h5 by inspect and eval): choose another name",
                   c->checkpoint.dir);
    return 0;
}

/* data: the source's needs, the generator's shapes and memory. */
static int validate_data(Checker *ck) {
    const Config *c = ck->c;
    const DataConfig *d = &c->data;
    const MultiviewConfig *mv = &d->multiview;
    const char *source = config_source_names[d->source];
    int generated = d->source == SOURCE_MULTIVIEW || d->source == SOURCE_TOY2;
    if (d->source == SOURCE_HDF5 && !d->path[0])
        return bad(ck, "data.path", "data.source hdf5 needs the path of an .h5 data file");
    if (!d->path[0] && d->source != SOURCE_FASHION_MNIST && !generated)
        return bad(ck, "data.path", "data.source %s needs the directory of its files", source);
    if (d->labels == LABELS_COARSE && d->source != SOURCE_CIFAR100)
        return bad(ck, "data.labels",
                   "'coarse' applies only to data.source cifar100 (source is %s)", source);
    if (d->augment && generated)
        return bad(ck, "data.augment",
                   "random crop and flip need images; data.source %s makes patches", source);
    if (generated) {
        int toy2 = d->source == SOURCE_TOY2, k = toy2 ? 2 : mv->k;
        if (mv->d < 2 * k)
            return bad(ck, "data.multiview.d",
                       "must be >= 2 * classes = %d (one orthonormal vector per view), got %d",
                       2 * k, mv->d);
        if (mv->patches < 2 * mv->patches_per_view + toy2)
            return bad(ck, "data.multiview.patches",
                       "must be >= 2 * patches_per_view%s = %d (room for both views%s), got %d",
                       toy2 ? " + 1" : "", 2 * mv->patches_per_view + toy2,
                       toy2 ? " and toy2's off-class patch" : "", mv->patches);
    }
    struct {
        const char *lo_key, *hi_key;
        double lo, hi;
    } ranges[] = {
        {"data.multiview.view_lo", "data.multiview.view_hi", mv->view_lo, mv->view_hi},
        {"data.multiview.off_mv_lo", "data.multiview.off_mv_hi", mv->off_mv_lo, mv->off_mv_hi},
        {"data.multiview.off_sv_lo", "data.multiview.off_sv_hi", mv->off_sv_lo, mv->off_sv_hi},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].lo > ranges[i].hi)
            return bad(ck, ranges[i].lo_key, "must be <= %s = %g, got %g", ranges[i].hi_key,
                       ranges[i].hi, ranges[i].lo);

    if (generated) {
        /* the generator holds train and test as floats [N, P, 1, d] on every rank */
        double bytes = ((double)mv->n_train + mv->n_test) * mv->patches * mv->d * sizeof(float);
        double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
        if (have > 0 && bytes > have)
            return bad(ck, "data.multiview.n_train",
                       "data.multiview: the generated data would take %.1f GiB per rank "
                       "((n_train + n_test) x patches x d floats), more than the %.1f GiB this "
                       "machine has",
                       bytes / 1073741824.0, have / 1073741824.0);
    }
    return 0;
}

/* model: the architecture and what it can take. */
static int validate_model(Checker *ck) {
    const Config *c = ck->c;
    const DataConfig *d = &c->data;
    const char *source = config_source_names[d->source];
    int generated = d->source == SOURCE_MULTIVIEW || d->source == SOURCE_TOY2;
    ArchName arch;
    char why[256];
    if (model_arch_parse(c->model.arch, &arch, why, sizeof(why)) != 0)
        return bad(ck, "model.arch", "%s", why);
    if (arch.kind == ARCH_MVCONV && d->source != SOURCE_HDF5 && !generated)
        return bad(ck, "model.arch",
                   "mvconv takes patch data (data.source multiview, toy2 or hdf5), not %s",
                   source);

    if (arch.kind == ARCH_MVCONV && c->model.random_features)
        return bad(ck, "model.random_features", "mvconv has no final linear layer to train alone");
    return 0;
}

/* distill: the sweep's size and values, co-distillation. */
static int validate_distill(Checker *ck) {
    const Config *c = ck->c;
    /* A sweep trains seeds x combinations students of each kind: keep it under the bound of
     * ensemble.members (rank 0 holds every model's test logits; MPI tags count the jobs). */
    const DistillConfig *dc = &c->distill;
    long students = (long)dc->seeds * dc->n_temperature * dc->n_alpha * dc->n_lr;
    if (students > 10000)
        return bad(ck, "distill.seeds",
                   "%d seeds x %d temperatures x %d alphas x %d lrs is %ld students of each "
                   "kind, more than 10000",
                   dc->seeds, dc->n_temperature, dc->n_alpha, dc->n_lr, students);

    /* The sweep's values as they apply: distill.lr 0 means train.lr, so [0, 0.05] with
     * train.lr 0.05 would train the same students twice under one row name. */
    for (int i = 0; i < dc->n_lr; i++)
        for (int j = 0; j < i; j++) {
            double a = dc->lr[j] > 0 ? dc->lr[j] : c->train.lr;
            double b = dc->lr[i] > 0 ? dc->lr[i] : c->train.lr;
            if (a == b)
                return bad(ck, "distill.lr",
                           "%g and %g are the same learning rate once 0 means train.lr (%g): the "
                           "same students would train twice",
                           dc->lr[j], dc->lr[i], c->train.lr);
        }

    if (dc->codistilled && c->ensemble.members < 2)
        return bad(ck, "distill.students",
                   "codistill needs ensemble.members >= 2 (each member distils from its peers), "
                   "got %d",
                   c->ensemble.members);
    if (dc->codistilled && dc->codistill.burn_in > c->train.epochs)
        return bad(ck, "distill.codistill.burn_in",
                   "must be <= train.epochs = %d (the co-distilled members train as long as the "
                   "members), got %d",
                   c->train.epochs, dc->codistill.burn_in);
    return 0;
}

/* train: the schedule and the optimizer. */
static int validate_train(Checker *ck) {
    const Config *c = ck->c;
    const TrainConfig *t = &c->train;
    for (int i = 1; i < t->n_milestones; i++)
        if (t->milestones[i] <= t->milestones[i - 1])
            return bad(ck, "train.milestones", "must increase, got %d after %d", t->milestones[i],
                       t->milestones[i - 1]);
    if (t->schedule == SCHEDULE_MULTISTEP && t->n_milestones == 0)
        return bad(ck, "train.milestones", "schedule multistep needs at least one milestone");
    if (t->nesterov && t->momentum == 0)
        return bad(ck, "train.momentum",
                   "must be > 0 when train.nesterov is true (or set train.nesterov: false)");
    return 0;
}

static int validate(const Config *c, const int *lines, char *err, size_t size) {
    Checker ck = {c, lines, err, size};
    char msg[512];
    for (int i = 0; i < config_n_keys; i++)
        if (key_check(c, &config_keys[i], msg, sizeof msg) != 0)
            return bad(&ck, config_keys[i].path, "%s", msg);
    if (validate_names(&ck) || validate_data(&ck) || validate_model(&ck) ||
        validate_distill(&ck) || validate_train(&ck))
        return -1;
    return 0;
}

int config_validate(const Config *c, char *err, size_t err_size) {
    return validate(c, NULL, err, err_size);
}

/* config_load and config_load_text: text == NULL reads the file path. */
static int load(Config *c, const char *path, const char *text, int n_overrides,
                char *const *overrides, char *err, size_t err_size) {
    Config tmp;
    int lines[CONFIG_MAX_KEYS] = {0};
    schema_defaults(&tmp);
    if (strlen(path) >= sizeof tmp.source_file) {
        snprintf(err, err_size, "%.60s...: path too long", path);
        return -1;
    }
    strcpy(tmp.source_file, path);
    if (text ? config_parse_text(&tmp, text, path, lines, err, err_size) != 0
             : config_parse_file(&tmp, path, lines, err, err_size) != 0)
        return -1;
    int keys_in_file = 0;
    for (int i = 0; i < config_n_keys; i++)
        keys_in_file += lines[i] > 0;
    for (int i = 0; i < n_overrides; i++)
        if (set_one(&tmp, overrides[i], lines, err, err_size) != 0) return -1;
    resolve(&tmp);
    if (validate(&tmp, lines, err, err_size) != 0) return -1;
    /* Every key but the name has a default: an empty file (a wrong path, a truncated copy) would
     * train them all, and configs without a name would share runs/run. */
    if (!lines[schema_find("name")]) {
        if (keys_in_file == 0)
            snprintf(err, err_size,
                     "%s: the file sets no key: a config needs at least 'name:' (every other "
                     "key has a default; 'ensdistill config docs' lists them)",
                     path);
        else
            snprintf(err, err_size,
                     "%s: name: is required (it names the run and its directory runs/<name>); "
                     "add 'name: ...' or --set name=...",
                     path);
        return -1;
    }
    memcpy(c, &tmp, sizeof tmp); /* with its zeroed padding */
    return 0;
}

int config_load(Config *c, const char *path, int n_overrides, char *const *overrides, char *err,
                size_t err_size) {
    return load(c, path, NULL, n_overrides, overrides, err, err_size);
}

int config_load_text(Config *c, const char *text, const char *name, char *err, size_t err_size) {
    return load(c, name, text, 0, NULL, err, err_size);
}

/* ---- comparing two configs ---- */

/* Keys that do not change what a run computes: where it runs and how often it saves. */
static int shapes_results(const char *key) {
    return strncmp(key, "parallel.", 9) != 0 && strncmp(key, "checkpoint.", 11) != 0;
}

/* A path as the file system resolves it (relative to the working directory), or as written
 * without trailing slashes when it does not exist. */
static void canonical_path(const char *path, char *out, size_t size) {
    char *real = path[0] ? realpath(path, NULL) : NULL;
    snprintf(out, size, "%s", real ? real : path);
    free(real);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
}

int config_first_difference(const Config *a, const Config *b, const char *const *ignore,
                            char *key, size_t key_size, char *value_a, char *value_b,
                            size_t value_size) {
    char va[ED_PATH_MAX * 2 + 64], vb[ED_PATH_MAX * 2 + 64];
    for (int i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        if (!shapes_results(k->path)) continue;
        int ignored = 0;
        for (int j = 0; ignore && ignore[j] && !ignored; j++)
            ignored = strncmp(k->path, ignore[j], strlen(ignore[j])) == 0;
        if (ignored) continue;
        if (strcmp(k->path, "data.path") == 0) {
            canonical_path(a->data.path, va, sizeof va);
            canonical_path(b->data.path, vb, sizeof vb);
        } else {
            key_format(a, k, va, sizeof va);
            key_format(b, k, vb, sizeof vb);
        }
        if (strcmp(va, vb) == 0) continue;
        snprintf(key, key_size, "%s", k->path);
        key_format(a, k, value_a, value_size);
        key_format(b, k, value_b, value_size);
        return 1;
    }
    return 0;
}

/* ---- output ---- */

/* Number of dot-separated components two section paths share ("data.multiview", "data": 1). */
static int common_depth(const char *a, const char *b) {
    int depth = 0;
    while (*a && *b) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        if (na != nb || strncmp(a, b, na) != 0) break;
        depth++;
        a += na + (a[na] == '.');
        b += nb + (b[nb] == '.');
    }
    return depth;
}

char *config_to_yaml(const Config *c) {
    char *text = NULL, value[ED_PATH_MAX * 2 + 64], section[CFG_STR], open[CFG_STR] = "";
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ED_CHECK(out, "open_memstream failed");
    for (int i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        const char *leaf = strrchr(k->path, '.');
        snprintf(section, sizeof section, "%.*s", leaf ? (int)(leaf - k->path) : 0, k->path);
        leaf = leaf ? leaf + 1 : k->path;
        /* open the components of this key's section that the previous key's did not share */
        int depth = 0, shared = common_depth(open, section);
        for (const char *p = section; *p; depth++) {
            size_t n = strcspn(p, ".");
            if (depth >= shared) fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)n, p);
            p += n + (p[n] == '.');
        }
        key_format(c, k, value, sizeof value);
        fprintf(out, "%*s%s: %s\n", 2 * depth, "", leaf, value);
        snprintf(open, sizeof open, "%s", section);
    }
    ED_CHECK(fclose(out) == 0, "writing the config failed");
    return text;
}

/* s with '|' escaped for a Markdown table cell. */
static void cell(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

void config_print_docs(FILE *out) {
    char type[256];
    fprintf(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        key_type_text(k, type, sizeof type);
        fprintf(out, "| `%s` | ", k->path);
        cell(out, type);
        fprintf(out, " | `%s` | ", k->def[0] ? k->def : "\"\"");
        cell(out, k->doc);
        fprintf(out, " |\n");
    }
}

int config_diff(const Config *a, const Config *b, const char *const *sections, char *why,
                size_t size) {
    char va[ED_PATH_MAX], vb[ED_PATH_MAX];
    for (int i = 0; i < config_n_keys; i++) {
        const ConfigKey *k = &config_keys[i];
        int in = 0;
        for (const char *const *s = sections; *s && !in; s++) {
            size_t n = strlen(*s);
            in = strncmp(k->path, *s, n) == 0 && k->path[n] == '.';
        }
        if (!in) continue;
        key_format(a, k, va, sizeof va);
        key_format(b, k, vb, sizeof vb);
        if (strcmp(va, vb) != 0) {
            snprintf(why, size, "%s: %.200s here, %.200s there", k->path, va, vb);
            return 1;
        }
    }
    return 0;
}
