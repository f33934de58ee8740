/* Losses on logits[B,K], with exact gradients. Each returns the SUM over the batch of the
 * per-sample loss (callers divide by the global batch), counts correct argmax predictions into
 * *correct when non-NULL, and writes dlogits = scale * d(sum loss)/d logits when dlogits is
 * non-NULL (scale = 1 / global batch size for a mean loss). */
#ifndef ENSDISTILL_LOSS_H
#define ENSDISTILL_LOSS_H

#include <stdint.h>

/* -log softmax(logits)[y] */
double loss_cross_entropy(float *dlogits, const float *logits, const int32_t *labels, int B, int K,
                          float scale, int *correct);

/* alpha * T^2 * KL(softmax(teacher/T) || softmax(logits/T)) + (1 - alpha) * CE(logits, y)
 * dlogits = scale * (alpha * T * (softmax(logits/T) - softmax(teacher/T))
 *                    + (1 - alpha) * (softmax(logits) - onehot(y))).
 * labels may be NULL only when alpha == 1 (then nothing is counted into *correct). */
double loss_distill(float *dlogits, const float *logits, const float *teacher,
                    const int32_t *labels, int B, int K, float temperature, float alpha,
                    float scale, int *correct);

/* Index of the largest of x[0..K). */
int nn_argmax(const float *x, int K);
/* probs[K] = softmax(logits[K] / T), computed stably. */
void nn_softmax(float *probs, const float *logits, int K, float temperature);

#endif
