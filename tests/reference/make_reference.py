#!/usr/bin/python3
"""Writes tests/reference/reference.h5: PyTorch's answers for every layer kernel, the losses and
three SGD steps of a tiny ResNet, which tests/unit/test_reference.c compares with ours.

    /usr/bin/python3 tests/reference/make_reference.py [OUT.h5]

Inputs and weights are drawn in float32 (torch.manual_seed, so the file is reproducible); torch
then computes in float64 from those exact float32 values, and the results are rounded to float32
on storage. The reference is therefore PyTorch's arithmetic without float32 rounding noise, and
what the C test measures is the error of our float32 kernels alone.

Layout (one group per case; dimensions and hyper-parameters as integer/float attributes):
  /linear, /conv2d_*, /batchnorm_*, /relu, /srelu_*, /maxpool_*, /global_avgpool,
  /shortcut_*, /mvconv_*      in, weights, out, dout (random upstream gradient), din, d<weight>
  /archs/<label>              torch state_dict of an architecture: names [n] (S128), ndim [n],
                              shape [n, 4] (-1 padded), trainable [n], is_param [n]; attrs arch, C, H, W, K,
                              the ModelSpec options, param_count, trainable_count
  /mvconv_model               the mvconv model (sum_of 2, orth noise): x, sample_ids, params,
                              logits, dlogits, grads (spec in attributes)
  /philox                     draws of analysis/torch_models.py's copy of our generator
  /cross_entropy_*, /distill_*  logits[B,K], labels[B] int32, (teacher), loss (mean over the
                              batch), dlogits (of the mean), correct
  /resnet8                    arch, C, H, W, K, B, lr, momentum, weight_decay, nesterov
      init/<state_dict name>      initial parameters and buffers (num_batches_tracked: int64)
      batch<i>/x, batch<i>/y      the three minibatches (i = 0, 1, 2)
      step<i>/loss, step<i>/logits   loss and logits of the forward of step i (training mode)
      step<i>/params/<name>, step<i>/buffers/<name>   state after the update of step i
      eval_logits                 logits of batch0/x after the three steps, in eval mode
  (The first step's gradients follow from init and step0/params, since its momentum buffer
  starts at zero: g = (p0 - p1) / (lr (1 + momentum)) - wd p0. Storing them too would take the
  file over 2 MB.)
"""

import contextlib
import copy
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "analysis"))
import torch_models as tm  # noqa: E402

SEED = 20240611
BN_MOMENTUM, BN_EPS = 0.1, 1e-5


def f32(*shape, scale=1.0):
    """A float32 normal draw, returned as float64 (its values exactly representable)."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).double()


def leaf(t):
    return t.clone().requires_grad_(True)


class Writer:
    def __init__(self, path):
        fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
        fcpl.set_obj_track_times(False)  # no timestamps: same data, same bytes
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5py.h5f.LIBVER_V18, h5py.h5f.LIBVER_LATEST)
        self.f = h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl,
                                           fapl=fapl))

    @staticmethod
    def subgroup(parent, name):
        """A group without modification times, so the same data gives the same bytes."""
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        gcpl.set_obj_track_times(False)
        return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))

    def group(self, name, **attrs):
        g = self.subgroup(self.f, name)
        for k, v in attrs.items():
            g.attrs[k] = v
        return g

    @staticmethod
    def put(g, name, t, dtype=np.float32):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.array(t, dtype=dtype, order="C")  # keeps 0-d shapes (num_batches_tracked)
        if a.dtype.kind == "S":  # padded names compress well; random floats would not
            g.create_dataset(name, data=a, compression="gzip", compression_opts=9)
        else:
            g.create_dataset(name, data=a)


def backward(out, dout, *leaves):
    """Grads of sum(out * dout) w.r.t. leaves."""
    return torch.autograd.grad(out, leaves, grad_outputs=dout)


# ---------------------------------------------------------------------------------------------
def linear_case(w):
    B, IN, OUT = 4, 7, 5
    x, weight, bias = leaf(f32(B, IN)), leaf(f32(OUT, IN, scale=0.5)), leaf(f32(OUT))
    out = F.linear(x, weight, bias)  # out = x W^T + b
    dout = f32(B, OUT)
    din, dw, db = backward(out, dout, x, weight, bias)
    g = w.group("linear", B=B, IN=IN, OUT=OUT)
    for k, v in dict(**{"in": x}, weight=weight, bias=bias, out=out, dout=dout, din=din,
                     dweight=dw, dbias=db).items():
        w.put(g, k, v)


def conv_case(w, name, B, C, H, W, OC, K, stride, pad, with_bias):
    x, weight = leaf(f32(B, C, H, W)), leaf(f32(OC, C, K, K, scale=0.3))
    bias = leaf(f32(OC)) if with_bias else None
    out = F.conv2d(x, weight, bias, stride=stride, padding=pad)
    dout = f32(*out.shape)
    grads = backward(out, dout, *([x, weight] + ([bias] if with_bias else [])))
    g = w.group(name, B=B, C=C, H=H, W=W, OC=OC, K=K, stride=stride, pad=pad,
                has_bias=int(with_bias))
    tensors = {"in": x, "weight": weight, "out": out, "dout": dout, "din": grads[0],
               "dweight": grads[1]}
    if with_bias:
        tensors.update(bias=bias, dbias=grads[2])
    for k, v in tensors.items():
        w.put(g, k, v)


def batchnorm_case(w, name, shape, training):
    B, C = shape[0], shape[1]
    HW = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    x = leaf(f32(*shape) * 1.5 + 0.7)
    gamma, beta = leaf(1.0 + f32(C, scale=0.2)), leaf(f32(C, scale=0.2))
    rm0, rv0 = f32(C, scale=0.3), 1.0 + torch.rand(C, dtype=torch.float32).double()
    rm, rv = rm0.clone(), rv0.clone()
    out = F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=BN_MOMENTUM,
                       eps=BN_EPS)
    dout = f32(*out.shape)
    din, dgamma, dbeta = backward(out, dout, x, gamma, beta)
    g = w.group(name, B=B, C=C, HW=HW, momentum=BN_MOMENTUM, eps=BN_EPS, training=int(training))
    tensors = {"in": x, "gamma": gamma, "beta": beta, "running_mean_in": rm0,
               "running_var_in": rv0, "out": out, "running_mean": rm, "running_var": rv}
    if training:  # the C backward is the training-mode one (batch statistics)
        tensors.update(dout=dout, din=din, dgamma=dgamma, dbeta=dbeta)
    for k, v in tensors.items():
        w.put(g, k, v)


def relu_case(w):
    x = f32(96)
    x[::7] = 0.0  # exact zeros: torch's relu gradient there is 0, as ours (in > 0)
    x = leaf(x)
    out = F.relu(x)
    dout = f32(96)
    (din,) = backward(out, dout, x)
    g = w.group("relu", n=96)
    for k, v in {"in": x, "out": out, "dout": dout, "din": din}.items():
        w.put(g, k, v)


def srelu_case(w, name, q, rho):
    x = f32(120, scale=rho * 1.5)
    x[0], x[1], x[2], x[3], x[4] = 0.0, rho, -rho, 3.0 * rho, rho * 0.5  # the breakpoints
    x = leaf(x)
    out = tm.srelu(x, q, rho)
    dout = f32(120)
    (din,) = backward(out, dout, x)
    # the plain derivative, for srelu_grad (dout = 1)
    (grad,) = torch.autograd.grad(tm.srelu(x, q, rho).sum(), x)
    g = w.group(name, n=120, q=q, rho=rho)
    for k, v in {"in": x, "out": out, "dout": dout, "din": din, "grad": grad}.items():
        w.put(g, k, v)


def maxpool_case(w, name, B, C, H, W, K, stride, pad):
    x = leaf(f32(B, C, H, W))
    out, idx = F.max_pool2d(x, K, stride=stride, padding=pad, return_indices=True)
    dout = f32(*out.shape)
    (din,) = backward(out, dout, x)
    g = w.group(name, B=B, C=C, H=H, W=W, K=K, stride=stride, pad=pad)
    for k, v in {"in": x, "out": out, "dout": dout, "din": din}.items():
        w.put(g, k, v)
    w.put(g, "argmax", idx, dtype=np.int32)


def global_avgpool_case(w):
    B, C, H, W = 3, 4, 5, 6
    x = leaf(f32(B, C, H, W))
    out = x.mean(dim=(2, 3))
    dout = f32(B, C)
    (din,) = backward(out, dout, x)
    g = w.group("global_avgpool", B=B, C=C, HW=H * W)
    for k, v in {"in": x, "out": out, "dout": dout, "din": din}.items():
        w.put(g, k, v)


def shortcut_case(w, name, B, C, H, W, OC, stride, pad_front):
    x = leaf(f32(B, C, H, W))
    out = F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad_front, OC - C - pad_front))
    dout = f32(*out.shape)
    (din,) = backward(out, dout, x)
    g = w.group(name, B=B, C=C, H=H, W=W, OC=OC, stride=stride, pad_front=pad_front)
    for k, v in {"in": x, "out": out, "dout": dout, "din": din}.items():
        w.put(g, k, v)


def ce_case(w, name, B, K, big_row=True):
    logits = f32(B, K, scale=2.0)
    if big_row:
        logits[0] *= 40.0  # a confident row: the softmax must be computed stably
    logits = leaf(logits)
    y = torch.randint(0, K, (B,))
    loss = F.cross_entropy(logits, y)  # mean over the batch of -log softmax(s)[y]
    (dlogits,) = torch.autograd.grad(loss, logits)
    correct = int((logits.argmax(1) == y).sum())
    g = w.group(name, B=B, K=K, correct=correct)
    w.put(g, "logits", logits)
    w.put(g, "labels", y, dtype=np.int32)
    w.put(g, "loss", loss.reshape(1), dtype=np.float64)
    w.put(g, "dlogits", dlogits)


def distill_case(w, name, B, K, T, alpha):
    s = f32(B, K, scale=2.0)
    s[1] *= 20.0
    s = leaf(s)
    t = f32(B, K, scale=3.0)
    y = torch.randint(0, K, (B,))
    # alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE(s, y), mean over the batch
    kl = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    loss = alpha * T * T * kl + (1.0 - alpha) * F.cross_entropy(s, y)
    (dlogits,) = torch.autograd.grad(loss, s)
    correct = int((s.argmax(1) == y).sum())
    g = w.group(name, B=B, K=K, temperature=T, alpha=alpha, correct=correct)
    w.put(g, "logits", s)
    w.put(g, "teacher", t)
    w.put(g, "labels", y, dtype=np.int32)
    w.put(g, "loss", loss.reshape(1), dtype=np.float64)
    w.put(g, "dlogits", dlogits)


def mvconv_case(w, name, noisy):
    B, P, D, K, M, q, rho = 4, 6, 10, 3, 2, 3.0, 0.5
    R = K * M
    x, weight = f32(B, P, D), leaf(f32(R, D, scale=0.3))
    attrs = dict(B=B, P=P, D=D, K=K, M=M, q=q, rho=rho)
    tensors = {"in": x, "weight": weight}
    if noisy:
        # sample ids 0 and 2 use trained coordinates only, 3 straddles n_noise, 5 is all fixed
        n_noise, sigma = 20, 0.7
        ids = torch.tensor([0, 3, 5, 2])
        n_coords = int(ids.max() + 1) * P
        # the fixed weights of coordinates >= n_noise: the C test's NoiseInitFn reads this table
        table = f32(R, n_coords, scale=0.4)
        net = tm.MvConv((P, 1, D), K, M, q, rho, n_noise=n_noise, sigma=sigma,
                        noise_init=lambda rows, coords: table[rows][:, coords].permute(1, 2, 0))
        with torch.no_grad():
            net.noise_weight.copy_(f32(R, n_noise, scale=0.4))
        nw0 = net.noise_weight.detach().clone()
        attrs.update(n_noise=n_noise, sigma=sigma)
        tensors.update(sample_ids=ids, noise_weight=nw0, noise_init_table=table)
    else:
        net = tm.MvConv((P, 1, D), K, M, q, rho)
        ids = None
    with torch.no_grad():
        net.weight.copy_(weight)
    net.double()
    out = net(x, ids)
    dout = f32(B, K)
    params = [net.weight] + ([net.noise_weight] if noisy else [])
    grads = backward(out, dout, *params)
    # pre-activations [B, P, K*M], as the C kernel saves them
    with torch.no_grad():
        pre = x @ net.weight.t()
        if noisy:
            pre = pre + net.noise_pre(ids, pre.dtype)
    tensors.update(out=out, dout=dout, pre=pre, dweight=grads[0])
    if noisy:
        tensors["dnoise_weight"] = grads[1]
    g = w.group(name, **attrs)
    for k, v in tensors.items():
        w.put(g, k, v, dtype=np.int64 if k == "sample_ids" else np.float32)


# ---------------------------------------------------------------------------------------------
RELU_MARGIN = 1e-5


@contextlib.contextmanager
def relu_margin():
    """Within the block, F.relu records the smallest |input| it sees into margin[0]."""
    margin, relu = [math.inf], F.relu

    def recording_relu(x, inplace=False):
        margin[0] = min(margin[0], float(x.detach().abs().min()))
        return relu(x, inplace=inplace)

    F.relu = recording_relu
    try:
        yield margin
    finally:
        F.relu = relu


def resnet_case(w):
    arch, C, H, W, K, B = "resnet-8", 3, 16, 16, 10, 8
    lr, momentum, wd = 0.1, 0.9, 5e-4
    net = tm.build(arch, (C, H, W), K)
    with torch.no_grad():  # non-trivial BN state, so that every BN term is exercised
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(1.0 + 0.2 * torch.randn(n))
                mod.bias.copy_(0.2 * torch.randn(n))
                mod.running_mean.copy_(0.1 * torch.randn(n))
                mod.running_var.copy_(1.0 + 0.5 * torch.rand(n))
    net.double()
    net.train()
    g = w.group("resnet8", arch=arch, C=C, H=H, W=W, K=K, B=B, lr=lr, momentum=momentum,
                weight_decay=wd, nesterov=1, bn_momentum=BN_MOMENTUM, bn_eps=BN_EPS)

    def put_state(grp, which):
        for name, t in net.state_dict().items():
            is_param = name in dict(net.named_parameters())
            if which == "params" and not is_param or which == "buffers" and is_param:
                continue
            w.put(grp, name, t, dtype=np.int64 if t.dtype == torch.int64 else np.float32)

    put_state(w.subgroup(g, "init"), "all")
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=wd,
                          nesterov=True)
    for step in range(3):
        # A ReLU input within float32 rounding of zero flips its mask between float32 and
        # float64 and sends a different gradient into every earlier layer: redraw the batch
        # until every ReLU input is at least RELU_MARGIN away from zero.
        for attempt in range(100):
            x = f32(B, C, H, W)
            with relu_margin() as margin:
                copy.deepcopy(net)(x)
            if margin[0] >= RELU_MARGIN:
                break
        else:
            raise RuntimeError("no batch keeps the ReLU inputs away from zero")
        y = torch.randint(0, K, (B,))
        if step == 0:
            first_x = x
        gb = w.subgroup(g, f"batch{step}")
        w.put(gb, "x", x)
        w.put(gb, "y", y, dtype=np.int32)
        opt.zero_grad()
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        gs = w.subgroup(g, f"step{step}")
        w.put(gs, "loss", loss.detach().reshape(1), dtype=np.float64)
        w.put(gs, "logits", logits)
        opt.step()
        put_state(w.subgroup(gs, "params"), "params")
        put_state(w.subgroup(gs, "buffers"), "buffers")
    net.eval()  # the trained net in eval mode (running statistics) on the first batch
    with torch.no_grad():
        w.put(g, "eval_logits", net(first_x))


def mvconv_model_case(w):
    """The whole mvconv model (sum_of = 2, orth noise, test samples whose noise weights are the
    fixed Philox draws): logits and parameter gradients for an upstream gradient dout."""
    P, D, K, M, B = 4, 8, 3, 2, 4
    spec = dict(mv_filters=M, srelu_q=3.0, srelu_rho=0.5, init_std=0.3, mv_noise_coords=8,
                mv_noise_sigma=0.8, init_seed=7, init_stream=11, sum_of=2)
    net = tm.build("mvconv", (P, 1, D), K, **spec)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape) * 0.3)
    net.double()
    x = f32(B, P, 1, D)
    ids = torch.tensor([0, 1, 5, 9])  # 0, 1: trained noise coordinates; 5, 9: fixed draws
    out = net(x, ids)
    dout = f32(B, K)
    names = [n for n, _ in net.named_parameters()]
    grads = backward(out, dout, *net.parameters())
    g = w.group("mvconv_model", arch="mvconv", C=P, H=1, W=D, K=K, B=B,
                **{k: v for k, v in spec.items()})
    w.put(g, "x", x)
    w.put(g, "sample_ids", ids, dtype=np.int64)
    w.put(g, "logits", out)
    w.put(g, "dlogits", dout)
    gp, gg = w.subgroup(g, "params"), w.subgroup(g, "grads")
    for name, p, d in zip(names, net.parameters(), grads):
        w.put(gp, name, p)
        w.put(gg, name, d)


# (label, arch, (C, H, W), K, options): the C test builds each with model_create and compares
# its tensor table with the torch module's state_dict (names, shapes, trainable flags).
ARCHS = [
    ("mlp", "mlp", (1, 28, 28), 10, {}),
    ("mlp_h64", "mlp", (3, 8, 8), 5, dict(hidden=64)),
    ("cnn", "cnn", (1, 28, 28), 10, {}),
    ("cnn_cifar", "cnn", (3, 32, 32), 100, dict(hidden=96)),
    ("resnet-20", "resnet-20", (3, 32, 32), 10, {}),
    ("resnet-20-proj", "resnet-20-proj", (3, 32, 32), 10, {}),
    ("resnet-14_gray", "resnet-14", (1, 28, 28), 10, {}),
    ("wrn-16-4", "wrn-16-4", (3, 32, 32), 10, {}),
    ("wrn-10-1", "wrn-10-1", (3, 32, 32), 100, {}),
    ("mvconv_noise", "mvconv", (9, 1, 12), 4, dict(mv_filters=3, mv_noise_coords=50)),
    ("resnet-8_sum3", "resnet-8", (3, 32, 32), 10, dict(sum_of=3)),
    ("cnn_random_features", "cnn", (1, 28, 28), 10, dict(random_features=1)),
    ("resnet-8_sum2_random_features", "resnet-8", (3, 32, 32), 10,
     dict(sum_of=2, random_features=1)),
]
NAME_LEN = 128  # TENSOR_NAME_MAX


def arch_case(w, label, arch, in_shape, K, opts):
    net = tm.build(arch, in_shape, K, **opts)
    params = dict(net.named_parameters())
    names, shapes, ndims, trainable, is_param = [], [], [], [], []
    for name, t in net.state_dict().items():
        names.append(name.encode())
        is_param.append(int(name in params))
        ndims.append(t.dim())
        shapes.append(list(t.shape) + [-1] * (4 - t.dim()))
        trainable.append(int(name in params and params[name].requires_grad))
    g = w.group("archs/" + label, arch=arch, C=in_shape[0], H=in_shape[1], W=in_shape[2], K=K,
                param_count=tm.param_count(net),
                trainable_count=tm.param_count(net, trainable_only=True),
                **{k: v for k, v in opts.items()})
    w.put(g, "names", np.array(names, dtype=f"S{NAME_LEN}"), dtype=f"S{NAME_LEN}")
    w.put(g, "ndim", ndims, dtype=np.int32)
    w.put(g, "shape", np.array(shapes).reshape(-1, 4), dtype=np.int64)
    w.put(g, "trainable", trainable, dtype=np.int32)
    w.put(g, "is_param", is_param, dtype=np.int32)


def philox_case(w):
    """Our generator's draws as analysis/torch_models.py computes them (mvconv's fixed noise
    weights in torch depend on it): the C test checks that the library draws the same."""
    seed, stream = 0x0123456789ABCDEF, 0x0102030405060708
    pos = np.array([0, 1, 2, 12345, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFFFFFF,
                    (1 << 63) | (3 << 56) | (7 << 36) | 99], dtype=np.uint64)
    stream_lo, stream_hi = stream & 0xFFFFFFFF, stream >> 32
    blocks = tm.philox4x32_10([pos & np.uint64(0xFFFFFFFF), pos >> np.uint64(32),
                               np.full_like(pos, stream_lo), np.full_like(pos, stream_hi)],
                              (seed & 0xFFFFFFFF, seed >> 32))
    g = w.group("philox", seed=np.uint64(seed), stream=np.uint64(stream))
    w.put(g, "positions", pos, dtype=np.uint64)
    w.put(g, "blocks", blocks.T, dtype=np.uint32)  # [N, 4]
    w.put(g, "normal", tm.rng_normal_at(seed, stream, pos))
    noise = tm.mvconv_noise_init(seed, stream, 0.25, copy=2)(torch.arange(3),
                                                              torch.tensor([[0, 5, 77]]))
    g.attrs["noise_std"], g.attrs["noise_copy"] = 0.25, 2
    w.put(g, "noise_rows", np.arange(3), dtype=np.int32)
    w.put(g, "noise_coords", np.array([0, 5, 77]), dtype=np.int64)
    w.put(g, "noise_weight", noise[0])  # [coords, rows]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "reference.h5")
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    w = Writer(out)
    w.f.attrs["format"] = "ensdistill-reference"
    w.f.attrs["torch_version"] = str(torch.__version__)
    w.f.attrs["numpy_version"] = str(np.__version__)
    w.f.attrs["seed"] = SEED
    w.f.attrs["generator"] = "tests/reference/make_reference.py"
    w.f.attrs["note"] = ("inputs drawn in float32; torch computes in float64 from them; "
                         "results rounded to float32 (losses stored as float64)")

    linear_case(w)
    #                         name                B  C  H  W  OC K  s  p  bias
    conv_case(w, "conv2d_3x3_s1_p1", 2, 3, 7, 6, 4, 3, 1, 1, True)
    conv_case(w, "conv2d_3x3_s2_p1", 2, 3, 7, 6, 4, 3, 2, 1, False)
    conv_case(w, "conv2d_5x5_s1_p2", 2, 3, 7, 6, 4, 5, 1, 2, True)
    conv_case(w, "conv2d_1x1_s1_p0", 2, 5, 4, 5, 6, 1, 1, 0, False)
    conv_case(w, "conv2d_1x1_s2_p0", 2, 5, 7, 6, 6, 1, 2, 0, False)
    conv_case(w, "conv2d_3x3_s1_p1_wide", 5, 8, 8, 8, 16, 3, 1, 1, False)
    batchnorm_case(w, "batchnorm2d_train", (4, 3, 5, 6), True)
    batchnorm_case(w, "batchnorm1d_train", (6, 5), True)
    batchnorm_case(w, "batchnorm2d_eval", (4, 3, 5, 6), False)
    relu_case(w)
    srelu_case(w, "srelu_q3", 3.0, 0.5)
    srelu_case(w, "srelu_q2.5", 2.5, 1.0)
    maxpool_case(w, "maxpool_2x2_s2_p0", 2, 3, 6, 7, 2, 2, 0)
    maxpool_case(w, "maxpool_3x3_s2_p1", 2, 3, 7, 7, 3, 2, 1)
    global_avgpool_case(w)
    shortcut_case(w, "shortcut_a_s2", 2, 4, 7, 7, 8, 2, 2)
    shortcut_case(w, "shortcut_a_s1_asym", 2, 4, 5, 6, 7, 1, 1)
    ce_case(w, "cross_entropy", 6, 5)
    distill_case(w, "distill_T4_a0.9", 6, 5, 4.0, 0.9)
    distill_case(w, "distill_T1_a0.5", 6, 5, 1.0, 0.5)
    distill_case(w, "distill_T2_a1", 6, 5, 2.0, 1.0)
    mvconv_case(w, "mvconv_dense", noisy=False)
    mvconv_case(w, "mvconv_noise", noisy=True)
    w.subgroup(w.f, "archs")
    for label, arch, in_shape, K, opts in ARCHS:
        arch_case(w, label, arch, in_shape, K, opts)
    philox_case(w)
    mvconv_model_case(w)
    resnet_case(w)
    w.f.close()
    print(f"wrote {out}: {os.path.getsize(out) / 1e6:.2f} MB (torch {torch.__version__})")


if __name__ == "__main__":
    main()
