#!/usr/bin/env bash
# onnx_write_ort.sh - a file written by onx_write (the Fashion-MNIST CNN recipe with random weights, from
# `test_onnx_write --emit`) run in ONNX Runtime (npm onnxruntime-node, tests/package.json) gives the same
# embeddings as tripletd serving it, and so does the shipped models/fashion-mnist-cnn.onnx; tripletctl
# inspect, eval and index take the written file as is.
. "$(dirname "$0")/../lib.sh"
set -o pipefail
B=${B:-build}
EMIT=$ROOT/$B/tests/unit/test_onnx_write
[[ -x $EMIT ]] || { echo "FAIL $EMIT is not built"; exit 1; }
pick_python numpy || skip "python3 with numpy is missing"
"$EMIT" --emit "$tmp" && ok "onx_write wrote the recipe model" || { bad "test_onnx_write --emit"; finish; }
M=$tmp/model.onnx

# ort_vs_tripletd MODEL NAME: tripletd serving MODEL (GET /v1/model, POST /v1/embed of the pixel rows,
# normalize from the metadata) against ONNX Runtime on the same file, with the mean and std of the model's
# `image` metadata as tripletd reports them.
ort_vs_tripletd() {
    local m=$1 name=$2
    MODEL=$m start_server
    auth=(-H "Authorization: Bearer $KEY")
    curl -sf "${auth[@]}" "$url/v1/model" >"$tmp/model.json" && ok "$name: GET /v1/model" || bad "$name: GET /v1/model"
    if "$PY" - "$tmp/model.json" >"$tmp/norm" <<'PY'; then ok "$name: /v1/model: onnx, opset 13, image, 128-d"; else bad "$name: /v1/model: $(head -c 400 "$tmp/model.json")"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "onnx" and d["opset"] == 13 and d["output_dim"] == 128 and d["normalize"] is True, d
assert d["input"]["shape"] == ["batch", 1, 28, 28] and d["output"]["shape"] == ["batch", 128], d
assert d["image"]["channels"] == 1, d
print(repr(d["image"]["mean"][0]), repr(d["image"]["std"][0]))
PY
    printf '{"inputs": %s}' "$(cat "$tmp/inputs.json")" >"$tmp/req.json"
    curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/req.json" "$url/v1/embed" \
        >"$tmp/emb.json" && ok "$name: POST /v1/embed" || bad "$name: POST /v1/embed"
    if [[ ! -f $ROOT/tests/node_modules/onnxruntime-node/package.json ]] || ! command -v node >/dev/null; then
        skip_part "ONNX Runtime: tests/node_modules/onnxruntime-node is not installed (make test installs it)"
    elif node "$ROOT/tests/cli/onnx_write_ort.js" "$m" "$tmp/inputs.json" $(cat "$tmp/norm") >"$tmp/ort.json" 2>"$tmp/ort.err"; then
        ok "$name: ONNX Runtime loads and runs the file"
        if "$PY" - "$tmp/emb.json" "$tmp/ort.json" <<'PY'; then ok "$name: tripletd = ONNX Runtime (1e-4 abs + 1e-3 rel)"; else bad "$name: tripletd != ONNX Runtime"; fi
import json, sys, numpy as np
got = np.array(json.load(open(sys.argv[1]))["embeddings"], dtype=np.float64)
want = np.array(json.load(open(sys.argv[2])), dtype=np.float64)
assert got.shape == want.shape == (8, 128), (got.shape, want.shape)
err = np.abs(got - want)
assert np.all(err <= 1e-4 + 1e-3 * np.abs(want)), float(err.max())
print("max abs difference", float(err.max()))
PY
    else
        bad "$name: ONNX Runtime refused the file: $(head -c 300 "$tmp/ort.err")"
    fi
}
ort_vs_tripletd "$M" "written"
# The shipped CNN (make model), when there is one.
SHIPPED=${SHIPPED_CNN:-$ROOT/models/fashion-mnist-cnn.onnx}
[[ -f $SHIPPED ]] && ort_vs_tripletd "$SHIPPED" "shipped fashion-mnist-cnn.onnx"

# --- the CLI takes it as is ---
expect "inspect" 0 "$TRIPLETCTL" inspect "$M"
has "inspect format" "$tmp/out" "format:       onnx"
has "inspect opset" "$tmp/out" "opset:        13"
has "inspect dynamic batch" "$tmp/out" "batch:        dynamic"
has "inspect recipe metadata" "$tmp/out" "conv32k3p1,bn,relu"
if [[ -n $(ls /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte* 2>/dev/null) ]]; then
    expect "eval (Fashion-MNIST, 100 queries)" 0 "$TRIPLETCTL" eval --model "$M" --limit 100 --gallery-limit 500 --json
    has "eval reports MAP@R" "$tmp/out" "map_at_r"
    expect "index (Fashion-MNIST, 300 rows)" 0 "$TRIPLETCTL" index --model "$M" --limit 300 --out "$tmp/g.safetensors" --quiet
    [[ -s $tmp/g.safetensors ]] && ok "index wrote the gallery" || bad "index wrote no gallery"
else
    skip_part "Fashion-MNIST (dataset-fashion-mnist) is not installed: eval and index not run"
fi
finish
