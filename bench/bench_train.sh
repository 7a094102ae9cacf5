#!/usr/bin/env bash
# bench/bench_train.sh - training time per epoch of the shipped recipe:
# `tripletctl train` vs bench/train_torch.py (PyTorch) at the same threads,
# measured in the same run; writes $RESULTS/train.md.
# Env: TRIPLETCTL, RESULTS (set by bench/run.sh), BENCH_TRAIN_EPOCHS (3),
# BENCH_TRAIN_THREADS ("1 2").
set -eu
cd "$(dirname "$0")/.."
TRIPLETCTL=${TRIPLETCTL:-$PWD/bin/tripletctl}
RESULTS=${RESULTS:-$PWD/bench/results}
EPOCHS=${BENCH_TRAIN_EPOCHS:-3}
THREADS=${BENCH_TRAIN_THREADS:-"1 2"}
PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3 # Debian's python3-torch lives there
mkdir -p "$RESULTS"
BENCH_NAME=bench_train
. bench/lib.sh # the working folder is the repository root (cd above)

# The shipped recipe (Makefile TRAIN_FLAGS), timed over $EPOCHS epochs.
RECIPE=(--arch 784-256-128 --activation relu --normalize --metric sqeuclidean --margin 0.2 --loss triplet
        --mining semi-hard --classes-per-batch 10 --samples-per-class 16 --lr 1e-3)
TORCH_RECIPE=(--arch 784-256-128 --mining semi-hard --loss triplet --margin 0.2 --lr 1e-3
              --classes-per-batch 10 --samples-per-class 16)

# The machine is shared: both sides report their fastest epoch of $EPOCHS,
# which is the least disturbed by other load.
# (our per-epoch CSV times the training steps only, no evaluation)
ours_epoch() { # threads
    "$TRIPLETCTL" train --out "$work/m.safetensors" --csv "$work/t.csv" --epochs "$EPOCHS" --threads "$1" --quiet "${RECIPE[@]}" >&2
    fastest_epoch "$work/t.csv"
}
torch_epoch() { # threads, tuned (1/0)
    local out="$work/torch.json"
    if [[ $2 == 1 ]]; then
        MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_WAIT_POLICY=PASSIVE \
            $PY bench/train_torch.py --epochs "$EPOCHS" --threads "$1" --no-eval --json "${TORCH_RECIPE[@]}" >"$out"
    else # one epoch: at 2 threads the untuned run spins for minutes per epoch
        $PY bench/train_torch.py --epochs 1 --threads "$1" --no-eval --json "${TORCH_RECIPE[@]}" >"$out"
    fi
    fastest_epoch "$out"
}

rows=""
load=$(cut -d' ' -f1-3 /proc/loadavg)
for t in $THREADS; do
    echo "threads $t: tripletctl train" >&2
    ours=$(ours_epoch "$t")
    echo "threads $t: train_torch.py (tuned allocator)" >&2
    tuned=$(torch_epoch "$t" 1)
    echo "threads $t: train_torch.py (default)" >&2
    plain=$(torch_epoch "$t" 0)
    ratio=$(awk -v a="$tuned" -v b="$ours" 'BEGIN { printf "%.1f", a / b }')
    ratio0=$(awk -v a="$plain" -v b="$ours" 'BEGIN { printf "%.1f", a / b }')
    rows+="| $t | $ours | $tuned | $plain | **${ratio}x** | ${ratio0}x |"$'\n'
    echo "threads $t: ours $ours s/epoch, torch $tuned (tuned) / $plain (default) -> ${ratio}x" >&2
done

md_section "$RESULTS/train.md" "Training (shipped recipe, Fashion-MNIST)" \
    "Seconds per epoch (375 PK batches of 10 classes x 16, MLP 784-256-128, semi-hard
triplet mining, Adam): the fastest of $EPOCHS epochs on each side (the machine is shared;
load average at the start: $load), evaluation excluded on both sides.
PyTorch $($PY -c 'import torch; print(torch.__version__)') runs bench/train_torch.py (vectorised mining) with
\`MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_WAIT_POLICY=PASSIVE\`
(tuned, the reference for the ratio) and without (default; one epoch only). Goal: >= 2x faster." \
    "threads | tripletctl train s/epoch | PyTorch tuned s/epoch | PyTorch default s/epoch | speed-up vs tuned | vs default" \
    "$rows" \
    "tripletctl train --out M --csv T --epochs $EPOCHS --threads T ${RECIPE[*]}" \
    "bench/train_torch.py --epochs $EPOCHS --threads T --no-eval --json ${TORCH_RECIPE[*]}"
