#!/usr/bin/env bash
# image_inputs.sh - image inputs on a real tripletd serving an ONNX model with `image` metadata
# (tests/data/onnx/fashion_image.onnx): {"image": base64 PNG/JPEG} elements on /v1/embed, /v1/embeddings,
# /v1/distance, /v1/loss/triplet and /v1/mine; a raw image/png body on /v1/embed; against PyTorch's outputs
# for the same pixels and against PIL's preprocessing (convert + resize BILINEAR) of the same files;
# hostile images get 4xx JSON naming the field, and the server stays healthy. Also tripletctl embed --image
# and index --images, and the same rule for a safetensors MLP with `image` metadata against PIL + numpy.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
DATA=$ROOT/tests/data
pick_python numpy,PIL || skip "python3 with numpy and PIL is missing"
MODEL=$DATA/onnx/fashion_image.onnx start_server --max-image-pixels 100000
auth=(-H "Authorization: Bearer $KEY")
json=(-H 'Content-Type: application/json')

# Files and requests: PNGs of the golden pixel rows; a 56x40 RGB JPEG and a 20x20 RGBA PNG that the
# server converts and resizes, with PIL's pixels for them as plain numbers.
"$PY" - "$DATA" "$tmp" <<'PY'
import base64, io, json, sys
import numpy as np
from PIL import Image
data, tmp = sys.argv[1:3]
b = open(data + "/onnx/fashion_image.in", "rb").read()
n, d = np.frombuffer(b[:8], "<i4")
px = np.frombuffer(b[8:], "<f4").reshape(n, 28, 28).astype(np.uint8)
def png(a, mode=None):
    f = io.BytesIO(); Image.fromarray(a, mode).save(f, "PNG"); return f.getvalue()
pngs = [png(p) for p in px]
for i, p in enumerate(pngs): open(f"{tmp}/row{i}.png", "wb").write(p)
b64 = lambda raw: base64.b64encode(raw).decode()
json.dump({"inputs": [{"image": b64(p)} for p in pngs]}, open(tmp + "/embed.json", "w"))
rng = np.random.default_rng(3)
y, x = np.mgrid[0:40, 0:56]
rgb = np.clip(np.stack([np.sin(x / 5) * 100 + 128, np.cos(y / 7) * 100 + 128, (x + y) * 2], -1) + rng.integers(-9, 9, (40, 56, 3)), 0, 255).astype(np.uint8)
f = io.BytesIO(); Image.fromarray(rgb).save(f, "JPEG", quality=90); jpg = f.getvalue()
open(tmp + "/big.jpg", "wb").write(jpg)
rgba = np.concatenate([rgb[:20, :20], rng.integers(0, 255, (20, 20, 1), dtype=np.uint8)], -1)
small = png(rgba, "RGBA")
def pil_px(raw):
    im = Image.open(io.BytesIO(raw)).convert("L").resize((28, 28), Image.BILINEAR)
    return np.asarray(im, np.float64).reshape(-1).tolist()
json.dump({"a": [{"image": b64(jpg)}, {"image": b64(small)}], "b": [pil_px(jpg), pil_px(small)]}, open(tmp + "/dist.json", "w"))
json.dump({"anchors": [{"image": b64(pngs[0])}], "positives": [{"image": b64(pngs[1])}], "negatives": [{"image": b64(pngs[2])}]},
          open(tmp + "/trip_img.json", "w"))
rows = [p.reshape(-1).astype(float).tolist() for p in px]
json.dump({"anchors": [rows[0]], "positives": [rows[1]], "negatives": [rows[2]]}, open(tmp + "/trip_num.json", "w"))
json.dump({"input": [{"image": b64(pngs[0])}, {"image": b64(pngs[1])}]}, open(tmp + "/openai.json", "w"))
json.dump({"inputs": [{"image": b64(p)} for p in pngs[:4]], "labels": [0, 0, 1, 1], "strategy": "batch-all"}, open(tmp + "/mine_img.json", "w"))
json.dump({"inputs": rows[:4], "labels": [0, 0, 1, 1], "strategy": "batch-all"}, open(tmp + "/mine_num.json", "w"))
# hostile: truncated, a bomb over --max-image-pixels (100000), garbage, CMYK, not base64, zero width, empty
f = io.BytesIO(); Image.fromarray(rgb).convert("CMYK").save(f, "JPEG"); cmyk = f.getvalue()
f = io.BytesIO(); Image.fromarray(np.zeros((400, 300), np.uint8)).save(f, "PNG"); bomb = f.getvalue()
import struct, zlib
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
zero = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")
hostile = {"truncated": b64(pngs[0][:60]), "bomb": b64(bomb), "garbage": b64(b"GIF89a not supported"), "cmyk": b64(cmyk),
           "notb64": "%%%not-base64%%%", "zero": b64(zero), "empty": ""}
for k, v in hostile.items(): json.dump({"inputs": [rows[0], {"image": v}]}, open(f"{tmp}/bad_{k}.json", "w"))
PY

post() { # ROUTE FILE -> status in $code, reply in $tmp/r.json
    code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" "${json[@]}" --data-binary @"$2" "$url$1")
}
close() { # REPLY KEY GOLDEN(file of rows or JSON file) [KEY2]
    "$PY" - "$@" <<'PY'
import json, sys, numpy as np
r = json.load(open(sys.argv[1])); got = np.array(r[sys.argv[2]], dtype=np.float64)
g = sys.argv[3]
if g.endswith(".json"):
    want = np.array(json.load(open(g))[sys.argv[4]], dtype=np.float64)
else:
    b = open(g, "rb").read(); n, d = np.frombuffer(b[:8], "<i4"); want = np.frombuffer(b[8:], "<f4").reshape(n, d)
assert got.shape == want.shape, (got.shape, want.shape)
assert np.all(np.abs(got - want) <= 1e-4 + 1e-3 * np.abs(want)), float(np.max(np.abs(got - want)))
PY
}

post /v1/embed "$tmp/embed.json"
[[ $code == 200 ]] && close "$tmp/r.json" embeddings "$DATA/onnx/fashion_image.out" && ok "/v1/embed PNG images = PyTorch" \
    || bad "/v1/embed PNG images: $code $(head -c 300 "$tmp/r.json")"
code=$(curl -s -o "$tmp/raw.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: image/png' --data-binary @"$tmp/row0.png" "$url/v1/embed")
if [[ $code == 200 ]] && "$PY" - "$tmp/raw.json" "$tmp/r.json" <<'PY'; then ok "raw image/png body = the same image in JSON"; else bad "raw image/png body: $code $(head -c 300 "$tmp/raw.json")"; fi
import json, sys, numpy as np
a = np.array(json.load(open(sys.argv[1]))["embeddings"]); b = np.array(json.load(open(sys.argv[2]))["embeddings"][0])
b = b / np.linalg.norm(b)  # the raw-body call uses the model's normalize setting (true)
assert a.shape == (1, b.size) and np.allclose(a[0], b, atol=1e-5), (a, b)
PY
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: image/png' --data-binary '' "$url/v1/embed")
[[ $code == 422 ]] && grep -q '"field":"body"' "$tmp/r.json" && grep -q 'empty image data' "$tmp/r.json" && ok "empty image/png body -> 422" || bad "empty image/png body: $code $(head -c 300 "$tmp/r.json")"
code=$(head -c 100 "$tmp/big.jpg" | curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: image/jpeg' --data-binary @- "$url/v1/embed")
[[ $code == 422 ]] && grep -q 'truncated JPEG data (the file ends after 100 bytes)' "$tmp/r.json" && ok "truncated image/jpeg body -> 422" \
    || bad "truncated image/jpeg body: $code $(head -c 300 "$tmp/r.json")"
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: image/gif' --data-binary @"$tmp/row0.png" "$url/v1/embed")
[[ $code == 415 ]] && ok "image/gif body -> 415" || bad "image/gif body -> $code"
code=$(curl -s -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: image/png' --data-binary @"$tmp/row0.png" "$url/v1/distance")
[[ $code == 415 ]] && ok "image/png body on /v1/distance -> 415" || bad "image/png on /v1/distance -> $code"

post /v1/distance "$tmp/dist.json"
if [[ $code == 200 ]] && "$PY" - "$tmp/r.json" <<'PY'; then ok "JPEG and RGBA PNG resized as PIL does (distance to PIL's pixels is 0)"; else bad "resize vs PIL: $code $(head -c 300 "$tmp/r.json")"; fi
import json, sys
d = json.load(open(sys.argv[1]))["distances"]
assert len(d) == 2 and all(abs(x) < 1e-6 for x in d), d
PY
post /v1/loss/triplet "$tmp/trip_img.json"; cp "$tmp/r.json" "$tmp/ti.json"; ci=$code
post /v1/loss/triplet "$tmp/trip_num.json"
if [[ $ci == 200 && $code == 200 ]] && "$PY" - "$tmp/ti.json" "$tmp/r.json" <<'PY'; then ok "/v1/loss/triplet: images = pixels"; else bad "/v1/loss/triplet images: $ci $(head -c 300 "$tmp/ti.json")"; fi
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert abs(a["losses"][0] - b["losses"][0]) < 1e-6 and abs(a["d_ap"][0] - b["d_ap"][0]) < 1e-6, (a, b)
PY
post /v1/embeddings "$tmp/openai.json"
[[ $code == 200 ]] && grep -q '"object":"list"' "$tmp/r.json" && ok "/v1/embeddings with images" || bad "/v1/embeddings images: $code $(head -c 300 "$tmp/r.json")"
post /v1/mine "$tmp/mine_img.json"; cp "$tmp/r.json" "$tmp/mi.json"; ci=$code
post /v1/mine "$tmp/mine_num.json"
if [[ $ci == 200 ]] && "$PY" - "$tmp/mi.json" "$tmp/r.json" <<'PY'; then ok "/v1/mine: images = pixels"; else bad "/v1/mine images: $ci $(head -c 300 "$tmp/mi.json")"; fi
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
a.pop("config", None); b.pop("config", None)
assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
PY

# hostile images: 422 naming inputs[1].image, and the server stays healthy
while IFS='|' read -r kind text; do
    post /v1/embed "$tmp/bad_$kind.json"
    if [[ $code == 422 ]] && grep -q '"field":"inputs\[1\].image"' "$tmp/r.json" && grep -qF -- "$text" "$tmp/r.json"; then ok "$kind image -> 422"
    else bad "$kind image: $code $(head -c 300 "$tmp/r.json")"; fi
done <<'CASES'
truncated|truncated PNG data (the file ends after 60 bytes)
zero|image has no pixels (0 x 5)
empty|empty base64 string
bomb|over the 100000-pixel limit
garbage|not a PNG or JPEG image
cmyk|CMYK JPEG images are not supported
notb64|invalid base64 character
CASES
curl -sf "$url/readyz" >/dev/null && ok "healthy after hostile images" || bad "not healthy after hostile images"

# a model without `image` metadata refuses image elements by name
MODEL=$DATA/onnx/fashion_op13_dyn.onnx start_server
post /v1/embed "$tmp/embed.json"
[[ $code == 422 ]] && grep -q 'takes no images' "$tmp/r.json" && ok "no image metadata -> 422" || bad "no image metadata: $code $(head -c 300 "$tmp/r.json")"

# tripletctl embed --image
expect "tripletctl embed --image" 0 "$TRIPLETCTL" embed --model "$DATA/onnx/fashion_image.onnx" --image "$tmp"/row{0,1,2,3,4}.png
"$PY" -c 'import json,sys; print(json.dumps({"embeddings": [json.loads(l) for l in open(sys.argv[1])]}))' "$tmp/out" >"$tmp/cli.json"
close "$tmp/cli.json" embeddings "$DATA/onnx/fashion_image.out" && ok "embed --image = PyTorch" || bad "embed --image != PyTorch"
expect "embed --image on a model without image metadata" 2 "$TRIPLETCTL" embed --model "$DATA/onnx/fashion_op13_dyn.onnx" --image "$tmp/row0.png"
expect "embed --image with a bad file" 1 "$TRIPLETCTL" embed --model "$DATA/onnx/fashion_image.onnx" --image "$tmp/row0.png" "$tmp/embed.json"
has "bad file named" "$tmp/err" "embed.json: not a PNG or JPEG image"
# tripletctl index --images: a folder with a subfolder per class; search it with an image
mkdir -p "$tmp/gal/bags" "$tmp/gal/shoes" "$tmp/gal/empty"
cp "$tmp/row0.png" "$tmp/gal/bags/b.png"; cp "$tmp/row1.png" "$tmp/gal/bags/a.PNG"
cp "$tmp/row2.png" "$tmp/gal/shoes/x.png"; cp "$tmp/big.jpg" "$tmp/gal/shoes/y.jpg"; echo "not an image" >"$tmp/gal/shoes/notes.txt"
# skipped, as the help says: files at the top, folders inside a class, hidden names
mkdir -p "$tmp/gal/bags/deeper" "$tmp/gal/.hidden"
cp "$tmp/row3.png" "$tmp/gal/top.png"; cp "$tmp/row3.png" "$tmp/gal/bags/deeper/z.png"; cp "$tmp/row3.png" "$tmp/gal/.hidden/h.png"
cp "$tmp/row3.png" "$tmp/gal/shoes/.h.png"
expect "index --help" 0 "$TRIPLETCTL" index --help
has "index --help says what --images reads" "$tmp/out" "files directly in DIR, deeper"
has "index --help: an empty class folder" "$tmp/out" "an empty subfolder keeps its"
expect "index --images" 0 "$TRIPLETCTL" index --model "$DATA/onnx/fashion_image.onnx" --images "$tmp/gal" --out "$tmp/gal.safetensors" --quiet
MODEL=$DATA/onnx/fashion_image.onnx start_server --gallery "$tmp/gal.safetensors"
"$PY" -c 'import base64,json,sys; print(json.dumps({"queries": [{"image": base64.b64encode(open(sys.argv[1],"rb").read()).decode()}], "k": 4}))' \
    "$tmp/row2.png" >"$tmp/q.json"
post /v1/search "$tmp/q.json"
if [[ $code == 200 ]] && "$PY" - "$tmp/r.json" <<'PY'; then ok "search by image finds it in the indexed folder"; else bad "search by image: $code $(head -c 400 "$tmp/r.json")"; fi
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
top = r[0] if isinstance(r, list) else r["neighbors"][0] if "neighbors" in r else r
assert top["id"] == "shoes/x.png" and top["label"] == 2  # bags 0, empty 1, shoes 2 and abs(top["distance"]) < 1e-5, r
ids = sorted(h["id"] for h in (r if isinstance(r, list) else r.get("neighbors", [])))
assert ids == ["bags/a.PNG", "bags/b.png", "shoes/x.png", "shoes/y.jpg"], ids
PY
echo "garbage" >"$tmp/gal/bags/c.png"
expect "index --images with a bad file" 1 "$TRIPLETCTL" index --model "$DATA/onnx/fashion_image.onnx" --images "$tmp/gal" --out "$tmp/gal2.safetensors" --quiet
has "index names the bad file" "$tmp/err" "bags/c.png: not a PNG or JPEG image"
expect "index --images needs image metadata" 1 "$TRIPLETCTL" index --model "$DATA/onnx/fashion_op13_dyn.onnx" --images "$tmp/gal" --out "$tmp/gal3.safetensors"

# The same rule for a safetensors MLP: tests/data/e2e-model.safetensors (784-64-32) with `image` metadata
# added; its embeddings of the PNG rows, the 56x40 JPEG and the 20x20 RGBA PNG against PIL + numpy.
"$PY" - "$DATA/e2e-model.safetensors" "$tmp" <<'PY'
import base64, io, json, struct, sys
import numpy as np
from PIL import Image
src, tmp = sys.argv[1:3]
b = open(src, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8 : 8 + n]); body = b[8 + n :]
h["__metadata__"]["image"] = json.dumps({"channels": 1, "height": 28, "width": 28, "mean": [0.25], "std": [0.5]})
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(tmp + "/mlp_image.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + body)
t = {k: np.frombuffer(body[v["data_offsets"][0] : v["data_offsets"][1]], "<f4").reshape(v["shape"]).astype(np.float64)
     for k, v in h.items() if k != "__metadata__"}
files = [open(f"{tmp}/row{i}.png", "rb").read() for i in range(3)] + [open(tmp + "/big.jpg", "rb").read()]
files.append(base64.b64decode(json.load(open(tmp + "/dist.json"))["a"][1]["image"]))
x = np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("L").resize((28, 28), Image.BILINEAR), np.float64).reshape(-1) for f in files])
y = np.maximum((x / 255 - 0.25) / 0.5 @ t["0.weight"].T + t["0.bias"], 0) @ t["2.weight"].T + t["2.bias"]
y /= np.linalg.norm(y, axis=1, keepdims=True)
json.dump({"inputs": [{"image": base64.b64encode(f).decode()} for f in files]}, open(tmp + "/mlp_embed.json", "w"))
json.dump({"embeddings": y.tolist()}, open(tmp + "/mlp_want.json", "w"))
PY
MODEL=$tmp/mlp_image.safetensors start_server
post /v1/embed "$tmp/mlp_embed.json"
[[ $code == 200 ]] && close "$tmp/r.json" embeddings "$tmp/mlp_want.json" embeddings && ok "safetensors MLP with image metadata: /v1/embed images = PIL + numpy" \
    || bad "safetensors MLP images: $code $(head -c 300 "$tmp/r.json")"
expect "tripletctl embed --image (safetensors)" 0 "$TRIPLETCTL" embed --model "$tmp/mlp_image.safetensors" --image "$tmp"/row{0,1,2}.png "$tmp/big.jpg"
"$PY" -c 'import json,sys; print(json.dumps({"embeddings": [json.loads(l) for l in open(sys.argv[1])]}))' "$tmp/out" >"$tmp/cli.json"
"$PY" -c 'import json,sys; w=json.load(open(sys.argv[1])); w["embeddings"]=w["embeddings"][:4]; json.dump(w, open(sys.argv[1],"w"))' "$tmp/mlp_want.json"
close "$tmp/cli.json" embeddings "$tmp/mlp_want.json" embeddings && ok "embed --image (safetensors) = PIL + numpy" || bad "embed --image (safetensors) differs"
finish
