/* The training step of one model, shared by the training loop (src/pipeline/train.c) and
 * `ensdistill bench`: forward, loss (cross-entropy, or the distillation loss against teacher
 * logits), backward, an optional gradient-sum hook over the flat gradient buffer (the
 * data-parallel MPI_Allreduce: nn knows no MPI), gradient-norm clipping, weight decay and the
 * SGD update. step_create allocates the step's buffers once; step_run allocates nothing. */
#ifndef ENSDISTILL_STEP_H
#define ENSDISTILL_STEP_H

#include "ensdistill/model.h"

#include <stddef.h>
#include <stdint.h>

/* Sums grads[0..n) with the other ranks training the same model, in place (every rank must
 * end with the same sum). ctx is StepOptions.grad_sum_ctx. */
typedef void (*GradSumFn)(float *grads, size_t n, void *ctx);

typedef struct {
    float momentum, weight_decay;
    int nesterov;
    double clip_norm; /* > 0: clip the summed gradient's L2 norm to this (optim_clip_grad_norm) */
    float temperature, alpha; /* distillation loss, used when StepBatch.teacher is given */
    GradSumFn grad_sum;       /* NULL: one rank, nothing to sum */
    void *grad_sum_ctx;
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
    double seconds[STEP_PHASES];
} StepTimes;

typedef struct {
    Model *model;
    StepOptions opt;
    float *dlogits; /* [max_batch, K] */
} Step;

/* Buffers for model m's steps (m must outlive the step). */
Step *step_create(Model *m, const StepOptions *opt);
void step_free(Step *s);

/* One SGD step at learning rate lr on this rank's share of the batch:
 *   logits = forward(x);  loss = sum over the B samples of CE(logits, y), or of
 *   alpha T^2 KL(teacher_T || logits_T) + (1 - alpha) CE(logits, y) with a teacher;
 *   grads = d loss / d params / global_B  (zero when B = 0);  grad_sum(grads) if set;
 *   clip to clip_norm if > 0;  sgd_step(lr, momentum, weight_decay, nesterov)
 * over the model's trainable range. Returns the loss summed over the local samples (0 when
 * B = 0) and adds the correct argmax predictions to *correct (may be NULL). times, when not
 * NULL, accumulates the wall time of each phase. */
double step_run(Step *s, const StepBatch *batch, float lr, int *correct, StepTimes *times);

#endif
