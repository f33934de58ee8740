/* SGD with momentum, Nesterov and weight decay: the update of torch.optim.SGD (dampening 0),
 * over one flat range of the parameter arena. */
#include "ensdistill/optim.h"

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
