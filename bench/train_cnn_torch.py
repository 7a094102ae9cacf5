#!/usr/bin/python3
"""train_cnn_torch.py - PyTorch reference of the shipped CNN training recipe.

The network is given in the --arch syntax of `tripletctl train` (lib/nn_arch.h):
comma-separated layers conv<out>k<k>[s<s>][p<p>][g<g>], bn, relu, gelu, tanh,
sigmoid, maxpool<k>[s<s>][p<p>], avgpool<k>[s<s>][p<p>], gap, dropout<p>,
flatten, fc<out>; "bn" is BatchNorm2d on an image and BatchNorm1d after
flatten/fc. The output is L2-normalised, squared Euclidean distance, triplet
hinge loss with semi-hard mining (--mining: or batch-hard, batch-all) over PK batches (the miners and the
evaluation are bench/train_torch.py's, which follow lib/mine.c and
lib/eval.c). Inputs are x/255 shaped 1x28x28.

The recipe's options, defined as the C trainer defines them:
  --weight-decay W   torch.optim.Adam's L2 decay (added to the gradient of
                     every parameter, BatchNorm's included)
  --lr-schedule cosine   lr at step t (0-based) of T = epochs * steps:
                         lr * 0.5 * (1 + cos(pi * t / T)); "constant": lr
  --augment crop<P>,flip random crop: zero-pad by P on every side, take a
                         28x28 window at a uniform offset in 0..2P per sample;
                         horizontal flip with probability 1/2 per sample
BatchNorm uses batch statistics while training and running statistics
(momentum 0.1) for the evaluation, as the written ONNX file does.

Run with the tuned allocator for honest timings (see bench/train_torch.py):
  MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \\
  OMP_WAIT_POLICY=PASSIVE bench/train_cnn_torch.py --threads 2 --json
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train_torch import (PKSampler, find_data, load_split, mined_loss, recorded_argv, retrieval, splits,  # noqa: E402
                         sqdist, test_eval)

DEFAULT_ARCH = "conv32k3p1,bn,relu,conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,conv64k3p1,bn,relu,conv64k3p1,bn,relu,maxpool2,conv128k3p1,bn,relu,maxpool2,flatten,fc256,relu,fc128"


def build(arch, c, h, w):
    """nn.Sequential for an --arch string and an input shape c x h x w."""
    layers = []
    flat = False
    for i, tok in enumerate(arch.split(",")):
        m = re.fullmatch(r"conv(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?(?:g(\d+))?", tok)
        if m:
            out, k = int(m[1]), int(m[2])
            s, p, g = int(m[3] or 1), int(m[4] or 0), int(m[5] or 1)
            layers.append(torch.nn.Conv2d(c, out, k, stride=s, padding=p, groups=g))
            c, h, w = out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            continue
        m = re.fullmatch(r"(max|avg)pool(\d+)(?:s(\d+))?(?:p(\d+))?", tok)
        if m:
            k = int(m[2])
            s, p = int(m[3] or k), int(m[4] or 0)
            pool = torch.nn.MaxPool2d if m[1] == "max" else torch.nn.AvgPool2d
            layers.append(pool(k, stride=s, padding=p))
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            continue
        m = re.fullmatch(r"fc(\d+)", tok)
        if m:
            if not flat:
                sys.exit("train_cnn_torch.py: layer %d %s: fc needs a flat input" % (i, tok))
            layers.append(torch.nn.Linear(c, int(m[1])))
            c = int(m[1])
            continue
        m = re.fullmatch(r"dropout([0-9.]+)", tok)
        if m:
            layers.append(torch.nn.Dropout(float(m[1])))
            continue
        if tok == "bn":
            layers.append(torch.nn.BatchNorm1d(c) if flat else torch.nn.BatchNorm2d(c))
        elif tok in ("relu", "tanh", "sigmoid", "gelu"):
            layers.append({"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                           "gelu": torch.nn.GELU}[tok]())
        elif tok == "gap":
            layers.append(torch.nn.AdaptiveAvgPool2d(1))
            h = w = 1
        elif tok == "flatten":
            layers.append(torch.nn.Flatten())
            c, h, w, flat = c * h * w, 1, 1, True
        else:
            sys.exit("train_cnn_torch.py: layer %d %r: unknown" % (i, tok))
    if not flat:
        layers.append(torch.nn.Flatten())
    return torch.nn.Sequential(*layers)


def augment(x, pad, flip, gen):
    """Random crop with zero padding and horizontal flip of a batch N x C x H x W."""
    n, _, h, w = x.shape
    if pad:
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, :]
        x = xp[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if flip:
        f = torch.rand(n, generator=gen) < 0.5
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x.contiguous()


@torch.no_grad()
def embed(model, x, bs=2048):
    model.eval()
    e = torch.cat([model(x[i:i + bs]) for i in range(0, len(x), bs)])
    model.train()
    return F.normalize(e, dim=1, eps=1e-12)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="directory with Fashion-MNIST IDX files (default: searched)")
    ap.add_argument("--arch", default=DEFAULT_ARCH)
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--mining", default="semi-hard", choices=["semi-hard", "batch-hard", "batch-all"])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"])
    ap.add_argument("--augment", default="", help="crop<P>[,flip] or flip (default none)")
    ap.add_argument("--classes-per-batch", type=int, default=10)
    ap.add_argument("--samples-per-class", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=0, help="0: n_train / (P*K)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--open-set", action="store_true", help="train on classes 0-7, evaluate on 8 and 9")
    ap.add_argument("--eval-every", type=int, default=0, help="evaluate after every N epochs too")
    ap.add_argument("--no-eval", action="store_true", help="timing only")
    ap.add_argument("--baseline", action="store_true", help="also evaluate the initial network")
    ap.add_argument("--save", help="write the trained state_dict (torch.save) to this path")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = ap.parse_args()

    crop_pad, flip = 0, False
    for part in filter(None, a.augment.split(",")):
        if re.fullmatch(r"crop\d+", part):
            crop_pad = int(part[4:])
        elif part == "flip":
            flip = True
        else:
            sys.exit("train_cnn_torch.py: --augment %r: expected crop<P>,flip" % a.augment)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = find_data(a.data)
    xtr, ytr = load_split(d, "train")
    xte, yte = load_split(d, "t10k")
    xtr, xte = xtr.view(-1, 1, 28, 28), xte.view(-1, 1, 28, 28)
    xfit, yfit, xq, yq, xg, yg = splits(xtr, ytr, xte, yte, a.open_set)

    model = build(a.arch, 1, 28, 28)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    P, K = a.classes_per_batch, a.samples_per_class
    steps = a.steps_per_epoch or max(1, len(yfit) // (P * K))
    total = steps * a.epochs
    sampler = PKSampler(yfit.numpy(), P, K, rng)
    log = sys.stderr if a.json else sys.stdout

    result = {"script": "bench/train_cnn_torch.py", "torch": torch.__version__, "threads": a.threads,
              "recipe": {"arch": a.arch, "input": "1x28x28", "normalize": True, "metric": "sqeuclidean",
                         "loss": "triplet", "margin": a.margin, "mining": a.mining, "optimizer": "adam",
                         "lr": a.lr, "weight_decay": a.weight_decay, "lr_schedule": a.lr_schedule,
                         "augment": a.augment or "none", "classes_per_batch": P,
                         "samples_per_class": K, "epochs": a.epochs, "steps_per_epoch": steps,
                         "input_scale": 1 / 255.0, "seed": a.seed, "open_set": a.open_set},
              "argv": recorded_argv()}
    if a.baseline and not a.no_eval:
        result["initial_network"] = retrieval(embed(model, xq), yq, embed(model, xg), yg)

    epochs = []
    t = 0
    model.train()
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        tot = act = 0.0
        for _ in range(steps):
            if a.lr_schedule == "cosine":
                for g in opt.param_groups:
                    g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * t / total))
            idx = torch.from_numpy(sampler.batch())
            x = augment(xfit[idx], crop_pad, flip, gen)
            e = F.normalize(model(x), dim=1, eps=1e-12)
            loss, active = mined_loss(sqdist(e), yfit[idx], a.mining, "triplet", a.margin)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss)
            act += active
            t += 1
        sec = time.perf_counter() - t0
        row = {"epoch": ep + 1, "seconds": sec, "loss": tot / steps, "active": act / steps}
        msg = "epoch %d/%d  %.2f s  loss %.4f  active %.3f" % (ep + 1, a.epochs, sec, tot / steps, act / steps)
        if a.eval_every and not a.no_eval and (ep + 1) % a.eval_every == 0 and ep + 1 < a.epochs:
            m = retrieval(embed(model, xq), yq, embed(model, xg), yg)
            row["test"] = m
            msg += "  R@1 %.4f  MAP@R %.4f" % (m["recall_at_1"], m["map_at_r"])
        epochs.append(row)
        print(msg, file=log, flush=True)
    result["epochs"] = epochs
    result["seconds_per_epoch"] = sum(e["seconds"] for e in epochs) / max(1, len(epochs))

    if not a.no_eval:
        test_eval(result, lambda x: embed(model, x), xq, yq, xg, yg, a.open_set, log)
    if a.save:
        torch.save(model.state_dict(), a.save)
    if a.json:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
