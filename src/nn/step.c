/* The training step (step.h): forward, loss, backward, the caller's gradient sum in buckets
 * (started as backward finishes them when the overlap is on), clipping and the SGD update,
 * over buffers allocated once by step_create. */
#include "ensdistill/step.h"
#include "ensdistill/alloc.h"
#include "ensdistill/clock.h"
#include "ensdistill/error.h"
#include "ensdistill/loss.h"
#include "ensdistill/optim.h"

#include <stdlib.h>
#include <string.h>

/* An MPI count is an int: no bucket is larger than this. */
#define MAX_BUCKET_FLOATS ((size_t)1 << 30)

static size_t bucket_size(size_t n, size_t bucket_floats) {
    size_t b = bucket_floats == 0 || bucket_floats > n ? n : bucket_floats;
    if (b > MAX_BUCKET_FLOATS) b = MAX_BUCKET_FLOATS;
    return b ? b : 1;
}

/* Bucket k covers [max(tb, te - (k+1) b), te - k b) of the parameter arena. */
static size_t bucket_low(const Step *s, int k, size_t *hi) {
    const size_t tb = s->model->trainable_begin;
    *hi = s->model->trainable_end - (size_t)k * s->bucket;
    return *hi - tb > s->bucket ? *hi - s->bucket : tb;
}

Step *step_create(Model *m, const StepOptions *opt) {
    Step *s = xcalloc(1, sizeof(Step));
    s->model = m;
    s->opt = *opt;
    s->dlogits = xfloats((size_t)m->spec.max_batch * m->spec.num_classes);
    const size_t n = m->trainable_end - m->trainable_begin;
    s->bucket = bucket_size(n, opt->sum.bucket_floats);
    s->n_buckets = n == 0 ? 0 : (int)((n + s->bucket - 1) / s->bucket);
    ED_CHECK(!opt->sum.start || (opt->sum.prepare && opt->sum.finish),
             "step: a gradient sum needs prepare, start and finish");
    if (opt->sum.start)
        for (int k = 0; k < s->n_buckets; k++) {
            size_t hi, lo = bucket_low(s, k, &hi);
            opt->sum.prepare(m->grads + lo, hi - lo, k, opt->sum.ctx);
        }
    return s;
}

void step_free(Step *s) {
    if (!s) return;
    free(s->dlogits);
    free(s);
}

double step_times_total(const StepTimes *t) {
    double total = 0.0;
    for (int p = 0; p < STEP_PHASES; p++) total += t->seconds[p];
    return total;
}

/* Adds the time since *t to phase p and restarts the clock (no-op without times). */
static void lap(StepTimes *times, StepPhase p, double *t) {
    if (!times) return;
    double now = clock_now_seconds();
    times->seconds[p] += now - *t;
    *t = now;
}

/* Starts, in order, the buckets whose every gradient lies at or above offset `from` (into
 * the parameter arena). */
static void start_buckets(Step *s, size_t from) {
    while (s->next_bucket < s->n_buckets) {
        size_t hi;
        if (bucket_low(s, s->next_bucket, &hi) < from) return;
        s->opt.sum.start(s->next_bucket, s->opt.sum.ctx);
        s->next_bucket++;
    }
}

/* model_backward_notify's hook: start what backward has finished, let the rest advance. The
 * time spent here is the sum's, not backward's. */
static void on_grads_ready(size_t from, void *ctx) {
    Step *s = ctx;
    double t0 = s->times ? clock_now_seconds() : 0.0;
    start_buckets(s, from);
    if (s->next_bucket > 0 && s->opt.sum.progress) s->opt.sum.progress(s->opt.sum.ctx);
    if (s->times) {
        double spent = clock_now_seconds() - t0;
        s->times->seconds[STEP_GRAD_SUM] += spent;
        s->times->seconds[STEP_BACKWARD] -= spent;
    }
}

const float *step_forward(Step *s, const StepBatch *batch, StepTimes *times) {
    Model *m = s->model;
    ED_CHECK(batch->B >= 0 && batch->B <= m->spec.max_batch && batch->global_B >= 1,
             "step: local batch %d (max %d), global batch %d", batch->B, m->spec.max_batch,
             batch->global_B);
    if (batch->B == 0) return NULL;
    double t = times ? clock_now_seconds() : 0.0;
    const float *logits = model_forward(m, batch->x, batch->ids, batch->B, 1);
    lap(times, STEP_FORWARD, &t);
    return logits;
}

double step_finish(Step *s, const StepBatch *batch, const float *logits, float lr, int *correct,
                   StepTimes *times) {
    Model *m = s->model;
    const StepOptions *o = &s->opt;
    const int B = batch->B, K = m->spec.num_classes;
    const size_t tb = m->trainable_begin, tn = m->trainable_end - m->trainable_begin;
    double t = times ? clock_now_seconds() : 0.0, loss = 0.0;
    const int summing = o->sum.start != NULL;
    s->next_bucket = 0;
    s->times = times;
    if (B > 0) {
        const float scale = 1.0f / batch->global_B;
        int ok = 0;
        if (batch->teacher)
            loss = loss_distill(s->dlogits, logits, batch->teacher, batch->labels, B, K,
                                o->temperature, o->alpha, scale, &ok);
        else
            loss = loss_cross_entropy(s->dlogits, logits, batch->labels, B, K, scale, &ok);
        if (correct) *correct += ok;
        lap(times, STEP_LOSS, &t);
        if (summing && o->sum.overlap)
            model_backward_notify(m, s->dlogits, on_grads_ready, s);
        else
            model_backward(m, s->dlogits);
        lap(times, STEP_BACKWARD, &t);
    } else {
        memset(m->grads, 0, m->tensors.param_floats * sizeof(float));
    }
    /* The data-parallel sum: each rank's gradient is already scaled by 1 / global batch.
     * Whatever backward has not started yet starts now, in the same bucket order. */
    if (summing) {
        start_buckets(s, m->trainable_begin);
        o->sum.finish(o->sum.ctx);
        lap(times, STEP_GRAD_SUM, &t);
    }
    s->times = NULL;
    if (o->clip_norm > 0) optim_clip_grad_norm(m->grads + tb, tn, o->clip_norm);
    sgd_step(m->params + tb, m->grads + tb, m->momentum + tb, tn, lr, o->momentum,
             o->weight_decay, o->nesterov);
    lap(times, STEP_UPDATE, &t);
    return loss;
}

double step_run(Step *s, const StepBatch *batch, float lr, int *correct, StepTimes *times) {
    const float *logits = step_forward(s, batch, times);
    return step_finish(s, batch, logits, lr, correct, times);
}
