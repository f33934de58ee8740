/* The training step of one model, shared by the training loop (src/pipeline/train.c) and
 * `ensdistill bench`: forward, loss (cross-entropy, or the distillation loss against teacher
 * logits), backward, an optional data-parallel gradient sum in buckets that can overlap
 * backward (the hooks are MPI's persistent all-reduces in src/pipeline/gradsum.c: nn knows
 * no MPI),
 * gradient-norm clipping, weight decay and the SGD update. step_create allocates the step's
 * buffers once; step_run allocates nothing. */
#ifndef ENSDISTILL_STEP_H
#define ENSDISTILL_STEP_H

#include "ensdistill/model.h"

#include <stddef.h>
#include <stdint.h>

/* The sum of the flat gradient over the ranks training one model, in buckets: fixed pieces of
 * the trainable range of at most bucket_floats each, cut from its top down, because backward
 * finishes the last layers' gradients first. Bucket 0 is the top piece. The boundaries depend
 * only on the model and bucket_floats, so the sums (and the run) are the same from run to run
 * with the overlap on or off. */
typedef struct {
    /* step_create tells each bucket's fixed place once, in order: grads[0..n) is bucket
     * `bucket` for the life of the step. */
    void (*prepare)(float *grads, size_t n, int bucket, void *ctx);
    /* Begin summing bucket `bucket` in place, without waiting. Every rank must end with the
     * same sum, and start the same buckets in the same order (0, 1, ...). */
    void (*start)(int bucket, void *ctx);
    void (*progress)(void *ctx); /* let started sums advance (between backward's ops); or NULL */
    void (*finish)(void *ctx);   /* wait for every started sum */
    void *ctx;
    size_t bucket_floats; /* 0: one bucket, the whole gradient */
    int overlap;          /* start each bucket when backward has finished it; 0: after backward */
} GradSum;

typedef struct {
    float momentum, weight_decay;
    int nesterov;
    double clip_norm; /* > 0: clip the summed gradient's L2 norm to this (optim_clip_grad_norm) */
    float temperature, alpha; /* distillation loss, used when StepBatch.teacher is given */
    GradSum sum;              /* sum.start NULL: one rank, nothing to sum */
} StepOptions;

/* This rank's share of one global minibatch. */
typedef struct {
    const float *x;          /* [B, C*H*W] */
    const int32_t *labels;   /* [B] */
    const int64_t *ids;      /* [B] sample ids (mvconv with orth noise; else may be NULL) */
    const float *teacher;    /* [B, K] teacher logits of these samples, or NULL: cross-entropy */
    int B;                   /* local samples, 0..max_batch (0: this rank only joins the sum) */
    int global_B;            /* samples over all ranks: the loss is a mean over these */
} StepBatch;

/* The phases step_run times when StepTimes is passed (seconds, accumulated). */
typedef enum {
    STEP_FORWARD,
    STEP_LOSS,
    STEP_BACKWARD,
    STEP_GRAD_SUM,
    STEP_UPDATE, /* clip, weight decay and SGD */
    STEP_PHASES
} StepPhase;

typedef struct {
    double seconds[STEP_PHASES]; /* STEP_GRAD_SUM: starting, advancing and waiting for the sum,
                                    during backward too (that time is not in STEP_BACKWARD) */
} StepTimes;

/* The whole step's seconds: the sum of the phases. */
double step_times_total(const StepTimes *t);

typedef struct {
    Model *model;
    StepOptions opt;
    float *dlogits;     /* [max_batch, K] */
    size_t bucket;      /* floats per bucket (the last, lowest one may be smaller) */
    int n_buckets;
    int next_bucket;    /* in this step: the next bucket to start */
    StepTimes *times;   /* in this step: where the sum's time goes, or NULL */
} Step;

/* Buffers for model m's steps (m must outlive the step). */
Step *step_create(Model *m, const StepOptions *opt);
void step_free(Step *s);

/* One SGD step at learning rate lr on this rank's share of the batch:
 *   logits = forward(x);  loss = sum over the B samples of CE(logits, y), or of
 *   alpha T^2 KL(teacher_T || logits_T) + (1 - alpha) CE(logits, y) with a teacher;
 *   grads = d loss / d params / global_B  (zero when B = 0);  summed over ranks if sum.start;
 *   clip to clip_norm if > 0;  sgd_step(lr, momentum, weight_decay, nesterov)
 * over the model's trainable range. Returns the loss summed over the local samples (0 when
 * B = 0) and adds the correct argmax predictions to *correct (may be NULL). times, when not
 * NULL, accumulates the wall time of each phase. */
double step_run(Step *s, const StepBatch *batch, float lr, int *correct, StepTimes *times);

/* step_run in two halves, for a loss whose target needs the logits of this step (online
 * co-distillation: the peers' logits of the same batch). step_forward runs the forward pass
 * (training mode) on the batch and returns its logits [B, K] (NULL when B = 0), valid until
 * the model's next forward; step_finish, with those logits and batch->teacher set as wanted
 * by then, does the rest of step_run. step_run(s, b, ...) is exactly the two in a row. Other
 * models may step in between: every model keeps its own activations. */
const float *step_forward(Step *s, const StepBatch *batch, StepTimes *times);
double step_finish(Step *s, const StepBatch *batch, const float *logits, float lr, int *correct,
                   StepTimes *times);

#endif
