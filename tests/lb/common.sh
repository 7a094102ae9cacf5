# tests/lb/common.sh - shared by tests/lb/{failover,rolling}.sh (sourced, not
# run): tripletd replicas on loopback ports behind a private nginx using
# docker/nginx.conf, the load generator, and cleanup of every process started.
set -euo pipefail
root=${TRIPLET_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
B=${B:-build}
TRIPLETD=${TRIPLETD:-$root/bin/tripletd}
LOADGEN=${LOADGEN:-$root/$B/tests/lb/loadgen}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
for exe in "$TRIPLETD" "$LOADGEN" "$NGINX"; do
    [[ -x $exe ]] || { echo "missing executable: $exe (make tests; make deps)" >&2; exit 1; }
done
# Sanitizer builds are slower: give every wait more time.
slow=1
[[ ${SANITIZE:-0} == 1 || $TRIPLETD == *build-san* ]] && slow=3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tripletd-lb.XXXXXX")
chmod 755 "$tmp" # nginx workers may run as another user
declare -A rpid=() rport=()
nginx_pid=
loadgen_pid=

cleanup() {
    local p i
    # nginx first, by TERM: its master stops the workers (a SIGKILLed master
    # leaves them running); SIGKILL only if it has not gone within 5 s.
    if [[ -n $nginx_pid ]] && kill -TERM "$nginx_pid" 2>/dev/null; then
        for ((i = 0; i < 50; i++)); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    for p in "${rpid[@]}" $nginx_pid $loadgen_pid; do
        kill -9 "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$tmp"/*.log; do
        [[ -f $f ]] || continue
        echo "--- ${f##*/} (last lines; request lines left out)" >&2
        grep -Ev '^[0-9-]+T[0-9:.]+Z (GET|POST) |^[0-9]{3} ' "$f" | tail -n 15 >&2
    done
    exit 1
}

http_code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" 2>/dev/null || true; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() {
    local limit=$(($1 * slow * 10)) what=$2 i
    shift 2
    for ((i = 0; i < limit; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    fail "timed out waiting for $what"
}

is_ready() { [[ $(http_code "http://127.0.0.1:$1/readyz") == 200 ]]; }

# start_replica NAME MODEL [PORT]: port 0 (a free one) unless given.
start_replica() {
    local name=$1 model=$2 port=${3:-0}
    rm -f "$tmp/$name.port"
    "$TRIPLETD" --model "$model" --host 127.0.0.1 --port "$port" --port-file "$tmp/$name.port" \
        --threads 2 --drain-timeout 10 >>"$tmp/$name.log" 2>&1 &
    rpid[$name]=$!
    wait_for 20 "$name to write its port file" test -s "$tmp/$name.port"
    rport[$name]=$(tr -dc 0-9 <"$tmp/$name.port")
    wait_for 20 "$name /readyz" is_ready "${rport[$name]}"
}

# stop_replica NAME: SIGTERM, it must drain and exit 0 within the drain timeout.
stop_replica() {
    local name=$1 t0=$SECONDS rc=0
    kill -TERM "${rpid[$name]}"
    wait "${rpid[$name]}" || rc=$?
    unset "rpid[$name]"
    ((rc == 0)) || fail "$name exited with status $rc after SIGTERM (expected 0)"
    echo "$name drained and exited 0 in $((SECONDS - t0)) s"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nginx NAME...: docker/nginx.conf with the compose replica names
# replaced by these replicas' loopback ports, on a free loopback port; an
# access log records which upstream(s) served each request.
start_nginx() {
    local i=1 name sedargs=()
    lb_port=$(free_port)
    for name in "$@"; do
        sedargs+=(-e "s/server tripletd-$i:8080/server 127.0.0.1:${rport[$name]}/")
        i=$((i + 1))
    done
    mkdir -p "$tmp/nginx"
    sed "${sedargs[@]}" -e "s/listen 8080;/listen 127.0.0.1:$lb_port;/" \
        -e "0,/access_log off;/s|access_log off;|log_format lb '\$status \$upstream_addr \$upstream_status'; access_log $tmp/access.log lb;|" \
        docker/nginx.conf >"$tmp/nginx.conf"
    grep -q "tripletd-[0-9]:8080" "$tmp/nginx.conf" && fail "nginx.conf has upstreams this test did not template"
    "$NGINX" -p "$tmp/nginx/" -c "$tmp/nginx.conf" \
        -g "daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log warn;" >>"$tmp/nginx.log" 2>&1 &
    nginx_pid=$!
    wait_for 20 "nginx /readyz through the balancer" nginx_ready
    echo "nginx on 127.0.0.1:$lb_port -> $(for n in "$@"; do printf '%s ' "${rport[$n]}"; done)"
}

nginx_ready() {
    kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited: $(tail -n 3 "$tmp/nginx.log")"
    is_ready "$lb_port"
}

progress() { cat "$tmp/progress" 2>/dev/null || echo 0; }

# start_load REQUESTS RATE MODEL...: the load generator through nginx, in the background.
start_load() {
    local n=$1 rate=$2 m margs=()
    shift 2
    for m in "$@"; do margs+=(--model "$m"); done
    "$LOADGEN" --url "http://127.0.0.1:$lb_port" "${margs[@]}" --threads 8 --requests "$n" \
        --rate "$rate" --max-seconds $((90 * slow)) --progress "$tmp/progress" >"$tmp/loadgen.out" 2>"$tmp/loadgen.log" &
    loadgen_pid=$!
}

# at_progress N: wait until the load has answered N requests (it must still be running).
at_progress() {
    local i
    for ((i = 0; i < 1200 * slow; i++)); do
        (($(progress) >= $1)) && return 0
        kill -0 "$loadgen_pid" 2>/dev/null || fail "the load ended before $1 requests ($(cat "$tmp/loadgen.out"))"
        sleep 0.1
    done
    fail "the load did not reach $1 requests"
}

# finish_load: wait for the load generator; print its counts; fail on any failure.
finish_load() {
    local rc=0
    wait "$loadgen_pid" || rc=$?
    loadgen_pid=
    cat "$tmp/loadgen.out"
    ((rc == 0)) || fail "load generator reported failures (status $rc): $(head -n 5 "$tmp/loadgen.log")"
}

# upstream_counts: requests per upstream and the retried ones, from nginx's log.
upstream_counts() {
    awk '{ n++; if ($0 ~ /, /) retried++; split($0, f, " "); gsub(/,/, "", f[2]); a[f[2]]++ }
         END { printf "nginx: %d requests, %d retried on another replica; first upstream:", n, retried;
               for (k in a) printf " %s=%d", k, a[k]; printf "\n" }' "$tmp/access.log"
}

# generation NAME: the replica's GET /v1/model "generation" (grows on every reload).
generation() {
    curl -sf -m 5 "http://127.0.0.1:${rport[$1]}/v1/model" |
        python3 -c 'import json, sys; print(int(json.load(sys.stdin)["generation"]))'
}

# reloaded NAME BEFORE: true once the replica is alive with a generation above BEFORE.
reloaded() {
    local g
    kill -0 "${rpid[$1]}" 2>/dev/null || fail "$1 died"
    g=$(generation "$1") || return 1
    ((g > $2))
}
