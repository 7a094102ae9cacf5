#!/usr/bin/env bash
# tests/cli/index.sh - `tripletctl index`: galleries from CSV (with ids) and
# JSON lines, their tensors and metadata read back by an independent Python
# reader, and every refusal (exit status and message).
. "$(dirname "$0")/../lib.sh"
pick_python json struct hashlib

run() { # sets rc, err
    "$TRIPLETCTL" index "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    err=$(cat "$tmp/err")
}
expect_run() { # name, rc, substring of stderr (of the last run)
    if [[ $rc == "$2" && $err == *"$3"* ]]; then ok "$1"; else bad "$1: rc=$rc (want $2), stderr: ${err:0:300}"; fi
}

# Data: 40 rows of 784 features (the e2e model's input), labels 0..3.
$PY - "$tmp" <<'EOF'
import json, sys, random
d = sys.argv[1]
rnd = random.Random(5)
rows = [[rnd.randint(0, 255) for _ in range(784)] for _ in range(40)]
with open(f"{d}/rows.csv", "w") as f:
    f.write("id," + ",".join(f"p{i}" for i in range(784)) + ",label\n")
    for i, r in enumerate(rows):
        f.write(f"item{i}," + ",".join(map(str, r)) + f",{i % 4}\n")
with open(f"{d}/rows.jsonl", "w") as f:
    for i, r in enumerate(rows):
        f.write(json.dumps({"x": r, "label": i % 4}) + "\n")
with open(f"{d}/short.jsonl", "w") as f:
    for i, r in enumerate(rows):
        f.write(json.dumps({"x": r[:100], "label": 0}) + "\n")
EOF

# Read a gallery back without our library: prints "N D labels ids model_sha256"
# and checks the ids tensor layout.
readback() {
    $PY - "$1" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
meta = h.pop("__metadata__", {})
data = b[8 + n:]
e = h["embeddings"]
assert e["dtype"] == "F32", e
N, D = e["shape"]
labels = ids = "-"
if "labels" in h:
    s, t = h["labels"]["data_offsets"]
    labels = ",".join(str(v) for v in struct.unpack(f"<{N}q", data[s:t])[:6])
if "ids" in h:
    s, t = h["ids"]["data_offsets"]
    raw = data[s:t]
    parts = raw.split(b"\0")  # NUL-separated, no NUL after the last id
    assert len(parts) == N and all(parts), (len(parts), N)
    ids = ",".join(x.decode() for x in parts[:3])
assert meta.get("format") == "tripletd-gallery", meta
print(N, D, labels, ids, meta.get("model_sha256", "-"))
EOF
}

sha=$($PY -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$MODEL")

run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/csv.safetensors" --batch 7
expect_run "index CSV with ids" 0 "wrote"
got=$(readback "$tmp/csv.safetensors" 2>&1)
want="40 32 0,1,2,3,0,1 item0,item1,item2 $sha"
if [[ $got == "$want" ]]; then ok "CSV gallery contents"; else bad "CSV gallery contents: got '$got', want '$want'"; fi

run --model "$MODEL" --data "$tmp/rows.jsonl" --out "$tmp/jsonl.safetensors" --limit 9 --quiet
expect_run "index JSON lines, --limit, --quiet" 0 ""
got=$(readback "$tmp/jsonl.safetensors" 2>&1)
want="9 32 0,1,2,3,0,1 - $sha"
if [[ $got == "$want" ]]; then ok "JSON-lines gallery contents"; else bad "JSON-lines gallery contents: got '$got', want '$want'"; fi
[[ -z $(cat "$tmp/err") ]] && ok "--quiet prints nothing" || bad "--quiet printed: $(cat "$tmp/err")"

run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/noids.safetensors" --no-ids --quiet
got=$(readback "$tmp/noids.safetensors" 2>&1)
[[ $got == "40 32 "*" - $sha" ]] && ok "--no-ids" || bad "--no-ids: $got"

# batch sizes change only the float rounding of the forward pass (sgemm vs sgemv)
"$TRIPLETCTL" index --quiet --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/b1.safetensors" --batch 1
$PY - "$tmp/csv.safetensors" "$tmp/b1.safetensors" <<'EOF' && ok "batch 7 and batch 1 agree to 1e-5" || bad "batch 7 and batch 1 differ"
import json, struct, sys
def emb(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    s, t = h["embeddings"]["data_offsets"]; return struct.unpack(f"<{(t - s) // 4}f", b[8 + n + s:8 + n + t])
a, c = emb(sys.argv[1]), emb(sys.argv[2])
sys.exit(0 if len(a) == len(c) and max(abs(x - y) for x, y in zip(a, c)) < 1e-5 else 1)
EOF

# --keep-images: the IDX bytes as read, in an "images" tensor [N, 28, 28]
FM=/usr/share/datasets/fashion-mnist
if [[ -f $FM/t10k-images-idx3-ubyte.gz ]]; then
    run --model "$MODEL" --data "$FM/t10k" --limit 5 --keep-images --out "$tmp/img.safetensors" --quiet
    expect_run "--keep-images on IDX" 0 ""
    $PY - "$tmp/img.safetensors" "$FM/t10k-images-idx3-ubyte.gz" <<'EOF' && ok "images tensor = the IDX pixels" || bad "images tensor differs from the IDX pixels"
import gzip, json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
t = h["images"]; s, e = t["data_offsets"]
raw = gzip.open(sys.argv[2]).read()[16:16 + 5 * 784]
sys.exit(0 if t["dtype"] == "U8" and t["shape"] == [5, 28, 28] and b[8 + n + s:8 + n + e] == raw else 1)
EOF
else
    skip_part "--keep-images on IDX (no Fashion-MNIST: Debian package dataset-fashion-mnist)"
fi
run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/x.safetensors" --keep-images
expect_run "--keep-images on CSV" 1 "holds no 8-bit images"

# refusals
run --data "$tmp/rows.csv" --out "$tmp/x.safetensors"
expect_run "no --model" 2 "--model is required"
run --model "$MODEL" --data "$tmp/rows.csv"
expect_run "no --out" 2 "--out is required"
run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/x.safetensors" --batch 0
expect_run "--batch 0" 2 "--batch"
run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/x.safetensors" --batch 99999999
expect_run "--batch too large" 2 "--batch"
run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/x.safetensors" --bogus
expect_run "unknown option" 2 "unknown option"
run --model "$MODEL" --data "$tmp/short.jsonl" --out "$tmp/x.safetensors"
expect_run "data of the wrong width" 1 "has 100 features per row, the model"
run --model "$MODEL" --data "$tmp/missing.csv" --out "$tmp/x.safetensors"
expect_run "missing data file" 1 "missing.csv"
run --model "$tmp/rows.csv" --data "$tmp/rows.csv" --out "$tmp/x.safetensors"
expect_run "not a model" 1 "rows.csv"
run --model "$MODEL" --data "$tmp/rows.csv" --out "$tmp/no/such/dir/g.safetensors"
expect_run "unwritable output" 1 "g.safetensors"
[[ ! -e $tmp/x.safetensors ]] && ok "nothing written on refusal" || bad "a refused run wrote a file"
run --help
expect_run "--help" 0 ""
grep -q "usage: tripletctl index" "$tmp/out" && ok "--help text" || bad "--help text"

finish
