#!/usr/bin/env bash
# ort_opsets.sh - one-op models at every opset where an op's spelling or meaning changed (attributes
# that became inputs, Softmax's coercion, BatchNormalization's spatial, ...) and the attributes of the
# conv, pool and activation ops (tests/golden/gen_onnx_opsets.py), run by ONNX Runtime (npm
# onnxruntime-node, tests/package.json) and by tripletd's executor (test_onnx_backend): the outputs
# must agree within 1e-4 absolute + 1e-3 relative.
. "$(dirname "$0")/../lib.sh"
set -o pipefail
B=${B:-build}
RUN=$ROOT/$B/tests/unit/test_onnx_backend
[[ -x $RUN ]] || { echo "FAIL $RUN is not built"; exit 1; }
pick_python numpy,onnx || skip "python3 with numpy and onnx (python3-onnx) is missing"
if [[ ! -f $ROOT/tests/node_modules/onnxruntime-node/package.json ]] || ! command -v node >/dev/null; then
    skip "ONNX Runtime: tests/node_modules/onnxruntime-node is not installed (make test installs it)"
fi
GEN=$ROOT/tests/golden/gen_onnx_opsets.py
if "$PY" "$GEN" make "$tmp/c" >"$tmp/gen.log" 2>&1; then ok "generated: $(tail -n 1 "$tmp/gen.log")"; else
    bad "gen_onnx_opsets.py make: $(tail -n 5 "$tmp/gen.log")"
    finish
fi
if node "$ROOT/tests/onnx/ort_run.js" "$tmp/c" >"$tmp/ort.log" 2>"$tmp/ort.err" && grep -q ', 0 refused' "$tmp/ort.log"; then
    ok "$(cat "$tmp/ort.log")"
else
    bad "ONNX Runtime: $(cat "$tmp/ort.log") $(tail -n 3 "$tmp/ort.err")"
    for f in "$tmp"/c/*/error.txt; do [[ -f $f ]] && echo "    ${f#"$tmp"/c/}: $(head -c 300 "$f")"; done
fi
"$PY" "$GEN" wrap "$tmp/c" >/dev/null || bad "gen_onnx_opsets.py wrap"
if "$RUN" "$tmp/c" 180 >"$tmp/run.log" 2>&1; then
    ok "tripletd against ONNX Runtime: $(grep -m1 'cases:' "$tmp/run.log")"
else
    bad "tripletd against ONNX Runtime:"
    grep -v '^\[' "$tmp/run.log" | tail -n 40
fi
finish
