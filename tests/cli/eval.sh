#!/usr/bin/env bash
# eval.sh - tripletctl eval end to end on generated data: the same rows as CSV, JSON lines and
# gzip'd IDX give the same figures; the raw-input row matches a pure-Python brute force; leave-one-out,
# --classes, --limit, holdout split, --json shape; exit codes and messages on bad input.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
PY=$(command -v python3)

# 4 classes of 2x4 "images" (bytes), 50 training and 12 test rows each, overlapping clusters;
# written as CSV, JSON lines and gzip'd IDX (train / t10k) with the same rows in the same order.
"$PY" - "$tmp" <<'EOF'
import gzip, json, random, struct, sys
d = sys.argv[1]
rnd = random.Random(7)
centres = [[rnd.randint(40, 215) for _ in range(8)] for _ in range(4)]
def rows(n):
    out = []
    for i in range(n * 4):
        c = i % 4
        out.append(([min(255, max(0, int(round(v + rnd.gauss(0, 45))))) for v in centres[c]], c))
    return out
for split, n in (("train", 50), ("t10k", 12)):
    rs = rows(n)
    with open("%s/%s.csv" % (d, split), "w") as f:
        f.write("p0,p1,p2,p3,p4,p5,p6,p7,label\n")
        for x, y in rs:
            f.write(",".join(map(str, x)) + ",%d\n" % y)
    with open("%s/%s.jsonl" % (d, split), "w") as f:
        for x, y in rs:
            f.write(json.dumps({"x": x, "label": y}) + "\n")
    with gzip.open("%s/%s-images-idx3-ubyte.gz" % (d, split), "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, len(rs), 2, 4) + bytes(v for x, _ in rs for v in x))
    with gzip.open("%s/%s-labels-idx1-ubyte.gz" % (d, split), "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, len(rs)) + bytes(y for _, y in rs))
EOF

# A small model trained on the CSV rows (inputs scaled to [0, 1] by the trainer).
expect "train a small model" 0 "$TRIPLETCTL" train --data "$tmp/train.csv" --test "$tmp/t10k.csv" --out "$tmp/m.safetensors" \
    --arch 8-16-4 --epochs 3 --classes-per-batch 4 --samples-per-class 5 --seed 3 --quiet
[[ -f $tmp/m.safetensors ]] || { echo "FAIL no model written; stopping"; exit 1; }

# --- the same data in three formats give the same figures ---
expect "eval IDX dir" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --json
cp "$tmp/out" "$tmp/idx.json"
expect "eval CSV --test" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/train.csv" --test "$tmp/t10k.csv" --json
cp "$tmp/out" "$tmp/csv.json"
expect "eval JSONL --test" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/train.jsonl" --test "$tmp/t10k.jsonl" --json
cp "$tmp/out" "$tmp/jsonl.json"
expect "eval IDX + CSV --test" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --test "$tmp/t10k.csv" --json
cp "$tmp/out" "$tmp/mixed.json"
expect "eval text table" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp"
has "table header" "$tmp/out" "Recall@1  Recall@5     MAP@R"
has "table model row" "$tmp/out" "model "
has "table raw row" "$tmp/out" "raw inputs "
has "table untrained row" "$tmp/out" "untrained network "
expect "eval leave-one-out" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --split train --json
cp "$tmp/out" "$tmp/loo.json"
expect "eval open-set classes" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --classes 1,3 --limit 10 --json
cp "$tmp/out" "$tmp/cls.json"
expect "eval holdout split" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/train.csv" --test-fraction 0.2 --no-map --no-baselines --json
cp "$tmp/out" "$tmp/hold.json"

# Check the JSON and recompute the raw-input row by brute force (squared Euclidean on the
# bytes: the model's uniform input scale does not change the ranking).
if "$PY" - "$tmp" <<'EOF'; then ok "JSON and brute-force checks"; else bad "JSON and brute-force checks"; fi
import json, sys
d = sys.argv[1]
def load(name):
    with open("%s/%s.json" % (d, name)) as f:
        return json.load(f)
def rows(split):
    out = []
    with open("%s/%s.csv" % (d, split)) as f:
        next(f)
        for line in f:
            v = [int(t) for t in line.split(",")]
            out.append((v[:-1], v[-1]))
    return out
def metrics(q, g, loo=False, best=True):
    """Recall@1, Recall@5, MAP@R with exact integer distances. The model's input
    scale is applied in float32 by the C side, which can order equal integer
    distances either way: best=True puts same-label rows first within a tie,
    best=False last, bounding any tie-break."""
    s1 = s5 = sm = 0.0
    for qi, (x, y) in enumerate(q):
        cand = [(sum((a - b) ** 2 for a, b in zip(x, gx)), (gy != y) if best else (gy == y), gy)
                for gi, (gx, gy) in enumerate(g) if not (loo and gi == qi)]
        cand.sort()
        lab = [c[2] for c in cand]
        r = lab.count(y)
        s1 += lab[0] == y
        s5 += y in lab[:5]
        hits = 0
        ap = 0.0
        for i in range(r):
            if lab[i] == y:
                hits += 1
                ap += hits / (i + 1)
        sm += ap / r
    n = len(q)
    return s1 / n, s5 / n, sm / n
errors = []
def close(name, got, want):
    if abs(got - want) > 1e-9:
        errors.append("%s: got %r want %r" % (name, got, want))
def within(name, row, q, g, loo=False):
    hi = metrics(q, g, loo, best=True)
    lo = metrics(q, g, loo, best=False)
    for k, key in enumerate(("recall_at_1", "recall_at_5", "map_at_r")):
        if not (lo[k] - 1e-12 <= row[key] <= hi[k] + 1e-12):
            errors.append("%s %s: got %r, brute force gives %r..%r" % (name, key, row[key], lo[k], hi[k]))
        if hi[k] - lo[k] > 0.02:
            errors.append("%s %s: ties leave too wide a range %r..%r" % (name, key, lo[k], hi[k]))
tr, te = rows("train"), rows("t10k")
idx, csv, jl, mixed = load("idx"), load("csv"), load("jsonl"), load("mixed")
for k in ("model", "raw", "untrained"):
    for m in ("recall_at_1", "recall_at_5", "map_at_r"):
        close("csv %s %s" % (k, m), csv["results"][k][m], idx["results"][k][m])
        close("jsonl %s %s" % (k, m), jl["results"][k][m], idx["results"][k][m])
        close("mixed %s %s" % (k, m), mixed["results"][k][m], idx["results"][k][m])
if idx["n_queries"] != 48 or idx["n_gallery"] != 200 or idx["leave_one_out"] or idx["classes"] is not None:
    errors.append("idx header: %r" % {k: idx[k] for k in ("n_queries", "n_gallery", "leave_one_out", "classes")})
within("raw", idx["results"]["raw"], te, tr)
model = idx["results"]["model"]
if not (0 < model["map_at_r"] <= 1 and model["n_queries"] == 48 and model["n_skipped"] == 0):
    errors.append("model row: %r" % model)
loo = load("loo")
within("loo raw", loo["results"]["raw"], tr, tr, loo=True)
if not loo["leave_one_out"] or loo["n_queries"] != 200:
    errors.append("loo header %r" % loo)
cls = load("cls")
q = [r for r in te if r[1] in (1, 3)][:10]
g = [r for r in tr if r[1] in (1, 3)]
within("classes raw", cls["results"]["raw"], q, g)
if cls["classes"] != [1, 3] or cls["n_queries"] != 10 or cls["n_gallery"] != 100:
    errors.append("classes header %r" % {k: cls[k] for k in ("classes", "n_queries", "n_gallery")})
hold = load("hold")
if hold["n_queries"] != 40 or hold["n_gallery"] != 160 or hold["results"]["model"]["map_at_r"] is not None \
        or set(hold["results"]) != {"model"}:
    errors.append("holdout %r" % hold)
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
EOF

# --- bad input ---
expect "no --model" 2 "$TRIPLETCTL" eval --data "$tmp"
has "no --model message" "$tmp/err" "--model is required"
expect "bad --classes" 2 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --classes 1,x
has "bad --classes message" "$tmp/err" '--classes: "1,x" is not a comma-separated list of integer labels'
expect "bad --limit" 2 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --limit 0
has "bad --limit message" "$tmp/err" '--limit: "0" is not a positive integer'
expect "unknown option" 2 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --frob
has "unknown option message" "$tmp/err" 'unknown option "--frob"'
expect "missing model file" 1 "$TRIPLETCTL" eval --model "$tmp/nope.safetensors" --data "$tmp"
has "missing model named" "$tmp/err" "nope.safetensors"
printf 'a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n' >"$tmp/narrow.csv"
expect "feature count mismatch" 1 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/narrow.csv" --test "$tmp/narrow.csv"
has "feature count message" "$tmp/err" "rows have 2 features, the model's input is 8"
printf 'p0,p1,p2,p3,p4,p5,p6,p7,label\n1,2,3,4,5,6,7,8,0\n1,2,3,x,5,6,7,8,1\n' >"$tmp/badrow.csv"
expect "bad CSV row" 1 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/badrow.csv" --test "$tmp/t10k.csv"
has "bad CSV row located" "$tmp/err" 'badrow.csv:3, column 4: not a number'
expect "classes not in data" 1 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --classes 9
has "classes not in data message" "$tmp/err" "no rows with the 1 given class(es)"
expect "split on CSV" 1 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/train.csv" --split train
has "split on CSV message" "$tmp/err" "--split applies to IDX data"
expect "split with test" 1 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --test "$tmp/t10k.csv" --split train
has "split with test message" "$tmp/err" "--split and --test exclude each other"
expect "missing split" 1 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp" --split valid
has "missing split message" "$tmp/err" 'no IDX files for split "valid"'

# --- threads: a gallery of several batches of rows embedded on 3 threads gives the figures of 1 ---
"$PY" - "$tmp" <<'EOF2'
import random, sys
rnd = random.Random(11)
with open(sys.argv[1] + "/big.csv", "w") as f:
    f.write("p0,p1,p2,p3,p4,p5,p6,p7,label\n")
    for i in range(9000):
        c = i % 4
        f.write(",".join(str(min(255, max(0, 60 * c + rnd.randint(0, 80)))) for _ in range(8)) + ",%d\n" % c)
EOF2
expect "eval 9000 rows, 1 thread" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/big.csv" --test "$tmp/t10k.csv" --json --threads 1
cp "$tmp/out" "$tmp/t1.json"
expect "eval 9000 rows, 3 threads" 0 "$TRIPLETCTL" eval --model "$tmp/m.safetensors" --data "$tmp/big.csv" --test "$tmp/t10k.csv" --json --threads 3
cp "$tmp/out" "$tmp/t3.json"
# the same embeddings and neighbours: Recall exactly; MAP@R's last digits move with the scoring's thread count
# (they did before the embedding ran on threads too)
if "$PY" - "$tmp/t1.json" "$tmp/t3.json" >"$tmp/cmp" 2>&1 <<'EOF2'
import json, math, sys
a, b = (json.load(open(f))["results"] for f in sys.argv[1:])
assert a.keys() == b.keys(), (a.keys(), b.keys())
for row in a:
    for k, v in a[row].items():
        if k == "seconds":
            continue
        w = b[row][k]
        ok = math.isclose(v, w, rel_tol=1e-6, abs_tol=1e-9) if k == "map_at_r" else v == w
        assert ok, "%s %s: %r against %r" % (row, k, v, w)
EOF2
then ok "3 threads give the figures of 1"; else bad "3 threads differ: $(tail -2 "$tmp/cmp")"; fi

finish
