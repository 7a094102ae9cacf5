#!/usr/bin/env bash
# bench_tls.sh - HTTPS single-vector POST /v1/embed: tripletd (--tls-cert/--tls-key, GnuTLS through
# libmicrohttpd) against nginx serving tripletd's reply as a static file over TLS with the same
# certificate (bench/nginx_static.conf with `ssl` added), both with wrk at 1 and 64 keep-alive
# connections; plain HTTP tripletd alongside for the cost of TLS. Writes $RESULTS/tls.md.
# Env: DURATION (s per run, default 4), REPS (rounds, best kept, default 3), THREADS, MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
TRIPLETD=${TRIPLETD:-$PWD/bin/tripletd}
MODEL=${MODEL:-models/fashion-mnist.safetensors}
DURATION=${DURATION:-4}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
mkdir -p "$RESULTS"
for exe in "$TRIPLETD" "$NGINX" "$(command -v wrk || true)" "$(command -v openssl || true)"; do
    [[ -n $exe && -x $exe ]] || { echo "bench_tls: missing $exe (make; make bench-deps)"; exit 1; }
done
BENCH_NAME=bench_tls
. bench/lib.sh # the working folder is the repository root (cd above)

# One certificate for both servers: ECDSA P-256, CN and SAN 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
python3 -c 'import json, random; random.seed(7); print(json.dumps({"inputs": [random.randint(0, 255) for _ in range(784)]}))' \
    >"$work/body.json"
wrk_post_lua "$work/body.json" application/json >"$work/post.lua"

declare -A R URL ALL PID
# measure NAME CONNS: one wrk run; the best of REPS interleaved rounds is kept
measure() {
    local out r
    out=$(wrk -t1 -c"$2" -d"${DURATION}s" --latency -s "$work/post.lua" "${URL[$1]}")
    echo "$out" >>"$work/wrk.log"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "bench_tls: errors from $1" >&2; echo "$out" >&2; return 1; fi
    r=$(wrk_figures '%.0f %.3f %.3f\n' <<<"$out")
    echo "$1 c=$2: $r (req/s p50_ms p99_ms)"
    ALL[$1,$2]="${ALL[$1,$2]:+${ALL[$1,$2]}, }$(cut -d' ' -f1 <<<"$r")"
    if [[ -z ${R[$1,$2]:-} ]] || (($(cut -d' ' -f1 <<<"$r") > $(cut -d' ' -f1 <<<"${R[$1,$2]}"))); then R[$1,$2]=$r; fi
}
load_start=$(cut -d' ' -f1 /proc/loadavg)

tripletd_start tripletd_tls "$MODEL" https --threads "$THREADS" --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
tripletd_start tripletd_plain "$MODEL" http --threads "$THREADS"
curl -sf --cacert "$work/cert.pem" -H 'Content-Type: application/json' --data-binary @"$work/body.json" \
    "${URL[tripletd_tls]}" >"$work/reply.json"
size=$(stat -c %s "$work/reply.json")

# nginx: the same reply as a static file, TLS with the same certificate and key
mkdir -p "$work/www/v1"
cp "$work/reply.json" "$work/www/v1/embed"
for w in 1 2; do
    nginx_start "nginx$w" "$w" https \
        -e "s|listen \(.*\);|listen \1 ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.2 TLSv1.3;|"
    [[ $(curl -s --cacert "$work/cert.pem" -o /dev/null -w '%{http_code} %{size_download}' -H 'Content-Type: application/json' \
        --data-binary @"$work/body.json" "${URL[nginx$w]}") == "200 $size" ]] ||
        { echo "bench_tls: nginx does not answer the POST with the $size-byte file" >&2; exit 1; }
done
# what each negotiates with curl (wrk uses OpenSSL's defaults too)
proto() { curl -sv --cacert "$work/cert.pem" -o /dev/null "${URL[$1]%/v1/embed}/healthz" 2>&1 | sed -n 's/^\* SSL connection using //p' | head -1; }
tls_t=$(proto tripletd_tls)
tls_n=$(proto nginx1)

SERVERS="tripletd_tls nginx1 nginx2 tripletd_plain"
for s in $SERVERS; do wrk -t1 -c8 -d1s -s "$work/post.lua" "${URL[$s]}" >/dev/null; done # warm-up
for ((round = 1; round <= REPS; round++)); do
    for s in $SERVERS; do
        measure "$s" 1
        measure "$s" 64
    done
done

f() { cut -d' ' -f"$2" <<<"${R[$1]}"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
best_nginx() { if (($(f "nginx1,$1" 1) >= $(f "nginx2,$1" 1))); then echo nginx1; else echo nginx2; fi; }
row() { # label name conns
    echo "| $1 | $3 | $(f "$2,$3" 1) | $(f "$2,$3" 2) | $(f "$2,$3" 3) | $(ratio "$(f "$2,$3" 1)" "$(f "$(best_nginx "$3"),$3" 1)") |"
}
{
    echo "## HTTPS: single-vector /v1/embed (tripletd over TLS vs nginx over TLS)"
    echo
    echo "wrk, one thread, keep-alive (one TLS handshake per connection), ${DURATION} s per run after a"
    echo "1 s warm-up; $REPS rounds interleaved across the servers, the best round of each kept. Same"
    echo "ECDSA P-256 certificate and key for both (generated per run). tripletd: \`--tls-cert --tls-key\`,"
    echo "\`--threads $THREADS\`, OpenBLAS 1 thread, access log on; negotiated with curl: $tls_t."
    echo "nginx: tripletd's $size-byte reply as a static file (POST answered from it), \`ssl_protocols"
    echo "TLSv1.2 TLSv1.3\`, default ciphers, 1 and 2 workers, the faster one is the reference; negotiated:"
    echo "$tls_n. Plain-HTTP tripletd measured alongside. Load average (1 min) at the start"
    echo "$load_start, at the end $(cut -d' ' -f1 /proc/loadavg) (a shared 2-core machine; wrk runs on it too)."
    echo
    echo "| server | conns | req/s | p50 ms | p99 ms | this / nginx TLS (req/s) |"
    echo "|---|---|---|---|---|---|"
    for c in 1 64; do
        row "tripletd, HTTPS" tripletd_tls $c
        row "nginx static, HTTPS, 1 worker" nginx1 $c
        row "nginx static, HTTPS, 2 workers" nginx2 $c
        row "tripletd, plain HTTP" tripletd_plain $c
    done
    echo
    echo "**tripletd HTTPS / nginx HTTPS at 64 connections: $(ratio "$(f tripletd_tls,64 1)" "$(f "$(best_nginx 64)",64 1)")**"
    echo "(at 1 connection: $(ratio "$(f tripletd_tls,1 1)" "$(f "$(best_nginx 1)",1 1)")). TLS costs tripletd"
    echo "$(python3 -c "print('%.0f' % (100 * (1 - $(f tripletd_tls,64 1) / $(f tripletd_plain,64 1))))")% of its plain-HTTP req/s at 64 connections."
    echo "Every round at 64 connections, req/s: tripletd HTTPS ${ALL[tripletd_tls,64]}; nginx HTTPS,"
    echo "$(best_nginx 64 | tr -d nginx) worker(s) ${ALL[$(best_nginx 64),64]}."
    echo
    echo "Command: \`wrk -t1 -c{1,64} -d${DURATION}s --latency -s post.lua https://...\`; \`bench/bench_tls.sh\`."
} >"$RESULTS/tls.md"
cat "$RESULTS/tls.md"
