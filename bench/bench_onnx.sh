#!/usr/bin/env bash
# bench_onnx.sh - ONNX graph forward throughput (images/s): libtriplet onx_forward against PyTorch
# (Debian python3-torch, torch.inference_mode) on the Fashion-MNIST CNN (conv 32 and 64 3x3 +
# BatchNorm + ReLU + max-pool, FC 256, 128-d; 4.7M multiply-adds), the same weights (the .onnx
# file is torch.onnx.export of the PyTorch module), batches 1 and 256, one thread, same run.
# PyTorch runs with the tuned glibc malloc thresholds (about twice as fast here). Writes
# $RESULTS/onnx.md. Env: ROUNDS (default 3) x REPS (default 3) runs of at least MIN_S (0.2) s.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
B=${B:-build}
REPS=${REPS:-3}
MIN_S=${MIN_S:-0.2}
ROUNDS=${ROUNDS:-3}
BATCHES="1 256"
PY=/usr/bin/python3
$PY -c 'import torch' 2>/dev/null || { echo "bench_onnx: needs python3-torch (make bench-deps)"; exit 1; }
mkdir -p "$RESULTS" "$B/bench"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
LIBA=lib/libtriplet.a
[[ $B == build-san ]] && LIBA=build-san/libtriplet.a
cc -std=c11 -D_GNU_SOURCE -O2 -Ilib $(pkg-config --cflags openblas 2>/dev/null) bench/onnx_forward.c "$LIBA" \
    -o "$B/bench/onnx_forward" $(pkg-config --libs-only-L openblas 2>/dev/null) -lcjson -lopenblas -lprotobuf-c \
    -lcrypto -lz -lm -lpthread
$PY bench/onnx_torch.py make "$work" 2>/dev/null
TUNED="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
declare -A ours torch
keep() { local -n arr=$1; if [[ -z ${arr[$2]:-} ]] || awk -v a="$3" -v b="${arr[$2]}" 'BEGIN { exit !(a > b) }'; then arr[$2]=$3; fi; }
load0=$(cut -d' ' -f1 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
    while read -r b v; do keep ours "$b" "$v"; done < <(OPENBLAS_NUM_THREADS=1 \
        "$B/bench/onnx_forward" "$work/cnn.onnx" "$MIN_S" "$REPS" $BATCHES)
    while read -r b v; do keep torch "$b" "$v"; done < <(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $TUNED \
        $PY bench/onnx_torch.py time "$work" "$MIN_S" "$REPS" $BATCHES)
    echo "round $round done"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
num() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }
us() { awk -v a="$1" 'BEGIN { printf "%.0f", 1e6 / a }'; }
{
    echo "## ONNX forward: Fashion-MNIST CNN (onx_forward vs PyTorch)"
    echo
    echo "Images/s through the Fashion-MNIST CNN (conv 32 and 64 3x3 + BatchNorm + ReLU + 2x2 max-pool,"
    echo "FC 256, 128-d output; 4.7M multiply-adds per image), one thread each, best of $ROUNDS rounds x"
    echo "$REPS timed runs of at least ${MIN_S} s. Ours: \`onx_forward\` on the \`torch.onnx.export\` file"
    echo "(opset 17; BatchNorm folded into the convs, ReLU fused, im2col + OpenBLAS SGEMM). PyTorch"
    echo "$($PY -c 'import torch; print(torch.__version__)') (oneDNN convolutions): the same module and weights under"
    echo "\`torch.inference_mode()\`, with \`$TUNED\`."
    echo
    echo "| batch | ours images/s | ours us/image | PyTorch images/s | ours / PyTorch |"
    echo "|---:|---:|---:|---:|---:|"
    for b in $BATCHES; do
        echo "| $b | $(num "${ours[$b]}") | $(us "${ours[$b]}") | $(num "${torch[$b]}") | **$(ratio "${ours[$b]}" "${torch[$b]}")x** |"
    done
    echo
    echo "1-minute load average: $load0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end (2 cores)."
    echo "Command: \`ROUNDS=$ROUNDS REPS=$REPS MIN_S=$MIN_S bench/bench_onnx.sh\` (or \`make bench\`)."
} >"$RESULTS/onnx.md"
echo "wrote $RESULTS/onnx.md"
