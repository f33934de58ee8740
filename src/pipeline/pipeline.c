/* The four phases of a run (see pipeline.h and DESIGN.md). The groups take the jobs of a phase
 * from a shared counter, longest first, each group as soon as it is free (JobQueue); rank 0
 * gathers every model's test logits for the results. The train-the-sum control needs no
 * teacher, so it trains in phase 1 beside the members: it is the longest job (L nets), and in
 * phase 3 it would leave the other groups idle while it runs (2 groups, 4 members: 5
 * member-times instead of 6). */
#include "ensdistill/pipeline.h"
#include "ensdistill/alloc.h"
#include "ensdistill/codistill.h"
#include "ensdistill/error.h"
#include "ensdistill/job.h"
#include "ensdistill/jobqueue.h"
#include "ensdistill/progress.h"
#include "ensdistill/results.h"
#include "ensdistill/reuse.h"
#include "ensdistill/signals.h"
#include "ensdistill/teacher.h"
#include "ensdistill/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_TEST_LOGITS = 300 };

/* Trains jobs of a phase on this rank's group, taking them from the queue's counter `phase`
 * (longest first) until none is left; then every rank learns which group trained each job
 * (list->jobs[j].group). test_out[j] ([N_test, K], on rank 0 after the gather) receives job
 * j's test logits; the group that takes job j allocates it when it has none. on_done(j,
 * train_logits, test_logits) runs on every rank of the group that trained job j. Returns
 * JOB_STOPPED if any rank was asked to stop. */
typedef void (*JobDone)(void *ctx, int job, const float *train_logits, const float *test_logits);

static int run_phase(const RunContext *ctx, JobQueue *queue, int phase, JobList *list,
                     float **test_out, JobDone on_done, void *done_ctx) {
    const Layout *lo = ctx->lo;
    const int N = ctx->data->train.N, Nt = ctx->data->test.N, K = ctx->data->train.K;
    float *train_logits = xfloats((size_t)N * K);
    int *order = xcalloc((size_t)list->n + 1, sizeof(int));
    int *owner = xcalloc((size_t)list->n + 1, sizeof(int));
    jobs_order(list->jobs, list->n, lo->n_groups, order);
    for (int j = 0; j < list->n; j++) owner[j] = -1;
    int status = JOB_DONE;
    while (status == JOB_DONE) {
        /* a stop request that came while the previous job completed: start no other */
        if (signals_any(lo->group_comm)) {
            status = JOB_STOPPED;
            break;
        }
        long next = lo->is_leader ? jobqueue_take(queue, phase) : 0;
        if (lo->ranks_per_model > 1) MPI_CHECK(MPI_Bcast(&next, 1, MPI_LONG, 0, lo->group_comm));
        if (next >= list->n) break;
        int j = order[next];
        owner[j] = lo->group;
        if (!test_out[j]) test_out[j] = xfloats((size_t)Nt * K);
        status = train_job(ctx, &list->jobs[j], train_logits, test_out[j]);
        if (status == JOB_DONE && on_done) on_done(done_ctx, j, train_logits, test_out[j]);
    }
    free(train_logits);
    free(order);
    progress_phase_end(ctx);
    layout_wait_all(MPI_COMM_WORLD); /* groups that are done sleep until the last one ends */
    if (signals_any(MPI_COMM_WORLD)) {
        free(owner);
        return JOB_STOPPED;
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, owner, list->n, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    for (int j = 0; j < list->n; j++) list->jobs[j].group = owner[j];
    free(owner);

    /* Every job's test logits to rank 0, in job order (a leader sends its jobs in order). */
    for (int j = 0; j < list->n; j++) {
        int from = list->jobs[j].group * lo->ranks_per_model;
        if (from == 0) continue;
        if (lo->world_rank == 0)
            MPI_CHECK(MPI_Recv(test_out[j], Nt * K, MPI_FLOAT, from, TAG_TEST_LOGITS + j,
                               MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        else if (lo->world_rank == from)
            MPI_CHECK(MPI_Send(test_out[j], Nt * K, MPI_FLOAT, 0, TAG_TEST_LOGITS + j,
                               MPI_COMM_WORLD));
    }
    return JOB_DONE;
}

/* Per-rank state of phase 1: the fixed-point teacher sums and member 0's logits. */
typedef struct {
    const RunContext *ctx;
    int64_t *acc_train, *acc_test;
    float *self_teacher; /* member 0's training logits */
} MemberSums;

static void member_done(void *p, int job, const float *train_logits, const float *test_logits) {
    MemberSums *s = p;
    if (job >= s->ctx->cfg->ensemble.members) return; /* the sum control: not a member */
    const DataSplit *d = s->ctx->data;
    Combine combine = s->ctx->cfg->ensemble.combine;
    ED_CHECK(ensemble_accumulate(s->acc_train, NULL, train_logits, d->train.N, d->train.K,
                                 combine) == 0 &&
                 ensemble_accumulate(s->acc_test, NULL, test_logits, d->test.N, d->test.K,
                                     combine) == 0,
             "member %d: logits out of the teacher's fixed-point range", job);
    if (job == 0)
        memcpy(s->self_teacher, train_logits, (size_t)d->train.N * d->train.K * sizeof(float));
}

/* test_out[j]: a buffer for every job on rank 0; elsewhere NULL until the group takes job j. */
static float **alloc_test_out(const RunContext *ctx, const JobList *list) {
    size_t size = (size_t)ctx->data->test.N * ctx->data->test.K;
    float **out = xcalloc((size_t)list->n + 1, sizeof(float *));
    for (int j = 0; j < list->n; j++)
        if (ctx->lo->world_rank == 0) out[j] = xfloats(size);
    return out;
}

static void free_test_out(float **out, int n) {
    for (int j = 0; j < n; j++) free(out[j]);
    free(out);
}

/* The co-distilled members (distill.students: [codistill]), all groups at once, after phase 1:
 * fills test_out (rank 0). Returns the status. */
static int run_codistill(const RunContext *ctx, JobList *list, float **test_out) {
    const CodistillConfig *cc = &ctx->cfg->distill.codistill;
    const int L = list->n, G = ctx->lo->n_groups;
    progress_say(ctx,
                 "co-distillation: %d members (mode %s, weight %g, T %g, burn-in %d epoch%s) in "
                 "lock-step on %d group(s), up to %d per group\n",
                 L, config_codistill_mode_names[cc->mode], cc->weight, cc->temperature,
                 cc->burn_in, cc->burn_in == 1 ? "" : "s", G < L ? G : L, (L + G - 1) / G);
    double t0 = MPI_Wtime();
    int status = codistill_run(ctx, list->jobs, test_out);
    if (status == JOB_DONE) progress_say(ctx, "co-distillation: %.1f s wall\n", MPI_Wtime() - t0);
    return status;
}

int pipeline_run(const RunContext *ctx) {
    const Config *cfg = ctx->cfg;
    const Layout *lo = ctx->lo;
    const DataSplit *d = ctx->data;
    const int L = cfg->ensemble.members, N = d->train.N, Nt = d->test.N, K = d->train.K;
    int status = JOB_DONE;
    JobQueue queue; /* counter 0: phase 1, counter 1: phase 3 */
    jobqueue_create(&queue, 2);
    if (cfg->distill.codistilled) codistill_check_memory(ctx);

    /* ---- phase 1: members (jobs 0..L-1) and the sum control (job L) ---- */
    const int with_sum = cfg->distill.sum;
    JobList phase1 = job_list_members(ctx);
    progress_say(ctx, "phase 1: %d members%s on %d group(s) of %d rank(s), %d thread(s) per rank\n",
                 L, with_sum ? " and the sum control" : "", lo->n_groups, lo->ranks_per_model,
                 lo->threads);
    MemberSums sums = {ctx, xcalloc((size_t)N * K, sizeof(int64_t)),
                       xcalloc((size_t)Nt * K, sizeof(int64_t)), xfloats((size_t)N * K)};
    float **phase1_test = alloc_test_out(ctx, &phase1);
    double t0 = MPI_Wtime();
    status = run_phase(ctx, &queue, 0, &phase1, phase1_test, member_done, &sums);
    if (status == JOB_DONE) progress_say(ctx, "phase 1: %.1f s wall\n", MPI_Wtime() - t0);

    /* ---- phase 2: the teacher ---- */
    float *teacher_train = NULL, *teacher_test = NULL;
    if (status == JOB_DONE) {
        teacher_reduce(sums.acc_train, (size_t)N * K, lo);
        teacher_reduce(sums.acc_test, (size_t)Nt * K, lo);
        teacher_train = xfloats((size_t)N * K);
        teacher_test = xfloats((size_t)Nt * K);
        ensemble_finish(teacher_train, sums.acc_train, (size_t)N * K, L, cfg->ensemble.combine);
        ensemble_finish(teacher_test, sums.acc_test, (size_t)Nt * K, L, cfg->ensemble.combine);
        /* from the leader of the group that trained member 0 */
        int root = phase1.jobs[0].group * lo->ranks_per_model;
        MPI_CHECK(MPI_Bcast(sums.self_teacher, N * K, MPI_FLOAT, root, MPI_COMM_WORLD));
        progress_say(ctx, "phase 2: teacher = %s of %d members\n",
                     cfg->ensemble.combine == COMBINE_PROBS ? "mean probabilities" : "mean logits",
                     L);
        if (ctx->teacher_run) {
            reuse_verify_teacher(ctx, teacher_train, teacher_test);
            progress_say(ctx, "phase 2: bitwise the teacher %s/run.h5 stored\n", ctx->teacher_dir);
        }
    }
    free(sums.acc_train);
    free(sums.acc_test);

    /* ---- the co-distilled members ---- */
    JobList codistilled = job_list_codistilled(ctx);
    float **codistill_test = alloc_test_out(ctx, &codistilled);
    if (status == JOB_DONE && codistilled.n > 0)
        status = run_codistill(ctx, &codistilled, codistill_test);

    /* ---- phase 3: students ---- */
    JobList students = job_list_students(ctx, teacher_train, sums.self_teacher);
    float **student_test = alloc_test_out(ctx, &students);
    if (status == JOB_DONE && students.n > 0) {
        progress_say(ctx, "phase 3: %d student(s)\n", students.n);
        t0 = MPI_Wtime();
        status = run_phase(ctx, &queue, 1, &students, student_test, NULL, NULL);
        if (status == JOB_DONE) progress_say(ctx, "phase 3: %.1f s wall\n", MPI_Wtime() - t0);
    }

    /* ---- phase 4: results (the sum control reported with the students) ---- */
    if (status == JOB_DONE && lo->world_rank == 0) {
        progress_say(ctx, "phase 4: results\n");
        Job *others = xcalloc((size_t)students.n + codistilled.n + 1, sizeof(Job));
        float **others_test = xcalloc((size_t)students.n + codistilled.n + 1, sizeof(float *));
        int n_others = 0;
        if (with_sum) {
            others[n_others] = phase1.jobs[L];
            others_test[n_others++] = phase1_test[L];
        }
        for (int j = 0; j < students.n; j++) {
            others[n_others] = students.jobs[j];
            others_test[n_others++] = student_test[j];
        }
        for (int j = 0; j < codistilled.n; j++) {
            others[n_others] = codistilled.jobs[j];
            others_test[n_others++] = codistill_test[j];
        }
        results_report(ctx, phase1.jobs, L, phase1_test, others, n_others, others_test,
                       teacher_train, teacher_test);
        free(others);
        free(others_test);
    }

    free_test_out(phase1_test, phase1.n);
    free_test_out(student_test, students.n);
    free_test_out(codistill_test, codistilled.n);
    job_list_free(&phase1);
    job_list_free(&students);
    job_list_free(&codistilled);
    free(sums.self_teacher);
    free(teacher_train);
    free(teacher_test);
    jobqueue_free(&queue);
    return status;
}
