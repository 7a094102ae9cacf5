#!/usr/bin/env bash
# tests/run.sh - run every test suite against the built binaries; prints
# one line per suite and a closing "N passed, N failed, N skipped" line.
# A suite that exits 77 could not run here: SKIP. With REQUIRE_ALL=1 (set
# by `make test`, and whenever CI=true) a SKIP counts as a failure: every
# suite must be runnable after `make deps`. No suite run is a failure too.
# A suite that passed with parts skipped (tests/lib.sh's skip_part, cmocka's
# skip()) says how many on its PASS line.
# Env: B (build dir), BIN (binary dir), SANITIZE (0/1), TEST_FILTER (substring),
# REQUIRE_ALL (0/1).
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
BIN=${BIN:-bin}
REQUIRE_ALL=${REQUIRE_ALL:-0}
[[ ${CI:-} == true ]] && REQUIRE_ALL=1
export TRIPLETD="$PWD/$BIN/tripletd" TRIPLETCTL="$PWD/$BIN/tripletctl" SANITIZE=${SANITIZE:-0} REQUIRE_ALL
export TRIPLET_ROOT="$PWD"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
logdir="$B/test-logs"
mkdir -p "$logdir"
pass=0 fail=0 skip=0 failed=() skipped=()

run_suite() { # name, command...
    local name=$1; shift
    [[ -n ${TEST_FILTER:-} && $name != *"$TEST_FILTER"* ]] && return
    local t0=$SECONDS log="$logdir/${name//\//_}.log" rc=0
    timeout 600 "$@" >"$log" 2>&1 || rc=$?
    if ((rc == 77 && REQUIRE_ALL != 1)); then
        skip=$((skip + 1)); skipped+=("$name")
        local why
        why=$(grep -m1 '^SKIP' "$log" | cut -c6- | head -c 120)
        printf 'SKIP %-40s %3ds (%s)\n' "$name" $((SECONDS - t0)) "${why:-exit 77, see $log}"
    elif ((rc == 0)); then
        local parts note=
        # parts skipped: tests/lib.sh's skip_part lines and cmocka's skipped tests
        parts=$( (grep '^skipped: ' "$log"; grep -E '^\[  SKIPPED \] [A-Za-z_]' "$log" | sort -u) | wc -l)
        ((parts)) && note=" ($parts parts skipped: see the log)"
        pass=$((pass + 1)); printf 'PASS %-40s %3ds%s\n' "$name" $((SECONDS - t0)) "$note"
    else
        fail=$((fail + 1)); failed+=("$name")
        ((rc == 77)) && echo "suite skipped (exit 77), and REQUIRE_ALL=1 requires it to run" >>"$log"
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
if ((pass + fail + skip == 0)); then
    fail=1; failed+=("(no suite ran${TEST_FILTER:+: TEST_FILTER=$TEST_FILTER matched nothing})")
fi
if ((skip)); then echo "skipped: ${skipped[*]}"; fi
if ((fail)); then echo "failed: ${failed[*]}"; fi
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
