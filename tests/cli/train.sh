#!/usr/bin/env bash
# tests/cli/train.sh - `tripletctl train` end to end on a generated CSV: model
# metadata, per-epoch CSV and SVG, option errors, Ctrl-C (SIGINT) writes a
# checkpoint and --resume finishes with the same model as an uninterrupted run.
. "$(dirname "$0")/../lib.sh"

check() { # name, command...
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# 5 overlapping classes x 120 rows, 16 features in 0..100, label last
awk 'BEGIN { srand(7); for (i = 0; i < 600; i++) { c = i % 5; s = "";
     for (d = 0; d < 16; d++) s = s sprintf("%.2f,", 40 * ((c * 7 + d * 3) % 11) / 11 + rand() * 60);
     print s c } }' >"$tmp/syn.csv"
RECIPE=(--data "$tmp/syn.csv" --arch 16-24-8 --classes-per-batch 4 --samples-per-class 6 --seed 3)

# 1. a short run: files, metadata, curve
"$TRIPLETCTL" train "${RECIPE[@]}" --out "$tmp/a.safetensors" --epochs 3 --steps-per-epoch 40 --csv "$tmp/a.csv" \
    --svg "$tmp/a.svg" --name syn-test >"$tmp/out" 2>"$tmp/err"
check "train exits 0" test $? -eq 0
check "plain log lines when not a tty" grep -q "^epoch 3/3 done: loss" "$tmp/err"
check "no carriage returns when not a tty" bash -c "! grep -q $'\r' '$tmp/err'"
check "csv has a header and 3 epochs" test "$(wc -l <"$tmp/a.csv")" -eq 4
check "csv columns" grep -q "^epoch,loss,active,easy,semi_hard,hard,mean_d_ap,mean_d_an,collapsed,recall_at_1,seconds$" "$tmp/a.csv"
check "svg is an svg with two curves" test "$(grep -c "<polyline" "$tmp/a.svg")" -eq 2
check "svg parses as XML" python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$tmp/a.svg"
loss1=$(awk -F, 'NR == 2 { print $2 }' "$tmp/a.csv")
loss3=$(awk -F, 'NR == 4 { print $2 }' "$tmp/a.csv")
check "loss goes down ($loss1 -> $loss3)" awk -v a="$loss1" -v b="$loss3" 'BEGIN { exit !(b < a) }'
"$TRIPLETCTL" inspect --json "$tmp/a.safetensors" >"$tmp/inspect.json" 2>"$tmp/err"
check "inspect accepts the model" test $? -eq 0
meta() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); m=j.get("metadata", j.get("meta", {})); print(m.get(sys.argv[2], ""))' "$tmp/inspect.json" "$1"; }
check "metadata name" test "$(meta name)" = syn-test
check "metadata normalize" test "$(meta normalize)" = true
check "metadata mining" test "$(meta mining)" = semi-hard
check "metadata recipe" bash -c "[[ '$(meta recipe)' == *'MLP 16-24-8 relu'* ]]"
check "metadata seed" test "$(meta seed)" = 3
check "input preprocessing tensors" grep -q '"input.scale"' "$tmp/inspect.json"

# 2. bad options name the culprit
expect_err() { # name, pattern, args...
    local name=$1 pat=$2
    shift 2
    "$TRIPLETCTL" train "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [[ $rc -ne 0 ]] && grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (rc $rc: $(head -c 300 "$tmp/err"))"; fi
}
expect_err "missing --out" "--out MODEL is required" "${RECIPE[@]}"
expect_err "bad arch" "arch \"16-x\"" "${RECIPE[@]}" --out "$tmp/x" --arch 16-x
expect_err "arch input width vs data" "16 features but arch input width is 20" "${RECIPE[@]}" --out "$tmp/x" --arch 20-8
expect_err "unknown mining" "--mining: unknown value \"hardest\"" "${RECIPE[@]}" --out "$tmp/x" --mining hardest
expect_err "too many classes per batch" "only 5 classes" "${RECIPE[@]}" --out "$tmp/x" --classes-per-batch 6
expect_err "K = 1" "samples-per-class 1" "${RECIPE[@]}" --out "$tmp/x" --samples-per-class 1
expect_err "bad number" "--lr: \"fast\" is not a valid number" "${RECIPE[@]}" --out "$tmp/x" --lr fast
expect_err "unknown option" "unknown option \"--bogus\"" "${RECIPE[@]}" --out "$tmp/x" --bogus
expect_err "missing data" "syn-missing.csv" --data "$tmp/syn-missing.csv" --out "$tmp/x"
expect_err "resume from a non-checkpoint" "not a training checkpoint" "${RECIPE[@]}" --out "$tmp/x" --resume "$tmp/a.safetensors"

# 3. Ctrl-C saves a checkpoint; --resume ends with the model of an uninterrupted run
LONG=(--epochs 3 --steps-per-epoch 4000 --out "$tmp/r.safetensors")
"$TRIPLETCTL" train "${RECIPE[@]}" --epochs 3 --steps-per-epoch 4000 --out "$tmp/full.safetensors" 2>"$tmp/full.err"
check "uninterrupted run" test $? -eq 0
"$TRIPLETCTL" train "${RECIPE[@]}" "${LONG[@]}" 2>"$tmp/int.err" &
pid=$!
pids+=("$pid") # killed on exit if the test stops before it is reaped
for _ in $(seq 1 600); do # up to 60 s for the first progress line
    grep -q "step" "$tmp/int.err" 2>/dev/null && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
pids=() # reaped: cleanup must not signal a pid that may be reused
check "SIGINT exits 130 (rc $rc)" test "$rc" -eq 130
check "checkpoint written" test -s "$tmp/r.safetensors.ckpt"
check "no model written on interrupt" test ! -e "$tmp/r.safetensors"
check "resume hint printed" grep -q -- "--resume $tmp/r.safetensors.ckpt" "$tmp/int.err"
"$TRIPLETCTL" train "${RECIPE[@]}" "${LONG[@]}" --resume "$tmp/r.safetensors.ckpt" --csv "$tmp/r.csv" 2>"$tmp/res.err"
check "resume exits 0" test $? -eq 0
check "resume reports where it starts" grep -q "^resuming at epoch" "$tmp/res.err"
check "resumed model equals the uninterrupted one" cmp -s "$tmp/full.safetensors" "$tmp/r.safetensors"
check "csv after resume has every epoch" test "$(wc -l <"$tmp/r.csv")" -eq 4
# the checkpoint refuses other data
head -n 500 "$tmp/syn.csv" >"$tmp/other.csv"
expect_err "resume on other data" "other data" --data "$tmp/other.csv" --out "$tmp/x" --resume "$tmp/r.safetensors.ckpt"

# 4. a layer list (CNN) over the rows as 1x4x4 images, written as ONNX
CNN=(--data "$tmp/syn.csv" --arch conv4k3p1,bn,relu,maxpool2,flatten,dropout0.1,fc8 --input 1x4x4
    --classes-per-batch 4 --samples-per-class 6 --seed 3 --augment crop1,flip --lr-schedule cosine --weight-decay 1e-4)
"$TRIPLETCTL" train "${CNN[@]}" --out "$tmp/c.onnx" --epochs 2 --steps-per-epoch 30 --csv "$tmp/c.csv" \
    --name cnn-test 2>"$tmp/err"
check "cnn train exits 0" test $? -eq 0
check "cnn csv has 2 epochs" test "$(wc -l <"$tmp/c.csv")" -eq 3
"$TRIPLETCTL" inspect --json "$tmp/c.onnx" >"$tmp/inspect.json" 2>"$tmp/err"
check "inspect accepts the ONNX model" test $? -eq 0
check "onnx metadata name" test "$(meta name)" = cnn-test
check "onnx metadata recipe" bash -c "[[ '$(meta recipe)' == *'network conv4k3p1,bn,relu,maxpool2,flatten,dropout0.1,fc8 on 1x4x4, augment crop1,flip'* ]]"
check "onnx metadata image" bash -c "[[ '$(meta image)' == *'\"height\": 4'* ]]"
"$TRIPLETCTL" eval --model "$tmp/c.onnx" --data "$tmp/syn.csv" --json >"$tmp/eval.json" 2>"$tmp/err"
check "eval takes the ONNX model" test $? -eq 0
expect_err "bad layer named" "arch layer 2 \"maxpool9\": kernel 9 is larger than its padded input 4x4" \
    "${CNN[@]}" --out "$tmp/x.onnx" --arch conv4k3p1,relu,maxpool9,flatten,fc8
expect_err "input vs data" "--input 1x5x5 has 25 values, the data rows 16" "${CNN[@]}" --out "$tmp/x.onnx" --input 1x5x5
expect_err "bad input" "--input: \"4x4\" is not CxHxW" "${CNN[@]}" --out "$tmp/x.onnx" --input 4x4
expect_err "a layer list needs a shape" "--input CxHxW is needed" --data "$tmp/syn.csv" --arch conv4k3,flatten,fc8 \
    --classes-per-batch 4 --out "$tmp/x.onnx"
expect_err "bad augment" "unknown part \"spin\"" "${CNN[@]}" --out "$tmp/x.onnx" --augment spin
expect_err "bad schedule" "is not constant, cosine or step" "${CNN[@]}" --out "$tmp/x.onnx" --lr-schedule linear
expect_err "augment needs images" "augment needs a layer list" "${RECIPE[@]}" --out "$tmp/x" --augment flip
# Ctrl-C and --resume: the same ONNX file as an uninterrupted run
CLONG=(--epochs 2 --steps-per-epoch 3000)
"$TRIPLETCTL" train "${CNN[@]}" "${CLONG[@]}" --out "$tmp/cfull.onnx" 2>"$tmp/cfull.err"
check "cnn uninterrupted run" test $? -eq 0
"$TRIPLETCTL" train "${CNN[@]}" "${CLONG[@]}" --out "$tmp/cr.onnx" 2>"$tmp/cint.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 1 600); do
    grep -q "step" "$tmp/cint.err" 2>/dev/null && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
pids=()
check "cnn SIGINT exits 130 (rc $rc)" test "$rc" -eq 130
"$TRIPLETCTL" train --data "$tmp/syn.csv" --out "$tmp/cr.onnx" --resume "$tmp/cr.onnx.ckpt" 2>"$tmp/cres.err"
check "cnn resume exits 0" test $? -eq 0
check "cnn resumed model equals the uninterrupted one" cmp -s "$tmp/cfull.onnx" "$tmp/cr.onnx"

finish
