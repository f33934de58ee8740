/* distill.teacher: new students from a finished run. Its members and teacher are read, not
 * trained: this file checks that the run is finished, made on the same data (the fingerprint
 * in its run.h5, whatever the spelling of data.path) with the same model, train and ensemble
 * sections, and that the teacher formed
 * again from its members' logits is bitwise the one it stored. */
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/job.h"
#include "ensdistill/reuse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int reuse_check(const RunContext *ctx, TeacherRun *t, char *err, size_t size) {
    const Config *cfg = ctx->cfg;
    const char *dir = ctx->teacher_dir;
    char path[ED_PATH_MAX + 32], why[1024], here[ED_PATH_MAX];
    if (fs_realpath(ctx->run_dir, here) == 0 && strcmp(here, dir) == 0) {
        snprintf(err, size, "distill.teacher is this run's own checkpoint.dir (%.1024s): set "
                 "checkpoint.dir to a new directory for the new students", dir);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/config.yaml", dir);
    Config theirs;
    if (config_load(&theirs, path, 0, NULL, why, sizeof(why)) != 0) {
        snprintf(err, size, "distill.teacher %.1024s: its config.yaml does not load: %.1024s", dir,
                 why);
        return -1;
    }
    /* data.path is not compared as text: theirs may be relative to wherever that run was
     * started. Whether the data are the same is the fingerprint's to say, below. */
    char their_path[sizeof(theirs.data.path)];
    snprintf(their_path, sizeof(their_path), "%s", theirs.data.path);
    snprintf(theirs.data.path, sizeof(theirs.data.path), "%s", cfg->data.path);
    static const char *const same[] = {"data", "model", "train", "ensemble", NULL};
    if (config_diff(cfg, &theirs, same, why, sizeof(why))) {
        snprintf(err, size, "distill.teacher %.1024s was made with another config: %.1024s (the "
                 "data, model, train and ensemble sections must be that run's; the students "
                 "take distill.epochs and distill.lr)", dir, why);
        return -1;
    }
    if (runfile_read_teacher_run(dir, t, why, sizeof(why)) != 0) {
        snprintf(err, size, "distill.teacher: %.1500s", why);
        return -1;
    }
    if (data_fingerprint_diff(ctx->data_fingerprint, t->data_fingerprint, why, sizeof(why))) {
        snprintf(err, size, "distill.teacher %.1024s was made on other data: %.1024s (data.path "
                 "%.512s here, %.512s there)", dir, why, cfg->data.path, their_path);
        teacher_run_free(t);
        return -1;
    }
    if (t->n_train != ctx->data->train.N || t->n_test != ctx->data->test.N ||
        t->K != ctx->data->train.K) {
        snprintf(err, size, "distill.teacher %.1024s: its teacher logits are %dx%d (train) and "
                 "%dx%d (test), the data %dx%d and %dx%d", dir, t->n_train, t->K, t->n_test,
                 t->K, ctx->data->train.N, ctx->data->train.K, ctx->data->test.N,
                 ctx->data->test.K);
        teacher_run_free(t);
        return -1;
    }
    return 0;
}

static void compare(const char *what, const float *ours, const float *stored, size_t n,
                    const char *dir) {
    if (memcmp(ours, stored, n * sizeof(float)) == 0) return;
    size_t worst = 0;
    double max = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - stored[i]);
        if (!(d <= max)) {
            max = d;
            worst = i;
        }
    }
    ed_fail("distill.teacher %s: the mean of its members' logits is not its stored "
            "/teacher/%s (largest difference %g at element %zu): a member file or its run.h5 "
            "was changed after the run",
            dir, what, max, worst);
}

void reuse_verify_teacher(const RunContext *ctx, const float *train_logits,
                          const float *test_logits) {
    const TeacherRun *t = ctx->teacher_run;
    ED_CHECK(t, "reuse_verify_teacher without a teacher run");
    compare("train_logits", train_logits, t->train_logits, (size_t)t->n_train * t->K,
            ctx->teacher_dir);
    compare("test_logits", test_logits, t->test_logits, (size_t)t->n_test * t->K,
            ctx->teacher_dir);
}
