/* Training one model (a job) on one group of ranks: data-parallel SGD whose gradient the group
 * sums in fixed buckets, each bucket's all-reduce started as soon as backward has finished it
 * (gradsum.c), resumable from its checkpoint at any step, and the logits the teacher needs at
 * the end. Everything the loop touches is allocated before it starts. In pieces (trainer_*,
 * train.h): train_job runs them in order, codistill.c runs several models in lock-step. */
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h"
#include "ensdistill/error.h"
#include "ensdistill/gradsum.h"
#include "ensdistill/hash.h"
#include "ensdistill/job.h"
#include "ensdistill/loss.h"
#include "ensdistill/optim.h"
#include "ensdistill/probe.h"
#include "ensdistill/progress.h"
#include "ensdistill/rng.h"
#include "ensdistill/signals.h"
#include "ensdistill/step.h"
#include "ensdistill/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest class count the views probe handles (multi-view data has few classes). */
#define PROBE_MAX_CLASSES 256

static int div_up(int a, int b) {
    return (a + b - 1) / b;
}

static Schedule job_schedule(const Config *cfg, const Job *job) {
    Schedule s;
    memset(&s, 0, sizeof(s));
    s.kind = cfg->train.schedule;
    s.base_lr = job->lr;
    s.epochs = job->epochs;
    s.warmup_epochs = cfg->train.warmup_epochs;
    s.n_milestones = cfg->train.n_milestones;
    for (int i = 0; i < s.n_milestones; i++) s.milestones[i] = cfg->train.milestones[i];
    s.gamma = cfg->train.gamma;
    return s;
}

/* Buffers of the training loop, sized once. */
struct Workspace {
    float *x;          /* [max_batch, C*H*W] */
    int32_t *labels;   /* [max_batch] */
    int64_t *ids;      /* [max_batch] */
    float *soft;       /* [max_batch, K] teacher rows of the batch */
    int *order;        /* [N] this epoch's sample order */
    int *rows;         /* [max_batch] consecutive sample indices for evaluation */
    int *counts, *displs; /* [ranks_per_model] evaluation's MPI_Allgatherv */
};

static Workspace workspace_create(const Model *m, const Dataset *train, int g) {
    size_t B = (size_t)m->spec.max_batch, K = (size_t)m->spec.num_classes;
    Workspace w = {
        .x = xfloats(B * dataset_sample_floats(train)),
        .labels = xcalloc(B, sizeof(int32_t)),
        .ids = xcalloc(B, sizeof(int64_t)),
        .soft = xfloats(B * K),
        .order = xcalloc((size_t)train->N, sizeof(int)),
        .rows = xcalloc(B, sizeof(int)),
        .counts = xcalloc((size_t)g, sizeof(int)),
        .displs = xcalloc((size_t)g, sizeof(int)),
    };
    return w;
}

static void workspace_free(Workspace *w) {
    free(w->x);
    free(w->labels);
    free(w->ids);
    free(w->soft);
    free(w->order);
    free(w->rows);
    free(w->counts);
    free(w->displs);
}

/* Logits of every sample of ds (eval mode, no augmentation) into out[N, K] on every rank of the
 * group: each rank computes a contiguous share, then one MPI_Allgatherv. Returns the number of
 * correct predictions. */
static long evaluate(Model *m, Workspace *w, const Dataset *ds, float *out, const Layout *lo) {
    int N = ds->N, K = m->spec.num_classes, g = lo->ranks_per_model;
    int begin = (int)((long)N * lo->group_rank / g), end = (int)((long)N * (lo->group_rank + 1) / g);
    for (int i = begin; i < end; i += m->spec.max_batch) {
        int B = end - i < m->spec.max_batch ? end - i : m->spec.max_batch;
        for (int b = 0; b < B; b++) w->rows[b] = i + b;
        dataset_make_batch(ds, w->rows, B, w->x, NULL, w->ids, NULL);
        const float *logits = model_forward(m, w->x, w->ids, B, 0);
        memcpy(out + (size_t)i * K, logits, (size_t)B * K * sizeof(float));
    }
    if (g > 1) {
        for (int r = 0; r < g; r++) {
            int rb = (int)((long)N * r / g), re = (int)((long)N * (r + 1) / g);
            w->counts[r] = (re - rb) * K;
            w->displs[r] = rb * K;
        }
        MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, w->counts, w->displs,
                                 MPI_FLOAT, lo->group_comm));
    }
    long correct = 0;
    for (int i = 0; i < N; i++)
        correct += nn_argmax(out + (size_t)i * K, K) == ds->labels[i];
    return correct;
}

/* FNV-1a over the parameter bytes: equal on every rank of a group, or data-parallel broke. */
static uint64_t params_hash(const Model *m) {
    return hash_fnv1a(HASH_FNV1A_INIT, m->params, m->tensors.param_floats * sizeof(float));
}

/* A line about a model ("complete: skipped"), printed by rank 0 whichever group trains it. */
void trainer_note(const RunContext *ctx, const Job *job, const char *fmt, ...) {
    if (!ctx->lo->is_leader) return;
    EpochReport r = {.index = job->index};
    snprintf(r.name, sizeof(r.name), "%s", job->name);
    snprintf(r.role, sizeof(r.role), "%s", job_role_name(job->role));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.note, sizeof(r.note), fmt, ap);
    va_end(ap);
    progress_report(ctx, &r);
}

static void check_group_weights(const RunContext *ctx, const Job *job, const Model *m) {
    const Layout *lo = ctx->lo;
    if (lo->ranks_per_model == 1) return;
    uint64_t mine = params_hash(m), lead = mine;
    MPI_CHECK(MPI_Bcast(&lead, 1, MPI_UINT64_T, 0, lo->group_comm));
    ED_CHECK(mine == lead, "group %d: weights differ between ranks after data-parallel training",
             lo->group);
    trainer_note(ctx, job, "weights bitwise identical on the %d ranks of its group",
               lo->ranks_per_model);
}

static void save(const RunContext *ctx, const char *path, const Model *m, const ModelState *st,
                 const CkptDataset *extra, int n_extra) {
    const Layout *lo = ctx->lo;
    /* Running statistics are per shard: the group keeps the leader's, as PyTorch DDP does. */
    if (lo->ranks_per_model > 1 && m->tensors.buffer_floats)
        MPI_CHECK(MPI_Bcast(m->buffers, (int)m->tensors.buffer_floats, MPI_FLOAT, 0,
                            lo->group_comm));
    CkptWriteOptions opt = {.config_text = ctx->config_text,
                            .deflate = ctx->cfg->checkpoint.deflate,
                            .extra = extra,
                            .n_extra = n_extra};
    if (lo->is_leader) ckpt_write(path, m, st, &opt);
}

/* A model whose epoch loss is not finite has diverged: every later step would train on NaN and
 * its logits would poison the teacher and the results. Stop the run (every rank of the group
 * sees the same summed loss) before this epoch is checkpointed, naming the key to change. */
static noreturn void fail_diverged(const RunContext *ctx, const Job *job, int epoch,
                                   double loss) {
    const char *key = job->role == ROLE_MEMBER      ? "train.lr"
                      : job->role == ROLE_SUM       ? "distill.sum_lr"
                      : job->role == ROLE_CODISTILL ? "train.lr or distill.codistill.weight"
                                                    : "distill.lr";
    ed_fail("%s diverged in epoch %d (training loss %g, peak lr %g): lower %s%s, or set "
            "train.warmup_epochs. Finished models stay in %s/models: copy them into a new "
            "checkpoint.dir to reuse them with the changed config",
            job->name, epoch, loss, job->lr, key,
            job->teacher ? " or distill.temperature (the soft-target gradient grows with "
                           "alpha * T)"
                         : "",
            ctx->run_dir);
}

/* A checkpoint continues only under the config that shaped it (config_first_difference over
 * the keys its role depends on): RUN_DIR/config.yaml guards the directory, but it can be
 * deleted or edited, and the file's own config is the one that counts. Members copied into a
 * new run directory serve students of another distillation config. */
static void check_stored_config(const RunContext *ctx, const Job *job, const char *path) {
    /* the keys that did not shape this model: members need no distillation, and the teacher
     * (the members' count and combination) shapes only the students */
    static const char *const for_member[] = {"name", "eval.", "distill.", "ensemble.members",
                                             "ensemble.combine", NULL};
    /* a member of a distill.teacher run: its data.path may be relative to wherever that run
     * started; reuse_check has compared the data by their fingerprint */
    static const char *const for_other_run[] = {"name", "eval.", "distill.", "ensemble.members",
                                                "ensemble.combine", "data.path", NULL};
    static const char *const for_sum[] = {"name", "eval.", "distill.students", "distill.seeds",
                                          "distill.temperature", "distill.alpha",
                                          "distill.epochs", "distill.lr", "distill.codistill.",
                                          "ensemble.combine", NULL};
    static const char *const for_student[] = {"name", "eval.", "distill.codistill.", NULL};
    /* co-distilled members: the members' keys and their own section */
    static const char *const for_codistill[] = {
        "name", "eval.", "distill.students", "distill.seeds", "distill.temperature",
        "distill.alpha", "distill.epochs", "distill.lr", "distill.sum_", "distill.teacher",
        "ensemble.combine", NULL};
    const char *const *ignore = job->from_run                 ? for_other_run
                                : job->role == ROLE_MEMBER    ? for_member
                                : job->role == ROLE_SUM       ? for_sum
                                : job->role == ROLE_CODISTILL ? for_codistill
                                                              : for_student;
    char *text = ckpt_read_config(path);
    if (!text) ed_fail("checkpoint %s: its config is unreadable", path);
    Config stored;
    char err[1024], key[128], was[600], now[600];
    if (config_load_text(&stored, text, path, err, sizeof(err)) != 0)
        ed_fail("checkpoint %s: its stored config does not load (%s)", path, err);
    free(text);
    if (config_first_difference(&stored, ctx->cfg, ignore, key, sizeof(key), was, now, sizeof(was)))
        ed_fail("checkpoint %s was trained with %s = %s, but the config says %s: resume it with "
                "its config, or set checkpoint.dir to a new directory",
                path, key, was, now);
}

static Role rng_role(const Job *job) {
    return job->rng_role ? job->rng_role : job->role;
}

int trainer_open(Trainer *t, const RunContext *ctx, const Job *job, float *train_logits,
                 float *test_logits) {
    const Config *cfg = ctx->cfg;
    const Layout *lo = ctx->lo;
    const Dataset *train = &ctx->data->train, *test = &ctx->data->test;
    const int N = train->N, K = train->K, g = lo->ranks_per_model;
    const uint64_t seed = (uint64_t)cfg->ensemble.seed;
    memset(t, 0, sizeof(*t));
    t->ctx = ctx;
    t->job = job;

    const char *dir = job->from_run ? job->from_run : ctx->run_dir;
    if (snprintf(t->path, sizeof(t->path), "%s/models/%s.h5", dir, job->name) >=
        (int)sizeof(t->path))
        ed_fail("%s: directory name too long", dir);
    memcpy(t->write_path, t->path, sizeof(t->path));
    ModelSpec spec = job_model_spec(ctx, job);
    Model *m = model_create(&spec);
    model_init(m, seed, rng_stream(RNG_PURPOSE_INIT, rng_role(job), (unsigned)job->seed_index, 0));

    ModelState *st = &t->st;
    snprintf(st->role, sizeof(st->role), "%s", job_role_name(job->role));
    st->index = job->index;
    st->seed = cfg->ensemble.seed;
    st->epochs_total = job->epochs;
    /* a file of the teacher run is only read: no fall-back to its .prev, nothing renamed */
    int resumed =
        (job->from_run ? ckpt_read_other_run(t->path, m, st) : ckpt_read(t->path, m, st)) == 0;
    st->epochs_total = job->epochs;
    if (resumed) check_stored_config(ctx, job, t->path);

    if (resumed && st->complete) {
        int have = ckpt_read_logits(t->path, "train", train_logits, N, K) == 0 &&
                   ckpt_read_logits(t->path, "test", test_logits, test->N, K) == 0;
        if (have) {
            if (job->from_run)
                trainer_note(ctx, job, "read from the teacher run (%s)", t->path);
            else
                trainer_note(ctx, job, "complete: skipped (RUN_DIR/models/%s.h5)", job->name);
            model_free(m);
            ckpt_state_free(st);
            return 1;
        }
    }
    /* A reused member is read, never trained or written: the teacher run must be finished. */
    if (job->from_run)
        ed_fail("distill.teacher %s: %s is %s: finish that run first (run its command again)",
                job->from_run, t->path,
                !resumed ? "missing" : st->complete ? "without its logits" : "not complete");
    if (resumed && !st->complete)
        trainer_note(ctx, job, "resuming at epoch %d, step %d", st->epoch + 1, st->step_in_epoch);

    t->m = m;
    t->w = xcalloc(1, sizeof(Workspace));
    *t->w = workspace_create(m, train, g);
    const size_t bucket = group_sum_bucket_floats(cfg->parallel.grad_bucket_mb);
    t->gs = g > 1 ? group_sum_create(lo->group_comm) : NULL;
    StepOptions opt = {.momentum = (float)cfg->train.momentum,
                       .weight_decay = (float)cfg->train.weight_decay,
                       .nesterov = cfg->train.nesterov,
                       .clip_norm = cfg->train.clip_norm,
                       .temperature = (float)job->temperature,
                       .alpha = (float)job->alpha,
                       .sum = t->gs ? group_sum_hooks(t->gs, bucket, cfg->parallel.grad_overlap)
                                    : (GradSum){0}};
    t->step = step_create(m, &opt);
    t->sched = job_schedule(cfg, job);
    if (t->gs)
        trainer_note(ctx, job, "gradient sum: %d bucket%s of up to %.3g MiB (%s), %s",
                     t->step->n_buckets, t->step->n_buckets == 1 ? "" : "s",
                     t->step->bucket * sizeof(float) / 1048576.0, group_sum_method(),
                     opt.sum.overlap ? "overlapped with backward" : "after backward");
    return 0;
}

void trainer_close(Trainer *t) {
    step_free(t->step);
    group_sum_free(t->gs);
    if (t->w) workspace_free(t->w);
    free(t->w);
    model_free(t->m);
    ckpt_state_free(&t->st);
    memset(t, 0, sizeof(*t));
}

int trainer_epoch_begin(Trainer *t, int epoch, EpochSums *e) {
    const Config *cfg = t->ctx->cfg;
    const Job *job = t->job;
    const Dataset *train = &t->ctx->data->train;
    const uint64_t seed = (uint64_t)cfg->ensemble.seed;
    const unsigned order_index =
        (unsigned)(job->order_index >= 0 ? job->order_index : job->seed_index);
    Rng order_rng = rng_make(seed, rng_stream(RNG_PURPOSE_ORDER, rng_role(job), order_index,
                                              (uint32_t)epoch));
    rng_permutation(&order_rng, train->N, t->w->order);
    t->aug = (Augment){.crop_pad = cfg->data.crop_pad, .flip = cfg->data.flip, .seed = seed,
                       .stream = rng_stream(RNG_PURPOSE_AUGMENT, rng_role(job),
                                            (unsigned)job->seed_index, (uint32_t)epoch)};
    const ModelState *st = &t->st;
    *e = (EpochSums){.loss = st->partial_loss, .correct = st->partial_correct,
                     .seen = st->partial_seen, .t_start = MPI_Wtime() - st->partial_seconds};
    return div_up(train->N, job_global_batch(t->ctx));
}

double trainer_lr(const Trainer *t, int epoch, int step) {
    const int steps = div_up(t->ctx->data->train.N, job_global_batch(t->ctx));
    return schedule_lr(&t->sched, epoch, step, steps);
}

StepBatch trainer_batch(Trainer *t, int step) {
    const RunContext *ctx = t->ctx;
    const Layout *lo = ctx->lo;
    const Dataset *train = &ctx->data->train;
    const Job *job = t->job;
    Workspace *w = t->w;
    const int N = train->N, K = train->K, g = lo->ranks_per_model, Bg = job_global_batch(ctx);
    int b0 = step * Bg, b = (N - b0 < Bg) ? N - b0 : Bg;
    int lo_i = (int)((long)b * lo->group_rank / g), hi_i = (int)((long)b * (lo->group_rank + 1) / g);
    StepBatch batch = {.x = w->x, .labels = w->labels, .ids = w->ids, .B = hi_i - lo_i,
                       .global_B = b};
    const int *idx = w->order + b0 + lo_i;
    if (batch.B > 0) {
        dataset_make_batch(train, idx, batch.B, w->x, w->labels, w->ids,
                           ctx->cfg->data.augment ? &t->aug : NULL);
        if (job->teacher) {
            for (int i = 0; i < batch.B; i++)
                memcpy(w->soft + (size_t)i * K, job->teacher + (size_t)idx[i] * K,
                       (size_t)K * sizeof(float));
            batch.teacher = w->soft;
        }
    }
    return batch;
}

void trainer_save_partial(Trainer *t, int epoch, int next_step, const EpochSums *e) {
    ModelState *st = &t->st;
    st->epoch = epoch;
    st->step_in_epoch = next_step;
    st->partial_loss = e->loss;
    st->partial_correct = e->correct;
    st->partial_seen = e->seen;
    st->partial_seconds = MPI_Wtime() - e->t_start;
    save(t->ctx, t->write_path, t->m, st, t->extra, t->n_extra);
}

/* What train_epoch did: the whole epoch; stopped inside it (checkpointed); or the whole epoch
 * with a stop requested at its last step (every step is the last with batch_size full), which
 * trainer_end_epoch checkpoints as an ordinary epoch. */
enum { EPOCH_DONE = 0, EPOCH_STOPPED = 1, EPOCH_DONE_STOP = 2 };

/* The steps of `epoch` from st.step_in_epoch on. When a stop is requested before the last
 * step, checkpoints the partial epoch and returns EPOCH_STOPPED; else returns EPOCH_DONE or
 * EPOCH_DONE_STOP with the epoch's sums in *e. */
static int train_epoch(Trainer *t, int epoch, EpochSums *e) {
    const RunContext *ctx = t->ctx;
    const Layout *lo = ctx->lo;
    const int g = lo->ranks_per_model;
    const int steps = trainer_epoch_begin(t, epoch, e);
    for (int step = t->st.step_in_epoch; step < steps; step++) {
        StepBatch batch = trainer_batch(t, step);
        e->lr = trainer_lr(t, epoch, step);
        int ok = 0;
        e->loss += step_run(t->step, &batch, (float)e->lr, &ok, g > 1 ? &e->times : NULL);
        e->correct += ok;
        e->seen += batch.B;
        t->st.step++;
        progress_step(ctx, t->job->name, epoch + 1, t->job->epochs, step, steps);
        progress_poll(ctx);
        int stop = signals_stop_requested();
        if (g > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, lo->group_comm));
        if (stop && step + 1 < steps) {
            trainer_save_partial(t, epoch, step + 1, e);
            return EPOCH_STOPPED;
        }
        if (stop) return EPOCH_DONE_STOP;
    }
    return EPOCH_DONE;
}

int trainer_end_epoch(Trainer *t, int epoch, const EpochSums *e, float *test_logits,
                      int *have_test, int stop_requested) {
    const RunContext *ctx = t->ctx;
    const Config *cfg = ctx->cfg;
    const Job *job = t->job;
    const Layout *lo = ctx->lo;
    const Dataset *test = &ctx->data->test;
    Model *m = t->m;
    ModelState *st = &t->st;
    const int g = lo->ranks_per_model;
    double sums[3] = {e->loss, e->correct, e->seen};
    if (g > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 3, MPI_DOUBLE, MPI_SUM, lo->group_comm));
    if (!isfinite(sums[0])) fail_diverged(ctx, job, epoch + 1, sums[0] / sums[2]);
    double seconds = MPI_Wtime() - e->t_start;
    if (g > 1 && m->tensors.buffer_floats)
        MPI_CHECK(MPI_Bcast(m->buffers, (int)m->tensors.buffer_floats, MPI_FLOAT, 0,
                            lo->group_comm));
    int last = epoch + 1 == job->epochs;
    int every = cfg->train.eval_every;
    double test_acc = NAN;
    if (last || (every > 0 && (epoch + 1) % every == 0)) {
        test_acc = (double)evaluate(m, t->w, test, test_logits, lo) / test->N;
        *have_test = last;
    }
    EpochRecord rec = {.epoch = epoch + 1, .lr = e->lr, .train_loss = sums[0] / sums[2],
                       .train_acc = sums[1] / sums[2], .test_acc = test_acc,
                       .seconds = seconds};
    ckpt_state_push_epoch(st, &rec);
    st->epoch = epoch + 1;
    st->step_in_epoch = 0;
    st->partial_loss = st->partial_correct = st->partial_seen = st->partial_seconds = 0;
    if (lo->is_leader) {
        EpochReport r = {.index = job->index, .epoch = epoch + 1, .epochs = job->epochs,
                         .loss = rec.train_loss, .acc = rec.train_acc, .test_acc = test_acc,
                         .lr = e->lr, .images_per_s = sums[2] / seconds, .seconds = seconds,
                         .eta_seconds = seconds * (job->epochs - epoch - 1)};
        const double step_seconds = step_times_total(&e->times);
        if (g > 1 && step_seconds > 0.0)
            r.grad_sum_share = e->times.seconds[STEP_GRAD_SUM] / step_seconds;
        snprintf(r.name, sizeof(r.name), "%s", job->name);
        snprintf(r.role, sizeof(r.role), "%s", job_role_name(job->role));
        progress_report(ctx, &r);
    }
    if (!last && (stop_requested || (cfg->checkpoint.every_epochs > 0 &&
                                     (epoch + 1) % cfg->checkpoint.every_epochs == 0))) {
        save(ctx, t->write_path, m, st, t->extra, t->n_extra);
        return 1;
    }
    return 0;
}

void trainer_finish(Trainer *t, float *train_logits, float *test_logits, int have_test) {
    const RunContext *ctx = t->ctx;
    const Layout *lo = ctx->lo;
    const Dataset *train = &ctx->data->train, *test = &ctx->data->test;
    const int N = train->N, K = train->K;
    Model *m = t->m;
    evaluate(m, t->w, train, train_logits, lo);
    if (!have_test) evaluate(m, t->w, test, test_logits, lo);
    check_group_weights(ctx, t->job, m);
    t->st.complete = 1;
    CkptDataset extra[3] = {
        {.name = "logits/train", .ndim = 2, .dims = {N, K}, .data = train_logits},
        {.name = "logits/test", .ndim = 2, .dims = {test->N, K}, .data = test_logits},
    };
    int n_extra = 2;
    float probe[2 * PROBE_MAX_CLASSES];
    if (K <= PROBE_MAX_CLASSES && probe_views(m, train->views, K, train->D, probe) == 0) {
        const double threshold = ctx->cfg->model.srelu_rho;
        const int both = probe_both_learned(probe, K, threshold);
        extra[n_extra++] = (CkptDataset){
            .name = "probe/views", .ndim = 2, .dims = {K, 2}, .data = probe, .n_attrs = 3,
            .attrs = {{.name = "threshold", .type = CKPT_ATTR_F64, .f64 = threshold},
                      {.name = "classes_both_learned", .type = CKPT_ATTR_I64, .i64 = both},
                      {.name = "meaning", .type = CKPT_ATTR_STR, .str = PROBE_VIEWS_MEANING}}};
        trainer_note(ctx, t->job, "views learned: both views in %d of %d classes", both, K);
    }
    save(ctx, t->write_path, m, &t->st, extra, n_extra);
}

int train_job(const RunContext *ctx, const Job *job, float *train_logits, float *test_logits) {
    Trainer t;
    if (trainer_open(&t, ctx, job, train_logits, test_logits)) return JOB_DONE;
    int stopped = 0, have_test = 0; /* have_test: test_logits hold the final weights' */
    for (int epoch = t.st.epoch; epoch < job->epochs && !t.st.complete && !stopped; epoch++) {
        EpochSums sums;
        int done = train_epoch(&t, epoch, &sums);
        stopped = done == EPOCH_STOPPED;
        if (!stopped)
            trainer_end_epoch(&t, epoch, &sums, test_logits, &have_test, done == EPOCH_DONE_STOP);
        /* a stop at the last step of the last epoch lets the model complete instead */
        if (done == EPOCH_DONE_STOP && epoch + 1 < job->epochs) stopped = 1;
    }
    if (!stopped) trainer_finish(&t, train_logits, test_logits, have_test);
    trainer_close(&t);
    return stopped ? JOB_STOPPED : JOB_DONE;
}
