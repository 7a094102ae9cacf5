#!/usr/bin/env bash
# bench_forward.sh - MLP forward throughput (vectors/s): libtriplet mdl_forward (OpenBLAS sgemv
# for one row, sgemm for batches) against PyTorch (Debian python3-torch, torch.inference_mode)
# on the same 784->256->64 ReLU model file, batches 1/32/256/4096, 1 and 2 threads, same run.
# PyTorch runs twice: with a tuned environment, about twice as fast here (glibc malloc thresholds, and
# OMP_WAIT_POLICY=PASSIVE at 2 threads) - the reference for the ratios - and with defaults.
# Both sides get the same thread count for OpenMP and OpenBLAS. Writes $RESULTS/forward.md.
# Env: ROUNDS (default 4) x REPS (default 3) timed runs of at least MIN_S (default 0.1) seconds;
# the best is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
B=${B:-build}
REPS=${REPS:-3}
MIN_S=${MIN_S:-0.1}
ROUNDS=${ROUNDS:-4}
BATCHES="1 32 256 4096"
PY=/usr/bin/python3 # Debian's torch lives only there
$PY -c 'import torch' 2>/dev/null || { echo "bench_forward: needs python3-torch (make bench-deps)"; exit 1; }
mkdir -p "$RESULTS"
BENCH_NAME=bench_forward
. bench/lib.sh # the working folder is the repository root (cd above)

bench_cc forward
$PY bench/forward_torch.py make "$work/mlp.safetensors"

load0=$(cut -d' ' -f1 /proc/loadavg)
TUNED="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
declare -A ours tuned dflt workers
keep() { # array-name key value: keep the maximum
    local -n arr=$1
    if [[ -z ${arr[$2]:-} ]] || awk -v a="$3" -v b="${arr[$2]}" 'BEGIN { exit !(a > b) }'; then arr[$2]=$3; fi
}
# ROUNDS rounds, each running ours, PyTorch tuned and PyTorch default in turn, best kept:
# load changes on a shared machine then hit all three alike.
for round in $(seq "$ROUNDS"); do
    for t in 1 2; do
        wait_policy=""
        [[ $t == 2 ]] && wait_policy="OMP_WAIT_POLICY=PASSIVE"
        while read -r b v; do keep ours "$t,$b" "$v"; done < <(OPENBLAS_NUM_THREADS=$t \
            "$B/bench/forward" "$work/mlp.safetensors" "$t" "$MIN_S" "$REPS" $BATCHES)
        if [[ $t == 2 ]]; then # two callers at once, one OpenBLAS thread each, as tripletd's handlers run
            while read -r b v; do keep workers "$t,$b" "$v"; done < <(OPENBLAS_NUM_THREADS=1 \
                "$B/bench/forward" "$work/mlp.safetensors" "$t" "$MIN_S" "$REPS" --workers $BATCHES)
        fi
        while read -r b v; do keep tuned "$t,$b" "$v"; done < <(env OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t $TUNED \
            $wait_policy $PY bench/forward_torch.py time "$work/mlp.safetensors" "$t" "$MIN_S" "$REPS" $BATCHES)
        while read -r b v; do keep dflt "$t,$b" "$v"; done < <(env OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
            $PY bench/forward_torch.py time "$work/mlp.safetensors" "$t" "$MIN_S" "$REPS" $BATCHES)
    done
    echo "round $round done"
done
for t in 1 2; do
    for b in $BATCHES; do echo "threads=$t batch=$b: ours ${ours[$t,$b]} vec/s, torch tuned ${tuned[$t,$b]}, default ${dflt[$t,$b]}"; done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
num() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }
{
    echo "## MLP forward (mdl_forward vs PyTorch)"
    echo
    echo "Vectors/s through a 784->256->64 ReLU MLP (F32, no normalisation), best of $ROUNDS rounds x $REPS"
    echo "timed runs of at least ${MIN_S} s each (the three contenders alternate round by round), same model file and the same number of OpenBLAS/OpenMP"
    echo "threads on both sides. Ours: \`mdl_forward\` (cblas_sgemv at batch 1, cblas_sgemm"
    echo "otherwise, reused scratch). PyTorch $($PY -c 'import torch; print(torch.__version__)'):"
    echo "\`nn.Sequential\` under \`torch.inference_mode()\`, \`torch.set_num_threads\`; ratios are"
    echo "against its tuned environment (\`$TUNED\`, plus \`OMP_WAIT_POLICY=PASSIVE\` at 2 threads);"
    echo "its default environment is shown too."
    echo
    echo "| batch | threads | ours vec/s | PyTorch tuned | PyTorch default | ours / tuned | ours / default | ours, 2 callers x 1 BLAS thread |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in 1 2; do
        for b in $BATCHES; do
            w="-"
            [[ $t == 2 ]] && w="$(num "${workers[$t,$b]}") ($(ratio "${workers[$t,$b]}" "${tuned[$t,$b]}")x)"
            echo "| $b | $t | $(num "${ours[$t,$b]}") | $(num "${tuned[$t,$b]}") | $(num "${dflt[$t,$b]}") |" \
                "**$(ratio "${ours[$t,$b]}" "${tuned[$t,$b]}")x** | $(ratio "${ours[$t,$b]}" "${dflt[$t,$b]}")x | $w |"
        done
    done
    echo
    echo "Goals: >= 1.5x at batch 1 (1 thread: $(ratio "${ours[1,1]}" "${tuned[1,1]}")x, 2 threads:" \
        "$(ratio "${ours[2,1]}" "${tuned[2,1]}")x) and >= 1.0x at batch 4096 (1 thread:" \
        "$(ratio "${ours[1,4096]}" "${tuned[1,4096]}")x, 2 threads: $(ratio "${ours[2,4096]}" "${tuned[2,4096]}")x)."
    echo "Both sides call the same OpenBLAS (Debian 0.3.21) for the matrix products, so large"
    echo "batches are expected near 1.0x; at batch 1 PyTorch pays its per-call dispatch overhead."
    echo "At 2 threads OpenBLAS splits our batch-1 sgemv (256x784) over both cores (best case"
    echo "5.5 us vs 8.5 us on one core here), while PyTorch's 1-row GEMM stays under OpenBLAS's"
    echo "threading threshold and runs on one core; when other processes keep the cores busy, a"
    echo "threaded call waits for its second thread, so 2-thread figures at small batches swing"
    echo "with machine load. The last column uses the two cores the way tripletd does: two callers"
    echo "at once (one per request handler), each with one OpenBLAS thread and its own scratch."
    echo "1-minute load average: $load0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end of the run (2 cores)."
    echo
    echo "Command: \`ROUNDS=$ROUNDS REPS=$REPS MIN_S=$MIN_S bench/bench_forward.sh\` (or \`make bench\`)."
} >"$RESULTS/forward.md"
echo "wrote $RESULTS/forward.md"
