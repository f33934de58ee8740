/* The residual architectures: the CIFAR ResNet of He et al. (akamaster/pytorch_resnet_cifar10
 * naming, option A or B shortcuts) and the pre-activation WideResNet of Zagoruyko & Komodakis
 * (xternalz/WideResNet-pytorch naming). Inits follow those two repositories exactly. */
#include "nn_internal.h"

#include "ensdistill/error.h"

#include <math.h>
#include <stdio.h>

/* init.kaiming_normal_(w, mode=fan_*, nonlinearity='relu' or the default leaky_relu(0)):
 * N(0, 2 / fan). */
static TensorInit kaiming_normal(int fan) {
    return nn_init_normal(sqrtf(2.0f / (float)fan));
}

/* torch module (akamaster/pytorch_resnet_cifar10 resnet.py; depth = 6n+2, input C x H x W;
 * the reference hard-codes C = 3 in conv1, use the data's C):
 *   def _weights_init(m):
 *       if isinstance(m, (nn.Linear, nn.Conv2d)): init.kaiming_normal_(m.weight)   # fan_in
 *   class BasicBlock(nn.Module):
 *       def __init__(self, in_planes, planes, stride=1, option='A'):
 *           self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
 *           self.bn1 = nn.BatchNorm2d(planes)
 *           self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
 *           self.bn2 = nn.BatchNorm2d(planes)
 *           self.shortcut = nn.Sequential()
 *           if stride != 1 or in_planes != planes:
 *               if option == 'A':   # resnet-<d>
 *                   self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2],
 *                                   (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))
 *               else:               # resnet-<d>-proj (option B)
 *                   self.shortcut = nn.Sequential(
 *                       nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
 *                       nn.BatchNorm2d(planes))
 *       def forward(self, x):
 *           out = F.relu(self.bn1(self.conv1(x)))
 *           out = self.bn2(self.conv2(out))
 *           out += self.shortcut(x)
 *           return F.relu(out)
 *   class ResNet(nn.Module):
 *       def __init__(self, n, K):
 *           self.conv1 = nn.Conv2d(C, 16, 3, stride=1, padding=1, bias=False)
 *           self.bn1 = nn.BatchNorm2d(16)
 *           self.layer1 = nn.Sequential(*[BasicBlock(16|16, 16, 1)] * n)    # layer1.<i>
 *           self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32, 1), ...)
 *           self.layer3 = nn.Sequential(BasicBlock(32, 64, 2), BasicBlock(64, 64, 1), ...)
 *           self.linear = nn.Linear(64, K)
 *           self.apply(_weights_init)
 *       def forward(self, x):
 *           out = F.relu(self.bn1(self.conv1(x)))
 *           out = self.layer3(self.layer2(self.layer1(out)))
 *           out = F.avg_pool2d(out, out.size()[3])          # global for square inputs
 *           return self.linear(out.view(out.size(0), -1))
 * state_dict: conv1.weight, bn1.{weight,bias,running_mean,running_var,num_batches_tracked},
 * layer<l>.<i>.conv1.weight, layer<l>.<i>.bn1.*, layer<l>.<i>.conv2.weight, layer<l>.<i>.bn2.*,
 * (proj) layer<l>.0.shortcut.0.weight, layer<l>.0.shortcut.1.*, linear.weight, linear.bias.
 * Init: conv and linear weights N(0, 2/fan_in); linear bias U(+-1/sqrt(64)); BN 1, 0.
 * We pool globally (over H x W) where the reference pools a W x W window: the same for the
 * square inputs the reference takes. */
int arch_resnet(Builder *b, int in, const ModelSpec *s, int depth, int projection) {
    int n = (depth - 2) / 6;
    int C = b->values[in].C;
    TensorInit none = nn_init_const(INIT_ZERO);
    int x = builder_conv(b, "conv1", in, 16, 3, 1, 1, 0, kaiming_normal(C * 9), none);
    x = builder_relu(b, builder_bn(b, "bn1", x));
    int in_planes = 16;
    char name[TENSOR_NAME_MAX];
    for (int l = 1; l <= 3; l++) {
        int planes = 16 << (l - 1);
        for (int i = 0; i < n; i++) {
            int stride = (i == 0 && l > 1) ? 2 : 1;
            /* out = relu(bn1(conv1(x))); out = bn2(conv2(out)) */
            snprintf(name, sizeof(name), "layer%d.%d.conv1", l, i);
            int h = builder_conv(b, name, x, planes, 3, stride, 1, 0, kaiming_normal(in_planes * 9),
                                 none);
            snprintf(name, sizeof(name), "layer%d.%d.bn1", l, i);
            h = builder_relu(b, builder_bn(b, name, h));
            snprintf(name, sizeof(name), "layer%d.%d.conv2", l, i);
            h = builder_conv(b, name, h, planes, 3, 1, 1, 0, kaiming_normal(planes * 9), none);
            snprintf(name, sizeof(name), "layer%d.%d.bn2", l, i);
            h = builder_bn(b, name, h);
            /* out += shortcut(x) */
            int sc = x;
            if (stride != 1 || in_planes != planes) {
                if (projection) {
                    snprintf(name, sizeof(name), "layer%d.%d.shortcut.0", l, i);
                    sc = builder_conv(b, name, x, planes, 1, stride, 0, 0,
                                      kaiming_normal(in_planes), none);
                    snprintf(name, sizeof(name), "layer%d.%d.shortcut.1", l, i);
                    sc = builder_bn(b, name, sc);
                } else {
                    ED_CHECK(in_planes + 2 * (planes / 4) == planes, "option-A padding");
                    sc = builder_shortcut_pad(b, x, planes, stride, planes / 4);
                }
            }
            x = builder_relu(b, builder_add(b, h, sc));
            in_planes = planes;
        }
    }
    x = builder_flatten(b, builder_global_avgpool(b, x));
    return builder_linear(b, "linear", x, s->num_classes, kaiming_normal(64),
                          nn_init_uniform(1.0f / sqrtf(64.0f)));
}

/* torch module (xternalz/WideResNet-pytorch wideresnet.py, dropRate 0; depth = 6n+4, widen k,
 * input C x H x W; the reference hard-codes C = 3 in conv1, use the data's C):
 *   class BasicBlock(nn.Module):
 *       def __init__(self, in_planes, out_planes, stride):
 *           self.bn1 = nn.BatchNorm2d(in_planes); self.relu1 = nn.ReLU(inplace=True)
 *           self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
 *           self.bn2 = nn.BatchNorm2d(out_planes); self.relu2 = nn.ReLU(inplace=True)
 *           self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
 *           self.equalInOut = in_planes == out_planes
 *           self.convShortcut = None if self.equalInOut else \
 *               nn.Conv2d(in_planes, out_planes, 1, stride=stride, padding=0, bias=False)
 *       def forward(self, x):
 *           if not self.equalInOut: x = self.relu1(self.bn1(x)); out = x
 *           else:                   out = self.relu1(self.bn1(x))
 *           out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
 *           return torch.add(x if self.equalInOut else self.convShortcut(x), out)
 *   class NetworkBlock(nn.Module):       # self.layer = nn.Sequential(blocks): block<g>.layer.<i>
 *       block i: BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
 *   class WideResNet(nn.Module):
 *       def __init__(self, depth, K, k):
 *           nCh = [16, 16 * k, 32 * k, 64 * k]; n = (depth - 4) // 6
 *           self.conv1 = nn.Conv2d(C, nCh[0], 3, stride=1, padding=1, bias=False)
 *           self.block1 = NetworkBlock(n, nCh[0], nCh[1], 1)
 *           self.block2 = NetworkBlock(n, nCh[1], nCh[2], 2)
 *           self.block3 = NetworkBlock(n, nCh[2], nCh[3], 2)
 *           self.bn1 = nn.BatchNorm2d(nCh[3]); self.relu = nn.ReLU(inplace=True)
 *           self.fc = nn.Linear(nCh[3], K)
 *           for m in self.modules():
 *               Conv2d: kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
 *               BatchNorm2d: weight 1, bias 0;  Linear: bias 0 (weight keeps the default)
 *       def forward(self, x):
 *           out = self.block3(self.block2(self.block1(self.conv1(x))))
 *           out = self.relu(self.bn1(out))
 *           out = F.avg_pool2d(out, 8)                     # global for 32 x 32 inputs
 *           return self.fc(out.view(-1, nCh[3]))
 * state_dict: conv1.weight, block<g>.layer.<i>.bn1.*, .conv1.weight, .bn2.*, .conv2.weight,
 * .convShortcut.weight (where in != out), bn1.*, fc.weight, fc.bias.
 * We pool globally where the reference pools an 8 x 8 window: the same for 32 x 32 inputs. */
int arch_wrn(Builder *b, int in, const ModelSpec *s, int depth, int widen) {
    int n = (depth - 4) / 6;
    int ch[4] = {16, 16 * widen, 32 * widen, 64 * widen};
    TensorInit none = nn_init_const(INIT_ZERO);
    int x = builder_conv(b, "conv1", in, ch[0], 3, 1, 1, 0, kaiming_normal(ch[0] * 9), none);
    char name[TENSOR_NAME_MAX];
    for (int g = 1; g <= 3; g++) {
        int out_planes = ch[g];
        for (int i = 0; i < n; i++) {
            int in_planes = i == 0 ? ch[g - 1] : out_planes;
            int stride = (i == 0 && g > 1) ? 2 : 1;
            int equal = in_planes == out_planes;
            /* a = relu1(bn1(x)) */
            snprintf(name, sizeof(name), "block%d.layer.%d.bn1", g, i);
            int a = builder_relu(b, builder_bn(b, name, x));
            /* h = conv2(relu2(bn2(conv1(a)))) */
            snprintf(name, sizeof(name), "block%d.layer.%d.conv1", g, i);
            int h = builder_conv(b, name, a, out_planes, 3, stride, 1, 0,
                                 kaiming_normal(out_planes * 9), none);
            snprintf(name, sizeof(name), "block%d.layer.%d.bn2", g, i);
            h = builder_relu(b, builder_bn(b, name, h));
            snprintf(name, sizeof(name), "block%d.layer.%d.conv2", g, i);
            h = builder_conv(b, name, h, out_planes, 3, 1, 1, 0, kaiming_normal(out_planes * 9),
                             none);
            /* out = (x if equalInOut else convShortcut(a)) + h */
            int sc = x;
            if (!equal) {
                snprintf(name, sizeof(name), "block%d.layer.%d.convShortcut", g, i);
                sc = builder_conv(b, name, a, out_planes, 1, stride, 0, 0,
                                  kaiming_normal(out_planes), none);
            }
            x = builder_add(b, sc, h);
        }
    }
    x = builder_relu(b, builder_bn(b, "bn1", x));
    x = builder_flatten(b, builder_global_avgpool(b, x));
    return builder_linear(b, "fc", x, s->num_classes, nn_init_uniform(1.0f / sqrtf((float)ch[3])),
                          nn_init_const(INIT_ZERO));
}
