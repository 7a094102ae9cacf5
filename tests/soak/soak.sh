#!/usr/bin/env bash
# tests/soak/soak.sh - `make soak`: tripletd with the shipped model and a
# Fashion-MNIST gallery (with images) under SOAK_SECONDS (default 600) of mixed
# traffic on every route, after SOAK_WARMUP (660) seconds of the same traffic
# (GET /v1/stats keeps 600 one-second slots, about 5 MB, whose pages are first
# touched as those seconds pass: RSS rises for 10 minutes of traffic, then holds),
# from SOAK_CONNECTIONS (64) keep-alive connections,
# ~1% hostile requests, SIGHUP every 30 s, RSS/fds/threads sampled every
# second (tests/soak/soak.py). CSV, SVG and log in SOAK_OUT (build/soak/).
# Then two phases on fresh instances: twice the sustainable load, where the
# excess must get a quick 429 with Retry-After (tests/soak/overload.py), and
# SOAK_IDLE (5000) idle connections: RSS per connection, an ordinary client's
# latency meanwhile, the cut after --timeout (tests/soak/idle.py).
# Not part of `make test` (it takes minutes and loads the machine): this file
# is not executable, so tests/run.sh does not pick it up; run it with bash.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TRIPLETD=${TRIPLETD:-$ROOT/bin/tripletd}
TRIPLETCTL=${TRIPLETCTL:-$ROOT/bin/tripletctl}
MODEL=${SOAK_MODEL:-$ROOT/models/fashion-mnist.safetensors}
OUT=${SOAK_OUT:-$ROOT/build/soak}
N_GALLERY=1000
MAX_BODY=1048576
mkdir -p "$OUT"
tmp=$(mktemp -d)
pid=
trap '[[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

if [[ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
    echo "SKIP no Fashion-MNIST (Debian package dataset-fashion-mnist)"; exit 77
fi
"$TRIPLETCTL" index --model "$MODEL" --limit "$N_GALLERY" --keep-images --out "$tmp/g.safetensors" --quiet
"$TRIPLETD" --model "$MODEL" --gallery "$tmp/g.safetensors" --host 127.0.0.1 --port 0 \
    --port-file "$tmp/port" --log-format off --threads "${SOAK_THREADS:-2}" --max-body "$MAX_BODY" \
    >"$OUT/tripletd.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [[ -s $tmp/port ]] && break; sleep 0.05; done
[[ -s $tmp/port ]] || { echo "FAIL tripletd did not start"; cat "$OUT/tripletd.log"; exit 1; }
# Image inputs only for a model with image metadata; bad images are sent either way.
good=0
grep -q '^."image":.{' <("$TRIPLETCTL" inspect --json "$MODEL" 2>/dev/null) && good=1
echo "soak: tripletd pid $pid on port $(cat "$tmp/port"), ${SOAK_WARMUP:-660} s warm-up + ${SOAK_SECONDS:-600} s; CSV/SVG in $OUT"
rc=0
python3 "$ROOT/tests/soak/soak.py" --url "http://127.0.0.1:$(cat "$tmp/port")" --pid "$pid" \
    --seconds "$((${SOAK_WARMUP:-660} + ${SOAK_SECONDS:-600}))" --warmup "${SOAK_WARMUP:-660}" --connections "${SOAK_CONNECTIONS:-64}" --out "$OUT" \
    --max-body "$MAX_BODY" --n-gallery "$N_GALLERY" --images "$ROOT/tests/data/images" --good-images "$good" | tee "$OUT/summary.txt" || rc=1
kill -0 "$pid" 2>/dev/null || { echo "FAIL tripletd is gone"; rc=1; }
kill "$pid"
wait "$pid" 2>/dev/null || true

# start_phase ARGS...: a fresh tripletd on the shipped model; sets $pid, $url
start_phase() {
    rm -f "$tmp/port"
    "$TRIPLETD" --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$tmp/port" --log-format off "$@" \
        >>"$OUT/tripletd.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do [[ -s $tmp/port ]] && break; sleep 0.05; done
    [[ -s $tmp/port ]] || { echo "FAIL tripletd did not start"; exit 1; }
    url=http://127.0.0.1:$(cat "$tmp/port")
}
# More HTTP threads than --max-concurrent: requests beyond it reach tripletd and are refused, instead of
# waiting unseen in the kernel's socket queues behind busy threads.
start_phase --threads 8 --max-concurrent "${SOAK_MAX_CONCURRENT:-4}" --max-body "$MAX_BODY"
python3 "$ROOT/tests/soak/overload.py" --url "$url" --pid "$pid" --max-concurrent "${SOAK_MAX_CONCURRENT:-4}" \
    --seconds "${SOAK_OVERLOAD_SECONDS:-30}" | tee -a "$OUT/summary.txt" || rc=1
kill "$pid"
wait "$pid" 2>/dev/null || true
IDLE_TIMEOUT=30
start_phase --threads "${SOAK_THREADS:-2}" --timeout "$IDLE_TIMEOUT"
python3 "$ROOT/tests/soak/idle.py" --url "$url" --pid "$pid" --timeout "$IDLE_TIMEOUT" \
    --connections "${SOAK_IDLE:-5000}" | tee -a "$OUT/summary.txt" || rc=1
exit $rc
