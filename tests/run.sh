#!/usr/bin/env bash
# tests/run.sh - run every test suite against the built binaries; prints
# one line per suite and a closing "N passed, N failed" line.
# Env: B (build dir), BIN (binary dir), SANITIZE (0/1), TEST_FILTER (substring).
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
BIN=${BIN:-bin}
export TRIPLETD="$PWD/$BIN/tripletd" TRIPLETCTL="$PWD/$BIN/tripletctl" SANITIZE=${SANITIZE:-0}
export TRIPLET_ROOT="$PWD"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logdir="$B/test-logs"
mkdir -p "$logdir"
pass=0 fail=0 failed=()

run_suite() { # name, command...
    local name=$1; shift
    [[ -n ${TEST_FILTER:-} && $name != *"$TEST_FILTER"* ]] && return
    local t0=$SECONDS log="$logdir/${name//\//_}.log"
    if timeout 600 "$@" >"$log" 2>&1; then
        pass=$((pass + 1)); printf 'PASS %-40s %3ds\n' "$name" $((SECONDS - t0))
    else
        fail=$((fail + 1)); failed+=("$name")
        printf 'FAIL %-40s %3ds (log: %s)\n' "$name" $((SECONDS - t0)) "$log"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
}

for t in "$B"/tests/unit/test_*; do
    [[ -x $t && $t != *.o && $t != *.d ]] && run_suite "unit/${t##*/}" "$t"
done
for t in "$B"/tests/e2e/e2e_*; do
    [[ -x $t && $t != *.o && $t != *.d ]] && run_suite "e2e/${t##*/}" "$t"
done
# Script suites: tests/<area>/*.sh (cli, lb, ...), each self-contained.
for t in tests/*/*.sh; do
    [[ -x $t ]] && run_suite "${t#tests/}" "$t"
done

echo
if ((fail)); then echo "failed: ${failed[*]}"; fi
echo "$pass passed, $fail failed"
((fail == 0))
