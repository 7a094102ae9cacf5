#!/usr/bin/env bash
# tests/fuzz/replay.sh - replay every seed corpus and regression input through
# the fuzz targets, built with gcc + ASan/UBSan and a plain main() (no
# libFuzzer needed); fails on any crash, leak, sanitizer report or invariant.
set -u -o pipefail
cd "$(dirname "$0")/../.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OPENBLAS_NUM_THREADS=1
mkdir -p build/fuzz
# one build at a time when several test runs share the tree
flock build/fuzz/.replay.lock make -s -j2 -C tests/fuzz replay-bin >/dev/null || { echo "replay.sh: build failed"; exit 1; }
fail=0 ran=0
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    [[ $t == fuzz_common ]] && continue
    dirs=()
    for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do [[ -d $d ]] && dirs+=("$d"); done
    if ((${#dirs[@]} == 0)); then echo "FAIL $t: no corpus"; fail=1; continue; fi
    if out=$(timeout 60 build/fuzz/replay/"$t" "${dirs[@]}" 2>&1); then
        echo "ok   ${out##*/}"; ran=$((ran + 1))
    else
        echo "FAIL $t"; echo "$out" | tail -n 40; fail=1
    fi
done
((ran + fail > 0)) || { echo "FAIL no fuzz target replayed"; fail=1; }
exit $fail
