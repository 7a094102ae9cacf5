#!/usr/bin/python3
"""gen_nn.py - PyTorch autograd references for lib/nn_*.c and the CNN trainer.

Per layer (and for small whole networks): an input batch, parameters in the
flat PyTorch order of lib/nn_arch.h, BN running statistics, an upstream
gradient dy; torch (float64) gives the output, dL/dx and dL/dparams for
L = sum(y * dy), and the running statistics after a training forward.
Then a small CNN on 1x6x6 images with a PK batch (3 x 4), inputs
standardised with the batch's own mean and std (the trainer's per-channel
preprocessing when the batch is all its data): for every loss, metric,
normalize and miner, the batch loss and its parameter gradient (mining and
reductions as tests/golden/gen_train.py). Last, dropout in training: its
mask is the one lib/nn_act.c draws from the seeded generator of lib/rng.c
(reproduced here, one uniform per value in memory order, dropped when it is
below p), y = x * mask / (1 - p) and its gradients by autograd. Writes
tests/golden/golden_nn.h; run it with Debian's /usr/bin/python3 (torch
1.13). The output is committed so `make test` does not need torch.
"""
import os
import re
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_train import MARGIN, batch_loss, loss_case_table, loss_cases  # noqa: E402

ACTS = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}


def build(arch, shape):
    """torch.nn.Sequential for an --arch layer list on a per-sample shape (c, h, w)."""
    c, h, w = shape
    mods = []
    for tok in arch.split(","):
        m = re.fullmatch(r"conv(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?(?:g(\d+))?", tok)
        if m:
            o, k, s, p, g = int(m[1]), int(m[2]), int(m[3] or 1), int(m[4] or 0), int(m[5] or 1)
            mods.append(torch.nn.Conv2d(c, o, k, stride=s, padding=p, groups=g))
            c, h, w = o, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            continue
        m = re.fullmatch(r"(max|avg)pool(\d+)(?:s(\d+))?(?:p(\d+))?", tok)
        if m:
            k, s, p = int(m[2]), int(m[3] or m[2]), int(m[4] or 0)
            cls = torch.nn.MaxPool2d if m[1] == "max" else torch.nn.AvgPool2d
            mods.append(cls(k, stride=s, padding=p))
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            continue
        m = re.fullmatch(r"fc(\d+)", tok)
        if m:
            mods.append(FC(c * h * w, int(m[1])))
            c, h, w = int(m[1]), 1, 1
            continue
        m = re.fullmatch(r"dropout([0-9.]+)", tok)
        if m:
            mods.append(MaskedDropout(float(m[1])))
        elif tok == "bn":
            mods.append(torch.nn.BatchNorm2d(c) if h * w > 1 else BN1d(c))
        elif tok == "gap":
            mods.append(torch.nn.AdaptiveAvgPool2d(1))
            h = w = 1
        elif tok == "flatten":
            mods.append(torch.nn.Flatten())
            c, h, w = c * h * w, 1, 1
        elif tok in ACTS:
            mods.append(ACTS[tok]())
        else:
            raise ValueError(tok)
    return torch.nn.Sequential(*mods).double()


class FC(torch.nn.Linear):
    """Linear over the flattened sample (lib/nn_arch.h: an fc input is c x 1 x 1)."""

    def forward(self, x):
        return super().forward(x.reshape(x.shape[0], -1))


class BN1d(torch.nn.BatchNorm1d):
    """BatchNorm over c x 1 x 1 samples (lib/nn_arch.h's flat shape) as BatchNorm1d does."""

    def forward(self, x):
        return super().forward(x.reshape(x.shape[0], -1)).reshape(x.shape)


class Xoshiro:
    """lib/rng.c's xoshiro256** seeded with splitmix64, to know the dropout mask the C layer draws."""

    M = (1 << 64) - 1

    def __init__(self, seed):
        self.s = []
        for _ in range(4):
            seed = (seed + 0x9E3779B97F4A7C15) & self.M
            z = seed
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.M
            self.s.append(z ^ (z >> 31))

    def rotl(self, x, k):
        return ((x << k) | (x >> (64 - k))) & self.M

    def uniform(self):
        s = self.s
        r = (self.rotl((s[1] * 5) & self.M, 7) * 9) & self.M
        t = (s[1] << 17) & self.M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self.rotl(s[3], 45)
        return (r >> 11) * 2.0 ** -53


class MaskedDropout(torch.nn.Module):
    """Inverted dropout with the mask drawn from self.rng (a Xoshiro): y = x * mask / (1 - p)."""

    def __init__(self, p):
        super().__init__()
        self.p = float(torch.tensor(p, dtype=torch.float32))  # the C layer keeps p as a float
        self.rng = None
        self.mask = None

    def forward(self, x):
        if not self.training:
            return x
        keep = [0.0 if self.rng.uniform() < self.p else 1.0 for _ in range(x.numel())]
        self.mask = torch.tensor(keep, dtype=torch.float64).reshape(x.shape)
        return x * self.mask / (1 - self.p)


def params_of(net):
    return [p for p in net.parameters()]


def state_of(net):
    out = []
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d) or isinstance(m, torch.nn.BatchNorm2d):
            out += [m.running_mean, m.running_var]
    return out


def flat(ts):
    return torch.cat([t.detach().reshape(-1) for t in ts]) if ts else torch.zeros(0, dtype=torch.float64)


def randomise(net, g):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * 0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) * 2 - 1) * 0.5)
    # float32 values, computed in float64
    for t in params_of(net) + state_of(net):
        t.data.copy_(t.data.float().double())


# (arch, input shape, batch, train)
LAYER_CASES = [
    ("conv4k3p1", (2, 5, 5), 2, 1),
    ("conv4k3s2p1g2", (2, 6, 6), 2, 1),
    ("conv3k2", (3, 4, 5), 3, 1),
    ("fc3", (4, 1, 1), 3, 1),
    ("bn", (3, 4, 4), 3, 1),
    ("bn", (3, 4, 4), 3, 0),
    ("bn", (5, 1, 1), 4, 1),
    ("maxpool2", (2, 5, 5), 2, 1),
    ("maxpool3s2p1", (2, 6, 6), 2, 1),
    ("avgpool2", (2, 5, 4), 2, 1),
    ("avgpool3s2p1", (2, 6, 6), 2, 1),
    ("gap", (3, 3, 4), 2, 1),
    ("relu", (2, 3, 3), 2, 1),
    ("gelu", (2, 3, 3), 2, 1),
    ("tanh", (2, 3, 3), 2, 1),
    ("sigmoid", (2, 3, 3), 2, 1),
    ("flatten,fc4", (2, 3, 3), 2, 1),
    ("conv4k3p1,bn,relu,maxpool2,conv6k3p1g2,bn,gelu,avgpool2,flatten,fc8,tanh,bn,fc5", (1, 8, 8), 4, 1),
    ("conv4k3p1,bn,relu,maxpool2,conv6k3p1g2,bn,gelu,avgpool2,flatten,fc8,tanh,bn,fc5", (1, 8, 8), 4, 0),
    ("conv4k3s2,sigmoid,gap,flatten,fc3", (2, 7, 7), 3, 1),
    # batch norm and relu run as one (lib/nn_net.c): first, after a convolution, after an fc, before a pool they
    # do not take in
    ("bn,relu", (3, 4, 4), 3, 1),
    ("bn,relu", (3, 4, 4), 3, 0),
    ("conv4k3p1,bn,relu,conv4k3p1,bn,relu,maxpool2,flatten,fc6,bn,relu,fc3", (2, 6, 6), 4, 1),
    ("bn,relu,maxpool3s2p1", (2, 6, 6), 2, 1),
]

# dropout in training: (arch, input shape, batch, seed of the mask's generator)
DROPOUT_CASES = [
    ("dropout0.25", (3, 4, 4), 2, 11),
    ("dropout0.5,fc3", (10, 1, 1), 4, 12),
    ("conv4k3p1,bn,relu,dropout0.3,maxpool2,flatten,fc5", (1, 6, 6), 3, 13),
]

CNN_ARCH = "conv3k3p1,bn,relu,maxpool2,conv4k3,relu,flatten,fc4"
CNN_SHAPE = (1, 6, 6)
P, K = 3, 4


def layer_case(g, arch, shape, n, train):
    net = build(arch, shape)
    randomise(net, g)
    x = (torch.randn((n,) + shape, generator=g)).float().double().requires_grad_(True)
    p0, s0 = flat(params_of(net)), flat(state_of(net))
    net.train(bool(train))
    y = net(x)
    dy = torch.randn(y.shape, generator=g).float().double()
    (y * dy).sum().backward()
    grads = flat([p.grad for p in params_of(net)])
    return dict(arch=arch, shape=shape, n=n, train=train, x=x.detach(), params=p0, state=s0, dy=dy, y=y.detach(),
                dx=x.grad, grads=grads, state_after=flat(state_of(net)))


def dropout_case(g, arch, shape, n, seed):
    net = build(arch, shape)
    randomise(net, g)
    drops = [m for m in net.modules() if isinstance(m, MaskedDropout)]
    assert len(drops) == 1
    drops[0].rng = Xoshiro(seed)
    x = torch.randn((n,) + shape, generator=g).float().double().requires_grad_(True)
    p0, s0 = flat(params_of(net)), flat(state_of(net))
    net.train()
    y = net(x)
    dy = torch.randn(y.shape, generator=g).float().double()
    (y * dy).sum().backward()
    mask = drops[0].mask
    assert 0 < mask.sum() < mask.numel()
    return dict(arch=arch, shape=shape, n=n, seed=seed, x=x.detach(), params=p0, state=s0, dy=dy, mask=mask,
                y=y.detach(), dx=x.grad, grads=flat([p.grad for p in params_of(net)]))


def cnn_loss(net, x, labels, loss, metric, normalize, mining):
    e = net(x).reshape(len(labels), -1)
    if normalize:
        e = torch.nn.functional.normalize(e, p=2.0, dim=1, eps=1e-12)
    return batch_loss(e, labels, loss, metric, mining)


def c_arr(name, t):
    vals = t.reshape(-1).tolist() if hasattr(t, "reshape") else t
    return "static const double %s[] = {%s};\n" % (name, ", ".join("%.10g" % v for v in vals) or "0")


def main():
    g = torch.Generator().manual_seed(20261205)
    out = ["/* golden_nn.h - generated by tests/golden/gen_nn.py from PyTorch %s; do not edit. */\n" % torch.__version__,
           "#ifndef GOLDEN_NN_H\n#define GOLDEN_NN_H\n\n"]
    cases = [layer_case(g, *c) for c in LAYER_CASES]
    fields = ["x", "params", "state", "dy", "y", "dx", "grads", "state_after"]
    for i, c in enumerate(cases):
        for f in fields:
            out.append(c_arr("gn_%d_%s" % (i, f), c[f]))
    out.append("\ntypedef struct {\n    const char *arch;\n    int c, h, w, n, train;\n"
               "    const double *x, *params, *state, *dy, *y, *dx, *grads, *state_after;\n} golden_nn_case;\n\n"
               "static const golden_nn_case golden_nn_cases[] = {\n")
    for i, c in enumerate(cases):
        out.append("    {\"%s\", %d, %d, %d, %d, %d, %s},\n" % (c["arch"], *c["shape"], c["n"], c["train"],
                                                            ", ".join("gn_%d_%s" % (i, f) for f in fields)))
    out.append("};\n\n")

    # the whole CNN with every loss, metric, normalisation and miner
    net = build(CNN_ARCH, CNN_SHAPE)
    randomise(net, g)
    labels = [c for c in range(P) for _ in range(K)]
    x = (torch.rand((P * K,) + CNN_SHAPE, generator=g) + torch.tensor(labels).reshape(-1, 1, 1, 1) * 0.3)
    x = x.float().double()
    # the trainer's preprocessing: per channel (one here), the mean and population std of its training data
    xp = (x - x.mean()) / x.std(unbiased=False)
    p0, s0 = flat(params_of(net)), flat(state_of(net))
    out.append("#define GN_CNN_ARCH \"%s\"\n#define GN_CNN_C %d\n#define GN_CNN_H %d\n#define GN_CNN_W %d\n" %
               ((CNN_ARCH,) + CNN_SHAPE))
    out.append("#define GN_P %d\n#define GN_K %d\n#define GN_MARGIN %r\n" % (P, K, MARGIN))
    out += [c_arr("gn_cnn_x", x), c_arr("gn_cnn_params", p0), c_arr("gn_cnn_state", s0)]
    rows = []
    for case in loss_cases():
        net.train()
        with torch.no_grad():
            for t, v in zip(params_of(net), torch.split(p0, [q.numel() for q in params_of(net)])):
                t.copy_(v.reshape(t.shape))
            for t, v in zip(state_of(net), torch.split(s0, [q.numel() for q in state_of(net)])):
                t.copy_(v.reshape(t.shape))
        net.zero_grad()
        l = cnn_loss(net, xp, labels, *case)
        l.backward()
        grad = flat([p.grad for p in params_of(net)])
        assert torch.isfinite(grad).all() and torch.isfinite(l)
        name = "gn_cnn_grad_%d" % len(rows)
        out.append(c_arr(name, grad))
        rows.append(case + (float(l), name))
    out.append(loss_case_table("golden_cnn_case", "golden_cnn_cases", rows))

    # dropout, on a generator of its own so that the cases above stay as they were
    gd = torch.Generator().manual_seed(20261206)
    drops = [dropout_case(gd, *c) for c in DROPOUT_CASES]
    dfields = ["x", "params", "state", "dy", "mask", "y", "dx", "grads"]
    out.append("\n")
    for i, c in enumerate(drops):
        for f in dfields:
            out.append(c_arr("gd_%d_%s" % (i, f), c[f]))
    out.append("\n/* dropout in training: mask[i] is 0 (dropped) or 1 (kept, scaled by 1 / (1 - p)) */\n"
               "typedef struct {\n    const char *arch;\n    int c, h, w, n;\n    unsigned seed;\n"
               "    const double *x, *params, *state, *dy, *mask, *y, *dx, *grads;\n} golden_dropout_case;\n\n"
               "static const golden_dropout_case golden_dropout_cases[] = {\n")
    for i, c in enumerate(drops):
        out.append("    {\"%s\", %d, %d, %d, %d, %d, %s},\n" % (c["arch"], *c["shape"], c["n"], c["seed"],
                                                                ", ".join("gd_%d_%s" % (i, f) for f in dfields)))
    out.append("};\n")
    out.append("\n#endif\n")
    with open(os.path.join(HERE, "golden_nn.h"), "w") as f:
        f.write("".join(out))
    print("wrote %d layer cases, %d CNN loss cases, %d dropout cases" % (len(cases), len(rows), len(drops)))


if __name__ == "__main__":
    main()
