#!/usr/bin/env python3
"""gen_examples.py - write the example request bodies in proto/examples/ from
Fashion-MNIST test images (raw pixels 0-255, what the shipped model takes).

Usage: proto/examples/gen_examples.py [DATASET_DIR]
The dataset is looked for in DATASET_DIR, $FASHION_MNIST_DIR, then the
Debian package's folder (dataset-fashion-mnist)."""
import base64
import gzip
import json
import os
import struct
import sys

KNOWN = ["/usr/share/datasets/fashion-mnist", "data/fashion-mnist"]


def find_dir():
    cands = sys.argv[1:2] + [os.environ.get("FASHION_MNIST_DIR", "")] + KNOWN
    for d in cands:
        if d and os.path.exists(os.path.join(d, "t10k-images-idx3-ubyte.gz")):
            return d
    sys.exit("Fashion-MNIST not found (install dataset-fashion-mnist or pass its folder)")


def load(d, n):
    with gzip.open(os.path.join(d, "t10k-images-idx3-ubyte.gz")) as f:
        _, count, rows, cols = struct.unpack(">IIII", f.read(16))
        dim = rows * cols
        imgs = [list(f.read(dim)) for _ in range(min(n, count))]
    with gzip.open(os.path.join(d, "t10k-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        labels = list(f.read(len(imgs)))
    return imgs, labels


def main():
    out = os.path.dirname(os.path.abspath(__file__))
    imgs, labels = load(find_dir(), 200)
    by = {}
    for i, lab in enumerate(labels):
        by.setdefault(lab, []).append(i)
    # anchor/positive share a class, negative is another class
    a, p, n = [], [], []
    for c in range(3):
        a.append(imgs[by[c][0]])
        p.append(imgs[by[c][1]])
        n.append(imgs[by[(c + 1) % 10][0]])
    batch = [i for c in range(4) for i in by[c][:4]]
    b64 = base64.b64encode(struct.pack("<784f", *imgs[0])).decode()
    docs = {
        "embed.json": {"inputs": [imgs[0]]},
        "embed-base64.json": {"inputs": [b64], "encoding_format": "base64"},
        "embeddings-openai.json": {"input": imgs[0], "model": "fashion-mnist"},
        "distance.json": {"a": a, "b": p, "metric": "cosine"},
        "distance-raw.json": {"a": [[1, 2, 3], [0, 1, 0]], "b": [[1, 2, 4], [1, 0, 0]],
                              "embed": False, "pairwise": True},
        "triplet.json": {"anchors": a, "positives": p, "negatives": n, "margin": 0.2},
        "pair.json": {"a": a + a, "b": p + n, "labels": [1, 1, 1, 0, 0, 0]},
        "infonce.json": {"a": a, "b": p, "temperature": 0.5},
        "mine.json": {"inputs": [imgs[i] for i in batch], "labels": [labels[i] for i in batch],
                      "strategy": "semi-hard", "max_triplets": 5},
    }
    for name, doc in docs.items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main()
