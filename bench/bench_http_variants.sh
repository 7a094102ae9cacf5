#!/usr/bin/env bash
# bench_http_variants.sh - tripletd started with different flags side by side with nginx (1 and
# 2 workers, the reply as a static file), single-vector POST /v1/embed with wrk at one connection
# count, rounds interleaved: req/s, p99, p99.9 and the server's CPU per request (user + system
# / requests, the figure other load disturbs least) per server and round, and the rows per
# forward of each tripletd. For comparing server-side settings in one run; without arguments:
# cross-request batching on and off, one worker thread, the access log off. Prints the figures
# and writes them to $RESULTS/http_variants.md.
#   bench/bench_http_variants.sh "batch:--threads 2" "nobatch:--threads 2 --batch-max-rows 1"
# Env: ROUNDS (3), CONNS (64), DURATION (s per run, 4), MODEL, TRIPLETD, RESULTS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} CONNS=${CONNS:-64} DURATION=${DURATION:-4}
MODEL=${MODEL:-models/fashion-mnist.safetensors}
TRIPLETD=${TRIPLETD:-$PWD/bin/tripletd}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
RESULTS=${RESULTS:-$PWD/bench/results}
(($# > 0)) || set -- "batch:--threads 2" "nobatch:--threads 2 --batch-max-rows 1" "threads1:--threads 1" \
    "logoff:--threads 2 --log-format off"
BENCH_NAME=bench_http_variants
. bench/lib.sh
python3 -c 'import json, random; random.seed(7); print(json.dumps({"inputs": [random.randint(0, 255) for _ in range(784)]}))' >"$work/body.json"
wrk_post_lua "$work/body.json" application/json \
    'io.write(string.format("P %d %d %d\n", summary.requests, latency:percentile(99), latency:percentile(99.9)))' \
    >"$work/post.lua"
declare -A URL PID
names=()
for spec in "$@"; do
    n=${spec%%:*}
    # shellcheck disable=SC2086 # the flags split into words
    tripletd_start "$n" "$MODEL" http ${spec#*:}
    names+=("$n")
done
mkdir -p "$work/www/v1"
curl -sf -H 'Content-Type: application/json' --data-binary @"$work/body.json" "${URL[${names[0]}]}" >"$work/www/v1/embed"
for w in 1 2; do
    nginx_start "nginx$w" "$w" http
    names+=("nginx$w")
done
for n in "${names[@]}"; do wrk -t1 -c8 -d1s -s "$work/post.lua" "${URL[$n]}" >/dev/null; done # warm-up
exec 3>&1 >"$work/report.txt" # the report: printed at the end and kept in $RESULTS
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg); $CONNS connections, ${DURATION}s per run"
echo "server: req/s, p99 ms, p99.9 ms, server CPU us per request"
for ((r = 1; r <= ROUNDS; r++)); do
    line="round $r:"
    for n in "${names[@]}"; do
        c0=$(cpu_ticks "${PID[$n]}")
        out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$work/post.lua" "${URL[$n]}")
        c1=$(cpu_ticks "${PID[$n]}")
        if grep -q Non-2xx <<<"$out"; then echo "$BENCH_NAME: non-2xx replies from $n" >&2; exit 1; fi
        rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
        read -r _ nreq p99 p999 < <(grep '^P ' <<<"$out")
        line="$line  $n $rps $(awk -v a="$p99" -v b="$p999" -v c=$((c1 - c0)) -v n="$nreq" -v t="$tck" \
            'BEGIN { printf "%.2f %.2f %.1f", a / 1000, b / 1000, c * 1e6 / t / (n > 0 ? n : 1) }')"
    done
    echo "$line"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${names[@]}"; do
    [[ $n == nginx* ]] && continue
    curl -sf "${URL[$n]%/v1/embed}/metrics" | awk -v n="$n" '
        /^tripletd_forward_batch_rows_sum/ { s = $2 } /^tripletd_forward_batch_rows_count/ { c = $2 }
        END { if (c) printf "%s: %.2f rows per forward\n", n, s / c }'
done
exec 1>&3
cat "$work/report.txt"
mkdir -p "$RESULTS"
{
    echo "## HTTP: tripletd's settings side by side (single-vector /v1/embed)"
    echo
    echo "\`bench/bench_http_variants.sh\`: tripletd started with each set of flags below and nginx (1 and 2"
    echo "workers, the reply as a static file) side by side; wrk -t1 -c$CONNS, ${DURATION} s per run, $ROUNDS rounds"
    echo "interleaved across the servers. Model \`$MODEL\`. Flags: $(printf '`%s` ' "$@")"
    echo
    echo '```'
    cat "$work/report.txt"
    echo '```'
} >"$RESULTS/http_variants.md"
