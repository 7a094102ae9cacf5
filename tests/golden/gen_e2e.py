#!/usr/bin/python3
"""gen_e2e.py - PyTorch reference values for the tripletd end-to-end tests.

Reads tests/data/e2e-model.safetensors with a small safetensors reader (JSON
header + numpy.frombuffer), builds fixed inputs from a fixed seed and writes
tests/golden/e2e_golden.json: the inputs, their embeddings (float64 forward
from the stored float32 weights) and every expected value the e2e suites
check (distances for the four metrics, triplet/pair/InfoNCE losses, mining).
Inputs are multiples of 1/256 or 1/32, so they survive JSON and float32
exactly. Run from anywhere: /usr/bin/python3 tests/golden/gen_e2e.py
The output is committed so `make test` does not need torch.
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
import gen_math as gm  # noqa: E402  (dist_fn, category, reductions, hcl_reference_torch, mine_ref)

torch.set_default_dtype(torch.float64)
METRICS = ["sqeuclidean", "euclidean", "cosine", "dot"]
MODEL = os.path.join(ROOT, "tests", "data", "e2e-model.safetensors")
OUT = os.path.join(HERE, "e2e_golden.json")
DT = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    """Return (tensors as float64 numpy arrays, metadata dict, sha256 hex)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    tensors = {}
    for name, t in header.items():
        lo, hi = t["data_offsets"]
        arr = np.frombuffer(raw[base + lo:base + hi], dtype=np.dtype(DT[t["dtype"]]).newbyteorder("<"))
        tensors[name] = arr.reshape(t["shape"]).astype(np.float64)
    return tensors, meta, hashlib.sha256(raw).hexdigest()


def forward(tensors, meta, x, normalize):
    """The MLP ("{2i}.weight", "{2i}.bias", ReLU between) in float64."""
    h = torch.tensor(np.asarray(x, dtype=np.float64))
    idx = sorted(int(k.split(".")[0]) for k in tensors if k.endswith(".weight") and k[0].isdigit())
    assert meta.get("activation", "relu") == "relu"
    for j, i in enumerate(idx):
        w = torch.tensor(tensors["%d.weight" % i])
        b = tensors.get("%d.bias" % i)
        h = h @ w.T + (torch.tensor(b) if b is not None else 0)
        if j < len(idx) - 1:
            h = torch.relu(h)
    if normalize:
        h = F.normalize(h, p=2, dim=1, eps=1e-12)
    return h.numpy()


def rows(metric, a, b):
    return gm.dist_fn(metric)(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)).tolist()


def matrix(metric, a, b):
    return [rows(metric, np.repeat(a[i:i + 1], len(b), 0), b) for i in range(len(a))]


def lst(a):
    return np.asarray(a, dtype=np.float64).tolist()


def safe_categories(d_ap, d_an, margin, eps):
    """True when no triplet is within eps of a category boundary (float32 paths may differ that much)."""
    return all(abs(n - p) > eps and abs(n - p - margin) > eps for p, n in zip(d_ap, d_an))


def triplet_case(a, p, n, metric, margin, loss, swap, reduction):
    A, P, N = (torch.tensor(v, dtype=torch.float64) for v in (a, p, n))
    fn = gm.dist_fn(metric)
    d_ap, d_an, d_pn = fn(A, P), fn(A, N), fn(P, N)
    d_eff = torch.minimum(d_an, d_pn) if swap else d_an
    if loss == "triplet":
        losses = torch.clamp(d_ap - d_eff + margin, min=0)
        if metric == "euclidean":  # cross-check against PyTorch's own module
            ref = torch.nn.TripletMarginLoss(margin=margin, p=2, eps=0.0, swap=swap, reduction="none")(A, P, N)
            assert torch.allclose(ref, losses, rtol=1e-12, atol=1e-12)
    else:
        losses = F.softplus(d_ap - d_eff)
    cats = [["easy", "semi-hard", "hard"][gm.category(float(x), float(y), margin)] for x, y in zip(d_ap, d_eff)]
    red = dict(zip(["mean", "mean-nonzero", "sum"], gm.reductions(losses.numpy())))
    return {"metric": metric, "margin": margin, "loss": loss, "swap": swap, "reduction": reduction,
            "expect": {"loss": red[reduction], "losses": lst(losses), "d_ap": lst(d_ap), "d_an": lst(d_an),
                       "d_pn": lst(d_pn), "categories": cats,
                       "counts": {"easy": cats.count("easy"), "semi_hard": cats.count("semi-hard"),
                                  "hard": cats.count("hard")},
                       "active_fraction": float((losses > 0).double().mean())}}


def pair_case(a, b, labels, metric, margin, loss, reduction):
    d = torch.tensor(rows(metric, a, b))
    lab = torch.tensor(labels, dtype=torch.float64)
    hinge = torch.clamp(margin - d, min=0)
    if loss == "contrastive":
        losses = lab * d + (1 - lab) * hinge
    else:
        losses = lab * d ** 2 + (1 - lab) * hinge ** 2
    red = dict(zip(["mean", "mean-nonzero", "sum"], gm.reductions(losses.numpy())))
    return {"metric": metric, "margin": margin, "loss": loss, "reduction": reduction,
            "expect": {"loss": red[reduction], "losses": lst(losses), "distances": lst(d)}}


def infonce_case(a, b, temperature, tau_plus, beta, estimator):
    o1 = F.normalize(torch.tensor(a, dtype=torch.float64), dim=1)
    o2 = F.normalize(torch.tensor(b, dtype=torch.float64), dim=1)
    losses = gm.hcl_reference_torch(o1, o2, temperature, tau_plus, beta, estimator)
    return {"temperature": temperature, "tau_plus": tau_plus, "beta": beta, "estimator": estimator,
            "expect": {"loss": float(losses.mean()), "losses": lst(losses)}}


def mine_case(x, labels, strategy, metric, margin):
    X = torch.tensor(x, dtype=torch.float64)
    D = np.array([rows(metric, np.repeat(x[i:i + 1], len(x), 0), x) for i in range(len(x))])
    trip, s = gm.mine_ref(strategy, D, labels, "triplet", margin)
    cat = ["easy", "semi-hard", "hard"]
    del X
    return {"strategy": strategy, "metric": metric, "margin": margin,
            "expect": {"triplets": [[a, p, q] for (a, p, q, *_r) in trip],
                       "d_ap": [r[3] for r in trip], "d_an": [r[4] for r in trip],
                       "losses": [r[5] for r in trip], "categories": [cat[r[6]] for r in trip],
                       "total": s["total"], "counts": dict(zip(["easy", "semi_hard", "hard"], s["counts"])),
                       "n_positive": s["npos"], "mean_loss": s["mean"], "mean_pos_loss": s["mean_pos"],
                       "no_positive": s["no_pos"], "no_negative": s["no_neg"]}}


def main():
    tensors, meta, sha = read_safetensors(MODEL)
    rng = np.random.RandomState(20261129)
    in_dim = tensors["0.weight"].shape[1]
    x = rng.randint(0, 256, size=(12, in_dim)) / 256.0             # model inputs, float32-exact
    emb = forward(tensors, meta, x, True)
    emb_raw = forward(tensors, meta, x, False)
    v = rng.randint(-48, 49, size=(24, 16)) / 32.0                  # given embeddings, float32-exact
    margin = float(meta.get("margin", "0.2"))
    g = {"generator": "tests/golden/gen_e2e.py", "torch": torch.__version__,
         "model": {"path": "tests/data/e2e-model.safetensors", "sha256": sha, "name": meta.get("name"),
                   "input_dim": int(in_dim), "output_dim": int(emb.shape[1]),
                   "layers": [[int(tensors["%d.weight" % i].shape[1]), int(tensors["%d.weight" % i].shape[0])]
                              for i in (0, 2)],
                   "parameters": int(sum(t.size for t in tensors.values())),
                   "normalize": meta.get("normalize") == "true", "metric": meta.get("metric"),
                   "loss": meta.get("loss"), "margin": margin},
         "x": lst(x), "embeddings": lst(emb), "embeddings_raw": lst(emb_raw), "v": lst(v)}

    # distances: embedded model inputs (rows: x[0:3] vs x[3:6]; matrix: x[0:3] vs x[3:8]) and given vectors
    g["distance"] = {m: {"rows": rows(m, emb[0:3], emb[3:6]), "matrix": matrix(m, emb[0:3], emb[3:8]),
                         "given_rows": rows(m, v[0:4], v[4:8]), "given_matrix": matrix(m, v[0:4], v[4:10])}
                     for m in METRICS}
    # triplets on given vectors: positives near the anchor, negatives at mixed distances
    a = v[0:8]
    p = np.round((a + rng.randint(-8, 9, size=a.shape) / 32.0) * 32) / 32
    n = np.round((a + rng.randint(-14, 15, size=a.shape) / 32.0 * rng.choice([0.5, 1.0, 2.0, 3.0], size=(8, 1))) * 32) / 32
    g["triplet_given"] = {"anchors": lst(a), "positives": lst(p), "negatives": lst(n), "cases": []}
    for metric, margin_t in [("sqeuclidean", 0.8), ("euclidean", 0.3), ("cosine", 0.05), ("dot", 1.0)]:
        for loss, swap, red in [("triplet", False, "mean"), ("triplet", True, "sum"), ("triplet-soft", False, "mean"),
                                ("triplet", False, "mean-nonzero")]:
            c = triplet_case(a, p, n, metric, margin_t, loss, swap, red)
            assert safe_categories(c["expect"]["d_ap"], c["expect"]["d_an"], margin_t, 1e-9)
            g["triplet_given"]["cases"].append(c)
    first = g["triplet_given"]["cases"][0]["expect"]["counts"]
    assert min(first.values()) > 0, "want every category in the first triplet case: %s" % first
    # triplets on model inputs (values only: categories of near-identical embeddings are float-sensitive)
    g["triplet_embed"] = {"anchors": [0, 1, 2, 3], "positives": [4, 5, 6, 7], "negatives": [8, 9, 10, 11],
                          "cases": [triplet_case(emb[0:4], emb[4:8], emb[8:12], m, margin, "triplet-soft", False, "mean")
                                    for m in ("sqeuclidean", "cosine")]}
    # pairs on given vectors
    labels = [1, 0, 1, 1, 0, 0, 1, 0]
    pa, pb = v[8:16], v[16:24]
    g["pair_given"] = {"a": lst(pa), "b": lst(pb), "labels": labels,
                       "cases": [pair_case(pa, pb, labels, m, mg, l, r) for m, mg, l, r in [
                           ("sqeuclidean", 20.0, "contrastive", "mean"), ("euclidean", 4.0, "contrastive-squared", "sum"),
                           ("cosine", 1.2, "contrastive", "mean-nonzero"), ("dot", 1.0, "contrastive", "mean")]]}
    # InfoNCE on given vectors and on model inputs
    g["infonce_given"] = {"a": lst(v[0:6]), "b": lst(p[0:6]),
                          "cases": [infonce_case(v[0:6], p[0:6], t, tp, be, est) for t, tp, be, est in [
                              (0.5, 0.1, 1.0, "hard"), (0.5, 0.1, 1.0, "easy"), (0.2, 0.05, 0.5, "hard")]]}
    g["infonce_embed"] = {"a": [0, 1, 2, 3], "b": [4, 5, 6, 7],
                          "cases": [infonce_case(emb[0:4], emb[4:8], 0.5, 0.1, 1.0, "hard")]}
    # mining on given vectors: four classes of three plus a singleton (no positive)
    mlabels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 7]
    mx = v[0:13, 0:8]
    g["mine_given"] = {"inputs": lst(mx), "labels": mlabels,
                       "cases": [mine_case(mx, mlabels, s, "sqeuclidean", 1.0)
                                 for s in ("batch-hard", "semi-hard", "batch-all")]}
    with open(OUT, "w") as f:
        json.dump(g, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(OUT, ROOT), "counts", first)


if __name__ == "__main__":
    main()
