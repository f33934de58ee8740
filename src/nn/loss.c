/* Losses on logits[B,K]: cross-entropy and knowledge distillation (Hinton et al.'s
 * alpha * T^2 * KL + (1 - alpha) * CE), computed in double through log-sum-exp, with exact
 * gradients. */
#include "ensdistill/loss.h"
#include "ensdistill/error.h"

#include <math.h>
#include <stddef.h>

int nn_argmax(const float *x, int K) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (x[k] > x[best]) best = k;
    return best;
}

/* log sum_k exp(x[k] / T), shifted by the maximum */
static double log_sum_exp(const float *x, int K, double T) {
    double m = x[0];
    for (int k = 1; k < K; k++)
        if (x[k] > m) m = x[k];
    double s = 0.0;
    for (int k = 0; k < K; k++)
        s += exp((x[k] - m) / T);
    return m / T + log(s);
}

/* probs[k] = exp(logits[k] / T - lse) */
void nn_softmax(float *probs, const float *logits, int K, float temperature) {
    const double lse = log_sum_exp(logits, K, temperature);
    for (int k = 0; k < K; k++)
        probs[k] = (float)exp(logits[k] / (double)temperature - lse);
}

static void check_label(int32_t y, int K, int b) {
    ED_CHECK(y >= 0 && y < K, "label %d of sample %d is outside [0, %d)", (int)y, b, K);
}

/* loss = sum_b lse(s_b) - s_b[y_b];  dlogits = scale * (softmax(s_b) - onehot(y_b)) */
double loss_cross_entropy(float *dlogits, const float *logits, const int32_t *labels, int B, int K,
                          float scale, int *correct) {
    double total = 0.0;
    int hits = 0;
    for (int b = 0; b < B; b++) {
        const float *s = logits + (size_t)b * K;
        const int32_t y = labels[b];
        check_label(y, K, b);
        const double lse = log_sum_exp(s, K, 1.0);
        total += lse - s[y];
        hits += nn_argmax(s, K) == y;
        if (dlogits) {
            float *g = dlogits + (size_t)b * K;
            for (int k = 0; k < K; k++)
                g[k] = (float)(scale * (exp(s[k] - lse) - (k == y ? 1.0 : 0.0)));
        }
    }
    if (correct) *correct += hits;
    return total;
}

/* With p = softmax(t/T), q = softmax(s/T):
 * loss = alpha T^2 sum_k p_k (log p_k - log q_k) + (1 - alpha) (lse(s) - s_y)
 * dloss/ds = alpha T (q - p) + (1 - alpha) (softmax(s) - onehot(y)).
 * labels may be NULL only when alpha == 1 (no hard-label term, nothing counted). */
double loss_distill(float *dlogits, const float *logits, const float *teacher,
                    const int32_t *labels, int B, int K, float temperature, float alpha,
                    float scale, int *correct) {
    ED_CHECK(temperature > 0.0f, "distillation temperature %g is not positive", temperature);
    ED_CHECK(labels || alpha == 1.0f, "loss_distill: labels are NULL but alpha = %g < 1", alpha);
    const double T = temperature, a = alpha;
    double total = 0.0;
    int hits = 0;
    for (int b = 0; b < B; b++) {
        const float *s = logits + (size_t)b * K, *t = teacher + (size_t)b * K;
        const double lse_s = log_sum_exp(s, K, T), lse_t = log_sum_exp(t, K, T);
        double kl = 0.0;
        for (int k = 0; k < K; k++) {
            const double log_p = t[k] / T - lse_t, log_q = s[k] / T - lse_s;
            const double p = exp(log_p);
            if (p > 0.0) kl += p * (log_p - log_q);
        }
        total += a * T * T * kl;
        double lse_1 = 0.0;
        int32_t y = -1;
        if (labels) {
            y = labels[b];
            check_label(y, K, b);
            hits += nn_argmax(s, K) == y;
            if (a != 1.0) {
                lse_1 = log_sum_exp(s, K, 1.0);
                total += (1.0 - a) * (lse_1 - s[y]);
            }
        }
        if (dlogits) {
            float *g = dlogits + (size_t)b * K;
            for (int k = 0; k < K; k++) {
                const double p = exp(t[k] / T - lse_t), q = exp(s[k] / T - lse_s);
                double d = a * T * (q - p);
                if (labels && a != 1.0) d += (1.0 - a) * (exp(s[k] - lse_1) - (k == y ? 1.0 : 0.0));
                g[k] = (float)(scale * d);
            }
        }
    }
    if (correct) *correct += hits;
    return total;
}
