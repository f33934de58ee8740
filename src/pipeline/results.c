/* The results table (see results.h). Rank 0 only; pure arithmetic on the gathered logits. */
#include "ensdistill/alloc.h"
#include "ensdistill/describe.h"
#include "ensdistill/ensemble.h"
#include "ensdistill/error.h"
#include "ensdistill/job.h"
#include "ensdistill/metrics.h"
#include "ensdistill/results.h"
#include "ensdistill/runfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ResultRow *rows;
    int n, cap;
} Table;

static ResultRow *table_add(Table *t, const char *name, const char *role, int n_models,
                            const Metrics *m) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 32;
        t->rows = xrealloc(t->rows, (size_t)t->cap * sizeof(ResultRow));
    }
    ResultRow *r = &t->rows[t->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->role, sizeof(r->role), "%s", role);
    r->n_models = n_models;
    r->test_acc = m->acc;
    r->nll = m->nll;
    r->ece = m->ece;
    r->acc_multi = m->acc_multi;
    r->acc_single = m->acc_single;
    r->acc_std = NAN;
    return r;
}

/* Adds one row per model of `role` and, when there is more than one, their mean +- std
 * (row `mean_name`) and their ensemble (row `ens_name`, may be NULL): the logits `ens` when
 * given (the members' ensemble is the run's teacher), else ensemble_combine of theirs. */
static void add_group(Table *t, const RunContext *ctx, const Job *jobs, int n_jobs,
                      float *const *test, Role role, int combo, const char *mean_name,
                      const char *ens_name, const float *ens) {
    const Dataset *te = &ctx->data->test;
    const int K = te->K, bins = ctx->cfg->eval.ece_bins;
    const float **logits = xcalloc((size_t)n_jobs, sizeof(float *));
    Metrics *each = xcalloc((size_t)n_jobs, sizeof(Metrics));
    int n = 0;
    for (int j = 0; j < n_jobs; j++) {
        if (jobs[j].role != role || jobs[j].combo != combo) continue;
        logits[n] = test[j];
        each[n] = metrics_compute(test[j], te->labels, te->tags, te->N, K, bins);
        table_add(t, jobs[j].name, job_role_name(role), 1, &each[n]);
        n++;
    }
    if (n == 0) goto done;
    Metrics mean = {0};
    double sq = 0;
    for (int i = 0; i < n; i++) {
        mean.acc += each[i].acc / n;
        mean.nll += each[i].nll / n;
        mean.ece += each[i].ece / n;
        mean.acc_multi += each[i].acc_multi / n;
        mean.acc_single += each[i].acc_single / n;
    }
    for (int i = 0; i < n; i++) sq += (each[i].acc - mean.acc) * (each[i].acc - mean.acc);
    ResultRow *r = table_add(t, mean_name, job_role_name(role), n, &mean);
    r->acc_std = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    if (ens_name && n > 1) {
        float *combined = NULL;
        if (!ens) {
            ens = combined = xfloats((size_t)te->N * K);
            ensemble_combine(combined, logits, n, te->N, K, ctx->cfg->ensemble.combine);
        }
        Metrics m = metrics_compute(ens, te->labels, te->tags, te->N, K, bins);
        table_add(t, ens_name, job_role_name(role), n, &m);
        free(combined);
    }
done:
    free(logits);
    free(each);
}

/* The mean over pairs of models of the fraction of test samples whose predictions differ;
 * NaN for fewer than 2 models. */
static double mean_disagreement(float *const *test, int n, int Nt, int K) {
    double dis = 0;
    int pairs = 0;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++, pairs++)
            dis += metrics_disagreement(test[a], test[b], Nt, K);
    return pairs ? dis / pairs : NAN;
}

static const ResultRow *find(const Table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0) return &t->rows[i];
    return NULL;
}

/* The fewest significant digits, at least %g's 6, that print the n values of a sweep list
 * apart (4.0000001 and 4.0000002 are both "4" under %g): the row names stay unique. */
static int sweep_digits(const double *v, int n) {
    for (int digits = 6; digits < 17; digits++) {
        int clash = 0;
        for (int i = 0; i < n && !clash; i++)
            for (int j = 0; j < i && !clash; j++) {
                char a[40], b[40];
                snprintf(a, sizeof(a), "%.*g", digits, v[i]);
                snprintf(b, sizeof(b), "%.*g", digits, v[j]);
                clash = strcmp(a, b) == 0;
            }
        if (!clash) return digits;
    }
    return 17;
}

void results_report(const RunContext *ctx, const Job *members, int L, float *const *member_test,
                    const Job *students, int n_students, float *const *student_test,
                    const float *teacher_train, const float *teacher_test) {
    const Dataset *te = &ctx->data->test;
    const int K = te->K, Nt = te->N, bins = ctx->cfg->eval.ece_bins;
    Table t = {0};

    add_group(&t, ctx, members, L, member_test, ROLE_MEMBER, -1, "single", "ensemble",
              teacher_test);
    const DistillConfig *dc = &ctx->cfg->distill;
    const int n_combos = sweep_combinations(dc);
    if (n_combos == 1) {
        add_group(&t, ctx, students, n_students, student_test, ROLE_KD, -1, "kd",
                  "ensemble-of-kd", NULL);
        add_group(&t, ctx, students, n_students, student_test, ROLE_SELF, -1, "self", NULL, NULL);
    } else {
        /* a sweep: one row per combination, "kd T=2 alpha=0.5 lr=0.05" (no plain kd / self),
         * each list printed with the digits that tell its values apart */
        double lrs[CFG_MAX_LIST];
        for (int i = 0; i < dc->n_lr; i++)
            lrs[i] = dc->lr[i] > 0 ? dc->lr[i] : ctx->cfg->train.lr;
        const int dT = sweep_digits(dc->temperature, dc->n_temperature),
                  dA = sweep_digits(dc->alpha, dc->n_alpha), dL = sweep_digits(lrs, dc->n_lr);
        for (int role = ROLE_KD; role <= ROLE_SELF; role++)
            for (int c = 0; c < n_combos; c++) {
                double T, alpha, lr;
                char name[sizeof(((ResultRow *)0)->name)];
                sweep_combination(dc, c, &T, &alpha, &lr);
                snprintf(name, sizeof(name), "%s T=%.*g alpha=%.*g lr=%.*g",
                         job_role_name((Role)role), dT, T, dA, alpha, dL,
                         lr > 0 ? lr : ctx->cfg->train.lr);
                add_group(&t, ctx, students, n_students, student_test, (Role)role, c, name,
                          NULL, NULL);
            }
    }
    add_group(&t, ctx, students, n_students, student_test, ROLE_SUM, -1, "sum", NULL, NULL);
    add_group(&t, ctx, students, n_students, student_test, ROLE_CODISTILL, -1, "codistill",
              "codistill ensemble", NULL);

    /* the ensemble of the first n members, n = 1..L (for n = L: the teacher) */
    float *size_acc = xfloats((size_t)L);
    float *ens = xfloats((size_t)Nt * K);
    int64_t *acc = xcalloc((size_t)Nt * K, sizeof(int64_t));
    for (int n = 1; n <= L; n++) {
        ED_CHECK(ensemble_accumulate(acc, NULL, member_test[n - 1], Nt, K,
                                     ctx->cfg->ensemble.combine) == 0,
                 "member %d: test logits out of the fixed-point range", n - 1);
        ensemble_finish(ens, acc, (size_t)Nt * K, n, ctx->cfg->ensemble.combine);
        size_acc[n - 1] = (float)metrics_compute(ens, te->labels, te->tags, Nt, K, bins).acc;
    }
    free(acc);
    double dis = mean_disagreement(member_test, L, Nt, K);
    float **codistilled = xcalloc((size_t)n_students + 1, sizeof(float *));
    int n_codistilled = 0;
    for (int j = 0; j < n_students; j++)
        if (students[j].role == ROLE_CODISTILL) codistilled[n_codistilled++] = student_test[j];
    double codistill_dis = mean_disagreement(codistilled, n_codistilled, Nt, K);
    free(codistilled);

    printf("\nresults on %d test samples (%s, %s)\n", Nt,
           config_source_names[ctx->cfg->data.source], ctx->cfg->model.arch);
    const char *summary[] = {"single",         "ensemble",  "sum",
                             "kd",             "self",      "ensemble-of-kd",
                             "codistill",      "codistill ensemble"};
    enum { N_SUMMARY = sizeof(summary) / sizeof(summary[0]) };
    ResultRow shown[N_SUMMARY];
    int n_shown = 0;
    for (int i = 0; i < N_SUMMARY; i++) {
        const ResultRow *r = find(&t, summary[i]);
        if (r) shown[n_shown++] = *r;
    }
    runfile_print_results(stdout, shown, n_shown);
    if (n_combos > 1) { /* the sweep's mean rows */
        ResultRow *sweep = xcalloc((size_t)2 * n_combos, sizeof(ResultRow));
        int n_sweep = 0;
        for (int i = 0; i < t.n; i++)
            if (strchr(t.rows[i].name, '=')) sweep[n_sweep++] = t.rows[i];
        runfile_print_results(stdout, sweep, n_sweep);
        free(sweep);
    }
    if (L > 1) {
        printf("  ensemble of the first n members:");
        for (int n = 1; n <= L; n++) printf(" %d: %.2f%%", n, 100 * size_acc[n - 1]);
        printf("\n  mean pairwise disagreement of members: %.2f%%\n", 100 * dis);
    }
    if (n_codistilled > 1)
        printf("  mean pairwise disagreement of co-distilled members: %.2f%%\n",
               100 * codistill_dis);
    printf("  every model: RUN_DIR/run.h5 /results (%d rows); this run: %s/run.h5\n", t.n,
           ctx->run_dir);

    /* models/<name> links for every model of the run */
    int n_models = L + n_students;
    char (*names)[32] = xcalloc((size_t)n_models, sizeof(*names));
    const char **name_ptrs = xcalloc((size_t)n_models, sizeof(char *));
    for (int i = 0; i < n_models; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", i < L ? members[i].name : students[i - L].name);
        name_ptrs[i] = names[i];
    }
    /* members reused from distill.teacher link to that run's files */
    char (*files)[ED_PATH_MAX + 48] = xcalloc((size_t)n_models, sizeof(*files));
    const char **file_ptrs = xcalloc((size_t)n_models, sizeof(char *));
    for (int i = 0; i < L; i++)
        if (members[i].from_run) {
            snprintf(files[i], sizeof(files[i]), "%s/models/%s.h5", members[i].from_run,
                     members[i].name);
            file_ptrs[i] = files[i];
        }
    RunSummary run_summary = {
        .config_text = ctx->config_text, .model_names = name_ptrs, .n_models = n_models,
        .teacher_train = teacher_train, .n_train = ctx->data->train.N,
        .teacher_test = teacher_test, .n_test = Nt, .K = K,
        .test_labels = te->labels, .test_tags = te->tags,
        .rows = t.rows, .n_rows = t.n, .ensemble_size_acc = size_acc, .L = L,
        .disagreement = dis, .codistill_disagreement = codistill_dis, .data_fingerprint = ctx->data_fingerprint,
        .teacher_run = ctx->teacher_run ? ctx->teacher_dir : NULL,
        .teacher_run_revision = ctx->teacher_run ? ctx->teacher_run->code_revision : NULL,
        .model_files = file_ptrs};
    runfile_write(ctx->run_dir, &run_summary);
    free(files);
    free(file_ptrs);
    free(names);
    free(name_ptrs);
    free(size_acc);
    free(ens);
    free(t.rows);
    fflush(stdout);
}
