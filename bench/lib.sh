# bench/lib.sh - shared by the HTTP benches (sourced): a work folder whose
# servers are stopped on exit, a free port, waiting for a URL to answer.
# Set BENCH_NAME before sourcing (it prefixes messages and the folder).

work=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
chmod 755 "$work" # nginx workers run as another user
pids=()            # servers to stop on exit
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL [SECONDS]: until URL answers 2xx (TLS certificates not checked), up to SECONDS (30).
wait_http() {
    local i
    for ((i = 0; i < ${2:-30} * 10; i++)); do
        curl -skf -o /dev/null -m 1 "$1" && return 0
        sleep 0.1
    done
    echo "$BENCH_NAME: $1 did not come up" >&2
    return 1
}
