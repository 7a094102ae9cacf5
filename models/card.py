#!/usr/bin/env python3
"""card.py - write the measured figures into the model card (models/README.md).

Reads, next to this script: eval.json and eval-open-set.json (from
`tripletctl eval --json`; their absolute paths are cut to the last two
components), training.csv (from `tripletctl train --csv`) and, when present,
the PyTorch reference runs ../bench/results/train_torch.json and
torch-reference-open-set.json (from `bench/train_torch.py --baseline
--json`), and replaces the text between the
"figures:begin" and "figures:end" markers of README.md. Standard library only;
`make model` runs it.
"""
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


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


def eval_table(ev, torch_ref, title):
    out = ["| %s | Recall@1 | Recall@5 | MAP@R |" % title, "|---|---|---|---|"]
    res = ev["results"]
    out.append(row("**this model** (`tripletctl train`)", res["model"]))
    if torch_ref and "test" in torch_ref:
        out.append(row("PyTorch reference, same recipe (`bench/train_torch.py`)", torch_ref["test"]))
    if "raw" in res:
        out.append(row("raw pixels (x/255), no model", res["raw"]))
    if "untrained" in res:
        out.append(row("untrained network (the same seeded initial weights)", res["untrained"]))
    return out


def main():
    ev, ev_open = scrub("eval.json"), scrub("eval-open-set.json")
    tref, tref_open = load("../bench/results/train_torch.json"), load("torch-reference-open-set.json")
    if ev is None:
        sys.exit("card.py: models/eval.json is missing; run `make model`")
    lines = [BEGIN, ""]
    lines.append("Test set (%d queries) against the training set (%d rows) as gallery, exact kNN, metric %s:"
                 % (ev["n_queries"], ev["n_gallery"], ev["metric"]))
    lines.append("")
    lines += eval_table(ev, tref, "closed set, 10 classes")
    if ev_open:
        lines += ["", "Open set: trained on classes 0-7 only; queries (%d) and gallery (%d) are the two unseen "
                  "classes %s:" % (ev_open["n_queries"], ev_open["n_gallery"],
                                   " and ".join(str(c) for c in ev_open.get("classes") or [])), ""]
        lines += eval_table(ev_open, tref_open, "open set, unseen classes")
    with open(os.path.join(HERE, "training.csv")) as f:
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
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        sys.exit("card.py: %s lacks the %s / %s markers" % (path, BEGIN, END))
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(path, "w") as f:
        f.write(head + "\n".join(lines) + tail)
    print("card.py: updated figures in models/README.md")


if __name__ == "__main__":
    main()
