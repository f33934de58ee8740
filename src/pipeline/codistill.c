/* Online co-distillation (distill.students: [codistill]): L more members that train together in
 * lock-step, each distilling from its peers while it trains. Member l starts from member l's
 * initial weights and draws member l's augmentation; in mode logits all of them take the same
 * minibatch order (member 0's), and every step the group leaders' fixed-point sum of their
 * logits (one MPI_Allreduce of B x K int64) gives each member the mean of the OTHER members'
 * logits on the same samples; in mode checkpoints (Anil et al. 2018) each keeps its own order
 * and, every `period` steps, the members exchange weights and each runs its peers' stale copies
 * on its own batch. Loss: (1 - w) CE + w T^2 KL(softmax(peers / T) || softmax(own / T)), after
 * burn_in epochs of plain CE. Group j holds members j, j + G, ...; the fixed-point sum and the
 * fixed order of everything else make the result independent of the rank layout. */
#include "ensdistill/alloc.h"
#include "ensdistill/ensemble.h"
#include "ensdistill/error.h"
#include "ensdistill/codistill.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/progress.h"
#include "ensdistill/signals.h"
#include "ensdistill/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TAG_CODISTILL_TEST = 20000 };

/* Bytes the kernel says a new process could use without swapping (MemAvailable), else the
 * physical memory. */
static double available_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lf kB", &kib) == 1) break;
    if (f) fclose(f);
    if (kib > 0) return kib * 1024.0;
    return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
}

void codistill_check_memory(const RunContext *ctx) {
    const Layout *lo = ctx->lo;
    const int L = ctx->cfg->ensemble.members, G = lo->n_groups;
    const int held = (L + G - 1) / G;
    Job job = {.role = ROLE_CODISTILL, .sum_of = 1};
    ModelSpec spec = job_model_spec(ctx, &job);
    Model *m = model_create(&spec);
    const Dataset *train = &ctx->data->train;
    /* a member: its model (weights, gradients, momentum, activations), the loop's buffers (the
     * batch, the order, the teacher rows) and the step's: what train_job holds for one model */
    double member = (double)model_bytes(m) +
                    (double)spec.max_batch * (dataset_sample_floats(train) + 2.0 * spec.num_classes) *
                        sizeof(float) +
                    (double)train->N * sizeof(int) + (double)spec.max_batch * 12.0;
    /* mode checkpoints: every member's weights and one more model to run them */
    double copies = 0;
    if (ctx->cfg->distill.codistill.mode == CODISTILL_CHECKPOINTS)
        copies = (double)L * (m->tensors.param_floats + m->tensors.buffer_floats) * sizeof(float) +
                 (double)model_bytes(m);
    model_free(m);
    const double need = held * member + copies, have = available_bytes() / lo->ranks_on_node;
    char plus[96] = "";
    if (copies > 0)
        snprintf(plus, sizeof(plus), " + %.1f MiB (every member's weights and a model to run them)",
                 copies / 1048576.0);
    int over = need > have;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &over, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (over)
        ed_fail("distill.students codistill: the %d co-distilled members train at once, %d on "
                "each of the %d group(s); a rank would hold %d x %.1f MiB%s = %.1f MiB, more "
                "than its share of this node's available memory (%.1f MiB: %.1f MiB over %d "
                "rank(s)): use more ranks (groups), a smaller model or train.batch_size, or "
                "fewer ensemble.members",
                L, held, G, held, member / 1048576.0, plus, need / 1048576.0, have / 1048576.0,
                have * lo->ranks_on_node / 1048576.0, lo->ranks_on_node);
    progress_say(ctx,
                 "co-distillation: %d member(s) per group held at once, %d x %.1f MiB%s = %.1f "
                 "MiB per rank\n",
                 held, held, member / 1048576.0, plus, need / 1048576.0);
}

/* This rank's share of the co-distilled members, and the buffers of their steps. */
typedef struct {
    const RunContext *ctx;
    MPI_Comm comm;   /* the ranks of the groups that hold a member (every group when G <= L) */
    int L, n_held;   /* members in all; held by this group: held[0..n_held) = group + i G */
    Job *jobs;       /* [L] */
    Trainer *tr;     /* [n_held] */
    EpochSums *sums; /* [n_held] */
    StepBatch *batch; /* [n_held] this step's */
    const float **logits; /* [n_held] this step's, from step_forward */
    float **test;    /* [n_held] test logits [N_test, K] */
    int *have_test;  /* [n_held] */
    float *train_logits; /* [N, K] scratch for trainer_finish */
    int64_t *sum;    /* [Bg K + 1]: every member's logits of the global batch in fixed point,
                        then the number of ranks asked to stop */
    int64_t *own;    /* [max_batch K] */
    float *peers;    /* [n_held][max_batch K]: the mean of the other members' logits */
    size_t sum_count;
    /* mode checkpoints: every member's weights (params, then buffers) at the last exchange,
     * on every rank; a model to run them; this group's own at that step (stored with its
     * checkpoints as /codistill/exchanged, so a resumed run has them again) */
    int checkpoints;
    size_t S;             /* floats of one copy */
    float *stale;         /* [L][S] */
    float *exchanged;     /* [n_held][S] */
    CkptDataset *extra;   /* [n_held] */
    Model *peer;
    int64_t *peer_sum;    /* [n_held][max_batch K] */
    int have_stale;
    double peer_seconds;  /* in the peers' forward passes */
    long peer_forwards;
    long member_steps;    /* steps of held members run by this process */
} Codistill;

static int held_index(const Layout *lo, int i) {
    return lo->group + i * lo->n_groups;
}

/* "RUN_DIR/models/codistill-003.next.h5": where a member's checkpoint is written; renamed over
 * its own name once every member has written (codistill_commit). */
static void next_path(char *out, size_t size, const char *path) {
    size_t n = strlen(path);
    ED_CHECK(n > 3 && n + 6 < size, "checkpoint path %s", path);
    snprintf(out, size, "%.*s.next.h5", (int)(n - 3), path);
}

/* RUN_DIR/models/<name>.h5 */
static void member_path(char *out, size_t size, const RunContext *ctx, const Job *job) {
    if (snprintf(out, size, "%s/models/%s.h5", ctx->run_dir, job->name) >= (int)size)
        ed_fail("%s: directory name too long", ctx->run_dir);
}

/* Step (optimizer steps done) of a checkpoint, -1 when absent; a file that is not a readable
 * checkpoint is left to ckpt_read's own checks (its .prev fall-back, its messages). */
static int64_t ckpt_step(const char *path) {
    CkptInfo info;
    if (!fs_exists(path)) return -1;
    return ckpt_info(path, &info, NULL, 0) == 0 ? info.step : -1;
}

/* After every member has written its checkpoint to the .next name: all checkpoints of one step
 * exist, so each takes its own name. A kill between two renames leaves each member either
 * renamed or with its .next file of the same step: codistill_reconcile finishes the job. */
static void codistill_commit(Codistill *c) {
    MPI_CHECK(MPI_Barrier(c->comm));
    if (!c->ctx->lo->is_leader) return;
    for (int i = 0; i < c->n_held; i++) {
        char next[ED_PATH_MAX];
        next_path(next, sizeof(next), c->tr[i].path);
        if (rename(next, c->tr[i].path) != 0)
            ed_fail("cannot rename %s to %s: %s", next, c->tr[i].path, strerror(errno));
    }
    if (c->n_held > 0) fs_fsync_parent_dir(c->tr[0].path);
}

/* Before opening the members: the co-distilled checkpoints must all be at one step. The newest
 * step any member's checkpoint has is the one every member reached (a .next file of that step
 * stands in for a member whose rename a kill prevented); .next files of other steps were never
 * committed and go. */
static void codistill_reconcile(Codistill *c) {
    const Layout *lo = c->ctx->lo;
    char path[ED_PATH_MAX], next[ED_PATH_MAX];
    int64_t newest = -1;
    for (int i = 0; lo->is_leader && i < c->n_held; i++) {
        member_path(path, sizeof(path), c->ctx, &c->jobs[held_index(lo, i)]);
        int64_t s = ckpt_step(path);
        if (s > newest) newest = s;
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &newest, 1, MPI_INT64_T, MPI_MAX, c->comm));
    for (int i = 0; lo->is_leader && i < c->n_held; i++) {
        const Job *job = &c->jobs[held_index(lo, i)];
        member_path(path, sizeof(path), c->ctx, job);
        next_path(next, sizeof(next), path);
        int64_t have = ckpt_step(path), staged = ckpt_step(next);
        if (have != newest && staged == newest && newest >= 0) {
            if (rename(next, path) != 0)
                ed_fail("cannot rename %s to %s: %s", next, path, strerror(errno));
            fs_fsync_parent_dir(path);
            trainer_note(c->ctx, job, "took its checkpoint of step %lld from %s", (long long)newest,
                         next);
        } else if (fs_exists(next) && remove(next) != 0) {
            ed_fail("cannot remove %s: %s", next, strerror(errno));
        }
        if (ckpt_step(path) != newest)
            ed_fail("co-distilled member %s: its checkpoint %s is at step %lld but another "
                    "member's is at step %lld: the co-distilled members train in lock-step and "
                    "resume together; remove RUN_DIR/models/codistill-*.h5 to train them again",
                    job->name, path, (long long)ckpt_step(path), (long long)newest);
    }
    MPI_CHECK(MPI_Barrier(c->comm));
}

/* The members' fixed-point sum of this step's logits and the stop requests, over every rank
 * of every group: rank r of a group adds its shard's rows [lo_r, hi_r) of the global batch for
 * each member it holds. Integer addition: the sum is the same for any layout. Returns the
 * number of ranks asked to stop. */
static int64_t exchange_logits(Codistill *c, int distilling) {
    const Layout *lo = c->ctx->lo;
    const int K = c->ctx->data->train.K;
    size_t n = 1;
    if (distilling) {
        n = c->sum_count;
        memset(c->sum, 0, (n - 1) * sizeof(int64_t));
        for (int i = 0; i < c->n_held; i++) {
            const StepBatch *b = &c->batch[i];
            if (b->B == 0) continue;
            int row = (int)((long)b->global_B * lo->group_rank / lo->ranks_per_model);
            if (ensemble_accumulate(c->sum + (size_t)row * K, NULL, c->logits[i], b->B, K,
                                    COMBINE_LOGITS) != 0)
                ed_fail("%s diverged: its logits left the fixed-point range (|logit| >= 1e8 or "
                        "not finite): lower train.lr or distill.codistill.weight",
                        c->tr[i].job->name);
        }
    }
    c->sum[n - 1] = signals_stop_requested();
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, c->sum, (int)n, MPI_INT64_T, MPI_SUM, c->comm));
    return c->sum[n - 1];
}

/* peers[i] = (sum - own logits) / (L - 1) on member i's rows of the batch, in fixed point. */
void codistill_peers(float *out, int64_t *scratch, const int64_t *sum, const float *own, int B,
                     int K, int L) {
    const size_t count = (size_t)B * K;
    memset(scratch, 0, count * sizeof(int64_t));
    ensemble_accumulate(scratch, NULL, own, B, K, COMBINE_LOGITS);
    for (size_t k = 0; k < count; k++) scratch[k] = sum[k] - scratch[k];
    ensemble_finish(out, scratch, count, L - 1, COMBINE_LOGITS);
}

static const float *peers_mean(Codistill *c, int i) {
    const Layout *lo = c->ctx->lo;
    const int K = c->ctx->data->train.K;
    const StepBatch *b = &c->batch[i];
    const int row = (int)((long)b->global_B * lo->group_rank / lo->ranks_per_model);
    float *out = c->peers + (size_t)i * c->tr[i].m->spec.max_batch * K;
    codistill_peers(out, c->own, c->sum + (size_t)row * K, c->logits[i], b->B, K, c->L);
    return out;
}

/* ---- mode checkpoints ---- */

/* Member l's weights to every rank: from the leader of the group that holds it (rank
 * (l mod G) g of c->comm, whose ranks are the world's first ones). */
static void broadcast_stale(Codistill *c) {
    const Layout *lo = c->ctx->lo;
    ED_CHECK(c->S <= (size_t)1 << 30, "model too large for one broadcast");
    for (int l = 0; l < c->L; l++) {
        int root = (l % lo->n_groups) * lo->ranks_per_model;
        if (lo->world_rank == root)
            memcpy(c->stale + (size_t)l * c->S, c->exchanged + (size_t)(l / lo->n_groups) * c->S,
                   c->S * sizeof(float));
        MPI_CHECK(MPI_Bcast(c->stale + (size_t)l * c->S, (int)c->S, MPI_FLOAT, root, c->comm));
    }
    c->have_stale = 1;
    for (int i = 0; i < c->n_held; i++) c->tr[i].n_extra = 1; /* checkpoints keep `exchanged` */
}

/* The exchange: every member's current weights become the copy its peers run. */
static void exchange_weights(Codistill *c) {
    for (int i = 0; i < c->n_held; i++) {
        const Model *m = c->tr[i].m;
        float *own = c->exchanged + (size_t)i * c->S;
        memcpy(own, m->params, m->tensors.param_floats * sizeof(float));
        memcpy(own + m->tensors.param_floats, m->buffers, m->tensors.buffer_floats * sizeof(float));
    }
    broadcast_stale(c);
}

/* A resumed run between two exchanges: each member's checkpoint has its weights of the last
 * one. */
static void restore_stale(Codistill *c) {
    int missing = 0;
    for (int i = 0; c->ctx->lo->is_leader && i < c->n_held; i++)
        missing |= ckpt_read_floats(c->tr[i].path, "codistill/exchanged",
                                    c->exchanged + (size_t)i * c->S, c->S) != 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &missing, 1, MPI_INT, MPI_MAX, c->comm));
    if (missing)
        ed_fail("co-distilled members (mode checkpoints) resume between two weight exchanges, "
                "but a checkpoint in %s/models lacks /codistill/exchanged: remove "
                "codistill-*.h5 to train them again",
                c->ctx->run_dir);
    broadcast_stale(c);
    progress_say(c->ctx, "co-distillation: the members' weights of the last exchange read from "
                         "their checkpoints\n");
}

/* Before step `step` (optimizer steps done) of a distilling epoch: exchange every `period`
 * steps counted from the first distilling step (or restore the last exchange on resume). */
static void maybe_exchange(Codistill *c, int64_t step, int64_t first) {
    const int period = c->ctx->cfg->distill.codistill.period;
    if ((step - first) % period == 0)
        exchange_weights(c);
    else if (!c->have_stale)
        restore_stale(c);
}

/* peers[i] = the mean over the other members p of p's stale copy run (eval mode) on member i's
 * batch, summed in fixed point in member order. Each copy is loaded once per step. */
static void peers_from_stale(Codistill *c) {
    const Layout *lo = c->ctx->lo;
    const int K = c->ctx->data->train.K, max_batch = c->peer->spec.max_batch;
    Model *peer = c->peer;
    double t0 = MPI_Wtime();
    memset(c->peer_sum, 0, (size_t)c->n_held * max_batch * K * sizeof(int64_t));
    for (int p = 0; p < c->L; p++) {
        const float *copy = c->stale + (size_t)p * c->S;
        memcpy(peer->params, copy, peer->tensors.param_floats * sizeof(float));
        memcpy(peer->buffers, copy + peer->tensors.param_floats,
               peer->tensors.buffer_floats * sizeof(float));
        for (int i = 0; i < c->n_held; i++) {
            const StepBatch *b = &c->batch[i];
            if (held_index(lo, i) == p || b->B == 0) continue;
            const float *logits = model_forward(peer, b->x, b->ids, b->B, 0);
            if (ensemble_accumulate(c->peer_sum + (size_t)i * max_batch * K, NULL, logits, b->B,
                                    K, COMBINE_LOGITS) != 0)
                ed_fail("member %d's exchanged weights give logits outside the fixed-point range: "
                        "it diverged; lower train.lr or distill.codistill.weight", p);
            c->peer_forwards++;
        }
    }
    for (int i = 0; i < c->n_held; i++)
        ensemble_finish(c->peers + (size_t)i * max_batch * K, c->peer_sum + (size_t)i * max_batch * K,
                        (size_t)c->batch[i].B * K, c->L - 1, COMBINE_LOGITS);
    c->peer_seconds += MPI_Wtime() - t0;
}

/* The buffers of mode checkpoints, once the members are open. */
static void checkpoints_alloc(Codistill *c) {
    const Model *m0 = c->tr[0].m;
    const int K = c->ctx->data->train.K;
    c->S = m0->tensors.param_floats + m0->tensors.buffer_floats;
    c->stale = xfloats((size_t)c->L * c->S);
    c->exchanged = xfloats((size_t)c->n_held * c->S);
    for (int i = 0; i < c->n_held; i++)
        c->extra[i] = (CkptDataset){.name = "codistill/exchanged", .ndim = 1,
                                    .dims = {(int64_t)c->S},
                                    .data = c->exchanged + (size_t)i * c->S};
    c->peer = model_create(&m0->spec);
    c->peer_sum = xcalloc((size_t)c->n_held * m0->spec.max_batch * K, sizeof(int64_t));
}

enum { LOCKSTEP_DONE, LOCKSTEP_STOPPED };

/* One epoch of every held member in lock-step, from the members' common step_in_epoch on.
 * Returns LOCKSTEP_STOPPED after checkpointing when a stop came before the last step; sets
 * *stop_at_end when it came at the last. */
static int lockstep_epoch(Codistill *c, int epoch, int *stop_at_end) {
    const RunContext *ctx = c->ctx;
    const int g = ctx->lo->ranks_per_model;
    const int distilling = epoch >= ctx->cfg->distill.codistill.burn_in;
    int steps = 0;
    for (int i = 0; i < c->n_held; i++) steps = trainer_epoch_begin(&c->tr[i], epoch, &c->sums[i]);
    const int first = c->tr[0].st.step_in_epoch;
    const int64_t first_distilling = (int64_t)ctx->cfg->distill.codistill.burn_in * steps;
    for (int step = first; step < steps; step++) {
        const double lr = trainer_lr(&c->tr[0], epoch, step);
        if (c->checkpoints && distilling) maybe_exchange(c, c->tr[0].st.step, first_distilling);
        for (int i = 0; i < c->n_held; i++) {
            c->batch[i] = trainer_batch(&c->tr[i], step);
            c->logits[i] = step_forward(c->tr[i].step, &c->batch[i], g > 1 ? &c->sums[i].times : NULL);
        }
        int64_t stop = exchange_logits(c, distilling && !c->checkpoints);
        if (c->checkpoints && distilling) peers_from_stale(c);
        for (int i = 0; i < c->n_held; i++) {
            EpochSums *e = &c->sums[i];
            StepBatch *b = &c->batch[i];
            if (distilling && b->B > 0)
                b->teacher = c->checkpoints ? c->peers + (size_t)i * c->tr[i].m->spec.max_batch *
                                                             ctx->data->train.K
                                            : peers_mean(c, i);
            int ok = 0;
            e->loss += step_finish(c->tr[i].step, b, c->logits[i], (float)lr, &ok,
                                   g > 1 ? &e->times : NULL);
            e->lr = lr;
            e->correct += ok;
            e->seen += b->B;
            c->tr[i].st.step++;
            c->member_steps++;
        }
        progress_step(ctx, c->tr[0].job->name, epoch + 1, c->tr[0].job->epochs, step, steps);
        progress_poll(ctx);
        if (stop && step + 1 < steps) {
            for (int i = 0; i < c->n_held; i++)
                trainer_save_partial(&c->tr[i], epoch, step + 1, &c->sums[i]);
            codistill_commit(c);
            return LOCKSTEP_STOPPED;
        }
        if (stop) *stop_at_end = 1;
        if (stop) break;
    }
    return LOCKSTEP_DONE;
}

/* Trains the held members to the end (or a stop). Returns JOB_DONE or JOB_STOPPED. */
static int lockstep_train(Codistill *c) {
    const int epochs = c->jobs[0].epochs;
    for (int epoch = c->tr[0].st.epoch; epoch < epochs; epoch++) {
        int stop_at_end = 0;
        if (lockstep_epoch(c, epoch, &stop_at_end) == LOCKSTEP_STOPPED) return JOB_STOPPED;
        int saved = 0;
        for (int i = 0; i < c->n_held; i++)
            saved |= trainer_end_epoch(&c->tr[i], epoch, &c->sums[i], c->test[i], &c->have_test[i],
                                       stop_at_end);
        if (saved) codistill_commit(c);
        /* a stop at the last step of the last epoch lets the members complete instead */
        if (stop_at_end && epoch + 1 < epochs) return JOB_STOPPED;
    }
    for (int i = 0; i < c->n_held; i++)
        trainer_finish(&c->tr[i], c->train_logits, c->test[i], c->have_test[i]);
    codistill_commit(c);
    return JOB_DONE;
}

/* Opens the held members (all at one step after codistill_reconcile). Returns 1 when they are
 * all complete (their logits read), 0 when they train. */
static int open_members(Codistill *c) {
    const RunContext *ctx = c->ctx;
    const Layout *lo = ctx->lo;
    int complete = 0;
    for (int i = 0; i < c->n_held; i++) {
        complete = trainer_open(&c->tr[i], ctx, &c->jobs[held_index(lo, i)], c->train_logits,
                                c->test[i]);
        if (complete) continue;
        next_path(c->tr[i].write_path, sizeof(c->tr[i].write_path), c->tr[i].path);
        if (c->checkpoints) {
            c->tr[i].extra = &c->extra[i];
            c->tr[i].n_extra = 0; /* until the first exchange */
        }
    }
    /* reconciled: all complete or none */
    for (int i = 0; i < c->n_held; i++)
        ED_CHECK(complete == (c->tr[i].m == NULL), "co-distilled members half complete");
    return complete;
}

/* Every member's test logits to rank 0 (test_out[l]). */
static void gather_test(Codistill *c, float **test_out) {
    const Layout *lo = c->ctx->lo;
    const int count = c->ctx->data->test.N * c->ctx->data->test.K;
    for (int l = 0; l < c->L; l++) {
        int group = l % lo->n_groups, from = group * lo->ranks_per_model;
        if (from == 0) {
            if (lo->world_rank == 0) memcpy(test_out[l], c->test[l / lo->n_groups],
                                            (size_t)count * sizeof(float));
        } else if (lo->world_rank == 0) {
            MPI_CHECK(MPI_Recv(test_out[l], count, MPI_FLOAT, from, TAG_CODISTILL_TEST,
                               MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        } else if (lo->world_rank == from) {
            MPI_CHECK(MPI_Send(c->test[l / lo->n_groups], count, MPI_FLOAT, 0, TAG_CODISTILL_TEST,
                               MPI_COMM_WORLD));
        }
    }
}

int codistill_run(const RunContext *ctx, Job *jobs, float **test_out) {
    const Layout *lo = ctx->lo;
    const Dataset *train = &ctx->data->train, *test = &ctx->data->test;
    const int L = ctx->cfg->ensemble.members, K = train->K;
    Codistill c = {.ctx = ctx, .L = L, .jobs = jobs};
    for (int l = 0; l < L; l++) jobs[l].group = l % lo->n_groups;
    c.n_held = lo->group < L ? (L - lo->group + lo->n_groups - 1) / lo->n_groups : 0;
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, c.n_held > 0 ? 0 : MPI_UNDEFINED, lo->world_rank,
                             &c.comm));
    int status = JOB_DONE;
    if (c.n_held > 0) {
        const int n = c.n_held;
        c.tr = xcalloc((size_t)n, sizeof(Trainer));
        c.sums = xcalloc((size_t)n, sizeof(EpochSums));
        c.batch = xcalloc((size_t)n, sizeof(StepBatch));
        c.logits = xcalloc((size_t)n, sizeof(float *));
        c.test = xcalloc((size_t)n, sizeof(float *));
        c.have_test = xcalloc((size_t)n, sizeof(int));
        for (int i = 0; i < n; i++) c.test[i] = xfloats((size_t)test->N * K);
        c.train_logits = xfloats((size_t)train->N * K);
        c.sum_count = (size_t)job_global_batch(ctx) * K + 1;
        c.sum = xcalloc(c.sum_count, sizeof(int64_t));
        c.checkpoints = ctx->cfg->distill.codistill.mode == CODISTILL_CHECKPOINTS;
        c.extra = xcalloc((size_t)n, sizeof(CkptDataset));
        codistill_reconcile(&c);
        if (!open_members(&c)) {
            const Model *m0 = c.tr[0].m;
            const int max_batch = m0->spec.max_batch;
            c.own = xcalloc((size_t)max_batch * K, sizeof(int64_t));
            c.peers = xfloats((size_t)n * max_batch * K);
            if (c.checkpoints) checkpoints_alloc(&c);
            double t0 = MPI_Wtime();
            status = lockstep_train(&c);
            if (c.checkpoints && c.peer_forwards > 0 && c.member_steps > 0) {
                /* a member's step: the wall time less the peers', per member-step */
                double all = MPI_Wtime() - t0, peer = c.peer_seconds / c.peer_forwards,
                       own = (all - c.peer_seconds) / c.member_steps;
                progress_say(ctx,
                             "co-distillation (checkpoints), rank 0: a peer's forward pass "
                             "%.3f ms, %.0f%% of a member's own step (%.3f ms, including the "
                             "rest of the loop); %ld of them took %.1f%% of %.1f s\n",
                             1e3 * peer, 100 * peer / own, 1e3 * own, c.peer_forwards,
                             100 * c.peer_seconds / all, all);
            }
            for (int i = 0; i < n; i++) trainer_close(&c.tr[i]);
        }
    }
    progress_phase_end(ctx);
    layout_wait_all(MPI_COMM_WORLD);
    if (signals_any(MPI_COMM_WORLD)) status = JOB_STOPPED;
    if (status == JOB_DONE) gather_test(&c, test_out);
    for (int i = 0; i < c.n_held; i++) free(c.test[i]);
    free(c.tr);
    free(c.sums);
    free(c.batch);
    free(c.logits);
    free(c.test);
    free(c.have_test);
    free(c.train_logits);
    free(c.sum);
    free(c.own);
    free(c.peers);
    free(c.extra);
    free(c.stale);
    free(c.exchanged);
    free(c.peer_sum);
    model_free(c.peer);
    if (c.comm != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&c.comm));
    return status;
}
