# tests/lib.sh - shared by the script suites (sourced, not run):
# binaries, a temp dir cleaned on exit, tripletd on port 0, ok/bad/skip,
# expect/has for checking a command's exit status and output.
# A suite that cannot run exits 77 (tests/run.sh reports SKIP); with
# REQUIRE_ALL=1 (CI, `make test`) a check that cannot run is a failure.
set -u
ROOT=${TRIPLET_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
TRIPLETD=${TRIPLETD:-$ROOT/bin/tripletd}
TRIPLETCTL=${TRIPLETCTL:-$ROOT/bin/tripletctl}
MODEL=$ROOT/tests/data/e2e-model.safetensors
KEY=${KEY:-contract-key}
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 passes=0 skips=0
ok() { echo "ok   $1"; passes=$((passes + 1)); }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# skip REASON: the whole suite cannot run here: exit 77 (run.sh: SKIP, or a
# failure under REQUIRE_ALL=1).
skip() { echo "SKIP $1"; exit 77; }
# skip_part REASON: one part of the suite cannot run here; the rest goes on.
skip_part() {
    if [[ ${REQUIRE_ALL:-0} == 1 ]]; then bad "cannot run, and REQUIRE_ALL=1: $1"; else echo "skipped: $1"; skips=$((skips + 1)); fi
}
# finish: the closing count; exit 1 on any failure or when no check ran.
finish() {
    ((passes + fails > 0)) || bad "no check ran"
    echo "$passes passed, $fails failed, $skips skipped"
    ((fails == 0)); exit $?
}

# expect NAME WANT_RC CMD...: ok when CMD exits WANT_RC; its stdout is left in $tmp/out, stderr in $tmp/err.
expect() {
    local name=$1 want=$2 rc=0
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [[ $rc == "$want" ]]; then ok "$name (exit $rc)"; else bad "$name: exit $rc, want $want; stderr: $(head -c 300 "$tmp/err")"; fi
}
# has NAME FILE TEXT: ok when FILE contains TEXT (a fixed string, not a pattern).
has() {
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1: \"$3\" not in $(head -c 400 "$2")"; fi
}

# A python3 that can import every module named: sets $PY, else returns 1.
pick_python() {
    for PY in python3 /usr/bin/python3; do
        command -v "$PY" >/dev/null 2>&1 || continue
        "$PY" -c "import $(IFS=,; echo "$*")" 2>/dev/null && return 0
    done
    return 1
}

# npm packages (names without versions) into a cache under build/, reused
# by later runs; returns 1 when node/npm are missing or the install fails
# (offline; the reason is in $tmp/npm.log).
npm_cache() {
    NPM_DIR=$ROOT/build/npm-contract
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
    mkdir -p "$NPM_DIR" || return 1
    local missing=()
    for p in "$@"; do [[ -d $NPM_DIR/node_modules/$p ]] || missing+=("$p"); done
    ((${#missing[@]} == 0)) && return 0
    [[ -f $NPM_DIR/package.json ]] || echo '{"name":"tripletd-contract","private":true}' >"$NPM_DIR/package.json"
    timeout 180 npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "${missing[@]}" >"$tmp/npm.log" 2>&1
}

# Start tripletd with the API key plus "$@"; sets $port and $url.
start_server() {
    rm -f "$tmp/port"
    "$TRIPLETD" --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$tmp/port" --api-key "$KEY" \
        --log-format off --threads 2 "$@" >"$tmp/srv.out" 2>"$tmp/srv.err" &
    pids+=($!)
    for _ in $(seq 200); do [[ -s $tmp/port ]] && break; sleep 0.05; done
    port=$(cat "$tmp/port" 2>/dev/null)
    if [[ -z $port ]]; then
        echo "FAIL tripletd did not start"; cat "$tmp/srv.err"; exit 1
    fi
    url=http://127.0.0.1:$port
}
