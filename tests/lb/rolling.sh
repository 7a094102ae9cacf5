#!/usr/bin/env bash
# tests/lb/rolling.sh - rolling model update under load: three replicas behind
# nginx serve model A; the model file is replaced by model B (atomic rename)
# and the replicas reload one by one (SIGHUP, POST /v1/admin/reload, SIGHUP).
# Every answer must equal model A's or model B's (never a mix, never an
# error), and at the end every replica must answer with B only.
source "$(dirname "$0")/common.sh"
REQUESTS=${LB_REQUESTS:-12000}

model=$tmp/model.safetensors
a=$tmp/a.safetensors b=$tmp/b.safetensors
cp "${LB_MODEL:-tests/data/e2e-model.safetensors}" "$a"
python3 tests/lb/mkmodel.py "$a" "$b" 7
cmp -s "$a" "$b" && fail "model B equals model A"
cp "$a" "$model"
for r in r1 r2 r3; do start_replica $r "$model"; done
start_nginx r1 r2 r3

start_load "$REQUESTS" 800 "$a" "$b"
at_progress $((REQUESTS * 20 / 100))
cp "$b" "$model.new" && mv -f "$model.new" "$model"
echo "model file replaced by B at $(progress) requests"

reload() { # NAME HOW
    local before
    before=$(generation "$1")
    case $2 in
    sighup) kill -HUP "${rpid[$1]}" ;;
    admin)
        local code
        code=$(http_code -X POST -H 'Content-Type: application/json' -d '{}' \
            "http://127.0.0.1:${rport[$1]}/v1/admin/reload")
        [[ $code == 200 ]] || fail "$1: POST /v1/admin/reload answered $code"
        ;;
    esac
    wait_for 10 "$1 to reload" reloaded "$1" "$before"
    echo "$1 reloaded ($2) at $(progress) requests"
}
at_progress $((REQUESTS * 30 / 100)); reload r1 sighup
at_progress $((REQUESTS * 50 / 100)); reload r2 admin
at_progress $((REQUESTS * 70 / 100)); reload r3 sighup
finish_load
upstream_counts

# Both models answered during the update ...
read -r m0 m1 < <(sed -n 's/.* model0=\([0-9]*\) model1=\([0-9]*\).*/\1 \2/p' "$tmp/loadgen.out")
((${m0:-0} > 0 && ${m1:-0} > 0)) || fail "expected answers from both models, got A=${m0:-?} B=${m1:-?}"
# ... and now every replica answers with B only.
for r in r1 r2 r3; do
    "$LOADGEN" --url "http://127.0.0.1:${rport[$r]}" --model "$b" --threads 2 --requests 200 \
        --max-seconds $((30 * slow)) >"$tmp/final-$r.out" 2>"$tmp/final-$r.log" ||
        fail "$r does not answer with model B only: $(cat "$tmp/final-$r.out") $(head -n 3 "$tmp/final-$r.log")"
    echo "$r: $(cat "$tmp/final-$r.out")"
done
echo "rolling: $REQUESTS requests, answers from A: $m0, from B: $m1, 0 failures; all replicas on B"
