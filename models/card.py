#!/usr/bin/env python3
"""card.py - write the measured figures into a model card.

    models/card.py cnn   models/README.md, the shipped CNN (fashion-mnist-cnn.onnx)
    models/card.py mlp   models/fashion-mnist-mlp.md, the MLP (fashion-mnist.safetensors)

Reads, next to this script, the files of CARDS below: the `tripletctl eval
--json` results of the closed-set and open-set models (their absolute paths
are cut to the last two components), the per-epoch CSV of `tripletctl train
--csv`, the seeds file (`models/seeds.py`), and, when present, the PyTorch
reference runs of the same recipe (`--baseline --json` of the bench script).
The CNN card also lists the MLP as a baseline. The text between the
"figures:begin" and "figures:end" markers of the card is replaced. Standard
library only; `make model`, `make model-open-set`, `make model-seeds` and `make model-mlp` run it.
"""
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
CARDS = {
    "mlp": {"card": "fashion-mnist-mlp.md", "eval": "eval.json", "open": "eval-open-set.json",
            "csv": "training.csv", "seeds": "seeds.json", "torch": "../bench/results/train_torch.json",
            "torch_open": "torch-reference-open-set.json", "torch_seeds": "../bench/results/train_torch_seeds.json",
            "script": "bench/train_torch.py", "mlp": False},
    "cnn": {"card": "README.md", "eval": "cnn-eval.json", "open": "cnn-eval-open-set.json",
            "csv": "cnn-training.csv", "seeds": "cnn-seeds.json", "torch": "cnn-torch-reference.json",
            "torch_open": "cnn-torch-reference-open-set.json", "torch_seeds": "cnn-torch-seeds.json",
            "script": "bench/train_cnn_torch.py", "mlp": True},
}


def load(name):
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def short(p):
    """The last two components of a path: names the data, not where this machine keeps it."""
    return "/".join(p.rstrip("/").split("/")[-2:]) if isinstance(p, str) and p.startswith("/") else p


def scrub(name):
    """Rewrite an eval JSON's absolute paths (data, queries, gallery, model) in place."""
    j = load(name)
    if j is None:
        return None
    for k in ("data", "queries", "gallery", "model"):
        if k in j:
            j[k] = short(j[k])
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(j, f, indent=1)
        f.write("\n")
    return j


def fmt(v):
    return "-" if v is None else "%.4f" % v


def row(label, r):
    return "| %s | %s | %s | %s |" % (label, fmt(r.get("recall_at_1")), fmt(r.get("recall_at_5")), fmt(r.get("map_at_r")))


def eval_table(ev, torch_ref, title, script, mlp):
    out = ["| %s | Recall@1 | Recall@5 | MAP@R |" % title, "|---|---|---|---|"]
    res = ev["results"]
    out.append(row("**this model** (`tripletctl train`)", res["model"]))
    if torch_ref and "test" in torch_ref:
        ep = torch_ref.get("recipe", {}).get("epochs")
        out.append(row("PyTorch reference (`%s`%s)" % (script, ", %d epochs" % ep if ep else ""), torch_ref["test"]))
    if mlp:
        out.append(row("the MLP 784-256-128 (`fashion-mnist.safetensors`, its card's recipe)", mlp["results"]["model"]))
    if "raw" in res:
        out.append(row("raw pixels (x/255), no model", res["raw"]))
    elif mlp and "raw" in mlp["results"]:
        out.append(row("raw pixels (x/255), no model (the MLP card's run: the same pixels and ranking)",
                       mlp["results"]["raw"]))
    if "untrained" in res:
        out.append(row("untrained network (the same seeded initial weights%s)" % (
            "; BatchNorm running statistics at their start, mean 0 and variance 1" if script.endswith("cnn_torch.py")
            else ""), res["untrained"]))
    return out


def seeds_table(ours, theirs):
    """Per-seed figures and their means: ours (seeds file) and PyTorch's."""
    out = ["| | seeds | Recall@1 | Recall@5 | MAP@R |", "|---|---|---|---|---|"]
    for label, s in (("`tripletctl train`", ours), ("PyTorch reference", theirs)):
        if not s or not s.get("runs"):
            continue
        runs = s["runs"]
        cell = lambda k: " / ".join("%.4f" % r[k] for r in runs)
        mean = {k: sum(r[k] for r in runs) / len(runs) for k in ("recall_at_1", "recall_at_5", "map_at_r")}
        out.append("| %s | %s | %s | %s | %s |" % (label, ", ".join(str(r["seed"]) for r in runs),
                                                 cell("recall_at_1"), cell("recall_at_5"), cell("map_at_r")))
        out.append("| mean | | **%.4f** | **%.4f** | **%.4f** |" % (mean["recall_at_1"], mean["recall_at_5"],
                                                                   mean["map_at_r"]))
    return out if len(out) > 2 else []


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "mlp"
    if kind not in CARDS:
        sys.exit("usage: card.py cnn|mlp")
    c = CARDS[kind]
    ev, ev_open = scrub(c["eval"]), scrub(c["open"])
    tref, tref_open = load(c["torch"]), load(c["torch_open"])
    mlp, mlp_open = (load("eval.json"), load("eval-open-set.json")) if c["mlp"] else (None, None)
    if ev is None:
        sys.exit("card.py: models/%s is missing; run `make model`" % c["eval"])
    lines = [BEGIN, ""]
    lines.append("Test set (%d queries) against the training set (%d rows) as gallery, exact kNN, metric %s:"
                 % (ev["n_queries"], ev["n_gallery"], ev["metric"]))
    lines.append("")
    lines += eval_table(ev, tref, "closed set, 10 classes", c["script"], mlp)
    if ev_open:
        lines += ["", "Open set: trained on classes 0-7 only; queries (%d) and gallery (%d) are the two unseen "
                  "classes %s:" % (ev_open["n_queries"], ev_open["n_gallery"],
                                   " and ".join(str(k) for k in ev_open.get("classes") or [])), ""]
        lines += eval_table(ev_open, tref_open, "open set, unseen classes", c["script"], mlp_open)
    seeds = seeds_table(load(c["seeds"]), load(c["torch_seeds"]))
    if seeds:
        rel = lambda n: os.path.normpath(os.path.join("models", n))
        where = "ours in `%s`" % rel(c["seeds"])
        per_seed = sorted(f for f in os.listdir(HERE) if f.startswith(c["eval"][:-5] + "-seed"))
        if per_seed:
            where += " (seed 1: `%s`; %s)" % (rel(c["eval"]), ", ".join("`%s`" % rel(f) for f in per_seed))
        if load(c["torch_seeds"]):
            where += ", PyTorch's in `%s`" % rel(c["torch_seeds"])
        lines += ["", "Seed to seed (closed set, one training run per seed; %s):" % where, ""] + seeds
    with open(os.path.join(HERE, c["csv"])) as f:
        rows = list(csv.DictReader(f))
    if rows:
        last = rows[-1]
        total = sum(float(r["seconds"]) for r in rows)
        lines += ["", "Training: %d epochs in %.1f s of training steps (%.2f s per epoch, curve evaluation excluded); "
                  "last epoch: loss %s, active triplets %s, mean d_ap %s, d_an %s, curve Recall@1 %s."
                  % (len(rows), total, total / len(rows), last["loss"], last["active"], last["mean_d_ap"],
                     last["mean_d_an"], last["recall_at_1"])]
    if tref:
        lines += ["", "PyTorch reference: %s, %d threads, %.2f s per epoch."
                  % (tref.get("torch", "?"), tref.get("threads", 0), tref.get("seconds_per_epoch", 0))]
    lines += ["", END]
    path = os.path.join(HERE, c["card"])
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        sys.exit("card.py: %s lacks the %s / %s markers" % (path, BEGIN, END))
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(path, "w") as f:
        f.write(head + "\n".join(lines) + tail)
    print("card.py: updated figures in models/%s" % c["card"])


if __name__ == "__main__":
    main()
