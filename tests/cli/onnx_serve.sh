#!/usr/bin/env bash
# onnx_serve.sh - ONNX models through the model interface: tripletctl inspect and embed, and a real
# tripletd serving a .onnx file (GET /v1/model, POST /v1/embed against PyTorch's outputs, reload from
# ONNX to safetensors and back), on the committed golden models of tests/golden/gen_onnx.py.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
DATA=$ROOT/tests/data/onnx
ONNX=$DATA/fashion_op13_dyn.onnx
FIXED=$DATA/fashion_op17_b4.onnx
pick_python numpy || { echo "SKIP python3 with numpy is missing"; exit 77; }

# The golden rows: int32 n, int32 dim, then n x dim float32.
rows_json() { "$PY" - "$1" <<'PY'
import json, sys, numpy as np
b = open(sys.argv[1], "rb").read()
n, d = np.frombuffer(b[:8], "<i4")
print(json.dumps(np.frombuffer(b[8:], "<f4").reshape(n, d).tolist()))
PY
}
# close FILE_JSON GOLDEN KEY: the reply's KEY rows match GOLDEN within 1e-4 abs + 1e-3 rel.
close() { "$PY" - "$@" <<'PY'
import json, sys, numpy as np
r = json.load(open(sys.argv[1]))
b = open(sys.argv[2], "rb").read()
n, d = np.frombuffer(b[:8], "<i4")
want = np.frombuffer(b[8:], "<f4").reshape(n, d)
got = np.array(r[sys.argv[3]] if sys.argv[3] else r, dtype=np.float64)
assert got.shape == want.shape, (got.shape, want.shape)
assert np.all(np.abs(got - want) <= 1e-4 + 1e-3 * np.abs(want)), float(np.max(np.abs(got - want)))
PY
}

# --- inspect ---
expect "inspect onnx" 0 "$TRIPLETCTL" inspect "$ONNX"
has "inspect format" "$tmp/out" "format:       onnx"
has "inspect opset" "$tmp/out" "opset:        13"
has "inspect ops" "$tmp/out" "Conv"
has "inspect dynamic batch" "$tmp/out" "batch:        dynamic"
sha=$(sha256sum "$ONNX" | cut -d' ' -f1)
has "inspect sha256" "$tmp/out" "sha256:       $sha"
expect "inspect fixed batch" 0 "$TRIPLETCTL" inspect "$FIXED"
has "inspect fixed batch text" "$tmp/out" "batch:        fixed at 4"
expect "inspect --json onnx" 0 "$TRIPLETCTL" inspect --json "$ONNX"
if "$PY" - "$tmp/out" <<'PY'; then ok "inspect --json onnx fields"; else bad "inspect --json onnx fields"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "onnx" and d["opset"] == 13 and d["input_dim"] == 784, d
assert d["input"]["shape"][0] == "batch" and d["fixed_batch"] is None, d
assert any(o["op"] == "Conv" and o["count"] >= 1 for o in d["ops"]) and d["parameters"] > 0 and d["macs"] > 0, d
PY

# --- embed (CLI) ---
rows_json "$DATA/fashion.in" | "$PY" -c 'import json,sys; [print(json.dumps(r)) for r in json.load(sys.stdin)]' >"$tmp/rows.jsonl"
for m in "$ONNX" "$FIXED"; do
    expect "embed ${m##*/}" 0 "$TRIPLETCTL" embed --model "$m" --no-normalize <"$tmp/rows.jsonl"
    "$PY" -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])]))' "$tmp/out" >"$tmp/emb.json"
    if close "$tmp/emb.json" "$DATA/fashion.out" ""; then ok "embed ${m##*/} = PyTorch"; else bad "embed ${m##*/} != PyTorch"; fi
done

# --- `image` metadata (here on an MLP): pixel inputs are scaled x/255, then (x - mean) / std ---
if "$PY" - "$tmp" <<'PY'; then ok "image metadata fixtures"; else bad "image metadata fixtures"; fi
import json, struct, sys, numpy as np
tmp = sys.argv[1]
rng = np.random.default_rng(7)
w = rng.standard_normal((5, 12)).astype("<f4"); b = rng.standard_normal(5).astype("<f4")
def save(path, image):
    meta = {"normalize": "false"}
    if image is not None: meta["image"] = image
    hdr = {"__metadata__": meta,
           "0.weight": {"dtype": "F32", "shape": [5, 12], "data_offsets": [0, w.nbytes]},
           "0.bias": {"dtype": "F32", "shape": [5], "data_offsets": [w.nbytes, w.nbytes + b.nbytes]}}
    h = json.dumps(hdr).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + w.tobytes() + b.tobytes())
img = {"channels": 3, "height": 2, "width": 2, "mean": [0.5, 0.25, 0.1], "std": [0.2, 0.5, 1.0]}
save(tmp + "/img.safetensors", json.dumps(img))
save(tmp + "/img-bad-dims.safetensors", json.dumps(dict(img, width=3)))
save(tmp + "/img-bad-std.safetensors", json.dumps(dict(img, std=[0.2, 0, 1])))
save(tmp + "/img-bad-json.safetensors", "{channels")
x = rng.integers(0, 256, (3, 12)).astype(np.float64)
open(tmp + "/px.jsonl", "w").write("".join(json.dumps(r) + "\n" for r in x.tolist()))
mean = np.repeat(img["mean"], 4); std = np.repeat(img["std"], 4)
y = ((x / 255 - mean) / std) @ w.astype(np.float64).T + b
json.dump(y.tolist(), open(tmp + "/px.want", "w"))
PY
expect "embed pixels with image metadata" 0 "$TRIPLETCTL" embed --model "$tmp/img.safetensors" <"$tmp/px.jsonl"
if "$PY" - "$tmp/out" "$tmp/px.want" <<'PY'; then ok "image preprocessing = numpy"; else bad "image preprocessing != numpy"; fi
import json, sys, numpy as np
got = np.array([json.loads(l) for l in open(sys.argv[1])]); want = np.array(json.load(open(sys.argv[2])))
assert np.allclose(got, want, rtol=1e-4, atol=1e-4), (got, want)
PY
expect "inspect image metadata" 0 "$TRIPLETCTL" inspect "$tmp/img.safetensors"
has "inspect shows the image" "$tmp/out" "image:        3 x 2 x 2"
for c in "bad-dims|3 x 2 x 3 = 18 values, but the model takes 12" "bad-std|\"std\" has a value that is not > 0" \
         "bad-json|metadata \"image\": is not a JSON object"; do
    expect "image metadata ${c%%|*} refused" 1 "$TRIPLETCTL" inspect "$tmp/img-${c%%|*}.safetensors"
    has "image metadata ${c%%|*} message" "$tmp/err" "${c#*|}"
done

# --- a server on the ONNX model ---
cp "$ONNX" "$tmp/model.onnx"
MODEL=$tmp/model.onnx start_server
auth=(-H "Authorization: Bearer $KEY")
curl -sf "${auth[@]}" "$url/v1/model" >"$tmp/model.json" && ok "GET /v1/model" || bad "GET /v1/model"
if "$PY" - "$tmp/model.json" "$sha" <<'PY'; then ok "/v1/model says onnx"; else bad "/v1/model: $(head -c 300 "$tmp/model.json")"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "onnx" and d["sha256"] == sys.argv[2] and d["opset"] == 13 and d["output_dim"] == 24, d
assert d["input"]["shape"][1:] == [1, 28, 28], d
PY
printf '{"inputs": %s, "normalize": false}' "$(rows_json "$DATA/fashion.in")" >"$tmp/req.json"
curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/req.json" "$url/v1/embed" >"$tmp/emb.json" \
    && ok "POST /v1/embed" || bad "POST /v1/embed"
if close "$tmp/emb.json" "$DATA/fashion.out" embeddings; then ok "/v1/embed = PyTorch"; else bad "/v1/embed != PyTorch: $(head -c 200 "$tmp/emb.json")"; fi
code=$(curl -s -o "$tmp/bad.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"inputs": [[1, 2, 3]]}' "$url/v1/embed")
[[ $code == 422 ]] && ok "wrong input size -> 422" || bad "wrong input size -> $code"
has "wrong input size names the field" "$tmp/bad.json" '"field":"inputs'

# A safetensors file under a .onnx name is refused on reload (the suffix decides the format) and the
# ONNX model keeps serving.
cp "$tmp/model.onnx" "$tmp/keep.onnx"
cp "$ROOT/tests/data/e2e-model.safetensors" "$tmp/model.onnx"
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' -d '{}' "$url/v1/admin/reload")
[[ $code == 422 ]] && ok "reload of a non-ONNX .onnx -> 422" || bad "reload of a non-ONNX .onnx -> $code"
curl -sf "${auth[@]}" "$url/v1/model" >"$tmp/model.json"
grep -q "$sha" "$tmp/model.json" && ok "a bad reload keeps the ONNX model" || bad "a bad reload replaced the model"
cp "$tmp/keep.onnx" "$tmp/model.onnx"

# Reload between formats by a path relative to --model-dir: ONNX -> safetensors -> ONNX.
MODEL=$tmp/model.onnx start_server --model-dir "$ROOT/tests/data"
reload_to() { # FILE WANT_FORMAT
    local code
    code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
        -d "{\"model\": \"$1\"}" "$url/v1/admin/reload")
    curl -sf "${auth[@]}" "$url/v1/model" >"$tmp/model.json"
    [[ $code == 200 ]] && grep -q "\"format\":\"$2\"" "$tmp/model.json"
}
reload_to e2e-model.safetensors safetensors && ok "reload onnx -> safetensors" || bad "reload onnx -> safetensors: $(head -c 300 "$tmp/r.json")"
curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d "{\"inputs\": [$(python3 -c 'print([0.5]*784)')]}" "$url/v1/embed" >/dev/null \
    && ok "embed after the switch" || bad "embed after the switch"
reload_to onnx/fashion_op17_b4.onnx onnx && ok "reload safetensors -> onnx" || bad "reload safetensors -> onnx: $(head -c 300 "$tmp/r.json")"
curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$tmp/req.json" "$url/v1/embed" >"$tmp/emb.json" \
    && close "$tmp/emb.json" "$DATA/fashion.out" embeddings && ok "fixed-batch model after reload = PyTorch" || bad "fixed-batch model after reload"
finish
