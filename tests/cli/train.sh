#!/usr/bin/env bash
# tests/cli/train.sh - `tripletctl train` end to end on a generated CSV: model
# metadata, per-epoch CSV and SVG, option errors, Ctrl-C (SIGINT) writes a
# checkpoint and --resume finishes with the same model as an uninterrupted run.
set -u
ROOT=${TRIPLET_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
CTL=${TRIPLETCTL:-$ROOT/bin/tripletctl}
T=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
check() { # name, command...
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# 5 overlapping classes x 120 rows, 16 features in 0..100, label last
awk 'BEGIN { srand(7); for (i = 0; i < 600; i++) { c = i % 5; s = "";
     for (d = 0; d < 16; d++) s = s sprintf("%.2f,", 40 * ((c * 7 + d * 3) % 11) / 11 + rand() * 60);
     print s c } }' >"$T/syn.csv"
RECIPE=(--data "$T/syn.csv" --arch 16-24-8 --classes-per-batch 4 --samples-per-class 6 --seed 3)

# 1. a short run: files, metadata, curve
"$CTL" train "${RECIPE[@]}" --out "$T/a.safetensors" --epochs 3 --steps-per-epoch 40 --csv "$T/a.csv" \
    --svg "$T/a.svg" --name syn-test >"$T/out" 2>"$T/err"
check "train exits 0" test $? -eq 0
check "plain log lines when not a tty" grep -q "^epoch 3/3 done: loss" "$T/err"
check "no carriage returns when not a tty" bash -c "! grep -q $'\r' '$T/err'"
check "csv has a header and 3 epochs" test "$(wc -l <"$T/a.csv")" -eq 4
check "csv columns" grep -q "^epoch,loss,active,easy,semi_hard,hard,mean_d_ap,mean_d_an,collapsed,recall_at_1,seconds$" "$T/a.csv"
check "svg is an svg with two curves" test "$(grep -c "<polyline" "$T/a.svg")" -eq 2
check "svg parses as XML" python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$T/a.svg"
loss1=$(awk -F, 'NR == 2 { print $2 }' "$T/a.csv")
loss3=$(awk -F, 'NR == 4 { print $2 }' "$T/a.csv")
check "loss goes down ($loss1 -> $loss3)" awk -v a="$loss1" -v b="$loss3" 'BEGIN { exit !(b < a) }'
"$CTL" inspect --json "$T/a.safetensors" >"$T/inspect.json" 2>"$T/err"
check "inspect accepts the model" test $? -eq 0
meta() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); m=j.get("metadata", j.get("meta", {})); print(m.get(sys.argv[2], ""))' "$T/inspect.json" "$1"; }
check "metadata name" test "$(meta name)" = syn-test
check "metadata normalize" test "$(meta normalize)" = true
check "metadata mining" test "$(meta mining)" = semi-hard
check "metadata recipe" bash -c "[[ '$(meta recipe)' == *'MLP 16-24-8 relu'* ]]"
check "metadata seed" test "$(meta seed)" = 3
check "input preprocessing tensors" grep -q '"input.scale"' "$T/inspect.json"

# 2. bad options name the culprit
expect_err() { # name, pattern, args...
    local name=$1 pat=$2
    shift 2
    "$CTL" train "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [[ $rc -ne 0 ]] && grep -q -- "$pat" "$T/err"; then ok "$name"; else bad "$name (rc $rc: $(head -c 300 "$T/err"))"; fi
}
expect_err "missing --out" "--out MODEL is required" "${RECIPE[@]}"
expect_err "bad arch" "arch \"16-x\"" "${RECIPE[@]}" --out "$T/x" --arch 16-x
expect_err "arch input width vs data" "16 features but arch input width is 20" "${RECIPE[@]}" --out "$T/x" --arch 20-8
expect_err "unknown mining" "--mining: unknown value \"hardest\"" "${RECIPE[@]}" --out "$T/x" --mining hardest
expect_err "too many classes per batch" "only 5 classes" "${RECIPE[@]}" --out "$T/x" --classes-per-batch 6
expect_err "K = 1" "samples-per-class 1" "${RECIPE[@]}" --out "$T/x" --samples-per-class 1
expect_err "bad number" "--lr: \"fast\" is not a valid number" "${RECIPE[@]}" --out "$T/x" --lr fast
expect_err "unknown option" "unknown option \"--bogus\"" "${RECIPE[@]}" --out "$T/x" --bogus
expect_err "missing data" "syn-missing.csv" --data "$T/syn-missing.csv" --out "$T/x"
expect_err "resume from a non-checkpoint" "not a training checkpoint" "${RECIPE[@]}" --out "$T/x" --resume "$T/a.safetensors"

# 3. Ctrl-C saves a checkpoint; --resume ends with the model of an uninterrupted run
LONG=(--epochs 3 --steps-per-epoch 4000 --out "$T/r.safetensors")
"$CTL" train "${RECIPE[@]}" --epochs 3 --steps-per-epoch 4000 --out "$T/full.safetensors" 2>"$T/full.err"
check "uninterrupted run" test $? -eq 0
"$CTL" train "${RECIPE[@]}" "${LONG[@]}" 2>"$T/int.err" &
pid=$!
for _ in $(seq 1 600); do # up to 60 s for the first progress line
    grep -q "step" "$T/int.err" 2>/dev/null && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
pid=
check "SIGINT exits 130 (rc $rc)" test "$rc" -eq 130
check "checkpoint written" test -s "$T/r.safetensors.ckpt"
check "no model written on interrupt" test ! -e "$T/r.safetensors"
check "resume hint printed" grep -q -- "--resume $T/r.safetensors.ckpt" "$T/int.err"
"$CTL" train "${RECIPE[@]}" "${LONG[@]}" --resume "$T/r.safetensors.ckpt" --csv "$T/r.csv" 2>"$T/res.err"
check "resume exits 0" test $? -eq 0
check "resume reports where it starts" grep -q "^resuming at epoch" "$T/res.err"
check "resumed model equals the uninterrupted one" cmp -s "$T/full.safetensors" "$T/r.safetensors"
check "csv after resume has every epoch" test "$(wc -l <"$T/r.csv")" -eq 4
# the checkpoint refuses other data
head -n 500 "$T/syn.csv" >"$T/other.csv"
expect_err "resume on other data" "other data" --data "$T/other.csv" --out "$T/x" --resume "$T/r.safetensors.ckpt"

echo "$fails failed"
((fails == 0))
