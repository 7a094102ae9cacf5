#!/usr/bin/python3
"""gen_onnx_opsets.py - one-op (or few-op) ONNX models at every opset where the op's spelling or
meaning changed, run by ONNX Runtime for the reference outputs (tests/onnx/conformance.sh).

    gen_onnx_opsets.py make OUT   writes OUT/<case>/model.onnx, input_0.pb and input.bin (float32)
    gen_onnx_opsets.py wrap OUT   turns the output.bin + output.json that tests/onnx/ort_run.js
                                  wrote next to them into output_0.pb

The cases cover what changed between opsets 7 and 17: attributes that became inputs (Pad, Clip,
Squeeze, Unsqueeze, Slice, Split, ReduceSum), Softmax's 2-D coercion before opset 13,
BatchNormalization's `spatial`, Dropout's ratio input, Shape's start/end; and the attributes of
the convolution, pooling and activation ops. Every input has a symbolic batch dimension and
random values from a fixed seed; ONNX Runtime runs a batch of 3.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BATCH = 3
rng = np.random.default_rng(7)
CASES = []


def case(name, opset, x_shape, nodes, inits=(), low=-2.0, high=2.0):
    """A model of nodes reading "x" [N, *x_shape] and writing "y"; inits are (name, array)."""
    CASES.append((name, opset, x_shape, nodes, inits, low, high))


def f32(shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def i64(v):
    return np.array(v, dtype=np.int64)


N = helper.make_node

# --- attributes that became inputs ------------------------------------------------------------
for mode in ("constant", "reflect", "edge"):
    case(f"pad_{mode}_op2", 2, [3, 5, 6], [N("Pad", ["x"], ["y"], mode=mode, pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.5)])
    for op in (11, 13):
        inits = [("p", i64([0, 1, 2, 0, 0, 1, 1, 2]))] + ([("v", np.array(0.25, np.float32))] if mode == "constant" else [])
        case(f"pad_{mode}_op{op}", op, [3, 5, 6],
             [N("Pad", ["x", "p"] + (["v"] if mode == "constant" else []), ["y"], mode=mode)], inits=inits)
# negative pads crop: the input is cropped, then the cropped input padded (reflect and edge read it)
for mode in ("constant", "reflect", "edge"):
    neg = [0, -1, 2, -1, 0, 1, -2, 1]  # per axis: crop 1 then pad 1 after; pad 2, crop 2; crop 1, pad 1
    case(f"pad_neg_{mode}_op2", 2, [3, 5, 6], [N("Pad", ["x"], ["y"], mode=mode, pads=neg, value=0.5)])
    case(f"pad_neg_{mode}_op11", 11, [3, 5, 6], [N("Pad", ["x", "p"], ["y"], mode=mode)], inits=[("p", i64(neg))])
    case(f"pad_crop_only_{mode}_op13", 13, [3, 5, 6], [N("Pad", ["x", "p"], ["y"], mode=mode)],
         inits=[("p", i64([0, -1, 0, -2, 0, -1, -3, 0]))])
case("clip_op6", 6, [4, 5], [N("Clip", ["x"], ["y"], min=-0.5, max=0.7)])
case("clip_op6_default", 6, [4, 5], [N("Clip", ["x"], ["y"], max=0.3)])
for op in (11, 12, 13):
    case(f"clip_op{op}", op, [4, 5], [N("Clip", ["x", "lo", "hi"], ["y"])],
         inits=[("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))])
    case(f"clip_op{op}_min_only", op, [4, 5], [N("Clip", ["x", "lo"], ["y"])], inits=[("lo", np.array(-0.2, np.float32))])
    case(f"clip_op{op}_max_only", op, [4, 5], [N("Clip", ["x", "", "hi"], ["y"])], inits=[("hi", np.array(0.1, np.float32))])
    case(f"clip_op{op}_none", op, [4, 5], [N("Clip", ["x"], ["y"])])
case("squeeze_op7", 7, [1, 4, 1, 5], [N("Squeeze", ["x"], ["y"], axes=[1, 3])])
case("squeeze_op11_neg", 11, [1, 4, 1, 5], [N("Squeeze", ["x"], ["y"], axes=[-2, 1])])
case("squeeze_op13", 13, [1, 4, 1, 5], [N("Squeeze", ["x", "a"], ["y"])], inits=[("a", i64([-2, 1]))])
case("squeeze_op13_all", 13, [1, 4, 1, 5], [N("Squeeze", ["x"], ["y"])])
case("unsqueeze_op7", 7, [4, 5], [N("Unsqueeze", ["x"], ["y"], axes=[1, 4])])
case("unsqueeze_op11_neg", 11, [4, 5], [N("Unsqueeze", ["x"], ["y"], axes=[-1, 2])])
case("unsqueeze_op13", 13, [4, 5], [N("Unsqueeze", ["x", "a"], ["y"])], inits=[("a", i64([3, -1]))])
case("slice_op7", 7, [6, 7], [N("Slice", ["x"], ["y"], starts=[1, -5], ends=[5, 100], axes=[1, 2])])
case("slice_op7_noaxes", 7, [6, 7], [N("Slice", ["x"], ["y"], starts=[0, 1, 2], ends=[2**63 - 1, 4, -1])])
for op in (10, 11, 13):
    case(f"slice_op{op}", op, [6, 7], [N("Slice", ["x", "s", "e", "a", "t"], ["y"])],
         inits=[("s", i64([1, -2])), ("e", i64([6, -7 - 10])), ("a", i64([1, 2])), ("t", i64([2, -2]))])
    case(f"slice_op{op}_noaxes", op, [6, 7], [N("Slice", ["x", "s", "e"], ["y"])],
         inits=[("s", i64([0, 2, 1])), ("e", i64([2**62, 5, 7]))])
case("split_op5", 5, [6, 4], [N("Split", ["x"], ["a", "b", "c"], axis=1, split=[1, 2, 3]), N("Concat", ["c", "a", "b"], ["y"], axis=1)])
case("split_op7_equal", 7, [6, 4], [N("Split", ["x"], ["a", "b"], axis=2), N("Sub", ["b", "a"], ["y"])])
case("split_op11_neg", 11, [6, 4], [N("Split", ["x"], ["a", "b"], axis=-1, split=[3, 1]), N("Concat", ["b", "a"], ["y"], axis=-1)])
case("split_op13", 13, [6, 4], [N("Split", ["x", "s"], ["a", "b"], axis=1), N("Concat", ["b", "a"], ["y"], axis=1)],
     inits=[("s", i64([4, 2]))])
case("split_op13_equal", 13, [6, 4], [N("Split", ["x"], ["a", "b", "c"], axis=1), N("Concat", ["c", "b", "a"], ["y"], axis=1)])
for red in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2"):
    low = red.lower()
    for op in (7, 11):
        case(f"{low}_op{op}", op, [3, 4, 5], [N(red, ["x"], ["y"], axes=[1, -1] if op >= 11 else [1, 3], keepdims=1)])
        case(f"{low}_op{op}_nokeep", op, [3, 4, 5], [N(red, ["x"], ["y"], axes=[2], keepdims=0)])
    if red == "ReduceSum":
        case("reducesum_op13", 13, [3, 4, 5], [N(red, ["x", "a"], ["y"], keepdims=0)], inits=[("a", i64([-1, 1]))])
        case("reducesum_op13_noop", 13, [3, 4, 5], [N(red, ["x", "a"], ["y"], noop_with_empty_axes=1)],
             inits=[("a", np.zeros([0], np.int64))])
    else:
        case(f"{low}_op13", 13, [3, 4, 5], [N(red, ["x"], ["y"], axes=[-2, 3], keepdims=1)])
for sm in ("Softmax", "LogSoftmax"):
    low = sm.lower()
    for op in (7, 11):
        for ax in (1, 2, -1):
            if op < 11 and ax < 0:
                continue
            case(f"{low}_op{op}_axis{ax}".replace("-", "m"), op, [3, 4, 5], [N(sm, ["x"], ["y"], axis=ax)])
        case(f"{low}_op{op}_default", op, [3, 4, 5], [N(sm, ["x"], ["y"])])
    for ax in (1, 2, -1):
        case(f"{low}_op13_axis{ax}".replace("-", "m"), 13, [3, 4, 5], [N(sm, ["x"], ["y"], axis=ax)])
    case(f"{low}_op13_default", 13, [3, 4, 5], [N(sm, ["x"], ["y"])])


def bn_inits(c):
    return [("s", f32([c], 0.5, 1.5)), ("b", f32([c])), ("m", f32([c], -0.3, 0.3)), ("v", f32([c], 0.5, 1.5))]


case("bn_op7", 7, [4, 3, 5], [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)], inits=bn_inits(4))
case("bn_op7_nonspatial", 7, [4, 3, 5], [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0)],
     inits=[("s", f32([4, 3, 5], 0.5, 1.5)), ("b", f32([4, 3, 5])), ("m", f32([4, 3, 5], -0.3, 0.3)), ("v", f32([4, 3, 5], 0.5, 1.5))])
for op in (9, 14, 15):
    case(f"bn_op{op}", op, [4, 3, 5], [N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], inits=bn_inits(4))
case("layernorm_op17", 17, [3, 4, 5], [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=2, epsilon=1e-3)],
     inits=[("s", f32([4, 5], 0.5, 1.5)), ("b", f32([4, 5]))])
case("layernorm_op17_last_noscale_bias", 17, [3, 4, 5], [N("LayerNormalization", ["x", "s"], ["y"])],
     inits=[("s", f32([5], 0.5, 1.5))])
case("layernorm_op17_axis1", 17, [3, 4, 5], [N("LayerNormalization", ["x", "s", "b"], ["y"], axis=1)],
     inits=[("s", f32([3, 4, 5], 0.5, 1.5)), ("b", f32([3, 4, 5]))])
case("instancenorm_op6", 6, [4, 5, 6], [N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
     inits=[("s", f32([4], 0.5, 1.5)), ("b", f32([4]))])
case("instancenorm_1d_op13", 13, [3, 7], [N("InstanceNormalization", ["x", "s", "b"], ["y"])],
     inits=[("s", f32([3], 0.5, 1.5)), ("b", f32([3]))])
for op in (7, 10, 12, 13):
    ins = ["x", "r"] if op >= 12 else ["x"]
    inits = [("r", np.array(0.3, np.float32))] if op >= 12 else []
    kw = {} if op >= 12 else {"ratio": 0.3}
    case(f"dropout_op{op}", op, [4, 5], [N("Dropout", ins, ["d"], **kw), N("Relu", ["d"], ["y"])], inits=inits)
case("dropout_op13_training_false", 13, [4, 5], [N("Dropout", ["x", "r", "t"], ["y"])],
     inits=[("r", np.array(0.5, np.float32)), ("t", np.array(False))])
case("pad_constant_op11_novalue", 11, [3, 5, 6], [N("Pad", ["x", "p"], ["y"])], inits=[("p", i64([0, 0, 1, 2, 0, 1, 0, 0]))])
case("matmul_vec_op13", 13, [4, 6], [N("MatMul", ["x", "w"], ["y"])], inits=[("w", f32([6]))])
case("matmul_bcast_op13", 13, [2, 4, 6], [N("MatMul", ["x", "w"], ["y"])], inits=[("w", f32([2, 6, 3]))])
case("matmul_bcast_one_op13", 13, [2, 4, 6], [N("MatMul", ["x", "w"], ["y"])], inits=[("w", f32([1, 6, 3]))])
case("matmul_bcast_a_one_op13", 13, [1, 4, 6], [N("MatMul", ["x", "w"], ["y"])], inits=[("w", f32([3, 6, 2]))])
case("matmul_runtime_b_op13", 13, [4, 6], [N("Transpose", ["x"], ["t"], perm=[0, 2, 1]), N("MatMul", ["x", "t"], ["y"])])
case("add_expands_x_op13", 13, [1, 5], [N("Add", ["x", "c"], ["y"])], inits=[("c", f32([4, 1]))])
case("max_three_shapes_op13", 13, [3, 1], [N("Max", ["x", "c", "d"], ["y"])], inits=[("c", f32([4])), ("d", f32([1, 1]))])
case("prelu_last_axis_op16", 16, [4, 5], [N("PRelu", ["x", "s"], ["y"])], inits=[("s", f32([5]))])
case("gemm_c_scalar_op13", 13, [6], [N("Gemm", ["x", "w", "c"], ["y"], transB=1)], inits=[("w", f32([5, 6])), ("c", f32([]))])
case("lpnorm_p2_neg_axis", 13, [3, 4, 5], [N("LpNormalization", ["x"], ["y"], p=2, axis=-2)])
case("globalavgpool_1d", 13, [3, 7], [N("GlobalAveragePool", ["x"], ["y"])])
case("avgpool_1d_op11", 11, [3, 13], [N("AveragePool", ["x"], ["y"], kernel_shape=[4], strides=[3], pads=[1, 2], count_include_pad=1)])
case("shape_op15_slice", 15, [4, 5, 6],
     [N("Shape", ["x"], ["s"], start=1, end=-1), N("Reshape", ["x", "t"], ["r"]), N("Relu", ["r"], ["y"])],
     inits=[("t", i64([0, -1]))])

# --- convolution and pooling ------------------------------------------------------------------
W = f32([8, 3, 3, 3])
case("conv_same_upper_s2", 11, [3, 9, 10], [N("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
     inits=[("w", W), ("b", f32([8]))])
case("conv_same_lower_s2", 11, [3, 9, 10], [N("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])],
     inits=[("w", W)])
case("conv_valid", 11, [3, 9, 10], [N("Conv", ["x", "w"], ["y"], auto_pad="VALID")], inits=[("w", W)])
case("conv_dil_pads", 11, [3, 11, 12], [N("Conv", ["x", "w"], ["y"], dilations=[2, 3], pads=[1, 0, 2, 3], strides=[1, 2])],
     inits=[("w", W)])
case("conv_groups", 11, [6, 8, 8], [N("Conv", ["x", "w"], ["y"], group=3, pads=[1, 1, 1, 1])], inits=[("w", f32([9, 2, 3, 3]))])
case("conv_depthwise_s2", 11, [6, 9, 9], [N("Conv", ["x", "w", "b"], ["y"], group=6, strides=[2, 2], pads=[1, 1, 1, 1])],
     inits=[("w", f32([6, 1, 3, 3])), ("b", f32([6]))])
case("conv_1d", 11, [4, 17], [N("Conv", ["x", "w"], ["y"], strides=[2], pads=[2, 1], dilations=[2])], inits=[("w", f32([5, 4, 3]))])
case("conv_wino", 11, [16, 20, 20], [N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), N("Relu", ["c"], ["y"])],
     inits=[("w", f32([32, 16, 3, 3]) * 0.3), ("b", f32([32]))])
case("conv_1x1_kernel_shape", 7, [5, 6, 6], [N("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1])], inits=[("w", f32([7, 5, 1, 1]))])
for op in (8, 10, 12):
    kw = {"ceil_mode": 1} if op >= 10 else {}
    case(f"maxpool_op{op}", op, [3, 9, 10], [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1], **kw)])
case("maxpool_dil", 12, [3, 11, 11], [N("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], dilations=[2, 2], strides=[1, 2])])
case("maxpool_same_upper", 11, [3, 9, 10], [N("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")])
case("maxpool_1d", 11, [3, 13], [N("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1])])
for op in (7, 10, 11):
    for cip in (0, 1):
        kw = {"ceil_mode": 1} if op >= 10 else {}
        case(f"avgpool_op{op}_cip{cip}", op, [3, 9, 10],
             [N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 0], count_include_pad=cip, **kw)])
case("avgpool_same_lower", 11, [3, 9, 10], [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER")])
case("globalavgpool", 7, [3, 5, 6], [N("GlobalAveragePool", ["x"], ["y"])])
case("globalmaxpool", 7, [3, 5, 6], [N("GlobalMaxPool", ["x"], ["y"])])
case("lrn", 7, [7, 4, 4], [N("LRN", ["x"], ["y"], size=3, alpha=0.002, beta=0.6, bias=1.5)])
for p in (1, 2):
    case(f"lpnorm_p{p}", 7, [3, 4, 5], [N("LpNormalization", ["x"], ["y"], p=p, axis=1)])
    case(f"lpnorm_p{p}_last", 7, [3, 4, 5], [N("LpNormalization", ["x"], ["y"], p=p)])

# --- activations and elementwise --------------------------------------------------------------
for op_name, kw in (("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
                    ("Selu", {"alpha": 1.5, "gamma": 0.9}), ("Sigmoid", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
                    ("HardSigmoid", {}), ("Tanh", {}), ("Softplus", {}), ("Softsign", {}), ("Erf", {}), ("Abs", {}),
                    ("Neg", {}), ("Exp", {})):
    op = 13 if op_name in ("Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Erf") else 7
    tag = op_name.lower() + ("_attrs" if kw else "")
    case(f"{tag}_op{op}", op, [3, 4, 5], [N(op_name, ["x"], ["y"], **kw)], low=-4, high=4)
case("hardswish_op14", 14, [3, 4, 5], [N("HardSwish", ["x"], ["y"])], low=-5, high=5)
case("log_op13", 13, [3, 4, 5], [N("Log", ["x"], ["y"])], low=0.01, high=5)
case("sqrt_op13", 13, [3, 4, 5], [N("Sqrt", ["x"], ["y"])], low=0.0, high=5)
case("prelu_channel_op9", 9, [4, 3, 5], [N("PRelu", ["x", "s"], ["y"])], inits=[("s", f32([4, 1, 1]))])
case("prelu_scalar_op16", 16, [4, 3, 5], [N("PRelu", ["x", "s"], ["y"])], inits=[("s", f32([1]))])
case("prelu_full_op7", 7, [4, 3, 5], [N("PRelu", ["x", "s"], ["y"])], inits=[("s", f32([4, 3, 5]))])
case("pow_bcast_op7", 7, [3, 4], [N("Pow", ["x", "e"], ["y"])], inits=[("e", f32([4], 0.5, 2.5))], low=0.1, high=2)
case("pow_int_op13", 13, [3, 4], [N("Pow", ["x", "e"], ["y"])], inits=[("e", i64([2, 3, 1, 0]))])
case("pow_base_const_op15", 15, [3, 4], [N("Pow", ["b", "x"], ["y"])], inits=[("b", f32([4], 0.5, 2.0))])
for op_name in ("Add", "Sub", "Mul", "Div"):
    case(f"{op_name.lower()}_bcast_op7", 7, [3, 4, 5], [N(op_name, ["x", "c"], ["y"])], inits=[("c", f32([3, 1, 5], 0.5, 1.5))])
    case(f"{op_name.lower()}_rev_op14", 14, [3, 4, 5], [N(op_name, ["c", "x"], ["y"])], inits=[("c", f32([5], 0.5, 1.5))],
         low=0.5, high=1.5)
for op_name in ("Sum", "Max", "Min"):
    case(f"{op_name.lower()}_3_op8", 8, [3, 4], [N(op_name, ["x", "c", "d"], ["y"])], inits=[("c", f32([4])), ("d", f32([3, 1]))])
    case(f"{op_name.lower()}_1_op13", 13, [3, 4], [N(op_name, ["x"], ["y"])])
    case(f"{op_name.lower()}_self_op13", 13, [3, 4], [N("Neg", ["x"], ["n"]), N(op_name, ["x", "n", "x"], ["y"])])

# --- data movement ----------------------------------------------------------------------------
case("flatten_axis1_op11", 11, [3, 4, 5], [N("Flatten", ["x"], ["y"], axis=1)])
case("flatten_op13", 13, [3, 4, 5], [N("Flatten", ["x"], ["f"]), N("Relu", ["f"], ["y"])])
case("reshape_zero_minus1_op13", 13, [3, 4, 5], [N("Reshape", ["x", "s"], ["y"])], inits=[("s", i64([0, 2, -1, 5]))])
case("reshape_allowzero_op14", 14, [3, 4, 5], [N("Reshape", ["x", "s"], ["y"], allowzero=0)], inits=[("s", i64([0, 0, 20]))])
case("transpose_op13", 13, [3, 4, 5], [N("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])])
case("concat_neg_op13", 13, [3, 4], [N("Neg", ["x"], ["n"]), N("Concat", ["x", "n", "x"], ["y"], axis=-1)])
case("gather_axis1_neg_op13", 13, [5, 4], [N("Gather", ["x", "i"], ["y"], axis=1)], inits=[("i", i64([[4, -1], [0, 2]]))])
case("gather_axis2_scalar_op11", 11, [5, 4], [N("Gather", ["x", "i"], ["y"], axis=2)], inits=[("i", np.array(-2, np.int64))])
case("tile_op13", 13, [2, 3], [N("Tile", ["x", "r"], ["y"])], inits=[("r", i64([1, 2, 3]))])
case("expand_op13", 13, [1, 3], [N("Expand", ["x", "s"], ["y"])], inits=[("s", i64([1, 4, 3]))])
case("expand_rank_op8", 8, [4, 1], [N("Expand", ["x", "s"], ["y"])], inits=[("s", i64([4, 5]))])
case("gemm_attrs_op11", 11, [6], [N("Gemm", ["x", "w", "c"], ["y"], alpha=0.5, beta=2.0, transB=1)],
     inits=[("w", f32([5, 6])), ("c", f32([5]))])
case("gemm_noc_op11", 11, [6], [N("Gemm", ["x", "w"], ["y"])], inits=[("w", f32([6, 5]))])
case("gemm_c_full_op13", 13, [6], [N("Gemm", ["x", "w", "c"], ["y"], beta=0.5)], inits=[("w", f32([6, 5])), ("c", f32([1, 5]))])
case("matmul_3d_op13", 13, [4, 6], [N("MatMul", ["x", "w"], ["y"])], inits=[("w", f32([6, 5]))])
case("cast_roundtrip_op13", 13, [3, 4], [N("Cast", ["x"], ["y"], to=TensorProto.FLOAT)])
case("constantofshape_op9", 9, [3, 4], [N("ConstantOfShape", ["s"], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
                                         N("Add", ["x", "c"], ["y"])], inits=[("s", i64([3, 4]))])
case("constant_value_float_op13", 13, [3, 4], [N("Constant", [], ["c"], value_float=0.75), N("Mul", ["x", "c"], ["y"])])
case("constant_value_floats_op13", 13, [3, 4], [N("Constant", [], ["c"], value_floats=[0.5, -1.0, 2.0, 0.25]),
                                                N("Add", ["x", "c"], ["y"])])
case("constant_value_ints_op13", 13, [3, 4], [N("Constant", [], ["s"], value_ints=[0, 12]), N("Reshape", ["x", "s"], ["y"])])
case("constant_value_tensor_op11", 11, [3, 4], [N("Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [4], [1, 2, 3, 4])),
                                                N("Sub", ["x", "c"], ["y"])])
case("where_equal_shape_op13", 13, [3, 4], [N("Shape", ["x"], ["s"]), N("Equal", ["s", "m"], ["e"]),
                                             N("Where", ["e", "one", "s"], ["t"]), N("Expand", ["c", "t"], ["z"]),
                                             N("Add", ["x", "z"], ["y"])],
     inits=[("m", i64([-1, 3, -1])), ("one", i64([1, 1, 1])), ("c", f32([1, 1, 4]))])
case("where_float_const_cond_op16", 16, [3, 4], [N("Where", ["k", "x", "z"], ["y"])],
     inits=[("k", np.array([True, False, False, True])), ("z", f32([3, 1]))])
case("expand_const_to_batch_op13", 13, [4], [N("Shape", ["x"], ["s"]), N("Expand", ["c", "s"], ["z"]), N("Mul", ["x", "z"], ["y"])],
     inits=[("c", f32([4]))])
case("identity_op13", 13, [3, 4], [N("Identity", ["x"], ["y"])])


def make(out):
    names = []
    for name, opset, x_shape, nodes, inits, low, high in CASES:
        y_name = nodes[-1].output[0]
        x_vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + list(x_shape))
        y_vi = helper.make_tensor_value_info(y_name, TensorProto.FLOAT, None)
        g = helper.make_graph(nodes, name, [x_vi], [y_vi],
                              initializer=[numpy_helper.from_array(a, n) for n, a in inits])
        m = helper.make_model(g, opset_imports=[helper.make_operatorsetid("", opset)], producer_name="gen_onnx_opsets")
        m.ir_version = 7 if opset >= 13 else 6 if opset >= 11 else 5 if opset >= 10 else 3
        d = os.path.join(out, "test_" + name)
        os.makedirs(d, exist_ok=True)
        onnx.save(m, os.path.join(d, "model.onnx"))
        x = f32([BATCH] + list(x_shape), low, high)
        with open(os.path.join(d, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x).SerializeToString())
        x.tofile(os.path.join(d, "input.bin"))
        with open(os.path.join(d, "input.json"), "w") as f:
            json.dump([BATCH] + list(x_shape), f)
        names.append(name)
    print(f"{len(names)} cases")


def wrap(out):
    n = 0
    for d in sorted(os.listdir(out)):
        p = os.path.join(out, d)
        if not os.path.exists(os.path.join(p, "output.json")):
            continue
        shape = json.load(open(os.path.join(p, "output.json")))
        y = np.fromfile(os.path.join(p, "output.bin"), dtype=np.float32).reshape(shape)
        with open(os.path.join(p, "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y).SerializeToString())
        n += 1
    print(f"{n} outputs")


if __name__ == "__main__":
    {"make": make, "wrap": wrap}[sys.argv[1]](sys.argv[2])
