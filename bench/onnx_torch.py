#!/usr/bin/python3
"""onnx_torch.py - the PyTorch side of bench_onnx.sh and bench_image_http.sh.

  onnx_torch.py make DIR        write DIR/NAME.onnx (opset 17, symbolic batch, proto/export.py's
                                tripletd metadata with the image preprocessing), DIR/NAME.pt and
                                DIR/NAME.png (one image of the model's size: a Fashion-MNIST test
                                image, a 224x224 RGB photo-like picture) for cnn: the Fashion-MNIST
                                CNN (conv 32 and 64 3x3 + BatchNorm + ReLU + max-pool, FC 256,
                                128-d), resnet18 and mobilenet_v2 (torchvision, 224x224), with
                                random weights and BatchNorm statistics
  onnx_torch.py time DIR NAME MIN_SECONDS REPS BATCH...
                                print "BATCH IMAGES_PER_S IMAGES_PER_CPU_S" per batch, best of REPS
                                runs of at least MIN_SECONDS (per second of wall time, of the
                                process's CPU time), the same weights in torch.inference_mode()
"""
import gzip
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proto"))
sys.path.insert(0, HERE)
from export import save_onnx  # noqa: E402
from torch_timing import best_rates  # noqa: E402


def build():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 128))


def tv(name):
    return lambda: getattr(__import__("torchvision").models, name)()


MODELS = {"cnn": (build, (1, 28, 28)), "resnet18": (tv("resnet18"), (3, 224, 224)),
          "mobilenet_v2": (tv("mobilenet_v2"), (3, 224, 224))}
# torchvision's ToTensor + Normalize: the Fashion-MNIST statistics, ImageNet's
IMAGE = {"cnn": ([0.286], [0.353]), "resnet18": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])}
IMAGE["mobilenet_v2"] = IMAGE["resnet18"]
FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def write_png(name, shape, path):
    """One image of the model's input size: the first Fashion-MNIST test image, else a smooth
    colour picture with noise (about the PNG size of a photo of that size)."""
    import numpy as np
    from PIL import Image
    c, h, w = shape
    if c == 1 and os.path.exists(FASHION):
        with gzip.open(FASHION) as f:
            px = np.frombuffer(f.read(16 + h * w)[16:], dtype=np.uint8).reshape(h, w)
        Image.fromarray(px, "L").save(path)
        return
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * xx + k) * np.cos(5 * yy - k) for k in range(c)], axis=-1) * 90 + 128
    px = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(px[:, :, 0] if c == 1 else px, "L" if c == 1 else "RGB").save(path)


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
            mean, std = IMAGE[name]
            save_onnx(os.path.join(d, name + ".onnx"), net, shape, {"name": name},
                      image={"channels": shape[0], "height": shape[1], "width": shape[2], "mean": mean, "std": std})
            write_png(name, shape, os.path.join(d, name + ".png"))
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
        with torch.inference_mode():
            net(x)
            best, best_cpu = best_rates(net, x, min_s, reps)
        print(b, "%.1f" % best, "%.1f" % best_cpu, flush=True)


if __name__ == "__main__":
    main()
