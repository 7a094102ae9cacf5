#!/usr/bin/python3
"""gen_train.py - PyTorch autograd reference gradients for lib/train.c.

A small MLP (6-5-4, ReLU) with float32 weights, a PK batch of 3 classes x 4
samples, and for every loss x metric x normalize (x mining for the triplet
losses) the batch loss and its gradient with respect to every parameter,
computed by torch autograd in float64. Mining follows lib/mine.h on the
float64 distance matrix; reductions follow lib/train.c (mean over the mined
triplets; batch-all hinge: mean over the triplets with loss > 0;
contrastive and contrastive-squared: mean over all pairs i < j, whatever
the miner). Writes tests/golden/golden_train.h;
run it from anywhere: python3 tests/golden/gen_train.py
The output is committed so `make test` does not need torch.
"""
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS = ["sqeuclidean", "euclidean", "cosine", "dot"]
MININGS = ["batch-hard", "semi-hard", "batch-all"]
DIMS = [6, 5, 4]
P, K = 3, 4
MARGIN = 0.2


def mlp(params, x, normalize):
    h = x
    nl = len(DIMS) - 1
    for l in range(nl):
        w, b = params[2 * l], params[2 * l + 1]
        h = h @ w.T + b
        if l + 1 < nl:
            h = torch.relu(h)
    if normalize:
        h = torch.nn.functional.normalize(h, p=2.0, dim=1, eps=1e-12)
    return h


def dist(metric, a, b):
    if metric == "sqeuclidean":
        return ((a - b) ** 2).sum(-1)
    if metric == "euclidean":
        return ((a - b) ** 2).sum(-1).sqrt()
    if metric == "cosine":
        return 1 - (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return -(a * b).sum(-1)


def mine(strategy, D, labels):
    n = len(labels)
    out = []
    for a in range(n):
        pos = [j for j in range(n) if j != a and labels[j] == labels[a]]
        neg = [j for j in range(n) if labels[j] != labels[a]]
        if strategy == "batch-hard":
            p = max(pos, key=lambda j: (D[a, j], -j))
            ng = min(neg, key=lambda j: (D[a, j], j))
            out.append((a, p, ng))
        elif strategy == "semi-hard":
            for p in pos:
                semi = [j for j in neg if D[a, j] > D[a, p]]
                if semi:
                    ng = min(semi, key=lambda j: (D[a, j], j))
                else:
                    ng = max(neg, key=lambda j: (D[a, j], -j))
                out.append((a, p, ng))
        else:
            for p in pos:
                for ng in neg:
                    out.append((a, p, ng))
    return out


def batch_loss(e, labels, loss, metric, mining):
    """The loss of a batch of embeddings e (rows by label): the pair losses over all pairs i < j (a
    similar pair costs d, a dissimilar one max(0, margin - d); contrastive-squared squares either), else
    over the triplets mine() picks on the float64 distances, reduced as lib/train.c does."""
    n = len(labels)
    if loss in ("contrastive", "contrastive-squared"):
        tot = 0
        cnt = 0
        for i in range(n):
            for j in range(i + 1, n):
                d = dist(metric, e[i], e[j])
                l = d if labels[i] == labels[j] else torch.clamp(MARGIN - d, min=0)
                tot = tot + (l * l if loss == "contrastive-squared" else l)
                cnt += 1
        return tot / cnt
    with torch.no_grad():
        D = np.array([[float(dist(metric, e[i], e[j])) if i != j else 0.0 for j in range(n)] for i in range(n)])
    trip = mine(mining, D, labels)
    a, p, ng = (torch.tensor([t[k] for t in trip]) for k in range(3))
    dap = dist(metric, e[a], e[p])
    dan = dist(metric, e[a], e[ng])
    if loss == "triplet":
        l = torch.clamp(dap - dan + MARGIN, min=0)
        if mining == "batch-all":
            npos = int((l > 0).sum())
            return l.sum() / npos if npos else l.sum() * 0
        return l.mean()
    return torch.nn.functional.softplus(dap - dan).mean()


def loss_cases():
    """Every (loss, metric, normalize, mining) of the golden loss cases: the triplet losses with
    each miner, contrastive (over all pairs) once, then contrastive-squared with each miner (which
    a pair loss ignores: the trainer must too)."""
    return [(loss, metric, normalize, mining) for loss in ["triplet", "triplet-soft", "contrastive"]
            for metric in METRICS for normalize in [0, 1]
            for mining in (MININGS if loss != "contrastive" else ["batch-all"])] + \
        [("contrastive-squared", metric, normalize, mining) for metric in METRICS for normalize in [0, 1]
         for mining in MININGS]


def loss_case_table(ctype, table, rows):
    """C source of the row type ctype and the array table: rows of (loss, metric, normalize, mining,
    loss value, name of the gradient array)."""
    return ("\ntypedef struct {\n    const char *loss, *metric;\n    int normalize;\n    const char *mining;\n"
            "    double loss_value;\n    const double *grad;\n} %s;\n\nstatic const %s %s[] = {\n" % (ctype, ctype, table)
            + "".join("    {\"%s\", \"%s\", %d, \"%s\", %.17g, %s},\n" % r for r in rows) + "};\n")


def case_loss(params, x, labels, loss, metric, normalize, mining):
    return batch_loss(mlp(params, x, normalize), labels, loss, metric, mining)


def c_arr(ctype, name, vals, fmt):
    return "static const %s %s[] = {%s};\n" % (ctype, name, ", ".join(fmt % v for v in vals))


def main():
    g = torch.Generator().manual_seed(20261129)
    params = []
    for l in range(len(DIMS) - 1):
        bound = 1 / np.sqrt(DIMS[l])
        params.append((torch.rand(DIMS[l + 1], DIMS[l], generator=g) * 2 - 1) * bound * 2)
        params.append(torch.rand(DIMS[l + 1], generator=g) * bound + 0.5 * bound)
    params = [p.float() for p in params]
    labels = [c for c in range(P) for _ in range(K)]
    x = (torch.randn(P * K, DIMS[0], generator=g) + torch.tensor(labels).unsqueeze(1) * 0.5).float()

    # no degenerate batch: every hidden unit alive somewhere, no two embeddings equal
    with torch.no_grad():
        h = torch.relu(x.double() @ params[0].double().T + params[1].double())
        assert (h > 0).any(0).all() and (h > 0).any(1).all(), "dead hidden units"
        e = mlp([p.double() for p in params], x.double(), False)
        assert torch.pdist(e).min() > 1e-2, "coincident embeddings"
    flat_w = torch.cat([p.reshape(-1) for p in params]).tolist()
    cases = []
    for case in loss_cases():
        p64 = [p.double().clone().requires_grad_(True) for p in params]
        l = case_loss(p64, x.double(), labels, *case)
        l.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in p64])
        assert torch.isfinite(grad).all() and torch.isfinite(l), case
        cases.append(case + (float(l), grad.tolist()))

    # three Adam steps (lr 1e-2, weight decay 0.01) on the same batch, mining redone each step
    adam_case = ("triplet", "sqeuclidean", 1, "batch-all")
    p64 = [p.double().clone().requires_grad_(True) for p in params]
    opt = torch.optim.Adam(p64, lr=1e-2, weight_decay=0.01)
    for _ in range(3):
        opt.zero_grad()
        case_loss(p64, x.double(), labels, *adam_case).backward()
        opt.step()
    adam_w = torch.cat([p.detach().reshape(-1) for p in p64]).tolist()

    out = ["/* golden_train.h - generated by tests/golden/gen_train.py from PyTorch %s; do not edit. */\n" % torch.__version__,
           "#ifndef GOLDEN_TRAIN_H\n#define GOLDEN_TRAIN_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n",
           "#define GT_ARCH \"%s\"\n" % "-".join(str(d) for d in DIMS),
           "#define GT_P %d\n#define GT_K %d\n#define GT_N %d\n#define GT_DIM %d\n#define GT_MARGIN %r\n" % (P, K, P * K, DIMS[0], MARGIN),
           "#define GT_NPARAMS %d\n\n" % len(flat_w),
           c_arr("float", "gt_x", x.reshape(-1).tolist(), "%.9g"),
           c_arr("int64_t", "gt_labels", labels, "%d"),
           c_arr("float", "gt_w", flat_w, "%.9g"), "\n"]
    for i, c in enumerate(cases):
        out.append(c_arr("double", "gt_grad_%d" % i, c[5], "%.17g"))
    out.append("\n/* %s/%s/normalize=%d/%s: weights after 3 Adam steps, lr 1e-2, weight decay 0.01 */\n" % adam_case)
    out.append(c_arr("double", "gt_adam_w3", adam_w, "%.17g"))
    out.append(loss_case_table("golden_train_case", "golden_train_cases",
                               [c[:5] + ("gt_grad_%d" % i,) for i, c in enumerate(cases)]))
    out.append("\n#endif\n")
    with open(os.path.join(HERE, "golden_train.h"), "w") as f:
        f.write("".join(out))
    print("wrote %d cases" % len(cases))


if __name__ == "__main__":
    main()
