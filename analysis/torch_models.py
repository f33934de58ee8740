"""PyTorch equivalents of the ensdistill architectures (include/ensdistill/model.h).

Every module here has exactly the state_dict names and shapes of the C model of the same arch
name, so a checkpoint's /params and /buffers load with `module.load_state_dict(...)`, and the
same forward computes the same logits. Used by analysis/load_torch.py (checkpoint -> torch),
analysis/bench_torch.py (speed comparison) and tests/reference/make_reference.py (fixtures).

    import torch_models as tm
    net = tm.build("resnet-20", (3, 32, 32), 10)            # akamaster CIFAR ResNet, option A
    net = tm.build("wrn-28-10", (3, 32, 32), 100)           # xternalz pre-activation WRN
    net = tm.build("cnn", (1, 28, 28), 10, hidden=128)
    net = tm.build("mvconv", (P, 1, D), K, mv_filters=M, srelu_q=3, srelu_rho=0.5)
    net = tm.build("resnet-20", (3, 32, 32), 10, sum_of=4)  # train-the-sum: nets.<i>.*

Architectures and their state_dict names:
  mlp          fc1, fc2, fc3 (Linear; flatten -> fc1 -> relu -> fc2 -> relu -> fc3)
  cnn          conv1 (5x5 pad 2, 32 ch), conv2 (5x5 pad 2, 64 ch), fc1 (hidden), fc2 (K);
               conv -> relu -> maxpool 2 twice, then fc1 -> relu -> fc2
  resnet-<6n+2>[-proj]   conv1, bn1, layer{1,2,3}.<j>.{conv1,bn1,conv2,bn2}, linear;
               -proj adds layer<s>.0.shortcut.0 (1x1 conv) and .shortcut.1 (BN) where the
               shape changes; without -proj the shortcut is He et al.'s option A (stride-2
               subsample + zero channels, planes//4 each side: no parameters)
  wrn-<d>-<k>  conv1, block{1,2,3}.layer.<j>.{bn1,conv1,bn2,conv2[,convShortcut]}, bn1, fc
  mvconv       weight [K*M, D] and, with orth noise, noise_weight [K*M, n_noise]
  sum_of > 1   SumOf: nets.<i>.<name> for each copy; logits are added
Convolutions in resnet/wrn have no bias; every Linear has one; BatchNorm is PyTorch's default
(eps 1e-5, momentum 0.1, affine, running stats with num_batches_tracked).
"""

import math
import re

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "MLP", "CNN", "CifarResNet", "WideResNet", "MvConv", "SumOf",
    "srelu", "build", "last_layer_prefix", "parse_arch", "param_count",
    "philox4x32_10", "rng_normal_at", "mvconv_noise_init",
]


# ---------------------------------------------------------------------------------------------
# Smoothed ReLU (the paper's activation).
# ---------------------------------------------------------------------------------------------
def srelu(z, q, rho):
    """0 for z <= 0; z^q / (q rho^(q-1)) for 0 < z <= rho; z - (1 - 1/q) rho above.

    Differentiable everywhere for q >= 1 (the pieces meet with equal value and slope at rho).
    The polynomial branch is evaluated on z clamped to [0, rho], so fractional powers of
    negative numbers never produce NaN gradients through torch.where."""
    zc = z.clamp(0.0, rho)
    poly = zc.pow(q) / (q * rho ** (q - 1))
    lin = z - (1.0 - 1.0 / q) * rho
    return torch.where(z <= 0, torch.zeros_like(z), torch.where(z <= rho, poly, lin))


# ---------------------------------------------------------------------------------------------
# mlp and cnn
# ---------------------------------------------------------------------------------------------
class MLP(nn.Module):
    """flatten -> fc1(hidden) -> relu -> fc2(hidden) -> relu -> fc3(K)."""

    def __init__(self, in_shape, num_classes, hidden=256):
        super().__init__()
        c, h, w = in_shape
        self.fc1 = nn.Linear(c * h * w, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class CNN(nn.Module):
    """conv5x5(32)-relu-maxpool2 -> conv5x5(64)-relu-maxpool2 -> fc1(hidden)-relu -> fc2(K)."""

    def __init__(self, in_shape, num_classes, hidden=128):
        super().__init__()
        c, h, w = in_shape
        self.conv1 = nn.Conv2d(c, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * (h // 2 // 2) * (w // 2 // 2), hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


# ---------------------------------------------------------------------------------------------
# CIFAR ResNet (He et al. 2016, section 4.2), akamaster/pytorch_resnet_cifar10 naming
# ---------------------------------------------------------------------------------------------
def shortcut_pad(x, out_channels, stride):
    """Option A: x[:, :, ::stride, ::stride] with (out - in) // 2 zero channels on each side
    (the C kernel's pad_front = (OC - C) / 2; for the CIFAR ResNet that is planes // 4)."""
    c = x.shape[1]
    front = (out_channels - c) // 2
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, front, out_channels - c - front))


class LambdaLayer(nn.Module):
    """akamaster's parameter-free shortcut module (so `shortcut` exists but owns nothing)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn, + shortcut, relu."""

    def __init__(self, in_planes, planes, stride=1, projection=False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if projection:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes))
            else:
                self.shortcut = LambdaLayer(lambda x: shortcut_pad(x, planes, stride))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """resnet-<6n+2>: conv1(16)-bn1-relu, three stages of n BasicBlocks (16, 32, 64 channels;
    stride 2 at the start of stages 2 and 3), global average pool, linear(K)."""

    def __init__(self, depth, in_shape, num_classes, projection=False):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"resnet depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        c = in_shape[0]
        self.conv1 = nn.Conv2d(c, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for stage, (planes, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if j == 0 else 1, projection))
                in_planes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)
        for mod in self.modules():  # akamaster's _weights_init: N(0, 2 / fan_in)
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = out.mean(dim=(2, 3))  # global average pool
        return self.linear(out)


# ---------------------------------------------------------------------------------------------
# Pre-activation WideResNet (Zagoruyko & Komodakis 2016), xternalz/WideResNet-pytorch naming
# ---------------------------------------------------------------------------------------------
class WideBasic(nn.Module):
    """bn1-relu-conv1(3x3, stride)-bn2-relu-conv2(3x3), + x or convShortcut(relu(bn1(x)))."""

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, padding=0,
                                          bias=False)

    def forward(self, x):
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        # xternalz: the identity path carries the raw x; the projection sees the activated x.
        return out + (x if self.equal_in_out else self.convShortcut(act))


class NetworkBlock(nn.Module):
    """One stage: `layer` = Sequential of n WideBasic blocks (names block<s>.layer.<j>.*)."""

    def __init__(self, n, in_planes, out_planes, stride):
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBasic(in_planes if j == 0 else out_planes, out_planes, stride if j == 0 else 1)
            for j in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    """wrn-<d>-<k>: conv1(16), stages of (d-4)/6 blocks at 16k, 32k, 64k channels (strides 1,
    2, 2), bn1-relu, global average pool, fc(K)."""

    def __init__(self, depth, widen, in_shape, num_classes):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"wrn depth must be 6n+4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        ch = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_shape[0], ch[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], num_classes)
        for mod in self.modules():  # xternalz: convs N(0, 2 / fan_out), linear bias 0
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(mod, nn.Linear):
                nn.init.zeros_(mod.bias)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        return self.fc(out.mean(dim=(2, 3)))


# ---------------------------------------------------------------------------------------------
# The C library's counter-based generator (src/core/rng.c), for mvconv's fixed noise weights
# ---------------------------------------------------------------------------------------------
_PHILOX_M0, _PHILOX_M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_PHILOX_W0, _PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key):
    """The ten-round Philox-4x32 bijection, vectorised: counter uint32[4, N], key (k0, k1)
    -> uint32[4, N]. Equal to philox4x32_10 in src/core/rng.c."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    for _ in range(10):
        p0, p1 = _PHILOX_M0 * c0, _PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & _MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & _MASK32)
        k0, k1 = (k0 + _PHILOX_W0) & 0xFFFFFFFF, (k1 + _PHILOX_W1) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


def rng_normal_at(seed, stream, position):
    """rng_normal_at(seed, stream, position) of src/core/rng.c for an array of positions:
    Box-Muller on the first two words of the Philox block at that counter, as float32."""
    pos = np.asarray(position, dtype=np.uint64).ravel()
    stream, seed = int(stream), int(seed)
    counter = [pos & _MASK32, pos >> np.uint64(32),
               np.full_like(pos, stream & 0xFFFFFFFF), np.full_like(pos, stream >> 32)]
    blk = philox4x32_10(counter, (seed & 0xFFFFFFFF, seed >> 32))
    u1 = ((blk[0] >> 8).astype(np.float64) + 1.0) * (1.0 / 16777216.0)
    u2 = (blk[1] >> 8).astype(np.float64) * (1.0 / 16777216.0)
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2)
    return z.astype(np.float32).reshape(np.shape(position))


def mvconv_noise_init(seed, stream, init_std, copy=0):
    """The fixed noise weights of the C mvconv (model.h, model_init): weight (row, coord) is
    rng_normal_at(seed, stream, 1<<63 | copy<<56 | row<<36 | coord) * init_std, in float32.
    Returns the callable MvConv takes as noise_init. seed and stream are the model's
    init_seed and init_stream (a checkpoint records them)."""
    std = np.float32(init_std)

    def noise_init(rows, coords):
        r = rows.cpu().numpy().astype(np.uint64)
        c = coords.cpu().numpy().astype(np.uint64)
        pos = (np.uint64(1 << 63) | np.uint64(copy << 56) | (r << np.uint64(36))
               | c[..., None])  # [..., R]
        return torch.from_numpy(rng_normal_at(seed, stream, pos) * std)

    return noise_init


# ---------------------------------------------------------------------------------------------
# The paper's two-layer patch network
# ---------------------------------------------------------------------------------------------
class MvConv(nn.Module):
    """F_i(X) = sum_{r<M} sum_p sReLU(<w_{i*M+r}, x_p> + sigma * nw(i*M+r, s*P+p)).

    Input: patches x[B, P, D] (or the C model's [B, P, 1, D]). weight[K*M, D]: class i owns rows
    i*M .. i*M+M-1. With orth noise (n_noise > 0), patch p of sample id s also carries noise of
    norm sigma along its own coordinate c = s*P + p; its weight nw(row, c) is
    noise_weight[row, c] for c < n_noise (trained) and noise_init(rows, coords) beyond (fixed:
    test samples). noise_init is a callable (rows LongTensor[R], coords LongTensor[...]) ->
    Tensor[..., R]; without it, coordinates beyond n_noise must not occur. forward then needs
    sample_ids[B]. Matches mvconv_forward in include/ensdistill/layers.h."""

    def __init__(self, in_shape, num_classes, filters, q, rho, init_std=0.01, n_noise=0,
                 sigma=0.0, noise_init=None):
        super().__init__()
        p, _, d = in_shape
        self.P, self.D, self.K, self.M = p, d, num_classes, filters
        self.q, self.rho, self.sigma = float(q), float(rho), float(sigma)
        self.n_noise = int(n_noise)
        self.noise_init = noise_init
        self.weight = nn.Parameter(torch.randn(num_classes * filters, d) * init_std)
        self.noise_weight = None
        if self.n_noise > 0:
            self.noise_weight = nn.Parameter(
                torch.randn(num_classes * filters, self.n_noise) * init_std)

    def noise_pre(self, sample_ids, dtype):
        """sigma * nw(row, s*P + p) as [B, P, K*M]."""
        rows = self.K * self.M
        coords = sample_ids.long()[:, None] * self.P + torch.arange(self.P)  # [B, P]
        trained = coords < self.n_noise
        nw = self.noise_weight[:, coords.clamp(max=self.n_noise - 1)]  # [R, B, P]
        nw = nw.permute(1, 2, 0)  # [B, P, R]
        if not bool(trained.all()):
            if self.noise_init is None:
                raise ValueError("mvconv: sample coordinates beyond n_noise need noise_init")
            fixed = self.noise_init(torch.arange(rows), coords).to(dtype)
            nw = torch.where(trained[..., None], nw, fixed)
        return self.sigma * nw

    def forward(self, x, sample_ids=None):
        x = x.reshape(x.shape[0], self.P, self.D)
        pre = x @ self.weight.t()  # [B, P, K*M]
        if self.noise_weight is not None:
            if sample_ids is None:
                raise ValueError("mvconv with orth noise needs sample_ids")
            pre = pre + self.noise_pre(sample_ids, pre.dtype)
        act = srelu(pre, self.q, self.rho)
        return act.reshape(x.shape[0], self.P, self.K, self.M).sum(dim=(1, 3))


# ---------------------------------------------------------------------------------------------
# The train-the-sum control
# ---------------------------------------------------------------------------------------------
class SumOf(nn.Module):
    """logits = sum_i nets[i](x); names nets.<i>.<name>."""

    def __init__(self, nets):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x, *args):
        out = self.nets[0](x, *args)
        for net in self.nets[1:]:
            out = out + net(x, *args)
        return out


# ---------------------------------------------------------------------------------------------
# Build by name
# ---------------------------------------------------------------------------------------------
def parse_arch(arch):
    """("resnet", depth, projection) | ("wrn", depth, widen) | ("mlp",) | ("cnn",) | ("mvconv",)."""
    if arch in ("mlp", "cnn", "mvconv"):
        return (arch,)
    m = re.fullmatch(r"resnet-(\d+)(-proj)?", arch)
    if m:
        return ("resnet", int(m.group(1)), m.group(2) is not None)
    m = re.fullmatch(r"wrn-(\d+)-(\d+)", arch)
    if m:
        return ("wrn", int(m.group(1)), int(m.group(2)))
    raise ValueError(f"unknown arch '{arch}' (mlp, cnn, resnet-<6n+2>[-proj], wrn-<d>-<k>, mvconv)")


def last_layer_prefix(arch):
    """The state_dict prefix of the layer a random-features model trains (mvconv has none)."""
    kind = parse_arch(arch)[0]
    if kind == "mvconv":
        raise ValueError("mvconv: random_features needs an architecture with a final linear layer")
    return {"mlp": "fc3.", "cnn": "fc2.", "resnet": "linear.", "wrn": "fc."}[kind]


def _build_one(arch, in_shape, num_classes, opts, copy):
    kind = parse_arch(arch)
    if kind[0] == "mlp":
        return MLP(in_shape, num_classes, hidden=opts.get("hidden") or 256)
    if kind[0] == "cnn":
        return CNN(in_shape, num_classes, hidden=opts.get("hidden") or 128)
    if kind[0] == "resnet":
        return CifarResNet(kind[1], in_shape, num_classes, projection=kind[2])
    if kind[0] == "wrn":
        return WideResNet(kind[1], kind[2], in_shape, num_classes)
    noise_init = opts.get("noise_init")
    if noise_init is None and opts.get("init_seed") is not None:
        noise_init = mvconv_noise_init(opts["init_seed"], opts.get("init_stream", 0),
                                       opts.get("init_std", 0.01), copy)
    return MvConv(in_shape, num_classes, filters=opts.get("mv_filters", 1),
                  q=opts.get("srelu_q", 3.0), rho=opts.get("srelu_rho", 1.0),
                  init_std=opts.get("init_std", 0.01), n_noise=opts.get("mv_noise_coords", 0),
                  sigma=opts.get("mv_noise_sigma", 0.0), noise_init=noise_init)


def build(arch, in_shape, num_classes, **opts):
    """The torch module for a ModelSpec: arch name, in_shape (C, H, W) (mvconv: (P, 1, D)),
    num_classes K. Options, as ModelSpec: hidden, sum_of, random_features, mv_filters,
    srelu_q, srelu_rho, init_std, mv_noise_coords, mv_noise_sigma; for mvconv's fixed noise
    weights (coordinates >= mv_noise_coords, i.e. test samples) either init_seed and
    init_stream (the C model's, giving exactly its draws for each copy) or noise_init (a
    callable, see MvConv).

    random_features=True sets requires_grad=False on every parameter but the last layer's
    (of each copy under sum_of). Weights are initialised with the distributions model_init
    documents (the reference repositories' inits), not with its Philox draws: load a
    checkpoint's state_dict to get the C model's values."""
    in_shape = tuple(int(v) for v in in_shape)
    if len(in_shape) != 3:
        raise ValueError(f"in_shape must be (C, H, W), got {in_shape}")
    sum_of = int(opts.get("sum_of") or 1)
    nets = [_build_one(arch, in_shape, num_classes, opts, c) for c in range(sum_of)]
    net = nets[0] if sum_of == 1 else SumOf(nets)
    if opts.get("random_features"):
        last = last_layer_prefix(arch)
        for name, p in net.named_parameters():
            local = re.sub(r"^nets\.\d+\.", "", name)
            p.requires_grad_(local.startswith(last))
    return net


def param_count(net, trainable_only=False):
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


if __name__ == "__main__":
    # Self-check: parameter counts quoted in issue 2 and a forward pass of every arch.
    checks = [("resnet-20", (3, 32, 32), 10, 269722), ("resnet-20-proj", (3, 32, 32), 10, 272474),
              ("wrn-28-10", (3, 32, 32), 10, 36479194)]
    for arch, shape, k, want in checks:
        got = param_count(build(arch, shape, k))
        print(f"{arch:16s} {got:>10,d} params (want {want:,d}) {'OK' if got == want else 'FAIL'}")
        assert got == want
    for arch, shape in [("mlp", (1, 28, 28)), ("cnn", (1, 28, 28)), ("resnet-8", (3, 16, 16)),
                        ("wrn-10-2", (3, 16, 16)), ("mvconv", (6, 1, 10))]:
        net = build(arch, shape, 10, sum_of=2, mv_filters=2)
        out = net(torch.randn(3, *shape))
        assert out.shape == (3, 10), (arch, out.shape)
        print(f"{arch:16s} sum_of=2 {param_count(net):>10,d} params, forward OK")
