/* The training step (step.h): forward, loss, backward, the caller's gradient sum, clipping and
 * the SGD update, over buffers allocated once by step_create. */
#include "ensdistill/step.h"
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/loss.h"
#include "ensdistill/optim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

Step *step_create(Model *m, const StepOptions *opt) {
    Step *s = xcalloc(1, sizeof(Step));
    s->model = m;
    s->opt = *opt;
    s->dlogits = xfloats((size_t)m->spec.max_batch * m->spec.num_classes);
    return s;
}

void step_free(Step *s) {
    if (!s) return;
    free(s->dlogits);
    free(s);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Adds the time since *t to phase p and restarts the clock (no-op without times). */
static void lap(StepTimes *times, StepPhase p, double *t) {
    if (!times) return;
    double now = now_seconds();
    times->seconds[p] += now - *t;
    *t = now;
}

double step_run(Step *s, const StepBatch *batch, float lr, int *correct, StepTimes *times) {
    Model *m = s->model;
    const StepOptions *o = &s->opt;
    const int B = batch->B, K = m->spec.num_classes;
    ED_CHECK(B >= 0 && B <= m->spec.max_batch && batch->global_B >= 1,
             "step: local batch %d (max %d), global batch %d", B, m->spec.max_batch,
             batch->global_B);
    const size_t tb = m->trainable_begin, tn = m->trainable_end - m->trainable_begin;
    double t = times ? now_seconds() : 0.0, loss = 0.0;
    if (B > 0) {
        const float *logits = model_forward(m, batch->x, batch->ids, B, 1);
        lap(times, STEP_FORWARD, &t);
        const float scale = 1.0f / batch->global_B;
        int ok = 0;
        if (batch->teacher)
            loss = loss_distill(s->dlogits, logits, batch->teacher, batch->labels, B, K,
                                o->temperature, o->alpha, scale, &ok);
        else
            loss = loss_cross_entropy(s->dlogits, logits, batch->labels, B, K, scale, &ok);
        if (correct) *correct += ok;
        lap(times, STEP_LOSS, &t);
        model_backward(m, s->dlogits);
        lap(times, STEP_BACKWARD, &t);
    } else {
        memset(m->grads, 0, m->tensors.param_floats * sizeof(float));
    }
    /* The data-parallel sum: each rank's gradient is already scaled by 1 / global batch. */
    if (o->grad_sum) {
        o->grad_sum(m->grads + tb, tn, o->grad_sum_ctx);
        lap(times, STEP_GRAD_SUM, &t);
    }
    if (o->clip_norm > 0) optim_clip_grad_norm(m->grads + tb, tn, o->clip_norm);
    sgd_step(m->params + tb, m->grads + tb, m->momentum + tb, tn, lr, o->momentum,
             o->weight_decay, o->nesterov);
    lap(times, STEP_UPDATE, &t);
    return loss;
}
