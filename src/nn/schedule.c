/* Learning-rate schedules (constant, multistep, cosine), each with an optional linear warm-up,
 * evaluated per optimizer step. */
#include "ensdistill/optim.h"

#include <math.h>

#define PI 3.14159265358979323846

/* Learning rate of the main schedule at step t of T = epochs * steps_per_epoch. */
static double main_lr(const Schedule *s, int epoch, long t, long T) {
    switch (s->kind) {
    case SCHEDULE_CONSTANT:
        return s->base_lr;
    case SCHEDULE_MULTISTEP: { /* lr = base * gamma^(number of milestones <= epoch) */
        double lr = s->base_lr;
        for (int i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i]) lr *= s->gamma;
        return lr;
    }
    case SCHEDULE_COSINE: /* lr = min + (base - min) * (1 + cos(pi * t / T)) / 2 */
        if (T <= 0 || t >= T) return s->min_lr;
        return s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(PI * (double)t / T));
    }
    return s->base_lr;
}

double schedule_lr(const Schedule *s, int epoch, int step, int steps_per_epoch) {
    long t = (long)epoch * steps_per_epoch + step;
    long T = (long)s->epochs * steps_per_epoch;
    long warm = lround(s->warmup_epochs * steps_per_epoch);
    /* warm-up: lr = base * (t + 1) / warm for the first warm steps */
    if (warm > 0 && t < warm) return s->base_lr * (double)(t + 1) / (double)warm;
    return main_lr(s, epoch, t, T);
}
