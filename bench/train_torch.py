#!/usr/bin/python3
"""train_torch.py - PyTorch reference of the shipped training recipe.

The recipe `tripletctl train` ships (models/README.md): MLP
784-256-128 with ReLU, L2-normalised output, squared Euclidean distance,
triplet hinge loss with margin 0.2, Adam lr 1e-3, PK batches of 10 classes x
16 samples, 10 epochs of 375 batches, inputs x/255, semi-hard mining
(FaceNet; TensorFlow's triplet_semihard_loss). --mining batch-hard and
batch-all, --loss triplet-soft and --no-normalize select the variants.
Mining and reductions follow lib/mine.c and lib/train.c:
  semi-hard   every (a, p) pair; the negative with the smallest D_an > D_ap,
              else the one with the largest D_an; mean over the pairs
  batch-hard  per anchor the farthest positive and the nearest negative;
              mean over the anchors
  batch-all   every valid (a, p, n); hinge: mean over the triplets with
              loss > 0, soft: mean over all
ties -> the smaller index. Mining is vectorised (no Python loops per
triplet), so the time per epoch is a fair reference for the C trainer.

At the end: Recall@1, Recall@5 and MAP@R (Musgrave et al. 2020) of the test
set against the training set as gallery, exact kNN in float64, neighbours
ordered by (distance, index) like lib/knn.c. --open-set trains on classes
0-7 and evaluates on 8 and 9 only.

Run with the tuned allocator for honest timings (large malloc thresholds stop
page faults on fresh tensors; a passive OpenMP wait stops idle threads spinning):
  MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \\
  OMP_WAIT_POLICY=PASSIVE bench/train_torch.py --threads 2 --json
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
# the places lib/data.c searches, in the same order
DEFAULT_DIRS = ["/usr/share/datasets/fashion-mnist", "/usr/local/share/datasets/fashion-mnist",
                os.path.join(HERE, "..", "data", "fashion-mnist")]


def find_data(arg):
    if arg:
        return arg
    env = os.environ.get("TRIPLET_DATA")
    dirs = [env] if env else DEFAULT_DIRS
    for d in dirs:
        for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
            if os.path.isfile(os.path.join(d, name)):
                return d
    sys.exit("train_torch.py: no Fashion-MNIST in %s; give --data or apt-get install dataset-fashion-mnist"
             % ", ".join(dirs))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        b = f.read()
    if b[0] != 0 or b[1] != 0 or b[2] != 8:
        sys.exit("%s: not an IDX ubyte file" % path)
    rank = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    a = np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * rank)
    return a.reshape(dims[0], -1) if rank > 1 else a


def load_split(d, split):
    def pick(kind, idx):
        for name in ("%s-%s-%s-ubyte.gz" % (split, kind, idx), "%s-%s-%s-ubyte" % (split, kind, idx)):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                return p
        sys.exit("%s: no %s-%s-%s-ubyte[.gz]" % (d, split, kind, idx))
    x = read_idx(pick("images", "idx3")).astype(np.float32) / 255.0
    y = read_idx(pick("labels", "idx1")).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


class PKSampler:
    """P classes without replacement, K rows each from a per-class shuffled
    pool that is reshuffled when fewer than K rows are left (lib/train.c)."""

    def __init__(self, labels, P, K, rng):
        self.rng = rng
        self.P, self.K = P, K
        self.classes = np.unique(labels)
        self.pool = [np.flatnonzero(labels == c) for c in self.classes]
        self.cursor = [len(p) for p in self.pool]  # shuffle on first use

    def batch(self):
        out = []
        for ci in self.rng.choice(len(self.classes), self.P, replace=False):
            pool = self.pool[ci]
            if len(pool) < self.K:
                out.append(self.rng.choice(pool, self.K))
                continue
            if self.cursor[ci] + self.K > len(pool):
                self.rng.shuffle(pool)
                self.cursor[ci] = 0
            out.append(pool[self.cursor[ci]:self.cursor[ci] + self.K])
            self.cursor[ci] += self.K
        return np.concatenate(out)


def sqdist(e):
    return ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)


def hinge_or_soft(x, loss, margin):
    return F.softplus(x) if loss == "triplet-soft" else F.relu(x + margin)


def mined_loss(D, y, mining, loss, margin):
    """Loss and the fraction of mined triplets with loss > 0."""
    B = len(y)
    same = y[:, None] == y[None, :]
    eye = torch.eye(B, dtype=torch.bool)
    pos = same & ~eye
    neg = ~same
    Dd = D.detach()
    if mining == "batch-hard":
        p = torch.where(pos, Dd, torch.full_like(Dd, -np.inf)).argmax(1)
        n = torch.where(neg, Dd, torch.full_like(Dd, np.inf)).argmin(1)
        a = torch.arange(B)
        t = hinge_or_soft(D[a, p] - D[a, n], loss, margin)
        return t.mean(), float((t > 0).float().mean())
    if mining == "semi-hard":
        a, p = pos.nonzero(as_tuple=True)
        dap = Dd[a, p]
        V = Dd[a]
        nm = neg[a]
        semi = nm & (V > dap[:, None])
        n_semi = torch.where(semi, V, torch.full_like(V, np.inf)).argmin(1)
        n_fb = torch.where(nm, V, torch.full_like(V, -np.inf)).argmax(1)
        n = torch.where(semi.any(1), n_semi, n_fb)
        t = hinge_or_soft(D[a, p] - D[a, n], loss, margin)
        return t.mean(), float((t > 0).float().mean())
    # batch-all
    valid = pos[:, :, None] & neg[:, None, :]
    t = hinge_or_soft(D[:, :, None] - D[:, None, :], loss, margin)[valid]
    active = t > 0
    if loss == "triplet":
        k = int(active.sum())
        return (t.sum() / k if k else t.sum() * 0), float(active.float().mean())
    return t.mean(), float(active.float().mean())


@torch.no_grad()
def embed(model, x, normalize, bs=4096):
    out = [model(x[i:i + bs]) for i in range(0, len(x), bs)]
    e = torch.cat(out)
    return F.normalize(e, dim=1, eps=1e-12) if normalize else e


@torch.no_grad()
def recorded_argv():
    """The command line as the result records it: absolute paths reduced to their file names, so that a result
    says nothing about the machine it ran on."""
    return [os.path.basename(x) if os.path.isabs(x) else x for x in sys.argv[1:]]


def retrieval(q, ql, g, gl, block=256):
    """Recall@1, Recall@5, MAP@R of q against g; squared Euclidean in float64,
    neighbours by (distance, index)."""
    q = q.double()
    g = g.double()
    gn = (g * g).sum(1)
    counts = torch.bincount(gl, minlength=int(max(gl.max(), ql.max())) + 1)
    R = counts[ql]
    kmax = int(max(5, R.max()))
    s1 = s5 = smap = 0.0
    scored = 0
    for i in range(0, len(q), block):
        qb = q[i:i + block]
        d = (qb * qb).sum(1)[:, None] + gn[None, :] - 2.0 * qb @ g.T
        d.clamp_(min=0)
        # a slack of candidates, then an exact (distance, index) order
        kc = min(len(g), kmax + 16)
        val, idx = torch.topk(d, kc, dim=1, largest=False, sorted=False)
        o1 = torch.argsort(idx, dim=1)
        val, idx = val.gather(1, o1), idx.gather(1, o1)
        o2 = torch.sort(val, dim=1, stable=True).indices
        idx = idx.gather(1, o2)
        rel = gl[idx] == ql[i:i + block, None]
        for j in range(len(qb)):
            r = int(R[i + j])
            if r == 0:
                continue
            rj = rel[j]
            s1 += float(rj[0])
            s5 += float(rj[:5].any())
            top = rj[:r].double()
            prec = torch.cumsum(top, 0) / torch.arange(1, r + 1, dtype=torch.float64)
            smap += float((prec * top).sum()) / r
            scored += 1
    return {"recall_at_1": s1 / scored, "recall_at_5": s5 / scored, "map_at_r": smap / scored,
            "n_queries": scored}


def splits(xtr, ytr, xte, yte, open_set):
    """(x_fit, y_fit, x_query, y_query, x_gallery, y_gallery): train on everything and query the
    test set against the training set; open_set: train on classes 0-7, query and gallery 8 and 9."""
    if open_set:
        seen = ytr < 8
        qm, gm = yte >= 8, ytr >= 8
        return xtr[seen], ytr[seen], xte[qm], yte[qm], xtr[gm], ytr[gm]
    return xtr, ytr, xte, yte, xtr, ytr


def test_eval(result, emb, xq, yq, xg, yg, open_set, log):
    """The final test: retrieval of emb(xq) against emb(xg) into result["test"], its time, one line to log."""
    t0 = time.perf_counter()
    result["test"] = retrieval(emb(xq), yq, emb(xg), yg)
    result["eval_seconds"] = time.perf_counter() - t0
    m = result["test"]
    print("test->train (%s): Recall@1 %.4f  Recall@5 %.4f  MAP@R %.4f"
          % ("classes 8,9" if open_set else "all classes", m["recall_at_1"], m["recall_at_5"], m["map_at_r"]),
          file=log, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="directory with Fashion-MNIST IDX files (default: searched)")
    ap.add_argument("--arch", default="784-256-128")
    ap.add_argument("--no-normalize", action="store_true")
    ap.add_argument("--mining", default="semi-hard", choices=["semi-hard", "batch-hard", "batch-all"])
    ap.add_argument("--loss", default="triplet", choices=["triplet", "triplet-soft"])
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--classes-per-batch", type=int, default=10)
    ap.add_argument("--samples-per-class", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=0, help="0: n_train / (P*K)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--open-set", action="store_true", help="train on classes 0-7, evaluate on 8 and 9")
    ap.add_argument("--no-eval", action="store_true", help="timing only")
    ap.add_argument("--baseline", action="store_true", help="also evaluate raw pixels and the initial network")
    ap.add_argument("--save", help="write the trained model (safetensors, proto/export.py)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = find_data(a.data)
    xtr, ytr = load_split(d, "train")
    xte, yte = load_split(d, "t10k")
    xtr_fit, ytr_fit, xq, yq, xg, yg = splits(xtr, ytr, xte, yte, a.open_set)

    dims = [int(v) for v in a.arch.split("-")]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    normalize = not a.no_normalize
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    P, K = a.classes_per_batch, a.samples_per_class
    steps = a.steps_per_epoch or max(1, len(ytr_fit) // (P * K))
    n_classes = len(np.unique(ytr_fit.numpy()))
    if P > n_classes:
        sys.exit("train_torch.py: --classes-per-batch %d is more than the %d training classes" % (P, n_classes))
    sampler = PKSampler(ytr_fit.numpy(), P, K, rng)
    log = sys.stderr if a.json else sys.stdout

    result = {"script": "bench/train_torch.py", "torch": torch.__version__, "threads": a.threads,
              "recipe": {"arch": a.arch, "activation": "relu", "normalize": normalize, "metric": "sqeuclidean",
                         "loss": a.loss, "margin": a.margin, "mining": a.mining, "optimizer": "adam",
                         "lr": a.lr, "classes_per_batch": P, "samples_per_class": K, "epochs": a.epochs,
                         "steps_per_epoch": steps, "input_scale": 1 / 255.0, "seed": a.seed,
                         "open_set": a.open_set},
              "argv": recorded_argv()}
    if a.baseline and not a.no_eval:
        result["raw_pixels"] = retrieval(xq, yq, xg, yg)
        result["initial_network"] = retrieval(embed(model, xq, normalize), yq, embed(model, xg, normalize), yg)

    epochs = []
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        tot = act = 0.0
        for _ in range(steps):
            idx = torch.from_numpy(sampler.batch())
            e = model(xtr_fit[idx])
            if normalize:
                e = F.normalize(e, dim=1, eps=1e-12)
            loss, active = mined_loss(sqdist(e), ytr_fit[idx], a.mining, a.loss, a.margin)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss)
            act += active
        sec = time.perf_counter() - t0
        epochs.append({"epoch": ep + 1, "seconds": sec, "loss": tot / steps, "active": act / steps})
        print("epoch %d/%d  %.2f s  loss %.4f  active %.3f" % (ep + 1, a.epochs, sec, tot / steps, act / steps),
              file=log, flush=True)
    result["epochs"] = epochs
    result["seconds_per_epoch"] = sum(e["seconds"] for e in epochs) / max(1, len(epochs))

    if not a.no_eval:
        test_eval(result, lambda x: embed(model, x, normalize), xq, yq, xg, yg, a.open_set, log)
    if a.save:
        sys.path.insert(0, os.path.join(HERE, "..", "proto"))
        from export import save_model
        sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
        sd["input.mean"] = torch.zeros(dims[0])
        sd["input.scale"] = torch.full((dims[0],), 1 / 255.0)
        save_model(a.save, sd, {"activation": "relu", "normalize": "true" if normalize else "false",
                                "metric": "sqeuclidean", "loss": a.loss, "margin": str(a.margin),
                                "name": "fashion-mnist-torch-reference",
                                "training": "bench/train_torch.py " + " ".join(sys.argv[1:])})
    if a.json:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
