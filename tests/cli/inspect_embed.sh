#!/usr/bin/env bash
# inspect_embed.sh - tripletctl inspect/embed end to end on the committed fixtures: outputs, --json,
# PyTorch reference embeddings, exit codes on bad files, bad lines and bad options.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
DATA=$ROOT/tests/data

# --- entry point ---
expect "--help" 0 "$TRIPLETCTL" --help
for c in train eval index inspect embed; do has "--help lists $c" "$tmp/out" "  $c "; done
expect "--version" 0 "$TRIPLETCTL" --version
has "--version text" "$tmp/out" "tripletctl "
expect "help inspect" 0 "$TRIPLETCTL" help inspect
has "help inspect usage" "$tmp/out" "usage: tripletctl inspect MODEL [--json]"
expect "embed --help" 0 "$TRIPLETCTL" embed --help
has "embed usage" "$tmp/out" "usage: tripletctl embed --model MODEL"
expect "no command" 2 "$TRIPLETCTL"
expect "unknown command" 2 "$TRIPLETCTL" frobnicate
has "unknown command named" "$tmp/err" 'unknown command "frobnicate"'

# --- inspect ---
expect "inspect e2e" 0 "$TRIPLETCTL" inspect "$MODEL"
sha=$(sha256sum "$MODEL" | cut -d' ' -f1)
has "inspect sha256" "$tmp/out" "sha256:       $sha"
has "inspect dims" "$tmp/out" "784 -> 64 -> 32"
has "inspect parameters" "$tmp/out" "parameters:   52320"
has "inspect layer 0" "$tmp/out" "784 -> 64      bias yes  then relu"
has "inspect layer 1" "$tmp/out" "64 -> 32      bias yes  then identity"
has "inspect normalize" "$tmp/out" "normalize:    true"
has "inspect metadata" "$tmp/out" "name = e2e-test"
expect "inspect --json" 0 "$TRIPLETCTL" inspect --json "$DATA/fwd-f16_gelu.safetensors"
if python3 - "$tmp/out" <<'PY'; then ok "inspect --json fields"; else bad "inspect --json fields"; fi
import json, sys
d = json.load(open(sys.argv[1]))
assert d["dtype"] == "F16" and d["dims"] == [20, 16, 8] and d["parameters"] == 20 * 16 + 16 + 16 * 8 + 8, d
assert d["activation"] == "gelu" and d["normalize"] is False and d["metric"] == "sqeuclidean", d
assert d["loss"] == "triplet" and abs(d["margin"] - 0.2) < 1e-12 and d["input_mean"] and d["input_scale"], d
assert [l["activation"] for l in d["layers"]] == ["gelu", "identity"], d
assert d["metadata"]["name"] == "f16_gelu" and len(d["sha256"]) == 64, d
PY
for f in "$DATA"/fwd-*.safetensors; do
    expect "inspect --json $(basename "$f")" 0 "$TRIPLETCTL" inspect --json "$f"
    if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out"; then ok "json parses"; else bad "json parses: $f"; fi
done

# bad files: exit 1 with the validation message
head -c 5 "$MODEL" >"$tmp/short.safetensors"
expect "inspect short file" 1 "$TRIPLETCTL" inspect "$tmp/short.safetensors"
has "short file message" "$tmp/err" "file is 5 bytes, shorter than the 8-byte header length"
head -c 100000 "$MODEL" >"$tmp/trunc.safetensors"
expect "inspect truncated file" 1 "$TRIPLETCTL" inspect "$tmp/trunc.safetensors"
has "truncated file message" "$tmp/err" "past the data section"
python3 - "$tmp/chain.safetensors" <<'PY'
import json, struct, sys
hdr = {"__metadata__": {"activation": "relu"},
       "0.weight": {"dtype": "F32", "shape": [16, 5], "data_offsets": [0, 320]},
       "2.weight": {"dtype": "F32", "shape": [8, 17], "data_offsets": [320, 864]}}
h = json.dumps(hdr).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(864))
PY
expect "inspect non-chaining model" 1 "$TRIPLETCTL" inspect "$tmp/chain.safetensors"
has "non-chaining message" "$tmp/err" 'tensor "2.weight": shape [8,17] does not chain with layer 0 output 16'
expect "inspect --json bad file" 1 "$TRIPLETCTL" inspect --json "$tmp/chain.safetensors"
[[ -s $tmp/out ]] && bad "no stdout on a bad file" || ok "no stdout on a bad file"
expect "inspect missing file" 1 "$TRIPLETCTL" inspect "$tmp/absent.safetensors"
has "missing file message" "$tmp/err" "No such file or directory"
expect "inspect no MODEL" 2 "$TRIPLETCTL" inspect
expect "inspect unknown option" 2 "$TRIPLETCTL" inspect --yaml "$MODEL"

# --- embed against the PyTorch references in tests/golden/model_golden.h ---
python3 - "$ROOT/tests/golden/model_golden.h" "$tmp" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
def arr(name):
    return [float(v) for v in re.search(r"%s\[\] = \{([^}]*)\}" % name, src).group(1).split(",")]
for case, n, dim in (("E2E", 5, 784), ("F16_GELU", 4, 20)):
    x, y = arr(case + "_X"), arr(case + "_Y")
    rows = [x[i * dim:(i + 1) * dim] for i in range(n)]
    with open("%s/%s.jsonl" % (sys.argv[2], case), "w") as f:
        for r in rows:
            f.write("[" + ", ".join("%.9g" % v for v in r) + "]\n")
    with open("%s/%s.csv" % (sys.argv[2], case), "w") as f:
        f.write("\n")  # blank lines are skipped
        for r in rows:
            f.write(",".join("%.9g" % v for v in r) + "\r\n")
    with open("%s/%s.want" % (sys.argv[2], case), "w") as f:
        f.write(" ".join(repr(v) for v in y) + "\n")
PY
check_embed() { # NAME OUTFILE WANTFILE ROWS
    if python3 - "$2" "$3" "$4" <<'PY'; then ok "$1 matches PyTorch"; else bad "$1 vs PyTorch"; fi
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [float(v) for v in open(sys.argv[2]).read().split()]
n = int(sys.argv[3])
assert len(got) == n, len(got)
d = len(want) // n
for i, row in enumerate(got):
    ref = want[i * d:(i + 1) * d]
    scale = max(abs(v) for v in ref)
    assert len(row) == d and all(abs(a - b) <= 1e-5 * scale for a, b in zip(row, ref)), (i, row[:4], ref[:4])
PY
}
expect "embed JSON lines" 0 "$TRIPLETCTL" embed --model "$MODEL" <"$tmp/E2E.jsonl"
check_embed "embed JSON lines" "$tmp/out" "$tmp/E2E.want" 5
expect "embed CSV, batch 2" 0 "$TRIPLETCTL" embed --model "$MODEL" --batch 2 <"$tmp/E2E.csv"
check_embed "embed CSV" "$tmp/out" "$tmp/E2E.want" 5
expect "embed batch 1 (sgemv)" 0 "$TRIPLETCTL" embed --model="$DATA/fwd-f16_gelu.safetensors" --batch=1 <"$tmp/F16_GELU.csv"
check_embed "embed F16 model" "$tmp/out" "$tmp/F16_GELU.want" 4
expect "embed --normalize" 0 "$TRIPLETCTL" embed --model "$DATA/fwd-f16_gelu.safetensors" --normalize <"$tmp/F16_GELU.jsonl"
if python3 -c '
import json, sys
for l in open(sys.argv[1]):
    v = json.loads(l); assert abs(sum(x * x for x in v) - 1) < 1e-5' "$tmp/out"; then ok "--normalize gives unit rows"; else bad "--normalize"; fi
expect "embed --no-normalize" 0 "$TRIPLETCTL" embed --model "$MODEL" --no-normalize <"$tmp/E2E.jsonl"
if python3 -c '
import json, sys
n = [sum(x * x for x in json.loads(l)) ** 0.5 for l in open(sys.argv[1])]
assert len(n) == 5 and all(abs(v - 1) > 1e-3 for v in n), n' "$tmp/out"; then ok "--no-normalize keeps raw rows"; else bad "--no-normalize"; fi

# bad lines: reported with their line number, skipped, exit 1; good lines still embedded
{
    head -n 1 "$tmp/E2E.jsonl"
    echo "1,2,3"
    echo "[1, 2"
    echo '{"x": [1]}'
    head -n 1 "$tmp/E2E.jsonl" | sed 's/^\[/["a", /; s/, [^,]*\]$/]/'
    head -n 2 "$tmp/E2E.csv" | tail -n 1 | sed 's/^[^,]*,/nan,/'
    head -n 2 "$tmp/E2E.csv" | tail -n 1
} >"$tmp/mixed.txt"
expect "embed bad lines" 1 "$TRIPLETCTL" embed --model "$MODEL" <"$tmp/mixed.txt"
has "line 2 reported" "$tmp/err" "line 2: 3 values, the model takes 784"
has "line 3 reported" "$tmp/err" "line 3: not valid JSON"
has "line 4 reported" "$tmp/err" "line 4: JSON value is not an array"
has "line 5 reported" "$tmp/err" "line 5: value [0] is not a finite float32 number"
has "line 6 reported" "$tmp/err" "line 6: CSV field 1 is not a finite float32 number"
has "bad line count" "$tmp/err" "5 bad lines skipped"
[[ $(wc -l <"$tmp/out") == 2 ]] && ok "good lines still embedded" || bad "good lines: $(wc -l <"$tmp/out") output lines, want 2"
expect "embed without --model" 2 "$TRIPLETCTL" embed
expect "embed --batch 0" 2 "$TRIPLETCTL" embed --model "$MODEL" --batch 0
has "--batch message" "$tmp/err" '--batch: "0" is not an integer in 1..65536'
expect "embed bad model" 1 "$TRIPLETCTL" embed --model "$tmp/chain.safetensors" </dev/null
has "embed bad model message" "$tmp/err" 'does not chain with layer 0 output 16'
expect "embed empty input" 0 "$TRIPLETCTL" embed --model "$MODEL" </dev/null
[[ ! -s $tmp/out ]] && ok "empty input, empty output" || bad "empty input produced output"

finish
