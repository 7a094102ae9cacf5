#!/usr/bin/env bash
# params.sh - `parameters` (tripletctl inspect --json, GET /v1/model) of an ONNX file is the element count
# of its initializers, each once, as numpy reads them: torchvision's squeezenet1_1 and mobilenet_v3_small
# (random weights, 64x64, exported here), with torch's constant folding and, for mobilenet_v3_small, also
# without it in PRESERVE mode, so that the file holds BatchNormalizations the loader folds into new
# constants, and Constant nodes.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
pick_python numpy,onnx,torch,torchvision || skip "python3 with numpy, onnx, torch and torchvision is missing"

if ! "$PY" - "$tmp" >"$tmp/gen.log" 2>&1 <<'PY'; then bad "export: $(tail -n 5 "$tmp/gen.log")"; finish; fi
import json, sys, warnings
import onnx, torch, torchvision
from onnx import numpy_helper
warnings.filterwarnings("ignore")
tmp = sys.argv[1]
torch.manual_seed(3)
want = {}
for name, fold in (("squeezenet1_1", True), ("mobilenet_v3_small", False), ("mobilenet_v3_small", True)):
    net = getattr(torchvision.models, name)(weights=None).eval()
    path = "%s/%s_%s.onnx" % (tmp, name, "folded" if fold else "bn")
    torch.onnx.export(net, torch.randn(1, 3, 64, 64), path, opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, do_constant_folding=fold,
                      training=torch.onnx.TrainingMode.EVAL if fold else torch.onnx.TrainingMode.PRESERVE)
    g = onnx.load(path).graph
    want[path] = int(sum(numpy_helper.to_array(t).size for t in g.initializer))
    print(path, want[path], sorted({n.op_type for n in g.node}))
json.dump(want, open(tmp + "/want.json", "w"))
PY
grep -q "BatchNormalization" "$tmp/gen.log" && ok "an export keeps BatchNormalization nodes" || bad "no export with BatchNormalization"
for f in "$tmp"/*.onnx; do
    expect "inspect ${f##*/}" 0 "$TRIPLETCTL" inspect --json "$f"
    if "$PY" - "$tmp/out" "$tmp/want.json" "$f" <<'PY'; then ok "${f##*/}: parameters = numpy's"; else bad "${f##*/}: parameters"; fi
import json, sys
got, want = json.load(open(sys.argv[1]))["parameters"], json.load(open(sys.argv[2]))[sys.argv[3]]
print(got, want)
assert got == want, (got, want)
PY
done
finish
