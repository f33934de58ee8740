/* SGD with momentum, Nesterov and weight decay (PyTorch's torch.optim.SGD, dampening 0), and
 * learning-rate schedules. */
#ifndef ENSDISTILL_OPTIM_H
#define ENSDISTILL_OPTIM_H

#include "ensdistill/nn_kinds.h" /* ScheduleKind */

#include <stddef.h>

/* Over params[0..n):  g = grad + wd * p;  buf = momentum * buf + g;
 *                     p -= lr * (nesterov ? g + momentum * buf : buf).
 * A zeroed buf makes the first step PyTorch's (buf = g). */
void sgd_step(float *params, const float *grads, float *momentum_buf, size_t n, float lr,
              float momentum, float weight_decay, int nesterov);

/* PyTorch's clip_grad_norm_ over grads[0..n): with norm = ||grads||_2 (summed in double), scales
 * grads by max_norm / (norm + 1e-6) when that is below 1. max_norm <= 0: no clipping. Returns
 * the norm before clipping. */
double optim_clip_grad_norm(float *grads, size_t n, double max_norm);

/* ScheduleKind: constant, multistep or cosine (nn_kinds.h). */

#define SCHEDULE_MAX_MILESTONES 16
typedef struct {
    ScheduleKind kind;
    double base_lr;
    int epochs;           /* total epochs (cosine decays to min_lr at the end) */
    double warmup_epochs; /* linear warm-up over W = round(warmup_epochs * steps_per_epoch)
                             steps: lr = base_lr * (t + 1) / W at global step t < W; 0 = none */
    int milestones[SCHEDULE_MAX_MILESTONES]; /* multistep: epochs at which lr *= gamma */
    int n_milestones;
    double gamma;
    double min_lr; /* cosine floor */
} Schedule;

/* The learning rate for step `step` (0-based) of epoch `epoch` (0-based), updated per step.
 * With t = epoch * steps_per_epoch + step and T = epochs * steps_per_epoch:
 *   constant   base_lr
 *   multistep  base_lr * gamma^(number of milestones <= epoch)   (PyTorch's MultiStepLR)
 *   cosine     min_lr + (base_lr - min_lr) * (1 + cos(pi * t / T)) / 2, min_lr for t >= T
 * The warm-up replaces the first W steps; the main schedule keeps its own clock (t), so after
 * the warm-up it continues where it would have been without one. */
double schedule_lr(const Schedule *s, int epoch, int step, int steps_per_epoch);

#endif
