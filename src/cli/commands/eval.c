/* `ensdistill eval FILE.h5 [--config CONFIG] [--set key=value ...]`: builds the model the
 * checkpoint describes, loads it, and evaluates it on the config's test set (eval mode, no
 * augmentation): accuracy, NLL, ECE (and multi/single-view accuracy on multi-view data).
 * Without --config, the config stored in the checkpoint is used. */
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h"
#include "ensdistill/cli.h"
#include "ensdistill/config.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/metrics.h"
#include "ensdistill/model.h"
#include "ensdistill/job.h" /* role names */
#include "ensdistill/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *eval_usage =
    "usage: ensdistill eval FILE.h5 [--config CONFIG] [--set key=value ...]\n"
    "  evaluates the checkpoint on the config's test set (default: the config stored in the\n"
    "  checkpoint); prints test accuracy, NLL and ECE\n";

/* Loads the config text stored in the checkpoint through a temporary file. */
static int load_stored_config(Config *cfg, const char *ckpt, int n_sets, char **sets, char *err,
                              size_t err_size) {
    char *text = ckpt_read_config(ckpt);
    if (!text || !text[0]) {
        free(text);
        snprintf(err, err_size, "%s stores no config: give one with --config", ckpt);
        return -1;
    }
    const char *base = getenv("TMPDIR");
    char tmp[ED_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/ensdistill-eval-XXXXXX", base && base[0] ? base : "/tmp");
    int fd = mkstemp(tmp);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    int rc = -1;
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
        snprintf(err, err_size, "cannot write a temporary file %.1024s", tmp);
    } else {
        char inner[1024];
        rc = config_load(cfg, tmp, n_sets, sets, inner, sizeof(inner));
        if (rc != 0) snprintf(err, err_size, "the config stored in %s: %s", ckpt, inner);
    }
    if (fd >= 0) unlink(tmp);
    free(text);
    return rc;
}

static int role_from_name(const char *name) {
    for (int r = ROLE_MEMBER; r <= ROLE_CODISTILL; r++)
        if (strcmp(job_role_name((Role)r), name) == 0) return r;
    return -1;
}

/* logits [N, K] of the whole test set, eval mode, in batches of the model's max_batch. */
static void test_logits(Model *m, const Dataset *test, float *logits) {
    const int N = test->N, K = m->spec.num_classes, B = m->spec.max_batch;
    float *x = xfloats((size_t)B * dataset_sample_floats(test));
    int64_t *ids = xcalloc((size_t)B, sizeof(int64_t));
    int *rows = xcalloc((size_t)B, sizeof(int));
    for (int i = 0; i < N; i += B) {
        int b = N - i < B ? N - i : B;
        for (int j = 0; j < b; j++)
            rows[j] = i + j;
        dataset_make_batch(test, rows, b, x, NULL, ids, NULL);
        const float *out = model_forward(m, x, ids, b, 0);
        memcpy(logits + (size_t)i * K, out, (size_t)b * K * sizeof(float));
    }
    free(x);
    free(ids);
    free(rows);
}

/* Prints accuracy, NLL, ECE (multi/single-view) of logits on test, what the file recorded, and
 * how the logits stored in the checkpoint compare. */
static void print_scores(const char *ckpt, const CkptInfo *info, const Dataset *test,
                         const float *logits, int ece_bins) {
    const int N = test->N, K = info->spec.num_classes;
    Metrics r = metrics_compute(logits, test->labels, test->tags, N, K, ece_bins);
    printf("test set      %s, %d samples\n", test->name, N);
    printf("test accuracy %.2f%% (%ld/%d)\n", 100.0 * r.acc, lround(r.acc * N), N);
    printf("NLL           %.4f\n", r.nll);
    printf("ECE           %.4f (%d bins)\n", r.ece, ece_bins);
    if (isfinite(r.acc_multi))
        printf("multi-view    %.2f%%   single-view %.2f%%\n", 100.0 * r.acc_multi,
               100.0 * r.acc_single);
    if (isfinite(info->last_test_acc))
        printf("in the file   test accuracy %.2f%% (last evaluated epoch)\n",
               100.0 * info->last_test_acc);
    if (info->n_test_logits == N) {
        float *stored = xfloats((size_t)N * K);
        if (ckpt_read_logits(ckpt, "test", stored, N, K) == 0) {
            double max_diff = 0;
            for (size_t i = 0; i < (size_t)N * K; i++) {
                double d = fabs((double)stored[i] - logits[i]);
                if (d > max_diff) max_diff = d;
            }
            Metrics s = metrics_compute(stored, test->labels, test->tags, N, K, ece_bins);
            printf("stored logits test accuracy %.2f%%, max |logit difference| %.3g\n",
                   100.0 * s.acc, max_diff);
        }
        free(stored);
    }
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *config_path = NULL;
    char **sets = xcalloc((size_t)argc + 1, sizeof(char *));
    int n_sets = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
            sets[n_sets++] = argv[++i];
        else if (strncmp(argv[i], "--set=", 6) == 0)
            sets[n_sets++] = argv[i] + 6;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(eval_usage, stdout);
            free(sets);
            return 0;
        } else if (argv[i][0] != '-' && !ckpt)
            ckpt = argv[i];
        else {
            ed_error("unexpected argument '%s'", argv[i]);
            fputs(eval_usage, stderr);
            free(sets);
            return ED_EXIT_USER;
        }
    }
    if (!ckpt) {
        ed_error("no checkpoint given");
        fputs(eval_usage, stderr);
        free(sets);
        return ED_EXIT_USER;
    }

    /* what the file holds */
    CkptInfo info;
    char err[2048];
    int rc = ckpt_info(ckpt, &info, err, sizeof(err));
    if (rc != 0) {
        ed_error("%s: %s", ckpt, err);
        free(sets);
        return ED_EXIT_USER;
    }
    Config cfg;
    if (config_path)
        rc = config_load(&cfg, config_path, n_sets, sets, err, sizeof(err));
    else
        rc = load_stored_config(&cfg, ckpt, n_sets, sets, err, sizeof(err));
    free(sets);
    if (rc != 0) {
        return ed_error("%s", err);
    }
    /* the precision the model was trained in (its stored config, if it has one), when the
     * config evaluated is not that one as it stands */
    Config trained;
    if ((config_path || n_sets > 0) &&
        load_stored_config(&trained, ckpt, 0, NULL, err, sizeof(err)) == 0 &&
        trained.train.precision != cfg.train.precision)
        return ed_error("%s was trained with train.precision %s, but the config asks for %s: "
                        "evaluate it in the precision it was trained in (train.precision: %s)",
                        ckpt, config_precision_names[trained.train.precision],
                        config_precision_names[cfg.train.precision],
                        config_precision_names[trained.train.precision]);

    /* the data, and a model of the file's architecture for its shape */
    DataSplit data;
    data_load(&data, &cfg.data);
    const Dataset *test = &data.test;
    ModelSpec spec = info.spec;
    if (spec.C != test->C || spec.H != test->H || spec.W != test->W ||
        spec.num_classes != test->K) {
        ed_error("%s was trained on inputs [%d, %d, %d] with %d classes, but the config's test set "
                 "(%s) has [%d, %d, %d] with %d classes",
                 ckpt, spec.C, spec.H, spec.W, spec.num_classes, test->name, test->C, test->H,
                 test->W, test->K);
        datasplit_free(&data);
        return ED_EXIT_USER;
    }
    int B = cfg.eval.batch_size > 0 ? cfg.eval.batch_size : 256;
    if (B > test->N) B = test->N;
    spec.max_batch = B > 0 ? B : 1;
    spec.precision = cfg.train.precision;
    Model *m = model_create(&spec);
    /* The initialisation stream also keys mvconv's test-noise weights: use the training one. */
    int role = role_from_name(info.role);
    model_init(
        m, (uint64_t)info.seed,
        rng_stream(RNG_PURPOSE_INIT, role > 0 ? (unsigned)role : 0, (unsigned)info.index, 0));
    ModelState st;
    memset(&st, 0, sizeof(st));
    if (ckpt_read(ckpt, m, &st) != 0) {
        ed_error("%s: no such file", ckpt);
        model_free(m);
        datasplit_free(&data);
        return ED_EXIT_USER;
    }

    float *logits = xfloats((size_t)test->N * spec.num_classes);
    test_logits(m, test, logits);
    printf("%s: %s %d, %s, epoch %d/%d (%s)\n", ckpt, info.role, info.index, spec.arch, st.epoch,
           st.epochs_total, st.complete ? "complete" : "incomplete");
    print_scores(ckpt, &info, test, logits, cfg.eval.ece_bins);
    free(logits);
    ckpt_state_free(&st);
    model_free(m);
    datasplit_free(&data);
    return 0;
}
