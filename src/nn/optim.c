/* SGD with momentum, Nesterov and weight decay: the update of torch.optim.SGD (dampening 0),
 * over one flat range of the parameter arena; gradient-norm clipping. */
#include "ensdistill/optim.h"
#include "parallel.h"

#include <math.h>

/* The sum of squares over at most MAX_CHUNKS fixed chunks (their bounds depend on n only), each
 * summed in order by one thread, the partial sums added in chunk order: the same bits at any
 * thread count. */
enum { MAX_CHUNKS = 256 };
double optim_clip_grad_norm(float *grads, size_t n, double max_norm) {
    double part[MAX_CHUNKS];
    const size_t chunk = n / MAX_CHUNKS + 1;
    const int chunks = (int)((n + chunk - 1) / chunk);
    ED_PARALLEL_FOR(n >= PAR_MIN_WORK, for (int k = 0; k < chunks; k++) {
        const size_t end = (size_t)(k + 1) * chunk < n ? (size_t)(k + 1) * chunk : n;
        double ss = 0.0;
        for (size_t i = (size_t)k * chunk; i < end; i++) ss += (double)grads[i] * grads[i];
        part[k] = ss;
    });
    double ss = 0.0;
    for (int k = 0; k < chunks; k++) ss += part[k];
    const double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
    if (max_norm > 0.0 && coef < 1.0) {
        const float c = (float)coef;
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            grads[i] *= c;
        });
    }
    return norm;
}

/* g = grad + wd * p;  buf = momentum * buf + g;  p -= lr * (nesterov ? g + momentum * buf : buf)
 * In the order and precision PyTorch's _single_tensor_sgd uses (float32 throughout). */
void sgd_step(float *params, const float *grads, float *momentum_buf, size_t n, float lr,
              float momentum, float weight_decay, int nesterov) {
    if (momentum == 0.0f) {
        ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
            float g = grads[i] + weight_decay * params[i];
            params[i] -= lr * g;
        });
        return;
    }
    ED_PARALLEL_FOR_SIMD(n >= PAR_MIN_WORK, for (size_t i = 0; i < n; i++) {
        float g = grads[i] + weight_decay * params[i];
        float buf = momentum * momentum_buf[i] + g;
        momentum_buf[i] = buf;
        params[i] -= lr * (nesterov ? g + momentum * buf : buf);
    });
}
