#!/usr/bin/python3
"""gen_onnx_node.py - ONNX's own node test cases for the supported ops, generated here.

ONNX's backend test data under onnx/backend/test/data/node is produced by the
case scripts that Debian's python3-onnx ships (onnx.backend.test.case.node):
each case is one node, its inputs and the outputs computed by numpy. This
script runs those scripts and writes, for every case whose ops are all in
tripletd's supported list:

  OUT/<case>/model.onnx   the case's model, inputs after the first made
                          initializers (constants), outputs after the first
                          dropped (a tripletd model has one input, one output)
  OUT/<case>/input_0.pb   the first input (TensorProto)
  OUT/<case>/output_0.pb  the first output

Cases whose first input or first output is not float32 are left out (tripletd
takes float inputs). Usage: gen_onnx_node.py OUT
"""
import os
import sys

import numpy as np

# python3-onnx 1.12's case scripts still name numpy aliases that numpy 1.24 removed.
for alias, value in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if alias not in np.__dict__:
        setattr(np, alias, value)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from onnx.backend.test.case import node  # noqa: E402

SUPPORTED = set("""Conv BatchNormalization Relu LeakyRelu PRelu Elu Selu Sigmoid HardSigmoid
HardSwish Tanh Softplus Softsign Erf Clip Abs Neg Exp Log Sqrt Pow Softmax LogSoftmax MaxPool
AveragePool GlobalAveragePool GlobalMaxPool LRN Pad Flatten Reshape Squeeze Unsqueeze Transpose
Concat Split Slice Gather Shape Expand Tile Gemm MatMul Add Sub Mul Div Sum Max Min ReduceMean
ReduceSum ReduceMax ReduceL2 LpNormalization Constant ConstantOfShape Cast Identity
Dropout LayerNormalization InstanceNormalization""".split())


def convert(case):
    """The case as (model, input, output), or None when it is left out."""
    model = case.model
    if not {n.op_type for n in model.graph.node} <= SUPPORTED:
        return None
    inputs, outputs = case.data_sets[0]
    if not inputs or not all(isinstance(v, np.ndarray) for v in list(inputs) + list(outputs)):
        return None
    if inputs[0].dtype != np.float32 or outputs[0].dtype != np.float32:
        return None
    g = model.graph
    names = [i.name for i in g.input]
    for name, value in zip(names[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    del g.input[1:]
    del g.output[1:]
    return model, inputs[0], outputs[0]


def main():
    out = sys.argv[1]
    written = 0
    seen = set()
    for case in node.collect_testcases(""):
        got = convert(case)
        if got is None:
            continue
        model, x, y = got
        name = case.name  # two cases of python3-onnx 1.12 share a name: the second gets a suffix
        while name in seen:
            name += "_2"
        seen.add(name)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        for fname, value in (("input_0.pb", x), ("output_0.pb", y)):
            with open(os.path.join(d, fname), "wb") as f:
                f.write(numpy_helper.from_array(value).SerializeToString())
        written += 1
    print(f"{written} cases written")


if __name__ == "__main__":
    main()
