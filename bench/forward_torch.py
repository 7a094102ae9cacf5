#!/usr/bin/python3
"""forward_torch.py - the PyTorch side of bench_forward.sh.

  forward_torch.py make MODEL          write a random 784->256->64 ReLU MLP (proto/export.py)
  forward_torch.py time MODEL THREADS MIN_SECONDS REPS BATCH...
                                       print "BATCH VECTORS_PER_S" per batch, best of REPS runs
                                       of at least MIN_SECONDS, in torch.inference_mode()
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proto"))
sys.path.insert(0, HERE)
from export import save_model  # noqa: E402
from torch_timing import best_rates  # noqa: E402

DIMS = [784, 256, 64]


def build():
    return torch.nn.Sequential(torch.nn.Linear(DIMS[0], DIMS[1]), torch.nn.ReLU(), torch.nn.Linear(DIMS[1], DIMS[2]))


def load(path):
    """Load the same weights our side uses (the file is plain safetensors, F32)."""
    import json
    import struct
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    sd = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        sd[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).reshape(v["shape"])
    net = build()
    net.load_state_dict(sd)
    return net.eval()


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        torch.manual_seed(7)
        save_model(sys.argv[2], build().state_dict(), {"activation": "relu", "normalize": "false", "name": "bench-784-256-64"})
        return
    if len(sys.argv) < 7 or sys.argv[1] != "time":
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    path, threads, min_s, reps = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    net = load(path)
    batches = [int(b) for b in sys.argv[6:]]
    torch.manual_seed(1)
    xs = torch.rand(max(batches), DIMS[0])
    with torch.inference_mode():
        for n in batches:
            x = xs[:n].contiguous()
            for _ in range(3):
                net(x)
            best, _ = best_rates(net, x, min_s, reps)
            print("%d %.1f" % (n, best), flush=True)


if __name__ == "__main__":
    main()
