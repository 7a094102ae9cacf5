#!/usr/bin/python3
"""onnx_torch.py - the PyTorch side of bench_onnx.sh.

  onnx_torch.py make DIR        write DIR/NAME.onnx (opset 17, symbolic batch) and DIR/NAME.pt for
                                cnn: the Fashion-MNIST CNN (conv 32 and 64 3x3 + BatchNorm + ReLU +
                                max-pool, FC 256, 128-d), resnet18 and mobilenet_v2 (torchvision,
                                224x224), with
                                random weights and BatchNorm statistics
  onnx_torch.py time DIR NAME MIN_SECONDS REPS BATCH...
                                print "BATCH IMAGES_PER_S" per batch, best of REPS runs of at
                                least MIN_SECONDS, the same weights in torch.inference_mode()
"""
import os
import sys
import time

import torch
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 128))


def tv(name):
    return lambda: getattr(__import__("torchvision").models, name)()


MODELS = {"cnn": (build, (1, 28, 28)), "resnet18": (tv("resnet18"), (3, 224, 224)),
          "mobilenet_v2": (tv("mobilenet_v2"), (3, 224, 224))}


def main():
    d = sys.argv[2]
    if sys.argv[1] == "make":
        for name, (make, shape) in MODELS.items():
            torch.manual_seed(0)
            net = make()
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.8, 1.2)
            net.eval()
            torch.save(net.state_dict(), os.path.join(d, name + ".pt"))
            torch.onnx.export(net, torch.zeros(2, *shape), os.path.join(d, name + ".onnx"), opset_version=17,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
        return
    name, min_s, reps = sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    make, shape = MODELS[name]
    torch.set_num_threads(1)
    net = make()
    net.load_state_dict(torch.load(os.path.join(d, name + ".pt")))
    net.eval()
    torch.manual_seed(1)
    for b in map(int, sys.argv[6:]):
        x = torch.rand(b, *shape)
        best = 0.0
        with torch.inference_mode():
            net(x)
            for _ in range(reps):
                t0, calls = time.perf_counter(), 0
                while True:
                    net(x)
                    calls += 1
                    t = time.perf_counter() - t0
                    if t >= min_s:
                        break
                best = max(best, calls * b / t)
        print(b, "%.1f" % best, flush=True)


if __name__ == "__main__":
    main()
