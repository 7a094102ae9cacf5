#!/usr/bin/env bash
# onnx_load_errors.sh - what a user sees when an ONNX file is refused, on every path: tripletctl
# inspect, tripletd's start-up message and the admin reload's 422 body. The files are made here
# with python3-onnx.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
pick_python numpy,onnx || skip "python3 with numpy and onnx (python3-onnx) is missing"

"$PY" - "$tmp" <<'PY'
import json
import sys
import onnx
from onnx import TensorProto, helper
tmp = sys.argv[1]

def save(path, nodes, x_shape, meta=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + x_shape)
    y = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph(nodes, "t", [x], [y]), opset_imports=[helper.make_operatorsetid("", 13)])
    m.ir_version = 7
    for k, v in (meta or {}).items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(m, path)

save(tmp + "/einsum.onnx", [helper.make_node("Einsum", ["x", "x"], ["y"], name="e", equation="ni,ni->ni")], [4])
# a [N, 3, 24, 32] input with `image` metadata: right, height and width swapped, an unknown key
img = {"channels": 3, "height": 24, "width": 32, "mean": [0.286, 0.485, 0.406], "std": [0.353, 0.229, 0.225]}
flat = [helper.make_node("Flatten", ["x"], ["y"])]
save(tmp + "/img.onnx", flat, [3, 24, 32], {"image": json.dumps(img)})
save(tmp + "/img-swapped.onnx", flat, [3, 24, 32], {"image": json.dumps(dict(img, height=32, width=24))})
save(tmp + "/img-layout.onnx", flat, [3, 24, 32], {"image": json.dumps(dict(img, layout="NHWC"))})
PY

# --- an unsupported op: the list of supported ops reaches the user whole ---
expect "inspect an Einsum model" 1 "$TRIPLETCTL" inspect "$tmp/einsum.onnx"
list=$(sed -n 's/.*op Einsum (opset 13) is not supported; supported ops: //p' "$tmp/err")
# the list is whole: sorted names, none cut, the last one known
if [[ -n $list ]] && "$PY" - "$list" <<'PY'; then ok "inspect lists every supported op"; else bad "inspect's list: $list"; fi
import sys
ops = sys.argv[1].strip().split(", ")
assert ops == sorted(ops) and len(ops) > 50 and "Conv" in ops and ops[-1] == "Where", ops
PY
"$TRIPLETD" --model "$tmp/einsum.onnx" --port 0 >"$tmp/start.out" 2>"$tmp/start.err" && bad "tripletd started on Einsum" || true
has "tripletd's start-up message lists every supported op" "$tmp/start.err" "supported ops: $list"
has "tripletd's start-up message names the file" "$tmp/start.err" "model $tmp/einsum.onnx: node 0 \"e\": op Einsum"

cp "$ROOT/tests/data/onnx/fashion_op13_dyn.onnx" "$tmp/model.onnx"
MODEL=$tmp/model.onnx start_server --model-dir "$tmp" --log-format text
auth=(-H "Authorization: Bearer $KEY")
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"model": "einsum.onnx"}' "$url/v1/admin/reload")
[[ $code == 422 ]] && ok "reload of an Einsum model -> 422" || bad "reload of an Einsum model -> $code"
if "$PY" - "$tmp/r.json" "$list" <<'PY'; then ok "the 422 body lists every supported op"; else bad "the 422 body: $(head -c 2000 "$tmp/r.json")"; fi
import json, sys
e = json.load(open(sys.argv[1]))["error"]
assert e["type"] == "invalid_input" and e["message"].endswith("supported ops: " + sys.argv[2]), e
PY
sleep 0.2
has "the reload's log line lists every supported op" "$tmp/srv.err" "supported ops: $list"

# --- `image` metadata must match a [batch, C, H, W] input, with only the documented keys ---
expect "image metadata with height and width swapped" 1 "$TRIPLETCTL" inspect "$tmp/img-swapped.onnx"
has "the refusal names image and both shapes" "$tmp/err" \
    'metadata "image": 3 x 32 x 24 (channels x height x width) does not match the input shape [batch, 3, 24, 32]'
expect "image metadata with an unknown key" 1 "$TRIPLETCTL" inspect "$tmp/img-layout.onnx"
has "the refusal names the key" "$tmp/err" \
    'metadata "image": key "layout" is not one of channels, height, width, mean, std'
# mean and std are float32: shown as the shortest decimal that reads back the same (0.286, not 0.28600001335144043)
expect "inspect --json an image model" 0 "$TRIPLETCTL" inspect --json "$tmp/img.onnx"
same_image() { "$PY" -c 'import json,sys; i = json.load(open(sys.argv[1]))["image"]; sys.exit(not (i["mean"] == [0.286, 0.485, 0.406] and i["std"] == [0.353, 0.229, 0.225]))' "$1"; }
same_image "$tmp/out" && ok "inspect --json shows mean and std as written" || bad "inspect --json: $(grep -A9 '"image"' "$tmp/out")"
cp "$tmp/img.onnx" "$tmp/model.onnx"
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' -d '{}' "$url/v1/admin/reload")
[[ $code == 200 ]] && ok "reload to the image model" || bad "reload to the image model -> $code $(head -c 300 "$tmp/r.json")"
curl -sf "${auth[@]}" "$url/v1/model" >"$tmp/model.json" || bad "GET /v1/model"
same_image "$tmp/model.json" && ok "GET /v1/model shows mean and std as written" || bad "GET /v1/model: $(head -c 600 "$tmp/model.json")"

# --- an ONNX file under another name: the suffix decides, and the refusal says what the file is ---
cp "$ROOT/tests/data/onnx/fashion_op13_dyn.onnx" "$tmp/fashion.safetensors"
expect "inspect an ONNX file named .safetensors" 1 "$TRIPLETCTL" inspect "$tmp/fashion.safetensors"
has "the refusal says it is an ONNX model" "$tmp/err" \
    "not a safetensors file (the 8-byte header length is over the 104857600-byte limit): this is an ONNX model; its file name must end in .onnx"
cp "$ROOT/tests/data/e2e-model.safetensors" "$tmp/cut.safetensors"
truncate -s 100 "$tmp/cut.safetensors"
expect "inspect a cut safetensors file" 1 "$TRIPLETCTL" inspect "$tmp/cut.safetensors"
grep -q "ONNX" "$tmp/err" && bad "a cut safetensors file is called ONNX: $(cat "$tmp/err")" || ok "a cut safetensors file is not called ONNX"
cp "$tmp/fashion.safetensors" "$tmp/model.bin"
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"model": "model.bin"}' "$url/v1/admin/reload")
[[ $code == 422 ]] && ok "reload of an ONNX file named .bin -> 422" || bad "reload of an ONNX file named .bin -> $code"
has "the 422 body says it is an ONNX model" "$tmp/r.json" "this is an ONNX model; its file name must end in .onnx"

# --- the help texts say which files are models ---
for c in embed index inspect; do
    expect "tripletctl $c --help" 0 "$TRIPLETCTL" "$c" --help
    has "tripletctl $c --help names .onnx" "$tmp/out" "when the name ends in .onnx"
done
expect "tripletd --help" 0 "$TRIPLETD" --help
has "tripletd --help names .onnx" "$tmp/out" "ONNX when the name ends in .onnx"
finish
