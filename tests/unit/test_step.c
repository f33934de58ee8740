/* The training step's bucketed, overlapped gradient sum, without MPI: model_backward_notify's
 * promise (the gradients it calls final are final: bitwise equal to the finished backward's)
 * for every architecture, and step_run's use of it, through stand-in sum hooks that check
 * that the buckets tile the trainable range from the top down, are started in order and only
 * once final, and that the step's result does not depend on the overlap or the bucket size. */
#include "ensdistill/model.h"
#include "ensdistill/rng.h"
#include "ensdistill/step.h"

#include "check.h"
#include "tiny_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill_normal(float *x, size_t n, uint64_t stream) {
    Rng r = rng_make(99, stream);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
}

typedef struct {
    const Model *m;
    const float *final; /* the finished backward's gradients (param arena layout) */
    size_t last_from;
    int calls, early; /* early: calls that declared something final before the end */
    int wrong;        /* floats declared final that later changed */
} ReadyCheck;

static void check_ready(size_t from, void *ctx) {
    ReadyCheck *c = ctx;
    const Model *m = c->m;
    EXPECT(from >= m->trainable_begin && from <= m->trainable_end && from <= c->last_from,
           "%s: ready from %zu outside [%zu, %zu] or above the last call's %zu", m->spec.arch,
           from, m->trainable_begin, m->trainable_end, c->last_from);
    c->last_from = from;
    c->calls++;
    if (from > m->trainable_begin && from < m->trainable_end) c->early++;
    for (size_t i = from; i < m->trainable_end; i++)
        if (memcmp(&m->grads[i], &c->final[i], sizeof(float)) != 0) c->wrong++;
}

/* Gradients model_backward_notify calls final are the finished backward's, bit for bit. */
static void check_backward_notify(const ModelSpec *s, int B) {
    Model *m = model_create(s);
    model_init(m, 5, rng_stream(RNG_PURPOSE_INIT, 0, 0, 0));
    const size_t nin = (size_t)B * s->C * s->H * s->W, K = (size_t)s->num_classes;
    float *x = malloc(nin * sizeof(float)), *r = malloc(B * K * sizeof(float));
    float *final = malloc(m->tensors.param_floats * sizeof(float));
    int64_t ids[16];
    for (int b = 0; b < B; b++) ids[b] = b;
    fill_normal(x, nin, 1);
    fill_normal(r, B * K, 2);
    model_forward(m, x, ids, B, 1);
    model_backward(m, r);
    memcpy(final, m->grads, m->tensors.param_floats * sizeof(float));
    model_init(m, 5, rng_stream(RNG_PURPOSE_INIT, 0, 0, 0)); /* BN running stats as before */
    model_forward(m, x, ids, B, 1);
    ReadyCheck c = {.m = m, .final = final, .last_from = m->trainable_end};
    model_backward_notify(m, r, check_ready, &c);
    EXPECT(c.wrong == 0, "%s: %d gradient floats were called final before they were",
           s->arch, c.wrong);
    EXPECT(memcmp(m->grads, final, m->tensors.param_floats * sizeof(float)) == 0,
           "%s: backward with the hook differs from backward without it", s->arch);
    /* random features: only the head trains, and it is final only at the end; mvconv is one op */
    EXPECT(c.calls > 0 && (c.early > 0 || s->random_features || c.calls == 1),
           "%s: nothing final before the end (%d calls)", s->arch, c.calls);
    report("backward_notify %-12s%s%s: %d calls, %d with part of the gradient final early\n",
           s->arch, s->sum_of > 1 ? " sum_of" : "", s->random_features ? " rf" : "", c.calls,
           c.early);
    free(x);
    free(r);
    free(final);
    model_free(m);
}

/* Stand-in sum hooks: record the buckets, check each is final when started, add a bucket's
 * gradient to itself (an identical second rank). */
#define MAX_FAKE (1 << 20)
typedef struct {
    float *where[MAX_FAKE];
    size_t n[MAX_FAKE];
    int prepared, started, starts_in_backward, finished;
    const float *final; /* when set: the unsummed gradients a started bucket must hold */
    const Model *m;
    int not_final;
} FakeSum;

static void fake_prepare(float *g, size_t n, int bucket, void *ctx) {
    FakeSum *f = ctx;
    EXPECT(bucket == f->prepared && bucket < MAX_FAKE, "prepare: bucket %d out of order", bucket);
    if (bucket >= MAX_FAKE) return;
    f->where[bucket] = g;
    f->n[bucket] = n;
    f->prepared++;
}

static void fake_start(int bucket, void *ctx) {
    FakeSum *f = ctx;
    EXPECT(bucket == f->started && bucket < f->prepared, "start: bucket %d out of order", bucket);
    if (f->final) {
        size_t off = (size_t)(f->where[bucket] - f->m->grads);
        if (memcmp(f->where[bucket], f->final + off, f->n[bucket] * sizeof(float)) != 0)
            f->not_final++;
    }
    for (size_t i = 0; i < f->n[bucket]; i++) f->where[bucket][i] += f->where[bucket][i];
    f->started++;
}

/* step_run calls progress only from inside backward, after something has started. */
static void fake_progress(void *ctx) {
    FakeSum *f = ctx;
    f->starts_in_backward = f->started;
}

static void fake_finish(void *ctx) {
    FakeSum *f = ctx;
    EXPECT(f->started == f->prepared, "finish: %d of %d buckets started", f->started,
           f->prepared);
    f->finished++;
    f->started = 0;
}

/* One step of a fresh model: its parameters after the step and the gradients it left (summed,
 * with a stand-in sum), n floats each. */
typedef struct {
    float *params, *grads;
    size_t n;
} StepResult;

/* f NULL: no sum; else the stand-in sum with bucket_floats per bucket, and final (when not
 * NULL) the unsummed gradients a started bucket must hold. */
static StepResult step_once(const ModelSpec *s, int B, float lr, FakeSum *f,
                            size_t bucket_floats, int overlap, const float *final) {
    Model *m = model_create(s);
    model_init(m, 5, rng_stream(RNG_PURPOSE_INIT, 0, 0, 0));
    const size_t nin = (size_t)B * s->C * s->H * s->W;
    float *x = malloc(nin * sizeof(float));
    int32_t labels[16];
    int64_t ids[16];
    fill_normal(x, nin, 3);
    for (int b = 0; b < B; b++) labels[b] = b % s->num_classes, ids[b] = b;
    StepOptions o = {.momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1};
    if (f) {
        memset(f, 0, sizeof(*f));
        f->m = m;
        f->final = final;
        o.sum = (GradSum){.prepare = fake_prepare, .start = fake_start, .progress = fake_progress,
                          .finish = fake_finish, .ctx = f, .bucket_floats = bucket_floats,
                          .overlap = overlap};
    }
    Step *st = step_create(m, &o);
    if (f) { /* the buckets tile the trainable range from the top down */
        size_t top = m->trainable_end;
        for (int k = 0; k < f->prepared; k++) {
            EXPECT(f->where[k] + f->n[k] == m->grads + top && f->n[k] > 0 &&
                       (bucket_floats == 0 || f->n[k] <= bucket_floats),
                   "%s: bucket %d is not the next %zu floats below %zu", s->arch, k,
                   bucket_floats, top);
            top -= f->n[k];
        }
        EXPECT(top == m->trainable_begin,
               "%s: buckets end at %zu, not at the trainable range's start %zu", s->arch, top,
               m->trainable_begin);
    }
    StepBatch sb = {.x = x, .labels = labels, .ids = ids, .B = B, .global_B = 2 * B};
    step_run(st, &sb, lr, NULL, NULL);
    StepResult r = {.n = m->tensors.param_floats};
    r.params = malloc(r.n * sizeof(float));
    r.grads = malloc(r.n * sizeof(float));
    memcpy(r.params, m->params, r.n * sizeof(float));
    memcpy(r.grads, m->grads, r.n * sizeof(float));
    step_free(st);
    free(x);
    model_free(m);
    return r;
}

static void result_free(StepResult *r) {
    free(r->params);
    free(r->grads);
}

static void check_step(const ModelSpec *s, int B) {
    static FakeSum f; /* big: static */
    StepResult plain = step_once(s, B, 0.1f, NULL, 0, 0, NULL); /* the unsummed gradients */
    /* one bucket after backward: the reference */
    StepResult ref = step_once(s, B, 0.1f, &f, 0, 0, plain.grads);
    EXPECT(f.prepared == 1 && f.finished == 1 && f.not_final == 0 && f.starts_in_backward == 0,
           "%s: one bucket: %d prepared, %d finished, %d not final, %d started in backward",
           s->arch, f.prepared, f.finished, f.not_final, f.starts_in_backward);
    const size_t sizes[] = {1, 7, 100, 1000};
    int overlapped = 0, buckets = 0;
    for (int k = 0; k < 4; k++)
        for (int overlap = 0; overlap <= 1; overlap++) {
            StepResult r = step_once(s, B, 0.1f, &f, sizes[k], overlap, plain.grads);
            EXPECT(f.not_final == 0, "%s: bucket %zu overlap %d: %d buckets started early",
                   s->arch, sizes[k], overlap, f.not_final);
            EXPECT(overlap || f.starts_in_backward == 0,
                   "%s: bucket %zu: started during backward with the overlap off", s->arch,
                   sizes[k]);
            EXPECT(memcmp(r.params, ref.params, r.n * sizeof(float)) == 0,
                   "%s: bucket %zu overlap %d: the step differs from one bucket's", s->arch,
                   sizes[k], overlap);
            if (overlap && f.starts_in_backward > 0) overlapped++;
            if (k == 3) buckets = f.prepared;
            result_free(&r);
        }
    EXPECT(overlapped > 0, "%s: no bucket ever started during backward", s->arch);
    /* the stand-in sum doubled the gradient: the step differs from the unsummed one */
    EXPECT(memcmp(plain.params, ref.params, ref.n * sizeof(float)) != 0,
           "%s: the stand-in sum changed nothing", s->arch);
    report("step %-12s%s: buckets of 1..1000 floats (%d of 1000), overlapped or not: the same "
           "step as one bucket after backward\n",
           s->arch, s->sum_of > 1 ? " sum_of" : "", buckets);
    result_free(&plain);
    result_free(&ref);
}

int main(void) {
    ModelSpec s;
    const char *archs[] = {"mlp", "cnn", "resnet-8", "resnet-8-proj", "wrn-10-2"};
    for (int a = 0; a < 5; a++) {
        int image = strncmp(archs[a], "resnet", 6) == 0 || strncmp(archs[a], "wrn", 3) == 0;
        s = image ? tiny_spec(archs[a], 3, 8, 8, 4, 6) : tiny_spec(archs[a], 1, 8, 8, 5, 6);
        check_backward_notify(&s, 6);
        check_step(&s, 6);
    }
    s = tiny_spec("cnn", 1, 8, 8, 5, 4);
    s.sum_of = 2;
    check_backward_notify(&s, 4);
    check_step(&s, 4);
    s = tiny_spec("resnet-8", 3, 8, 8, 4, 6);
    s.random_features = 1;
    check_backward_notify(&s, 6);
    s = tiny_spec("mvconv", 5, 1, 7, 3, 4);
    check_backward_notify(&s, 4);
    check_step(&s, 4);
    return failures != 0;
}
