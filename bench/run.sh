#!/usr/bin/env bash
# bench/run.sh - run every bench/bench_*.sh and assemble BENCHMARKS.md.
# Each bench script writes one markdown section to $RESULTS/<name>.md with
# its figures as ratios against the reference it races in the same run.
# BENCH_FILTER=substr runs only the matching scripts (their old sections are kept).
set -u
cd "$(dirname "$0")/.."
export B=${B:-build} BIN=${BIN:-bin} RESULTS="$PWD/bench/results"
export TRIPLETD="$PWD/$BIN/tripletd" TRIPLETCTL="$PWD/$BIN/tripletctl"
mkdir -p "$RESULTS"
rc=0
for s in bench/bench_*.sh; do
    name=$(basename "$s" .sh)
    [[ -n ${BENCH_FILTER:-} && $name != *"$BENCH_FILTER"* ]] && continue
    echo "== $name"
    if ! bash "$s"; then echo "bench $name failed"; rc=1; fi
done
{
    echo "# Benchmarks"
    echo
    echo "Produced by \`make bench\` (bench/run.sh). Every figure is measured in the same"
    echo "run as its reference and reported as a ratio to it."
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
    echo "$(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), $(date -u +%Y-%m-%d)."
    echo
    for f in "$RESULTS"/*.md; do [[ -f $f ]] && { cat "$f"; echo; }; done
} > BENCHMARKS.md
echo "wrote BENCHMARKS.md"
exit $rc
