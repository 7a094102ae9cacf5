#!/usr/bin/python3
"""residual_torch.py - does a residual block pay for itself in the shipped CNN recipe?

bench/train_cnn_torch.py with one more layer token, res<c>: a residual block
(Conv 3x3 pad 1, BatchNorm, ReLU, Conv 3x3 pad 1, BatchNorm, plus the block's
input, ReLU) on c channels, placed after the last max pool (3x3 planes; the
arch must put it there). Everything else (data, sampler, miner, loss, Adam,
schedule, evaluation, options) is train_cnn_torch.py's. The comparison in
models/README.md: the three-block arch (shipped before), the same arch with res128 after the last
pool, and with two plain Conv-BN-ReLU layers of 128 channels there instead:

  bench/residual_torch.py --threads 1 --epochs 10 --lr-schedule cosine --json \\
      --arch conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,maxpool2,conv128k3p1,bn,relu,maxpool2,res128,flatten,fc256,relu,fc128
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_cnn_torch as T  # noqa: E402

plain_build = T.build


class Residual(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.f = torch.nn.Sequential(torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.BatchNorm2d(c), torch.nn.ReLU(),
                                     torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.BatchNorm2d(c))

    def forward(self, x):
        return torch.relu(x + self.f(x))


def build(arch, c, h, w):
    """train_cnn_torch.build, with a res<c> token on the 3x3 planes after the last pool."""
    toks = arch.split(",")
    i = next((k for k, t in enumerate(toks) if t.startswith("res")), None)
    if i is None:
        return plain_build(arch, c, h, w)
    ch = int(toks[i][3:])
    head = [m for m in plain_build(",".join(toks[:i]), c, h, w) if not isinstance(m, torch.nn.Flatten)]
    tail = list(plain_build(",".join(toks[i + 1:]), ch, 3, 3))
    return torch.nn.Sequential(*head, Residual(ch), *tail)


T.build = build
if __name__ == "__main__":
    T.main()
