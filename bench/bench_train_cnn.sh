#!/usr/bin/env bash
# bench/bench_train_cnn.sh - training time per epoch of the shipped CNN recipe
# (models/README.md, the Makefile's CNN_TRAIN_FLAGS): `tripletctl train` vs
# bench/train_cnn_torch.py (PyTorch, oneDNN convolutions) at the same threads,
# measured in the same run; writes $RESULTS/train_cnn.md.
# Env: TRIPLETCTL, RESULTS (set by bench/run.sh), BENCH_CNN_EPOCHS (2),
# BENCH_CNN_STEPS (188: half an epoch, timed and scaled to 375 steps),
# BENCH_CNN_ROUNDS (2: rounds of both sides in turn, each side's fastest epoch
# over all of them; the machine's speed drifts over minutes, and alternating
# shares the drift), BENCH_CNN_THREADS ("2"), BENCH_CNN_ARCH (default: the Makefile's CNN_ARCH, the
# shipped network).
set -eu
cd "$(dirname "$0")/.."
TRIPLETCTL=${TRIPLETCTL:-$PWD/bin/tripletctl}
RESULTS=${RESULTS:-$PWD/bench/results}
EPOCHS=${BENCH_CNN_EPOCHS:-2}
STEPS=${BENCH_CNN_STEPS:-188}
ROUNDS=${BENCH_CNN_ROUNDS:-2}
THREADS=${BENCH_CNN_THREADS:-"2"}
PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3 # Debian's python3-torch lives there
mkdir -p "$RESULTS"
BENCH_NAME=bench_train_cnn
. bench/lib.sh # the working folder is the repository root (cd above)

# The shipped recipe without its length and seed (Makefile CNN_TRAIN_FLAGS).
ARCH=${BENCH_CNN_ARCH:-$(sed -n 's/^CNN_ARCH *:= *//p' Makefile)}
[[ -n $ARCH ]] || { echo "bench_train_cnn: no CNN_ARCH in the Makefile" >&2; exit 1; }
RECIPE=(--arch "$ARCH" --input 1x28x28 --normalize --metric sqeuclidean --margin 0.2 --loss triplet
        --mining semi-hard --classes-per-batch 10 --samples-per-class 16 --lr 1e-3 --lr-schedule cosine)
TORCH_RECIPE=(--arch "$ARCH" --margin 0.2 --lr 1e-3 --lr-schedule cosine --classes-per-batch 10 --samples-per-class 16)

# The machine is shared: both sides report their fastest epoch of $EPOCHS,
# the least disturbed by other load.
ours_epoch() { # threads
    "$TRIPLETCTL" train --out "$work/m.onnx" --csv "$work/t.csv" --epochs "$EPOCHS" --steps-per-epoch "$STEPS" \
        --threads "$1" --quiet "${RECIPE[@]}" >&2
    fastest_epoch "$work/t.csv" "$STEPS"
}
torch_epoch() { # threads
    MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_WAIT_POLICY=PASSIVE \
        $PY bench/train_cnn_torch.py --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --threads "$1" --no-eval --json \
        "${TORCH_RECIPE[@]}" >"$work/torch.json"
    fastest_epoch "$work/torch.json" "$STEPS"
}

rows=""
load=$(cut -d' ' -f1-3 /proc/loadavg)
min2() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }
for t in $THREADS; do
    ours="" torch="" each=""
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "threads $t, round $r: tripletctl train (CNN)" >&2
        o=$(ours_epoch "$t")
        echo "threads $t, round $r: train_cnn_torch.py" >&2
        p=$(torch_epoch "$t")
        ours=$(min2 "$ours" "$o") torch=$(min2 "$torch" "$p") each+="${each:+; }$o / $p"
    done
    ratio=$(awk -v a="$torch" -v b="$ours" 'BEGIN { printf "%.2f", a / b }')
    rows+="| $t | $ours | $torch | **${ratio}x** | $each |"$'\n'
    echo "threads $t: ours $ours s/epoch, torch $torch -> ${ratio}x (rounds, ours / torch: $each)" >&2
done

md_section "$RESULTS/train_cnn.md" "Training the CNN (shipped CNN recipe, Fashion-MNIST)" \
    "Seconds per epoch (375 PK batches of 10 classes x 16; $ARCH on 1x28x28, L2-normalised,
semi-hard triplet mining, Adam with a cosine schedule; timed over $STEPS steps and scaled to 375):
the fastest of $EPOCHS epochs in each of $ROUNDS round(s) on each side, the sides alternating round by round
(the machine is shared; load average at the start: $load), evaluation excluded on both sides.
PyTorch $($PY -c 'import torch; print(torch.__version__)') (oneDNN convolutions) runs bench/train_cnn_torch.py with
\`MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 OMP_WAIT_POLICY=PASSIVE\`.
Goal: >= 1.5x faster." \
    "threads | tripletctl train s/epoch | PyTorch s/epoch | speed-up | each round, ours / PyTorch" \
    "$rows" \
    "tripletctl train --out M --csv T --epochs $EPOCHS --steps-per-epoch $STEPS --threads T ${RECIPE[*]}" \
    "bench/train_cnn_torch.py --epochs $EPOCHS --steps-per-epoch $STEPS --threads T --no-eval --json ${TORCH_RECIPE[*]}"
