/* Architectures by name: the one parser of their names (model_arch_parse) and the small nets
 * (mlp, cnn, mvconv). Each builder documents the exact PyTorch module it mirrors, so that
 * state_dict names and shapes agree with analysis/load_torch.py. The CIFAR ResNet and
 * WideResNet are in arch_resnet.c. */
#include "nn_internal.h"

#include "ensdistill/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch's default for nn.Linear and nn.Conv2d (kaiming_uniform_(a=sqrt(5)) for the weight,
 * and the bias): U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static TensorInit torch_default(int fan_in) {
    return nn_init_uniform(1.0f / sqrtf((float)fan_in));
}

/* torch module (hidden H = spec.hidden, default 256):
 *   class MLP(nn.Module):
 *       def __init__(self, in_features, H, K):
 *           self.fc1 = nn.Linear(in_features, H); self.fc2 = nn.Linear(H, H)
 *           self.fc3 = nn.Linear(H, K)
 *       def forward(self, x):
 *           x = x.flatten(1)
 *           return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))
 * state_dict: fc1.weight [H, C*H*W], fc1.bias [H], fc2.weight [H, H], fc2.bias, fc3.weight
 * [K, H], fc3.bias [K]. Init: PyTorch's default. */
int arch_mlp(Builder *b, int in, const ModelSpec *s) {
    int hidden = s->hidden > 0 ? s->hidden : 256;
    int x = builder_flatten(b, in);
    int IN = b->values[x].C;
    x = builder_relu(b, builder_linear(b, "fc1", x, hidden, torch_default(IN), torch_default(IN)));
    x = builder_relu(
        b, builder_linear(b, "fc2", x, hidden, torch_default(hidden), torch_default(hidden)));
    return builder_linear(b, "fc3", x, s->num_classes, torch_default(hidden),
                          torch_default(hidden));
}

/* torch module (hidden H = spec.hidden, default 128; input [C, Hin, Win]):
 *   class CNN(nn.Module):
 *       def __init__(self, C, Hin, Win, H, K):
 *           self.conv1 = nn.Conv2d(C, 32, 5, padding=2)
 *           self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
 *           self.fc1 = nn.Linear(64 * (Hin // 4) * (Win // 4), H)
 *           self.fc2 = nn.Linear(H, K)
 *       def forward(self, x):
 *           x = F.max_pool2d(F.relu(self.conv1(x)), 2)
 *           x = F.max_pool2d(F.relu(self.conv2(x)), 2)
 *           return self.fc2(F.relu(self.fc1(x.flatten(1))))
 * state_dict: conv1.weight [32, C, 5, 5], conv1.bias [32], conv2.weight [64, 32, 5, 5],
 * conv2.bias [64], fc1.weight [H, 64*(Hin//4)*(Win//4)], fc1.bias [H], fc2.weight [K, H],
 * fc2.bias [K]. Init: PyTorch's default. */
int arch_cnn(Builder *b, int in, const ModelSpec *s) {
    int hidden = s->hidden > 0 ? s->hidden : 128;
    if (s->H < 4 || s->W < 4)
        ed_fail("model cnn: input %dx%dx%d is smaller than 4x4", s->C, s->H, s->W);
    int C = b->values[in].C;
    int x =
        builder_conv(b, "conv1", in, 32, 5, 1, 2, 1, torch_default(C * 25), torch_default(C * 25));
    x = builder_maxpool(b, builder_relu(b, x), 2, 2);
    x = builder_conv(b, "conv2", x, 64, 5, 1, 2, 1, torch_default(32 * 25), torch_default(32 * 25));
    x = builder_maxpool(b, builder_relu(b, x), 2, 2);
    x = builder_flatten(b, x);
    int IN = b->values[x].C;
    x = builder_relu(b, builder_linear(b, "fc1", x, hidden, torch_default(IN), torch_default(IN)));
    return builder_linear(b, "fc2", x, s->num_classes, torch_default(hidden),
                          torch_default(hidden));
}

/* The paper's two-layer patch network. torch module (input [B, P, D]):
 *   class MVConv(nn.Module):
 *       def __init__(self, P, D, K, M, n_noise):
 *           self.weight = nn.Parameter(torch.empty(K * M, D))        # class i: rows i*M..
 *           if n_noise > 0: self.noise_weight = nn.Parameter(torch.empty(K * M, n_noise))
 *       def forward(self, x):                                        # dense part
 *           return srelu(x @ self.weight.T).view(B, P, K, M).sum((1, 3))
 * (plus sigma * noise_weight[row, s*P + p] on patch p of sample s with orth noise; see
 * layers.h). state_dict: weight [K*M, D], noise_weight [K*M, mv_noise_coords].
 * Init: N(0, init_std^2) for both (model.h gives the exact counter positions). */
int arch_mvconv(Builder *b, int in, const ModelSpec *s) {
    if (s->H != 1)
        ed_fail("model mvconv: input must be P x 1 x D (patches x 1 x dimension), got %dx%dx%d",
                s->C, s->H, s->W);
    if (s->mv_filters < 1)
        ed_fail("model mvconv: mv_filters (filters per class) must be >= 1, got %d",
                s->mv_filters);
    if (!(s->srelu_q >= 1.0f) || !(s->srelu_rho > 0.0f))
        ed_fail("model mvconv: smoothed ReLU needs q >= 1 and rho > 0 (got q %g, rho %g)",
                (double)s->srelu_q, (double)s->srelu_rho);
    if (!(s->init_std > 0.0f))
        ed_fail("model mvconv: init_std must be > 0 (got %g)", (double)s->init_std);
    if (s->mv_noise_coords < 0)
        ed_fail("model mvconv: mv_noise_coords must be >= 0 (got %lld)",
                (long long)s->mv_noise_coords);
    if ((int64_t)s->num_classes * s->mv_filters >= NN_MAX_NOISE_ROWS ||
        s->mv_noise_coords >= NN_MAX_NOISE_COORDS)
        ed_fail("model mvconv: %d x %d filters or %lld noise coordinates is too many",
                s->num_classes, s->mv_filters, (long long)s->mv_noise_coords);
    return builder_mvconv(b, in, s->num_classes, s->mv_filters, s->init_std, s->mv_noise_coords);
}

/* Parses the decimal digits at *p (no sign, no space) as an int <= 100000; returns 1 and
 * advances *p on success. */
static int parse_int(const char **p, int *out) {
    long v = 0;
    const char *q = *p;
    for (; *q >= '0' && *q <= '9' && v <= 100000; q++)
        v = 10 * v + (*q - '0');
    if (q == *p || v > 100000) return 0;
    *out = (int)v;
    *p = q;
    return 1;
}

/* "..." into err (when given); returns -1. */
static int arch_error(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int arch_error(char *err, size_t size, const char *fmt, ...) {
    if (err && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int model_arch_parse(const char *a, ArchName *out, char *err, size_t err_size) {
    memset(out, 0, sizeof(*out));
    const char *p;
    if (strlen(a) >= sizeof(((ModelSpec *)0)->arch))
        return arch_error(err, err_size, "model architecture name '%.40s...' is too long", a);
    if (strcmp(a, "mlp") == 0) return out->kind = ARCH_MLP, 0;
    if (strcmp(a, "cnn") == 0) return out->kind = ARCH_CNN, 0;
    if (strcmp(a, "mvconv") == 0) return out->kind = ARCH_MVCONV, 0;
    if (strncmp(a, "resnet-", 7) == 0 && (p = a + 7, parse_int(&p, &out->depth)) &&
        (*p == '\0' || strcmp(p, "-proj") == 0)) {
        out->kind = ARCH_RESNET;
        out->projection = *p != '\0';
        if (out->depth < 8 || out->depth > MODEL_ARCH_MAX_DEPTH || (out->depth - 2) % 6 != 0)
            return arch_error(err, err_size,
                              "model %s: a CIFAR ResNet has depth 6n+2 with n >= 1 (20, 32, 44, "
                              "56, 110, ...) and at most %d, got %d",
                              a, MODEL_ARCH_MAX_DEPTH, out->depth);
        return 0;
    }
    if (strncmp(a, "wrn-", 4) == 0 && (p = a + 4, parse_int(&p, &out->depth)) && *p == '-' &&
        (p++, parse_int(&p, &out->widen)) && *p == '\0') {
        out->kind = ARCH_WRN;
        if (out->depth < 10 || out->depth > MODEL_ARCH_MAX_DEPTH || (out->depth - 4) % 6 != 0)
            return arch_error(err, err_size,
                              "model %s: a WideResNet has depth 6n+4 with n >= 1 (10, 16, 22, 28, "
                              "40, ...) and at most %d, got %d",
                              a, MODEL_ARCH_MAX_DEPTH, out->depth);
        if (out->widen < 1 || out->widen > MODEL_ARCH_MAX_WIDTH)
            return arch_error(err, err_size, "model %s: widen factor must be in [1, %d]", a,
                              MODEL_ARCH_MAX_WIDTH);
        return 0;
    }
    return arch_error(err, err_size,
                      "unknown model architecture '%s' (known: mlp, cnn, mvconv, resnet-<6n+2>, "
                      "resnet-<6n+2>-proj, wrn-<6n+4>-<k>)",
                      a);
}

int arch_build(Builder *b, int in, const ModelSpec *s) {
    const ArchName a = s->arch_name;
    switch (a.kind) {
    case ARCH_MLP: return arch_mlp(b, in, s);
    case ARCH_CNN: return arch_cnn(b, in, s);
    case ARCH_MVCONV: return arch_mvconv(b, in, s);
    case ARCH_RESNET: return arch_resnet(b, in, s, a.depth, a.projection);
    case ARCH_WRN: return arch_wrn(b, in, s, a.depth, a.widen);
    }
    ED_DIE("arch kind %d", (int)a.kind);
}
