/* SGD with momentum, Nesterov and weight decay: the update of torch.optim.SGD (dampening 0),
 * over one flat range of the parameter arena; gradient-norm clipping. */
#include "ensdistill/optim.h"

#include <math.h>

double grad_clip_norm(float *grads, size_t n, double max_norm) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)grads[i] * grads[i];
    const double norm = sqrt(ss), coef = max_norm / (norm + 1e-6);
    if (max_norm > 0.0 && coef < 1.0) {
        const float c = (float)coef;
        for (size_t i = 0; i < n; i++) grads[i] *= c;
    }
    return norm;
}

/* g = grad + wd * p;  buf = momentum * buf + g;  p -= lr * (nesterov ? g + momentum * buf : buf)
 * In the order and precision PyTorch's _single_tensor_sgd uses (float32 throughout). */
void sgd_step(float *params, const float *grads, float *momentum_buf, size_t n, float lr,
              float momentum, float weight_decay, int nesterov) {
    if (momentum == 0.0f) {
        for (size_t i = 0; i < n; i++) {
            float g = grads[i] + weight_decay * params[i];
            params[i] -= lr * g;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] + weight_decay * params[i];
        float buf = momentum * momentum_buf[i] + g;
        momentum_buf[i] = buf;
        params[i] -= lr * (nesterov ? g + momentum * buf : buf);
    }
}
