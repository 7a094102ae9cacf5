#!/usr/bin/env bash
# bench_image_http.sh - image embedding over HTTP: POST /v1/embed with a PNG body (Content-Type
# image/png) to tripletd serving an ONNX model with `image` metadata, against a FastAPI + uvicorn +
# PIL + PyTorch service on the same weights (bench/fastapi_image_service.py: PIL decode, ToTensor
# + Normalize, torch.inference_mode). Models from bench/onnx_torch.py: the Fashion-MNIST CNN with
# a 28x28 grey Fashion-MNIST PNG, resnet18 with a 224x224 RGB PNG. wrk at fixed concurrencies,
# ROUNDS rounds interleaved across servers; medians reported. Writes $RESULTS/image_http.md.
# Env: DURATION (s per run, default 4), ROUNDS (default 3), THREADS (tripletd --threads, default 2),
# CONNS (default "1 16"), MODELS (default "cnn resnet18").
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
TRIPLETD=${TRIPLETD:-$PWD/bin/tripletd}
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-"1 16"}
MODELS=${MODELS:-"cnn resnet18"}
PY=/usr/bin/python3
$PY -c 'import torch, torchvision, fastapi, uvicorn, PIL, onnx' ||
    { echo "bench_image_http: needs python3-torch, -torchvision, -fastapi, -uvicorn, -pil, -onnx (make bench-deps)"; exit 1; }
for exe in "$TRIPLETD" "$(command -v wrk || true)"; do
    [[ -n $exe && -x $exe ]] || { echo "bench_image_http: missing $exe (make; make bench-deps)"; exit 1; }
done
mkdir -p "$RESULTS"
BENCH_NAME=bench_image_http
. bench/lib.sh # the working folder is the repository root (cd above)
# run_wrk CONNS URL LUA -> "req/s p50_ms p99_ms requests"; fails on errors or non-2xx replies
run_wrk() {
    local out
    out=$(wrk -t1 -c"$1" -d"${DURATION}s" --timeout 10s --latency -s "$3" "$2")
    echo "$out" >>"$work/wrk.log"
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "bench_image_http: errors from $2" >&2; echo "$out" >&2; return 1; fi
    wrk_figures '%.1f %.2f %.2f %d\n' <<<"$out"
}

load_start=$(cut -d' ' -f1 /proc/loadavg)
$PY bench/onnx_torch.py make "$work" 2>/dev/null
declare -A URL VALS PID
for m in $MODELS; do
    wrk_post_lua "$work/$m.png" image/png >"$work/post_$m.lua"
    tripletd_start "tripletd,$m" "$work/$m.onnx" http --threads "$THREADS"
    p=$(free_port)
    env MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 \
        $PY bench/fastapi_image_service.py "$work" "$m" "$p" >"$work/fastapi_$m.log" 2>&1 &
    pids+=($!)
    PID[fastapi,$m]=$!
    URL[fastapi,$m]="http://127.0.0.1:$p/v1/embed"
    wait_http "http://127.0.0.1:$p/healthz" 60
    for s in tripletd fastapi; do
        curl -sf -H 'Content-Type: image/png' --data-binary @"$work/$m.png" "${URL[$s,$m]}" >"$work/${s}_$m.json" ||
            { echo "bench_image_http: $s refused the $m PNG" >&2; exit 1; }
    done
    # both services answer the same embedding for the same PNG (decoding, resizing, normalising included)
    $PY - "$work/tripletd_$m.json" "$work/fastapi_$m.json" "$m" <<'EOF'
import json, sys
a, b = (json.load(open(p))["embeddings"][0] for p in sys.argv[1:3])
err = max(abs(x - y) - 1e-3 * abs(y) for x, y in zip(a, b))
assert len(a) == len(b) and err < 1e-4, "%s: tripletd and FastAPI disagree by %g" % (sys.argv[3], err)
print("%s: tripletd and FastAPI agree within 1e-4 + 1e-3 relative over %d components" % (sys.argv[3], len(a)))
EOF
    for s in tripletd fastapi; do wrk -t1 -c4 -d1s -s "$work/post_$m.lua" "${URL[$s,$m]}" >/dev/null; done # warm-up
done

for ((round = 1; round <= ROUNDS; round++)); do
    for m in $MODELS; do
        for c in $CONNS; do
            for s in tripletd fastapi; do
                t0=$(cpu_ticks "${PID[$s,$m]}")
                r=$(run_wrk "$c" "${URL[$s,$m]}" "$work/post_$m.lua")
                t1=$(cpu_ticks "${PID[$s,$m]}") n=$(cut -d' ' -f4 <<<"$r")
                r="$(cut -d' ' -f1-3 <<<"$r") $(awk -v t=$((t1 - t0)) -v k="$tck" -v n="$n" 'BEGIN { printf "%.3f", 1e3 * t / k / (n > 0 ? n : 1) }')"
                echo "round $round $s $m c=$c: $r (req/s p50_ms p99_ms server_cpu_ms_per_request)"
                VALS[$s,$m,$c]="${VALS[$s,$m,$c]:-} $r"
            done
        done
    done
done

# median COLUMN "$values": values are "rps p50 p99 cpu_ms" quadruples
median() { tr ' ' '\n' <<<"$2" | grep . | awk -v k="$1" 'NR % 4 == (k % 4) { print }' | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
{
    echo "## HTTP: image embedding, PNG body (tripletd vs FastAPI + PIL + PyTorch)"
    echo
    echo "\`POST /v1/embed\` with \`Content-Type: image/png\` and the PNG as the body; both servers decode,"
    echo "scale (x/255), normalise with the model's mean/std and answer the embedding as JSON (checked"
    echo "equal within 1e-4 + 1e-3 relative before timing). wrk, one thread, keep-alive, ${DURATION} s per"
    echo "run; $ROUNDS rounds interleaved across servers and models, **medians** of the rounds. tripletd:"
    echo "\`--threads $THREADS\`, OpenBLAS 1 thread, access log on, the \`.onnx\` file with \`image\` metadata"
    echo "(proto/export.py). FastAPI: uvicorn 1 worker, PIL + torchvision ToTensor/Normalize, torch"
    echo "$($PY -c 'import torch; print(torch.__version__)') with 1 thread and the tuned environment"
    echo "(\`MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_WAIT_POLICY=PASSIVE\`),"
    echo "the same weights. Clients, servers and other load share the 2 cores. Load average (1 min):"
    echo "$load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end. Server CPU per request (user + system of"
    echo "the server process over the run / requests) is the figure other load disturbs least."
    echo
    echo "| model | PNG | conns | tripletd req/s | p50 ms | p99 ms | FastAPI req/s | p50 ms | p99 ms | tripletd / FastAPI | server CPU ms/req, tripletd | FastAPI | FastAPI / tripletd |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for m in $MODELS; do
        desc=$($PY -c 'import sys; from PIL import Image; i = Image.open(sys.argv[1]); print("%dx%d %s, %d bytes" % (i.size[0], i.size[1], i.mode, __import__("os").path.getsize(sys.argv[1])))' "$work/$m.png")
        label=$([[ $m == cnn ]] && echo "Fashion CNN" || echo "$m")
        for c in $CONNS; do
            t=${VALS[tripletd,$m,$c]} f=${VALS[fastapi,$m,$c]}
            echo "| $label | $desc | $c | $(median 1 "$t") | $(median 2 "$t") | $(median 3 "$t") |" \
                "$(median 1 "$f") | $(median 2 "$f") | $(median 3 "$f") | **$(ratio "$(median 1 "$t")" "$(median 1 "$f")")x** |" \
                "$(median 4 "$t") | $(median 4 "$f") | **$(ratio "$(median 4 "$f")" "$(median 4 "$t")")x** |"
        done
    done
    echo
    echo "Goal (the issue): >= 10x the FastAPI service. Every round's req/s (tripletd; FastAPI):"
    rounds() { tr ' ' '\n' <<<"$1" | grep . | awk 'NR % 4 == 1' | paste -sd, | sed 's/,/, /g'; }
    for m in $MODELS; do
        for c in $CONNS; do
            echo "- $m, $c connection(s): ${VALS[tripletd,$m,$c]:+$(rounds "${VALS[tripletd,$m,$c]}")}; $(rounds "${VALS[fastapi,$m,$c]}")"
        done
    done
    echo
    echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION bench/bench_image_http.sh\` (wrk -t1 -c{$(tr ' ' , <<<"$CONNS")}"
    echo "-d${DURATION}s --latency with a Lua script posting the PNG)."
} >"$RESULTS/image_http.md"
cat "$RESULTS/image_http.md"
