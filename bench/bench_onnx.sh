#!/usr/bin/env bash
# bench_onnx.sh - ONNX graph forward throughput (images/s), one thread each: libtriplet onx_forward
# against ONNX Runtime (npm onnxruntime-node, CPU) and PyTorch (Debian python3-torch,
# torch.inference_mode) on the same files: the Fashion-MNIST CNN (conv 32 and 64 3x3 + BatchNorm +
# ReLU + max-pool, FC 256, 128-d; 4.7M multiply-adds) at batch 1 and 256, torchvision resnet18
# (224x224, 1.8G multiply-adds) and mobilenet_v2 (224x224, 0.3G, depthwise) at batch 1 and 8;
# random weights, the .onnx file is torch.onnx.export of the PyTorch module. PyTorch runs with the
# tuned glibc malloc thresholds (about twice as fast here). ONNX Runtime is installed into
# bench/node_modules with npm ci --ignore-scripts (its install script would fetch a GPU build).
# Writes $RESULTS/onnx.md. Env: ROUNDS (default 3) rounds, the contenders alternating; in each,
# the best of REPS (default 3) runs of at least MIN_S (0.3) s; the median round is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
B=${B:-build}
REPS=${REPS:-3}
MIN_S=${MIN_S:-0.3}
ROUNDS=${ROUNDS:-3}
PY=/usr/bin/python3
$PY -c 'import torch, torchvision' 2>/dev/null || { echo "bench_onnx: needs python3-torch and python3-torchvision"; exit 1; }
if [[ ! -f bench/node_modules/onnxruntime-node/package.json ]]; then
    (cd bench && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || { echo "bench_onnx: npm ci failed"; exit 1; }
fi
mkdir -p "$RESULTS"
BENCH_NAME=bench_onnx
. bench/lib.sh # the working folder is the repository root (cd above)
bench_cc onnx_forward
$PY bench/onnx_torch.py make "$work" 2>/dev/null
TUNED="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
declare -A ours torch ort ours_c torch_c ort_c
keep() { local -n arr=$1 arc=${1}_c; arr[$2]="${arr[$2]:-} $3"; arc[$2]="${arc[$2]:-} $4"; } # every round's figures
NETS="cnn resnet18 mobilenet_v2"
declare -A SHAPE=([cnn]=1,28,28 [resnet18]=3,224,224 [mobilenet_v2]=3,224,224)
declare -A BATCHES=([cnn]="1 256" [resnet18]="1 8" [mobilenet_v2]="1 8")
declare -A LABEL=([cnn]="Fashion CNN 28x28" [resnet18]="resnet18 224x224" [mobilenet_v2]="mobilenet_v2 224x224")
load0=$(cut -d' ' -f1 /proc/loadavg)
# Rounds alternate the three contenders, so load changes on a shared machine hit all alike.
for round in $(seq "$ROUNDS"); do
    for m in $NETS; do
        while read -r b v c; do keep ours "$m,$b" "$v" "$c"; done < <(OPENBLAS_NUM_THREADS=1 \
            "$B/bench/onnx_forward" "$work/$m.onnx" "$MIN_S" "$REPS" ${BATCHES[$m]})
        while read -r b v c; do keep ort "$m,$b" "$v" "$c"; done < <(node bench/onnx_ort.js "$work/$m.onnx" "${SHAPE[$m]}" \
            "$MIN_S" "$REPS" ${BATCHES[$m]})
        while read -r b v c; do keep torch "$m,$b" "$v" "$c"; done < <(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $TUNED \
            $PY bench/onnx_torch.py time "$work" "$m" "$MIN_S" "$REPS" ${BATCHES[$m]})
    done
    echo "round $round done"
done
med() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
num() { awk -v a="$1" 'BEGIN { if (a >= 100) printf "%.0f", a; else printf "%.1f", a }'; }
{
    echo "## ONNX forward (onx_forward vs ONNX Runtime and PyTorch)"
    echo
    echo "Images/s on one thread each: the median of $ROUNDS rounds (the contenders alternate), each the"
    echo "best of $REPS timed runs of at least ${MIN_S} s; per second of wall time and, least disturbed by the"
    echo "other load on this shared machine, per second of the process's CPU time (user + system, all"
    echo "threads). Ours: \`onx_forward\` on the \`torch.onnx.export\`"
    echo "file (opset 17; BatchNorm folded into the convs, activations fused; convolutions on our own"
    if grep -qw avx512f /proc/cpuinfo; then
        echo "SGEMM with weights packed at load, AVX-512 8x32 register tiles on this CPU (16 rows by up to 28"
        echo "columns for a block's narrow last columns), over phase planes or shifted row copies of the padded"
        echo "input instead of im2col, bias and activation applied in the tile; 3x3 stride-1 convs with 32+"
        echo "output tiles by Winograd F(2x2, 3x3), those with 64+ channels and 32+ 4x4 tiles by F(4x4, 3x3),"
        echo "on that SGEMM; the other convs with outputs of 16 to 1024 pixels (7x7 to 32x32)"
        echo "by output channels instead: 32 channels of weights as two vectors, two rows of up to 7 pixels broadcast,"
        echo "every tile whole, and for runs of 4+ samples the 3x3 ones on 7x7 by F(2x2, 3x3) with each plane's 16 tiles"
        echo "in one vector; a residual Add fused into the conv before it; depthwise convs direct, 16 channels a vector"
        echo "on outputs up to 14x14; Gemm at up to 16 rows as AVX-512 dot products over the weight rows,"
        echo "OpenBLAS above; a memory plan per batch size class; the graph cut into segments that run their own"
    else
        echo "SGEMM with weights packed at load, AVX2 6x16 register tiles on this CPU (no AVX-512), over phase"
        echo "planes or shifted row copies of the padded input instead of im2col, bias and activation applied in"
        echo "the tile; 3x3 stride-1 convs with 16+ output tiles by Winograd F(2x2, 3x3), those with 32+ channels"
        echo "and 32+ 4x4 tiles, or 128+ channels and 16+ 4x4 tiles a run (14x14; 7x7 in runs of 4+ samples), by"
        echo "F(4x4, 3x3), on that SGEMM; a residual Add fused into the conv before it; depthwise convs direct,"
        echo "8 channels a vector on outputs up to 14x14; Gemm at up to 8 rows as AVX2 dot products over the"
        echo "weight rows, OpenBLAS above; a memory plan per batch size class; the graph cut into segments that run their own"
    fi
    echo "number of rows at a time, the weight-heavy late layers more than the first). ONNX Runtime"
    echo "$(node -p 'require("./bench/node_modules/onnxruntime-node/package.json").version') (npm onnxruntime-node, CPU, \`intraOpNumThreads: 1\`) on the same file."
    echo "PyTorch $($PY -c 'import torch; print(torch.__version__)') (oneDNN convolutions) on the same module and weights under"
    echo "\`torch.inference_mode()\`, with \`$TUNED\`."
    echo
    echo "| model | batch | ours images/s | ONNX Runtime | PyTorch | ours / ORT | ours / PyTorch | ours images/CPU-s | ORT | PyTorch | ours / ORT, CPU time | ours / PyTorch, CPU time |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for m in $NETS; do
        for b in ${BATCHES[$m]}; do
            o=$(med "${ours[$m,$b]}") r=$(med "${ort[$m,$b]}") t=$(med "${torch[$m,$b]}")
            oc=$(med "${ours_c[$m,$b]}") rc=$(med "${ort_c[$m,$b]}") tc=$(med "${torch_c[$m,$b]}")
            echo "| ${LABEL[$m]} | $b | $(num "$o") | $(num "$r") | $(num "$t") | $(ratio "$o" "$r")x | $(ratio "$o" "$t")x |" \
                "$(num "$oc") | $(num "$rc") | $(num "$tc") | **$(ratio "$oc" "$rc")x** | **$(ratio "$oc" "$tc")x** |"
        done
    done
    echo
    echo "Goals (the issue): >= 1.0x ONNX Runtime on the Fashion CNN at batch 1, >= 0.8x on resnet18, >= 2x"
    echo "PyTorch on every row. Every round's images per CPU-second (ours; ONNX Runtime; PyTorch):"
    for m in $NETS; do
        for b in ${BATCHES[$m]}; do
            echo "- ${LABEL[$m]}, batch $b: $(sed 's/^ //; s/ /, /g' <<<"${ours_c[$m,$b]}"); $(sed 's/^ //; s/ /, /g' <<<"${ort_c[$m,$b]}"); $(sed 's/^ //; s/ /, /g' <<<"${torch_c[$m,$b]}")"
        done
    done
    echo
    echo "1-minute load average: $load0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end (2 cores, shared)."
    echo
    echo "Command: \`ROUNDS=$ROUNDS REPS=$REPS MIN_S=$MIN_S bench/bench_onnx.sh\` (or \`make bench\`)."
} >"$RESULTS/onnx.md"
echo "wrote $RESULTS/onnx.md"
