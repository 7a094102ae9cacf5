#!/usr/bin/env bash
# tests/lb/failover.sh - three tripletd replicas behind a real nginx
# (docker/nginx.conf, templated ports) under a bounded, checked load of mixed
# /v1/embed and /v1/loss/triplet requests. Mid-load: kill -9 one replica,
# SIGTERM another (it drains, exits 0) and start it again, SIGHUP-reload the
# third, then restart the killed one. Every answer must be right: zero failures.
source "$(dirname "$0")/common.sh"
REQUESTS=${LB_REQUESTS:-20000}

model=$tmp/model.safetensors
cp "${LB_MODEL:-tests/data/e2e-model.safetensors}" "$model"
for r in r1 r2 r3; do start_replica $r "$model"; done
start_nginx r1 r2 r3

# ~25 s of load at full speed; slower builds simply take longer.
start_load "$REQUESTS" 800 "$model"
at_progress $((REQUESTS * 15 / 100))
kill -9 "${rpid[r1]}"
wait "${rpid[r1]}" 2>/dev/null || true
unset "rpid[r1]"
echo "r1 killed (SIGKILL) at $(progress) requests"

at_progress $((REQUESTS * 30 / 100))
echo "r2 SIGTERM at $(progress) requests"
stop_replica r2
start_replica r2 "$model" "${rport[r2]}"
echo "r2 restarted on port ${rport[r2]} at $(progress) requests"

at_progress $((REQUESTS * 50 / 100))
before=$(generation r3)
kill -HUP "${rpid[r3]}"
echo "r3 SIGHUP (reload) at $(progress) requests"
wait_for 10 "r3 to reload after SIGHUP" reloaded r3 "$before"

at_progress $((REQUESTS * 65 / 100))
start_replica r1 "$model" "${rport[r1]}"
echo "r1 restarted on port ${rport[r1]} at $(progress) requests"

finish_load
upstream_counts
for r in r1 r2 r3; do
    is_ready "${rport[$r]}" || fail "$r is not ready after the load"
    kill -0 "${rpid[$r]}" || fail "$r is not running after the load"
done
echo "failover: $REQUESTS requests, 0 failures"
