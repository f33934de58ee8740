/* Architectures by name: the parser of ModelSpec.arch and the small nets (mlp, cnn, mvconv).
 * Each builder documents the exact PyTorch module it mirrors, so that state_dict names and
 * shapes agree with analysis/load_torch.py. The CIFAR ResNet and WideResNet are in
 * model_resnet.c. */
#include "nn_internal.h"

#include "ensdistill/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch's default for nn.Linear and nn.Conv2d (kaiming_uniform_(a=sqrt(5)) for the weight,
 * and the bias): U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static TensorInit torch_default(int fan_in) {
    return init_uniform(1.0f / sqrtf((float)fan_in));
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
    int x = b_flatten(b, in);
    int IN = b->values[x].C;
    x = b_relu(b, b_linear(b, "fc1", x, hidden, torch_default(IN), torch_default(IN)));
    x = b_relu(b, b_linear(b, "fc2", x, hidden, torch_default(hidden), torch_default(hidden)));
    return b_linear(b, "fc3", x, s->num_classes, torch_default(hidden), torch_default(hidden));
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
    int x = b_conv(b, "conv1", in, 32, 5, 1, 2, 1, torch_default(C * 25), torch_default(C * 25));
    x = b_maxpool(b, b_relu(b, x), 2, 2);
    x = b_conv(b, "conv2", x, 64, 5, 1, 2, 1, torch_default(32 * 25), torch_default(32 * 25));
    x = b_maxpool(b, b_relu(b, x), 2, 2);
    x = b_flatten(b, x);
    int IN = b->values[x].C;
    x = b_relu(b, b_linear(b, "fc1", x, hidden, torch_default(IN), torch_default(IN)));
    return b_linear(b, "fc2", x, s->num_classes, torch_default(hidden), torch_default(hidden));
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
    if ((int64_t)s->num_classes * s->mv_filters >= (1 << 20) ||
        s->mv_noise_coords >= ((int64_t)1 << 36))
        ed_fail("model mvconv: %d x %d filters or %lld noise coordinates is too many",
                s->num_classes, s->mv_filters, (long long)s->mv_noise_coords);
    return b_mvconv(b, in, s->num_classes, s->mv_filters, s->init_std, s->mv_noise_coords);
}

/* Parses "<prefix><int>" at *p; returns 1 and advances *p on success. */
static int parse_int(const char **p, int *out) {
    char *end;
    long v = strtol(*p, &end, 10);
    if (end == *p || v < 0 || v > 100000) return 0;
    *out = (int)v;
    *p = end;
    return 1;
}

int arch_build(Builder *b, int in, const ModelSpec *s) {
    const char *a = s->arch;
    if (strcmp(a, "mlp") == 0) return arch_mlp(b, in, s);
    if (strcmp(a, "cnn") == 0) return arch_cnn(b, in, s);
    if (strcmp(a, "mvconv") == 0) return arch_mvconv(b, in, s);
    if (strncmp(a, "resnet-", 7) == 0) {
        const char *p = a + 7;
        int depth;
        if (parse_int(&p, &depth) && (*p == '\0' || strcmp(p, "-proj") == 0)) {
            if (depth < 8 || (depth - 2) % 6 != 0)
                ed_fail("model %s: a CIFAR ResNet has depth 6n+2 with n >= 1 (20, 32, 44, 56, "
                        "110, ...), got %d",
                        a, depth);
            return arch_resnet(b, in, s, depth, *p != '\0');
        }
    }
    if (strncmp(a, "wrn-", 4) == 0) {
        const char *p = a + 4;
        int depth, widen;
        if (parse_int(&p, &depth) && *p == '-' && (p++, parse_int(&p, &widen)) && *p == '\0') {
            if (depth < 10 || (depth - 4) % 6 != 0)
                ed_fail("model %s: a WideResNet has depth 6n+4 with n >= 1 (10, 16, 22, 28, "
                        "40, ...), got %d",
                        a, depth);
            if (widen < 1) ed_fail("model %s: widen factor must be >= 1", a);
            return arch_wrn(b, in, s, depth, widen);
        }
    }
    ed_fail("unknown model architecture '%s' (known: mlp, cnn, mvconv, resnet-<6n+2>, "
            "resnet-<6n+2>-proj, wrn-<6n+4>-<k>)",
            a);
}
