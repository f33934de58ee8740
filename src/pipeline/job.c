/* The run's vocabulary (see job.h): role names, the global batch and model spec of a job, the
 * job lists of phases 1 and 3, the students' sweep. */
#include "ensdistill/job.h"
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h" /* ckpt_model_name */
#include "ensdistill/error.h"

#include <stdlib.h>
#include <string.h>

const char *job_role_name(Role role) {
    switch (role) {
    case ROLE_MEMBER: return "member";
    case ROLE_KD: return "kd";
    case ROLE_SELF: return "self";
    case ROLE_SUM: return "sum";
    case ROLE_CODISTILL: return "codistill";
    }
    return "?";
}

int job_global_batch(const RunContext *ctx) {
    int N = ctx->data->train.N, B = ctx->cfg->train.batch_size;
    return (B <= 0 || B > N) ? N : B;
}

static int div_up(int a, int b) {
    return (a + b - 1) / b;
}

ModelSpec job_model_spec(const RunContext *ctx, const Job *job) {
    const Config *cfg = ctx->cfg;
    const Dataset *tr = &ctx->data->train;
    ModelSpec s;
    memset(&s, 0, sizeof(s));
    if (strlen(cfg->model.arch) >= sizeof(s.arch))
        ed_fail("model.arch: '%.40s...' is too long", cfg->model.arch);
    memcpy(s.arch, cfg->model.arch, strlen(cfg->model.arch) + 1);
    s.C = tr->C;
    s.H = tr->H;
    s.W = tr->W;
    s.num_classes = tr->K;
    int local = div_up(job_global_batch(ctx), ctx->lo->ranks_per_model);
    int eval = cfg->eval.batch_size;
    int largest_set = tr->N > ctx->data->test.N ? tr->N : ctx->data->test.N;
    if (eval > largest_set) eval = largest_set;
    s.max_batch = local > eval ? local : eval;
    s.sum_of = job->sum_of;
    s.random_features = cfg->model.random_features;
    s.precision = cfg->train.precision;
    s.hidden = cfg->model.hidden;
    s.mv_filters = cfg->model.filters;
    s.srelu_q = (float)cfg->model.srelu_q;
    s.srelu_rho = (float)cfg->model.srelu_rho;
    s.init_std = (float)cfg->model.init_std;
    if (tr->orth_noise) {
        s.mv_noise_coords = (int64_t)tr->N * tr->C; /* one coordinate per training patch */
        s.mv_noise_sigma = tr->noise_sigma;
    }
    return s;
}

static void job_add(JobList *list, int cap, Role role, int index, int epochs, double lr,
                    int sum_of, const float *teacher) {
    ED_CHECK(list->n < cap, "too many jobs");
    Job *j = &list->jobs[list->n++];
    memset(j, 0, sizeof(*j));
    j->role = role;
    j->index = index;
    ckpt_model_name(j->name, sizeof(j->name), job_role_name(role), index);
    j->epochs = epochs;
    j->lr = lr;
    j->sum_of = sum_of;
    j->teacher = teacher;
    j->combo = -1;
    j->seed_index = index;
    j->order_index = -1;
}

JobList job_list_members(const RunContext *ctx) {
    const Config *cfg = ctx->cfg;
    const int L = cfg->ensemble.members;
    JobList list = {xcalloc((size_t)L + 1, sizeof(Job)), 0};
    for (int l = 0; l < L; l++) {
        job_add(&list, L + 1, ROLE_MEMBER, l, cfg->train.epochs, cfg->train.lr, 1, NULL);
        if (ctx->teacher_dir[0]) list.jobs[l].from_run = ctx->teacher_dir;
    }
    int sum_epochs = cfg->distill.sum_epochs ? cfg->distill.sum_epochs : cfg->train.epochs;
    double sum_lr = cfg->distill.sum_lr > 0 ? cfg->distill.sum_lr : cfg->train.lr;
    if (cfg->distill.sum) job_add(&list, L + 1, ROLE_SUM, 0, sum_epochs, sum_lr, L, NULL);
    return list;
}

JobList job_list_codistilled(const RunContext *ctx) {
    const Config *cfg = ctx->cfg;
    const CodistillConfig *cc = &cfg->distill.codistill;
    const int L = cfg->distill.codistilled ? cfg->ensemble.members : 0;
    JobList list = {xcalloc((size_t)L + 1, sizeof(Job)), 0};
    for (int l = 0; l < L; l++) {
        job_add(&list, L, ROLE_CODISTILL, l, cfg->train.epochs, cfg->train.lr, 1, NULL);
        Job *j = &list.jobs[l];
        j->rng_role = ROLE_MEMBER; /* member l's initial weights and augmentation */
        j->order_index = cc->mode == CODISTILL_LOGITS ? 0 : l;
        j->temperature = cc->temperature;
        j->alpha = cc->weight;
    }
    return list;
}

JobList job_list_students(const RunContext *ctx, const float *teacher, const float *self_teacher) {
    const Config *cfg = ctx->cfg;
    const DistillConfig *dc = &cfg->distill;
    const int S = dc->seeds, n_combos = sweep_combinations(dc);
    const int cap = 2 * S * n_combos;
    JobList list = {xcalloc((size_t)cap, sizeof(Job)), 0};
    int s_epochs = dc->epochs ? dc->epochs : cfg->train.epochs;
    for (int role = 0; role < 2; role++) {
        if (!(role == 0 ? dc->kd : dc->self)) continue;
        for (int c = 0; c < n_combos; c++) {
            double T, alpha, lr;
            sweep_combination(dc, c, &T, &alpha, &lr);
            for (int s = 0; s < S; s++) {
                job_add(&list, cap, role == 0 ? ROLE_KD : ROLE_SELF, c * S + s, s_epochs,
                        lr > 0 ? lr : cfg->train.lr, 1, role == 0 ? teacher : self_teacher);
                Job *j = &list.jobs[list.n - 1];
                j->temperature = T;
                j->alpha = alpha;
                j->combo = n_combos > 1 ? c : -1;
                j->seed_index = s;
            }
        }
    }
    return list;
}

void job_list_free(JobList *list) {
    free(list->jobs);
    list->jobs = NULL;
    list->n = 0;
}

int sweep_combinations(const DistillConfig *dc) {
    return dc->n_temperature * dc->n_alpha * dc->n_lr;
}

void sweep_combination(const DistillConfig *dc, int c, double *T, double *alpha, double *lr) {
    *lr = dc->lr[c % dc->n_lr];
    c /= dc->n_lr;
    *alpha = dc->alpha[c % dc->n_alpha];
    *T = dc->temperature[c / dc->n_alpha];
}
