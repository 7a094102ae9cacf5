#!/usr/bin/python3
"""gen_onnx.py - ONNX model fixtures exported by PyTorch and their reference outputs.

Writes (all committed, so `make test` needs no torch):
  tests/data/onnx/<name>.onnx   torch.onnx.export of each model below at
                                opsets 11, 13 and 17, dynamic batch ("_dyn")
                                and fixed batch 4 ("_b4")
  tests/data/onnx/<model>.in    input rows: int32 n, int32 dim, n*dim float32
  tests/data/onnx/<model>.out   PyTorch (float64) outputs, same layout
  tests/data/onnx/fashion_image.onnx  the fashion model written by proto/export.py's
                                save_onnx with metadata (name, normalize, metric, image);
                                fashion_image.in holds pixel values 0..255 and .out the
                                L2-normalised outputs of the network on (x/255 - mean)/std

Models:
  fashion   a Fashion-MNIST-size CNN: Conv+BN+ReLU, MaxPool, grouped and
            depthwise convs, AveragePool with ceil_mode and padding,
            x.view(x.size(0), -1) (Shape/Gather/Unsqueeze/Concat/Reshape),
            Linear (Gemm), Dropout
  conv1d    Conv1d (strided, dilated) + BatchNorm1d, MaxPool1d(ceil_mode),
            AvgPool1d(count_include_pad=False), GlobalAveragePool, Flatten,
            MatMul, Add, Mul with broadcasting
  resblock  two ResNet basic blocks of 32 channels on 12x12 (identity, then
            stride 2 with a 1x1 downsample computed first): on AVX-512 their
            residual Adds fuse into a Winograd conv and an output-channel one
            (lib/onnx_convpx.c); written at opset 13 dynamic and 17 fixed only
  invres    two MobileNetV2 inverted residual blocks of 16 channels on 14x14
            (1x1 expansion to 48, ReLU6, depthwise 3x3, 1x1 projection): their
            residual Adds fuse into the projections, which run on the SGEMM
            (AVX-512 and AVX2); opset 13 dynamic and 17 fixed only
  stage7    a ResNet basic block of 32 channels on 7x7, then a 3x3 conv to 64
            channels and a Linear: on AVX-512 the 3x3 convs run by
            lib/onnx_convpx.c for runs of 1 to 3 samples and by F(2x2) with
            the planes in registers from 4 (onx_wino_p7_ok); opset 13 dynamic
            and 17 fixed only
  wide      128 channels: a 3x3 conv on 14x14, a max pool, a 3x3 conv on 7x7
            with a residual Add: with AVX2 both run by F(4x4) (onx_wino4_min_n),
            the 7x7 one for runs of 4 samples or more (F(2x2) below); opset 13
            dynamic only (its weights are 1.2 MB a file)

Run from the repository root: /usr/bin/python3 tests/golden/gen_onnx.py [MODEL...]
(no names: all of them)
"""
import os
import struct

import sys

import torch
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "proto"))
from export import save_onnx  # noqa: E402
OUT = os.path.join(ROOT, "tests", "data", "onnx")
FIXED_BATCH = 4


class Fashion(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
            nn.Conv2d(16, 12, 1))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(12 * 4 * 4, 48), nn.ReLU(), nn.Linear(48, 24))

    def forward(self, x):
        x = self.f(x)
        return self.head(x.view(x.size(0), -1))


class Conv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 8, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.c2 = nn.Conv1d(8, 8, 3, dilation=2, padding=2)
        self.pool = nn.MaxPool1d(3, stride=2, ceil_mode=True)
        self.avg = nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.s = nn.Parameter(torch.rand(8, 1) + 0.5)
        self.w = nn.Parameter(torch.randn(8 * 10, 6) * 0.3)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        y = self.avg(self.pool(self.c2(x)))
        z = (y + self.gap(y)) * self.s  # Add and Mul with broadcasting
        return torch.flatten(z, 1) @ self.w  # MatMul


class ResBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        c = 32
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.a1 = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.down = nn.Sequential(nn.Conv2d(c, c, 1, stride=2, bias=False), nn.BatchNorm2d(c))
        self.a2 = nn.Sequential(nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.fc = nn.Linear(c, 16)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.a1(x) + x)
        identity = self.down(x)  # first: ready before the block's last conv, which takes it
        x = torch.relu(self.a2(x) + identity)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class InvRes(nn.Module):
    def __init__(self):
        super().__init__()
        c, e = 16, 48
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU6())

        def block():
            return nn.Sequential(nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.ReLU6(),
                                 nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False), nn.BatchNorm2d(e), nn.ReLU6(),
                                 nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))
        self.b1, self.b2 = block(), block()
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.b1(x)
        x = x + self.b2(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Stage7(nn.Module):
    def __init__(self):
        super().__init__()
        c = 32
        self.a = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                               nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.b = nn.Conv2d(c, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 49, 10)

    def forward(self, x):
        x = torch.relu(self.a(x) + x)
        return self.fc(torch.flatten(torch.relu(self.b(x)), 1))


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        c = 128
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.a(x)), 2)
        return torch.flatten(torch.relu(self.b(x) + x), 1)


MODELS = {"fashion": (Fashion, (1, 28, 28)), "conv1d": (Conv1d, (3, 40)), "resblock": (ResBlocks, (3, 12, 12)),
          "invres": (InvRes, (3, 14, 14)), "stage7": (Stage7, (32, 7, 7)),
          "wide": (Wide, (128, 14, 14))}
# (opset, fixed batch) pairs written; all six unless listed
EXPORTS = {"resblock": ((13, False), (17, True)), "invres": ((13, False), (17, True)),
           "stage7": ((13, False), (17, True)), "wide": ((13, False),)}


def randomise_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)


def write_rows(path, x):
    x = x.reshape(x.shape[0], -1).to(torch.float32).contiguous()
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", x.shape[0], x.shape[1]))
        f.write(x.numpy().tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (cls, shape) in MODELS.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        torch.manual_seed(7)
        m = cls()
        randomise_bn(m)
        m.eval()
        x = torch.rand(5, *shape) * 2 - 0.5
        with torch.no_grad():
            y = m.double()(x.double())
        m.float()
        write_rows(os.path.join(OUT, name + ".in"), x)
        write_rows(os.path.join(OUT, name + ".out"), y)
        pairs = EXPORTS.get(name, [(o, f) for o in (11, 13, 17) for f in (False, True)])
        for opset, fixed in pairs:
            path = os.path.join(OUT, "%s_op%d_%s.onnx" % (name, opset, "b4" if fixed else "dyn"))
            dummy = torch.zeros(FIXED_BATCH if fixed else 2, *shape)
            torch.onnx.export(m, dummy, path, opset_version=opset, input_names=["x"], output_names=["y"],
                              dynamic_axes=None if fixed else {"x": {0: "batch"}, "y": {0: "batch"}},
                              training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
            print(path, os.path.getsize(path))
        if name == "fashion":
            image_model(m)


IMAGE = {"channels": 1, "height": 28, "width": 28, "mean": [0.2860], "std": [0.3530]}


def image_model(m):
    """The fashion CNN as an image model: metadata written by proto/export.py."""
    torch.manual_seed(11)
    px = torch.randint(0, 256, (5, 1, 28, 28)).double()
    with torch.no_grad():
        y = m.double()((px / 255 - IMAGE["mean"][0]) / IMAGE["std"][0])
    y = y / y.norm(dim=1, keepdim=True).clamp_min(1e-12)
    m.float()
    write_rows(os.path.join(OUT, "fashion_image.in"), px)
    write_rows(os.path.join(OUT, "fashion_image.out"), y)
    path = os.path.join(OUT, "fashion_image.onnx")
    save_onnx(path, m, (1, 28, 28), {"name": "fashion-cnn-test", "normalize": "true", "metric": "cosine",
                                     "description": "tests/golden/gen_onnx.py"}, image=IMAGE)
    print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
