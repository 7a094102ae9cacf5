#!/usr/bin/python3
"""gen_onnx_ops.py - few-op ONNX models for the activation, math, reduction, normalisation and data-movement ops.

Writes (all committed, so `make test` needs no torch):
  tests/data/onnx/ops_<name>_op<k>_dyn.onnx  one model per opset k (11, 13, 17; 9 too for
                                             `like`), dynamic batch
  tests/data/onnx/ops_<name>.in / .out       input rows and reference outputs
                                             (rows: int32 n, int32 dim, n*dim float32)

Two kinds of model:
  torch  torch.onnx.export of a small nn.Module; reference: PyTorch in float64
  graph  built with onnx.helper in each opset's own spelling (attributes that
         became inputs, Softmax's 2-D coercion before 13); reference: numpy in
         float64, written per opset when the definitions differ

Run from the repository root: /usr/bin/python3 tests/golden/gen_onnx_ops.py [NAME...]
(NAME: only these models, e.g. like)
"""
import math
import os
import struct
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn
from torch.nn import functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "data", "onnx")
OPSETS = (11, 13, 17)
BATCH = 5


# --- torch models ---------------------------------------------------------

class Act(nn.Module):
    """Every activation on one [N,3,4,5] input, concatenated on channels."""

    def __init__(self):
        super().__init__()
        self.prelu = nn.PReLU(3)
        with torch.no_grad():
            self.prelu.weight.copy_(torch.tensor([0.1, -0.3, 0.7]))

    def forward(self, x):
        return torch.cat([
            F.leaky_relu(x, 0.07), self.prelu(x), F.elu(x, 0.8), F.selu(x), torch.sigmoid(x),
            F.hardsigmoid(x), F.hardswish(x), torch.tanh(x), F.softplus(x), F.softsign(x),
            torch.erf(x), torch.abs(x), -x, torch.exp(x), torch.log(torch.abs(x) + 0.1),
            torch.sqrt(torch.abs(x)), torch.pow(torch.abs(x), 1.7),
            torch.maximum(x, x * 0.5), torch.minimum(x, -x)], 1)


class Reduce(nn.Module):
    """Softmax family and reductions on [N,4,6,5]."""

    def forward(self, x):
        parts = [
            F.softmax(x, 1), F.log_softmax(x, -1), x.mean((2, 3), keepdim=True), x.sum(1, keepdim=True),
            x.amax(2, keepdim=True), torch.norm(x, 2, 3, keepdim=True), F.adaptive_max_pool2d(x, 1), x / torch.norm(x, 2, 1, keepdim=True)]
        return torch.cat([p.flatten(1) for p in parts], 1)


class Move(nn.Module):
    """Transpose, Split, Slice (steps, negative ends), Tile on [N,6,4,5] (torch's Expand on a
    dynamic batch goes through Equal and Where, outside the op set: Expand is in graph_misc)."""

    def forward(self, x):
        a, b, c = torch.split(x, [1, 2, 3], 1)
        parts = [
            x.permute(0, 2, 3, 1), a * 2, b - 1, c, x[:, 1:5:2, :, 1:-1], x[:, -3:, 2:], torch.flip(x, [3]),
            a * torch.ones(3, 1, 1), x[:, :1].repeat(1, 2, 1, 3), x + torch.zeros(6, 1, 5)]
        return torch.cat([p.flatten(1) for p in parts], 1)


class Norm(nn.Module):
    """GroupNorm and InstanceNorm2d (InstanceNormalization), LayerNorm over the last one and two
    dimensions (LayerNormalization at opset 17, its decomposition before) on [N,4,6,5]."""

    def __init__(self):
        super().__init__()
        self.gn, self.inorm = nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True)
        self.ln2, self.ln1 = nn.LayerNorm([6, 5]), nn.LayerNorm(5)
        g = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)

    def forward(self, x):
        return torch.cat([p.flatten(1) for p in (self.gn(x), self.inorm(x), self.ln2(x), self.ln1(x))], 1)


class Attn(nn.Module):
    """A transformer block on [N,6,8] tokens: a class token expanded to the batch (Shape, Equal, Where,
    Expand), LayerNorm, two-head self-attention keeping the batch first (Split, Transpose, batched
    MatMul, Softmax), a GELU MLP (Erf), the class token's output L2-normalised (ReduceL2, Clip, Div)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(9)
        self.cls = nn.Parameter(torch.rand(1, 1, 8, generator=g))
        self.pos = nn.Parameter(torch.rand(1, 7, 8, generator=g) * 0.1)
        self.n1, self.n2 = nn.LayerNorm(8), nn.LayerNorm(8)
        self.qkv, self.proj = nn.Linear(8, 24), nn.Linear(8, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))

    def forward(self, x):
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        b, n, d = x.shape
        q, k, v = self.qkv(self.n1(x)).reshape(b, n, 3, 2, d // 2).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        a = (q @ k.transpose(-2, -1) / (d // 2) ** 0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, n, d))
        x = x + self.mlp(self.n2(x))
        return F.normalize(x[:, 0], dim=1)


class Like(nn.Module):
    """torch.zeros_like and torch.ones_like on [N,3,4,5]: Shape(x) -> ConstantOfShape, a shape holding the
    batch size (exported at opset 9 too, where ConstantOfShape begins)."""

    def forward(self, x):
        z, o = torch.zeros_like(x), torch.ones_like(x)
        return torch.cat([x + o, z - x, o * 3 + z * x], 1).flatten(1)


TORCH_MODELS = {"act": (Act, (3, 4, 5)), "reduce": (Reduce, (4, 6, 5)), "move": (Move, (6, 4, 5)),
                "norm": (Norm, (4, 6, 5)), "attn": (Attn, (6, 8)), "like": (Like, (3, 4, 5))}
TORCH_OPSETS = {"like": (9,) + OPSETS}  # the others: OPSETS


# --- onnx.helper graphs ---------------------------------------------------

def i64(name, vals):
    return helper.make_tensor(name, TensorProto.INT64, [len(vals)], vals)


def f32(name, arr):
    arr = np.asarray(arr, np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.flatten().tolist())


def softmax_np(x, axis, coerce):
    shp = x.shape
    if coerce:  # before opset 13: [prod(:axis), prod(axis:)]
        x = x.reshape(int(np.prod(shp[:axis])), -1)
        axis = 1
    e = np.exp(x - x.max(axis, keepdims=True))
    return (e / e.sum(axis, keepdims=True)).reshape(shp)


def lrn_np(x, size, alpha, beta, bias):
    sq = np.zeros_like(x)
    c = x.shape[1]
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c - 1, ch + size // 2)
        sq[:, ch] = (x[:, lo:hi + 1] ** 2).sum(1)
    return x / (bias + alpha / size * sq) ** beta


def graph_misc(opset):
    """x [N,4,3,5]: Softmax axis 1 (coerced before 13), ReduceSum/ReduceMax/ReduceL2/ReduceMean,
    LpNormalization, LRN, HardSigmoid, Clip, Split, Slice, Sum/Max/Min, Cast, ConstantOfShape,
    Tile, Expand, Pow with a broadcast exponent."""
    nodes, inits = [], []
    outs = []

    def node(op, ins, n_out=1, **attrs):
        name = "n%d_%s" % (len(nodes), op)
        o = [name + "_y%d" % k for k in range(n_out)]
        nodes.append(helper.make_node(op, ins, o, name=name, **attrs))
        return o if n_out > 1 else o[0]

    def flat(t):
        outs.append(node("Flatten", [t], axis=1))

    flat(node("Softmax", ["x"], axis=1))
    flat(node("LogSoftmax", ["x"], axis=2))
    if opset >= 13:
        inits.append(i64("ax13", [1, 3]))
        flat(node("ReduceSum", ["x", "ax13"], keepdims=1))
        flat(node("ReduceSum", ["x"], keepdims=0, noop_with_empty_axes=1))
    else:
        flat(node("ReduceSum", ["x"], axes=[1, 3], keepdims=1))
        flat(node("Identity", ["x"]))
    flat(node("ReduceMax", ["x"], axes=[-1], keepdims=0))
    flat(node("ReduceL2", ["x"], axes=[2]))
    flat(node("ReduceMean", ["x"], axes=[1, 2], keepdims=0))
    flat(node("LpNormalization", ["x"], axis=1, p=1))
    flat(node("LpNormalization", ["x"], axis=-1, p=2))
    flat(node("LRN", ["x"], size=3, alpha=0.3, beta=0.6, bias=1.5))
    flat(node("HardSigmoid", ["x"], alpha=0.3, beta=0.4))
    if opset >= 11:
        inits += [f32("lo", -0.3), f32("hi", 0.2)]
        flat(node("Clip", ["x", "lo", "hi"]))
        flat(node("Clip", ["x", "", "hi"]))
    if opset >= 13:
        inits.append(i64("sp", [1, 3]))
        s = node("Split", ["x", "sp"], 2, axis=1)
    else:
        s = node("Split", ["x"], 2, axis=1, split=[1, 3])
    flat(s[0])
    flat(s[1])
    s2 = node("Split", ["x"], 3, axis=2)
    flat(s2[2])
    inits += [i64("st", [4, -1, 0]), i64("en", [-100, 0, 99]), i64("ax", [3, 1, 2]), i64("sp2", [-2, -1, 2])]
    flat(node("Slice", ["x", "st", "en", "ax", "sp2"]))
    inits += [f32("w3", np.linspace(-1, 1, 5)), f32("w4", np.linspace(0.5, -0.5, 15).reshape(3, 5))]
    flat(node("Sum", ["x", "w3", "w4"]))
    flat(node("Max", ["x", "w4", "w3"]))
    flat(node("Min", ["w3", "x"]))
    flat(node("Sum", ["x"]))
    inits += [f32("e", [1.0, 2.0, 3.0, 0.5, 2.0])]
    flat(node("Pow", [node("Abs", ["x"]), "e"]))
    # int64 shape arithmetic folded at load: ConstantOfShape(Shape(x)[1:3]) cast to float
    sh = node("Shape", ["x"])
    inits += [i64("s0", [1]), i64("s1", [3]), i64("a0", [0])]
    sl = node("Slice", [sh, "s0", "s1", "a0"])
    cos = node("ConstantOfShape", [sl], value=helper.make_tensor("v", TensorProto.INT64, [1], [2]))
    c = node("Cast", [cos], to=TensorProto.FLOAT)
    flat(node("Mul", ["x", node("Unsqueeze", [c], axes=[-1]) if opset < 13 else
                      node("Unsqueeze", [c, "a_last"])]))
    if opset >= 13:
        inits.append(i64("a_last", [-1]))
    inits += [i64("reps", [1, 2, 1, 2]), i64("eshape", [1, 4, 3, 5])]
    flat(node("Tile", ["x", "reps"]))
    inits += [i64("b0", [0]), i64("b1", [1]), i64("bax", [1])]
    x0 = node("Slice", ["x", "b0", "b1", "bax"])
    flat(node("Expand", [x0, "eshape"]))
    nshape = node("Concat", [node("Slice", [sh, "b0", "b1"]), "tail"], axis=0)  # [N,4,3,5]
    inits.append(i64("tail", [4, 3, 5]))
    flat(node("Expand", [x0, nshape]))
    cz = node("ConstantOfShape", [node("Shape", ["w4"])],
              value=helper.make_tensor("z", TensorProto.FLOAT, [1], [0.25]))
    flat(node("Add", ["x", cz]))
    flat(node("Transpose", ["x"], perm=[0, 3, 1, 2]))
    y = node("Concat", outs, axis=1)
    def ref(x):
        n = x.shape[0]
        parts = [softmax_np(x, 1, opset < 13)]
        parts.append(np.log(softmax_np(x, 2, opset < 13)))
        parts.append(x.sum((1, 3), keepdims=True))
        parts.append(x)  # ReduceSum with no axes and noop_with_empty_axes (an Identity before 13)
        parts.append(x.max(-1))
        parts.append(np.sqrt((x * x).sum(2, keepdims=True)))
        parts.append(x.mean((1, 2)))
        parts.append(x / np.abs(x).sum(1, keepdims=True))
        parts.append(x / np.sqrt((x * x).sum(-1, keepdims=True)))
        parts.append(lrn_np(x, 3, 0.3, 0.6, 1.5))
        parts.append(np.clip(0.3 * x + 0.4, 0, 1))
        parts += [np.clip(x, -0.3, 0.2), np.minimum(x, 0.2)]
        parts += [x[:, :1], x[:, 1:], x[:, :, 2:]]
        parts.append(x[:, 3:0:-1, 0:3:2, 4::-2])
        w3, w4 = np.linspace(-1, 1, 5), np.linspace(0.5, -0.5, 15).reshape(3, 5)
        parts += [x + w3 + w4, np.maximum(np.maximum(x, w4), w3), np.minimum(w3, x), x]
        parts.append(np.abs(x) ** np.array([1.0, 2.0, 3.0, 0.5, 2.0]))
        parts.append(x * 2)
        parts.append(np.tile(x, (1, 2, 1, 2)))
        parts += [np.repeat(x[:, :1], 4, 1)] * 2
        parts.append(x + 0.25)
        parts.append(x.transpose(0, 3, 1, 2))
        return np.concatenate([p.reshape(n, -1) for p in parts], 1)

    dim = ref(np.zeros((1, 4, 3, 5))).shape[1]
    g = helper.make_graph(nodes, "misc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3, 5])],
                          [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", dim])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7


    return m, ref


GRAPHS = {"misc": (graph_misc, (4, 3, 5))}

# Malformed uses: (file, opset, op, inputs, initializers, attributes); the
# expected refusals are in tests/unit/test_onnx_ops.c.
BAD = [
    ("split_sum", 13, "Split", ["x", "sp"], [i64("sp", [1, 2])], {"axis": 1}, 2),
    ("split_huge", 13, "Split", ["x", "sp"], [i64("sp", [2 ** 62, 2 ** 62])], {"axis": 1}, 2),
    ("split_batch", 11, "Split", ["x"], [], {"axis": 0}, 2),
    ("transpose_perm", 13, "Transpose", ["x"], [], {"perm": [0, 1, 1, 2]}, 1),
    ("transpose_batch", 13, "Transpose", ["x"], [], {"perm": [1, 0, 2, 3]}, 1),
    ("slice_step0", 13, "Slice", ["x", "s", "e", "a", "st"], [i64("s", [0]), i64("e", [2]), i64("a", [1]),
                                                          i64("st", [0])], {}, 1),
    ("slice_dynamic", 13, "Slice", ["x", "x", "x"], [], {}, 1),
    ("softmax_batch", 11, "Softmax", ["x"], [], {"axis": 0}, 1),
    ("reduce_batch", 13, "ReduceMean", ["x"], [], {"axes": [0, 1]}, 1),
    ("reducesum_attr13", 13, "ReduceSum", ["x"], [], {"axes": [1]}, 1),
    ("cast_double", 13, "Cast", ["x"], [], {"to": TensorProto.DOUBLE}, 1),
    ("clip_dynamic", 13, "Clip", ["x", "x"], [], {}, 1),
    ("lrn_size", 13, "LRN", ["x"], [], {"alpha": 0.1}, 1),
    ("lpnorm_p", 13, "LpNormalization", ["x"], [], {"p": 3}, 1),
    ("tile_batch", 13, "Tile", ["x", "r"], [i64("r", [2, 1, 1, 1])], {}, 1),
    ("prelu_slope", 13, "PRelu", ["x", "w"], [f32("w", [1.0, 2.0])], {}, 1),
    ("leaky_attr", 13, "LeakyRelu", ["x"], [], {"beta": 0.5}, 1),
    ("sum_shapes", 13, "Sum", ["x", "w"], [f32("w", [1.0, 2.0])], {}, 1),
    ("expand_shape", 13, "Expand", ["x", "s"], [i64("s", [3, 1, 1])], {}, 1),
    ("pad_crop_all", 13, "Pad", ["x", "p"], [i64("p", [0, -3, 0, 0, 0, -2, 0, 0])], {}, 1),
    ("pad_reflect_cropped", 13, "Pad", ["x", "p"], [i64("p", [0, 0, -1, 0, 0, 0, 2, 0])], {"mode": "reflect"}, 1),
    ("cos_value", 13, "ConstantOfShape", ["s"], [i64("s", [2])],
     {"value": helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, 2.0])}, 1),
]


def write_bad():
    d = os.path.join(OUT, "bad_ops")
    os.makedirs(d, exist_ok=True)
    for name, opset, op, ins, inits, attrs, n_out in BAD:
        outs = ["y%d" % k for k in range(n_out)]
        g = helper.make_graph([helper.make_node(op, ins, outs, name="bad", **attrs)], name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3, 5])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 7
        onnx.save(m, os.path.join(d, name + ".onnx"))


def write_rows(path, x):
    x = np.asarray(x, np.float32).reshape(x.shape[0], -1)
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", x.shape[0], x.shape[1]))
        f.write(x.tobytes())


def main(names):
    """Every model, or only those named."""
    os.makedirs(OUT, exist_ok=True)
    for name, (cls, shape) in TORCH_MODELS.items():
        if names and name not in names:
            continue
        torch.manual_seed(11)
        m = cls().eval()
        x = torch.randn(BATCH, *shape)
        with torch.no_grad():
            y = m.double()(x.double())
        m.float()
        write_rows(os.path.join(OUT, "ops_%s.in" % name), x.numpy())
        write_rows(os.path.join(OUT, "ops_%s.out" % name), y.numpy())
        for opset in TORCH_OPSETS.get(name, OPSETS):
            path = os.path.join(OUT, "ops_%s_op%d_dyn.onnx" % (name, opset))
            torch.onnx.export(m, torch.zeros(2, *shape), path, opset_version=opset, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                              do_constant_folding=False)
            print(path, os.path.getsize(path))
    rng = np.random.default_rng(5)
    for name, (build, shape) in GRAPHS.items():
        if names and name not in names:
            continue
        x = rng.standard_normal((BATCH,) + shape)
        write_rows(os.path.join(OUT, "ops_%s.in" % name), x)
        for opset in OPSETS:
            m, ref = build(opset)
            onnx.checker.check_model(m)
            path = os.path.join(OUT, "ops_%s_op%d_dyn.onnx" % (name, opset))
            onnx.save(m, path)
            write_rows(os.path.join(OUT, "ops_%s_op%d.out" % (name, opset)), ref(x.astype(np.float32).astype(np.float64)))
            print(path, os.path.getsize(path))
    if not names:
        write_bad()


if __name__ == "__main__":
    main(sys.argv[1:])
