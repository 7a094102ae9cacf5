#!/usr/bin/env bash
# bench_knn.sh - exact kNN queries/s (libtriplet knn_search) against faiss
# IndexFlatL2/IndexFlatIP and numpy brute force, same data, same run.
# 1,000 queries, k = 10, galleries of 10,000 and 60,000 vectors of dim 128
# (the shipped model's Fashion-MNIST embeddings when available), 1 and 2
# threads. Writes $RESULTS/knn.md. Env: REPS (default 5), ROUNDS (2), MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
B=${B:-build}
MODEL=${MODEL:-models/fashion-mnist.safetensors}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-2}
TRIPLETCTL=${TRIPLETCTL:-$PWD/bin/tripletctl}
mkdir -p "$RESULTS"

# Debian's python3 has numpy and faiss (make bench-deps); a PATH python may not.
PY=python3
if ! $PY -c 'import numpy, faiss' 2>/dev/null; then PY=/usr/bin/python3; fi
$PY -c 'import numpy, faiss' || { echo "bench_knn: needs python3-numpy and python3-faiss (make bench-deps)"; exit 1; }

BENCH_NAME=bench_knn
. bench/lib.sh # the working folder is the repository root (cd above)

bench_cc knn_bench

# Data: the shipped model's embeddings of Fashion-MNIST (train = gallery,
# test = queries) when tripletctl index, the model and the data are there.
if [[ -x $TRIPLETCTL && -f $MODEL ]] &&
    "$TRIPLETCTL" index --quiet --model "$MODEL" --out "$work/train.safetensors" 2>/dev/null &&
    "$TRIPLETCTL" index --quiet --model "$MODEL" --split test --limit 1000 --out "$work/test.safetensors" 2>/dev/null; then
    $PY bench/knn_ref.py prep "$work" "$work/train.safetensors" "$work/test.safetensors"
else
    $PY bench/knn_ref.py prep "$work"
fi

ours() { # ng metric threads [int8_pass]
    KNN_INT8=${4:-0} OPENBLAS_NUM_THREADS=1 "$B/bench/knn_bench" "$work/g$1.f32" "$work/q.f32" 128 10 "$3" "$2" "$REPS" | cut -d' ' -f1
}
ref() { # ng metric threads [extra env...]
    local ng=$1 m=$2 t=$3
    shift 3
    env OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$@" $PY bench/knn_ref.py time "$work" "$ng" "$m" "$REPS"
}
field() { $PY -c "import json,sys; print('%.0f' % json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
maxf() { $PY -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$1" "$2"; }
ratio() { $PY -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

rows=""
for ng in 10000 60000; do
    for t in 1 2; do
        for m in l2 ip; do
            metric=sqeuclidean
            [[ $m == ip ]] && metric=dot
            # ROUNDS interleaved rounds, best of each: the load of a shared
            # machine then hits every contender alike
            o=0 fl=0 f=0 fd=0 np_=0
            for ((r = 0; r < ROUNDS; r++)); do
                o=$(maxf "$o" "$(ours "$ng" "$metric" "$t")")
                fl=$(maxf "$fl" "$(ours "$ng" "$metric" "$t" -1)") # without the int8 pass
                tuned=$(ref "$ng" "$m" "$t" OMP_WAIT_POLICY=PASSIVE)
                dflt=$(ref "$ng" "$m" "$t")
                f=$(maxf "$f" "$(field "$tuned" faiss)")
                fd=$(maxf "$fd" "$(field "$dflt" faiss)")
                np_=$(maxf "$np_" "$(field "$tuned" numpy)")
            done
            fl=$(printf %.0f "$fl") o=$(printf %.0f "$o") f=$(printf %.0f "$f") fd=$(printf %.0f "$fd") np_=$(printf %.0f "$np_")
            name=IndexFlatL2
            [[ $m == ip ]] && name=IndexFlatIP
            rows+="| $ng | $t | $metric vs $name | $o | $fl | $f | $fd | $np_ | **$(ratio "$o" "$(maxf "$f" "$fd")")x** | $(ratio "$o" "$np_")x |"$'\n'
            echo "ng=$ng threads=$t $metric: ours $o q/s (float pass $fl), faiss $f (default env $fd), numpy $np_"
        done
    done
done

# exactness on the big gallery: our indices vs a float64 brute force and faiss
read -r _ fb_l2 i8_l2 < <("$B/bench/knn_bench" "$work/g60000.f32" "$work/q.f32" 128 10 1 sqeuclidean 1 "$work/l2.i64")
read -r _ fb_ip i8_ip < <("$B/bench/knn_bench" "$work/g60000.f32" "$work/q.f32" 128 10 1 dot 1 "$work/ip.i64")
read -r ex_l2 fa_l2 < <($PY bench/knn_ref.py check "$work" 60000 l2 10 "$work/l2.i64")
read -r ex_ip fa_ip < <($PY bench/knn_ref.py check "$work" 60000 ip 10 "$work/ip.i64")

{
    echo "## Exact kNN search (knn_search vs faiss and numpy)"
    echo
    echo "Queries/s for 1,000 queries, k = 10, dim 128; best of $ROUNDS interleaved rounds of"
    echo "$REPS runs each (the machine is shared: best-of is the least noisy estimate)."
    echo "Data: $(cat "$work/source.txt")."
    echo "Load average at the end of the run (2 cores, shared): $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Ours: \`knn_search\` (lib/knn.c, lib/knn_i8.c) with \`threads\` workers. An int8 first"
    echo "pass (AVX-512 VNNI) with a rigorous error bound rules out most rows; the survivors"
    echo "go through the float pass and the double rescoring, so the answer stays exact. The"
    echo "gallery is quantised and its norms computed per call, as faiss computes its norms."
    echo "\"float pass\": the same search without the int8 pass (OpenBLAS SGEMM at 1 thread"
    echo "inside each worker, the design before the int8 pass). faiss 1.7.3"
    echo "(Debian python3-faiss) with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = threads and"
    echo "OMP_WAIT_POLICY=PASSIVE (its faster setting here; \"faiss default\" is without"
    echo "it); \"vs faiss\" divides by the better of the two. numpy: float32 \`q @ g.T\` +"
    echo "argpartition + argsort on the same OpenBLAS."
    echo
    echo "| gallery | threads | metric | ours q/s | ours, float pass q/s | faiss q/s | faiss default q/s | numpy q/s | vs faiss | vs numpy |"
    echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s' "$rows"
    echo
    echo "Exactness (60,000 gallery): our top-10 equals a float64 brute force with ties to"
    echo "the smaller index for $ex_l2 queries (sqeuclidean) and $ex_ip (dot); faiss's float"
    echo "top-10 agrees with ours on $fa_l2 and $fa_ip. Queries the float pass could not certify"
    echo "(answered by the exact double scan, see proto/gallery-format.md): $fb_l2 and $fb_ip of 1000."
    echo "The int8 pass ran in these checks: $([[ $i8_l2 == 1 && $i8_ip == 1 ]] && echo yes || echo "no (this CPU lacks AVX-512 VNNI)")."
    echo
    echo "Command: \`make bench\` or \`BENCH_FILTER=knn bench/run.sh\` (REPS=$REPS ROUNDS=$ROUNDS)."
} > "$RESULTS/knn.md"
echo "wrote $RESULTS/knn.md"
