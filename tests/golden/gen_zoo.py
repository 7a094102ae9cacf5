#!/usr/bin/python3
"""gen_zoo.py - torchvision architectures (random weights, no download) exported to ONNX with
PyTorch reference outputs, for `make test-zoo` (too large to commit).

    /usr/bin/python3 tests/golden/gen_zoo.py OUTDIR [model ...]

Writes OUTDIR/<model>_op<N>_<dyn|b2>.onnx (opsets 11, 13 and 17, each with a symbolic batch
and with a fixed batch of 2), OUTDIR/<model>.in and OUTDIR/<model>.out (int32 n, int32 dim, n*dim
float32: 3 input images and PyTorch's float64 outputs), the layout tests/unit/test_onnx.c reads.
"""
import os
import struct
import sys

import torch
import torchvision

SIZE = 64  # small input: every architecture below accepts 64x64
# resnet18 at 128: its first stage's 32x32 outputs have 64 4x4 tiles, so its 3x3 convolutions run as Winograd
# F(4x4, 3x3) (lib/onnx_wino4.c), and its later stages as F(2x2, 3x3) and direct GEMMs, all against float64 PyTorch.
SIZES = {"resnet18": 128}
MODELS = ["resnet18", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x0_5", "efficientnet_b0", "densenet121"]


def write_rows(path, x):
    x = x.reshape(x.shape[0], -1).to(torch.float32).contiguous()
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", x.shape[0], x.shape[1]))
        f.write(x.numpy().tobytes())


def randomise_bn(m):
    """Non-trivial BatchNorm statistics, so folding them is tested."""
    g = torch.Generator().manual_seed(3)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.copy_(torch.rand(mod.num_features, generator=g) * 0.2 - 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) * 0.5 + 0.75)


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or MODELS
    os.makedirs(out, exist_ok=True)
    for name in names:
        torch.manual_seed(1)
        m = getattr(torchvision.models, name)(weights=None)
        randomise_bn(m)
        m.eval()
        size = SIZES.get(name, SIZE)
        x = torch.rand(3, 3, size, size)
        with torch.no_grad():
            y = m.double()(x.double())
        m.float()
        write_rows(os.path.join(out, name + ".in"), x)
        write_rows(os.path.join(out, name + ".out"), y)
        for opset, fixed in ((11, False), (11, True), (13, False), (13, True), (17, False), (17, True)):
            path = os.path.join(out, "%s_op%d_%s.onnx" % (name, opset, "b2" if fixed else "dyn"))
            torch.onnx.export(m, torch.zeros(2, 3, size, size), path, opset_version=opset, input_names=["x"],
                              output_names=["y"], dynamic_axes=None if fixed else {"x": {0: "n"}, "y": {0: "n"}})
            print(path, os.path.getsize(path), flush=True)


if __name__ == "__main__":
    main()
