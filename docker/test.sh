#!/usr/bin/env bash
# docker/test.sh - `make test-docker`: build the tripletd image with podman
# from the unchanged docker/Dockerfile and check it for real, then bring up
# docker/compose.yaml (3 replicas + nginx) and send a request through it.
#
# No image registry is reachable, so the debian:bookworm-slim base is made
# from Debian's package mirror (docker/base-image.sh, cached). podman here
# needs runc, nofile/nproc ulimits and --format docker (for HEALTHCHECK).
# Ends with "N passed, N failed". Env: KEEP=1 keeps images and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TRIPLETD=${TRIPLETD:-$root/bin/tripletd}
IMAGE=localhost/tripletd:latest
LB_IMAGE=localhost/tripletd-nginx:latest
MODEL=models/fashion-mnist.safetensors
ALT_MODEL=tests/data/e2e-model.safetensors
RUNARGS=(--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
export BUILDAH_FORMAT=docker

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tripletd-docker.XXXXXX")
# podman-compose starts its containers with plain `podman run`: give them
# the same runtime and limits through a private containers.conf.
cat >"$tmp/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$tmp/containers.conf
project=tripletd-test-$$
containers=()
local_pid=
pass=0 failed=0

cleanup() {
    local c
    for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
    if [[ -n ${compose_up:-} ]]; then
        LB_PORT=0 podman-compose -p "$project" -f docker/compose.yaml down -t 5 >/dev/null 2>&1 || true
    fi
    [[ -n $local_pid ]] && kill -9 "$local_pid" 2>/dev/null
    # Old untagged build stages pile up with every source change; keep the recent cache.
    [[ ${KEEP:-0} == 1 ]] || podman image prune -f --filter until=2h >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() { # NAME COMMAND...: one counted check
    local name=$1 t0=$SECONDS
    shift
    if "$@" >"$tmp/check.log" 2>&1; then
        pass=$((pass + 1)); printf 'PASS %-52s %3ds\n' "$name" $((SECONDS - t0))
        tail -n 2 "$tmp/check.log" | sed 's/^/    /'
    else
        failed=$((failed + 1)); printf 'FAIL %-52s %3ds\n' "$name" $((SECONDS - t0))
        sed 's/^/    /' "$tmp/check.log" | tail -n 30
    fi
}

finish() {
    echo
    echo "$pass passed, $failed failed"
    ((failed == 0))
    exit $?
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # URL SECONDS [CONTAINER]: fails early if CONTAINER stops
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if [[ -n ${3:-} && $(podman inspect --format '{{.State.Running}}' "$3" 2>&1) != true ]]; then
            echo "container $3 is not running:" >&2
            podman logs --tail 20 "$3" >&2
            return 1
        fi
        [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1/readyz" 2>/dev/null) == 200 ]] && return 0
        sleep 0.1
    done
    echo "no 200 from $1/readyz within $2 s" >&2
    return 1
}

embed() { # URL OUT: POST the fixed request to /v1/embed
    curl -sf -m 10 -H 'Content-Type: application/json' --data-binary @"$tmp/req.json" "$1/v1/embed" >"$2"
}

same_embeddings() { # A.json B.json: equal within 1e-5
    python3 - "$1" "$2" <<'EOF'
import json, sys
a, b = (json.load(open(p))["embeddings"] for p in sys.argv[1:3])
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), "shapes differ"
worst = max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x, y))
print(f"{len(a)} embeddings of dim {len(a[0])}, max |diff| {worst:.2e}")
assert worst <= 1e-5, f"embeddings differ by {worst}"
EOF
}

[[ -x $TRIPLETD ]] || { echo "missing $TRIPLETD: run make first" >&2; exit 1; }
[[ -f $MODEL ]] || { echo "missing the shipped model $MODEL (make model)" >&2; exit 1; }
python3 - >"$tmp/req.json" <<'EOF'
import json, random
r = random.Random(7)
print(json.dumps({"inputs": [[r.randrange(256) for _ in range(784)] for _ in range(3)]}))
EOF

# --- the image -------------------------------------------------------------
check "base image debian:bookworm-slim (debootstrap, then cached)" docker/base-image.sh
build_image() {
    podman build --pull=never --format docker "${RUNARGS[@]}" -f docker/Dockerfile -t "$IMAGE" . >"$tmp/build.log" 2>&1 ||
        { tail -n 40 "$tmp/build.log"; return 1; }
    podman image inspect --format '{{.Size}} bytes' "$IMAGE"
}
check "podman build docker/Dockerfile" build_image
podman image exists "$IMAGE" || finish

image_config() {
    podman image inspect "$IMAGE" >"$tmp/inspect.json"
    python3 - "$tmp/inspect.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))[0]["Config"]
user = c.get("User", "")
assert user and user.split(":")[0] not in ("0", "root"), f"image runs as {user!r}"
assert "8080/tcp" in c.get("ExposedPorts", {}), f"EXPOSE: {c.get('ExposedPorts')}"
hc = c.get("Healthcheck") or json.load(open(sys.argv[1]))[0].get("Healthcheck") or {}
assert hc.get("Test"), "no HEALTHCHECK (built without --format docker?)"
env = dict(e.split("=", 1) for e in c.get("Env", []))
assert env.get("TRIPLETD_MODEL") == "/opt/tripletd/model.safetensors", env
print("user", user, "healthcheck", hc["Test"], "entrypoint", c.get("Entrypoint"))
EOF
}
check "image: non-root USER, EXPOSE 8080, HEALTHCHECK" image_config

runtime_only() {
    podman run --rm "${RUNARGS[@]}" --entrypoint /bin/sh "$IMAGE" -c '
        if command -v curl gcc make; then echo "build tools or curl in the image"; exit 1; fi
        if dpkg-query -W -f "\${Package}\n" | grep -- "-dev$"; then echo "-dev packages in the image"; exit 1; fi
        ldd /usr/local/bin/tripletd | grep "not found" && exit 1
        echo "runtime libraries only"'
}
check "image: only runtime libraries, no curl/compiler/-dev" runtime_only

# --- one container ---------------------------------------------------------
port=$(free_port)
cname=tripletd-test-$$
containers+=("$cname")
podman run -d --name "$cname" "${RUNARGS[@]}" -p "127.0.0.1:$port:8080" -e TRIPLETD_THREADS=2 "$IMAGE" \
    >"$tmp/run.log" 2>&1 || cat "$tmp/run.log"
check "container: /readyz 200 on 127.0.0.1:$port" wait_ready "http://127.0.0.1:$port" 60 "$cname"

# The same model and request on the local binary.
"$TRIPLETD" --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$tmp/local.port" >"$tmp/local.log" 2>&1 &
local_pid=$!
local_embed() {
    local i
    for ((i = 0; i < 200; i++)); do [[ -s $tmp/local.port ]] && break; sleep 0.1; done
    local lp
    lp=$(tr -dc 0-9 <"$tmp/local.port")
    wait_ready "http://127.0.0.1:$lp" 30 && embed "http://127.0.0.1:$lp" "$tmp/local.json" &&
        embed "http://127.0.0.1:$port" "$tmp/container.json" &&
        same_embeddings "$tmp/local.json" "$tmp/container.json"
}
check "container: embeddings equal the local tripletd's" local_embed
kill "$local_pid" 2>/dev/null; wait "$local_pid" 2>/dev/null || true; local_pid=

nonroot() {
    local uid
    uid=$(podman exec "$cname" id -u)
    echo "uid $uid, pid 1: $(podman exec "$cname" cat /proc/1/cmdline | tr '\0' ' ')"
    [[ $uid != 0 ]] && podman exec "$cname" grep -q "^Uid:[[:space:]]*$uid[[:space:]]" /proc/1/status
}
check "container: tripletd runs as non-root" nonroot
check "container: HEALTHCHECK passes (podman healthcheck run)" podman healthcheck run "$cname"

sigterm_stop() {
    local t0=$SECONDS code
    podman kill -s TERM "$cname" >/dev/null
    code=$(timeout 30 podman wait "$cname")
    echo "exit status $code after $((SECONDS - t0)) s"
    [[ $code == 0 ]] && ((SECONDS - t0 <= 25))
}
check "container: SIGTERM drains and exits 0 in time" sigterm_stop

mounted_model() {
    [[ -f $ALT_MODEL ]] || { echo "missing $ALT_MODEL"; return 1; }
    local p2 c2=tripletd-test-alt-$$
    p2=$(free_port)
    containers+=("$c2")
    podman run -d --name "$c2" "${RUNARGS[@]}" -p "127.0.0.1:$p2:8080" \
        -v "$root/$ALT_MODEL:/opt/tripletd/model.safetensors:ro" "$IMAGE" >"$tmp/run2.log" 2>&1 ||
        { cat "$tmp/run2.log"; return 1; }
    wait_ready "http://127.0.0.1:$p2" 60 "$c2" || return 1
    "$TRIPLETD" --model "$ALT_MODEL" --host 127.0.0.1 --port 0 --port-file "$tmp/alt.port" >"$tmp/alt.log" 2>&1 &
    local_pid=$!
    local i
    for ((i = 0; i < 200; i++)); do [[ -s $tmp/alt.port ]] && break; sleep 0.1; done
    local lp
    lp=$(tr -dc 0-9 <"$tmp/alt.port")
    wait_ready "http://127.0.0.1:$lp" 30 && embed "http://127.0.0.1:$lp" "$tmp/alt-local.json" &&
        embed "http://127.0.0.1:$p2" "$tmp/alt-container.json" &&
        same_embeddings "$tmp/alt-local.json" "$tmp/alt-container.json"
}
check "container: a mounted model file overrides the shipped one" mounted_model
[[ -n $local_pid ]] && { kill "$local_pid" 2>/dev/null; wait "$local_pid" 2>/dev/null || true; local_pid=; }

# The pod of docker/k8s/deployment.yaml, as far as podman can play it: the
# ConfigMap's environment, the model on a read-only volume at /models,
# read-only root filesystem, no capabilities, no privilege escalation.
like_k8s() {
    local p3 c3=tripletd-test-k8s-$$
    p3=$(free_port)
    containers+=("$c3")
    python3 -c '
import sys, yaml
for k, v in yaml.safe_load(open(sys.argv[1]))["data"].items():
    print(f"{k}={v}")' docker/k8s/configmap.yaml >"$tmp/k8s.env"
    mkdir -p "$tmp/models" && cp "$MODEL" "$tmp/models/model.safetensors" && chmod -R a+rX "$tmp/models"
    podman run -d --name "$c3" "${RUNARGS[@]}" -p "127.0.0.1:$p3:8080" --env-file "$tmp/k8s.env" \
        --read-only --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp --user 10001:10001 --memory 256m \
        -v "$tmp/models:/models:ro" "$IMAGE" >"$tmp/run3.log" 2>&1 || { cat "$tmp/run3.log"; return 1; }
    wait_ready "http://127.0.0.1:$p3" 60 "$c3" || return 1
    embed "http://127.0.0.1:$p3" "$tmp/k8s.json" && same_embeddings "$tmp/local.json" "$tmp/k8s.json"
    curl -sf -m 5 "http://127.0.0.1:$p3/v1/model" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["path"] == "/models/model.safetensors", m["path"]
print("model from", m["path"])'
    # too-large requests get a 4xx inside the 256 MiB limit, never an OOM kill: a 20 MB body (over
    # --max-body) and an 8 MB body of 5,000 vectors (over --max-batch)
    local code
    code=$(head -c 20000000 /dev/zero | tr '\0' '1' | curl -s -m 30 -o /dev/null -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$p3/v1/embed")
    [[ $code == 413 ]] || { echo "20 MB body: HTTP $code, want 413"; return 1; }
    python3 -c 'import json; print(json.dumps({"inputs": [[1] * 784] * 5000}))' >"$tmp/big.json"
    code=$(curl -s -m 30 -o "$tmp/big.out" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$tmp/big.json" "http://127.0.0.1:$p3/v1/embed")
    [[ $code == 413 || $code == 422 ]] || { echo "5000 vectors: HTTP $code, want 413 or 422"; return 1; }
    [[ $(podman inspect -f '{{.State.OOMKilled}} {{.State.Running}}' "$c3") == "false true" ]] ||
        { echo "after the large requests: $(podman inspect -f '{{.State.OOMKilled}} {{.State.Running}}' "$c3")"; return 1; }
    echo "20 MB body: 413; 5000 vectors: $code; still running, not OOM-killed (--memory 256m)"
}
check "container: runs like the k8s pod (read-only root, no capabilities, 256 MiB, ConfigMap env)" like_k8s

# --- compose: 3 replicas + nginx -------------------------------------------
build_lb() {
    podman build --pull=never --format docker "${RUNARGS[@]}" -f docker/Dockerfile.nginx -t "$LB_IMAGE" . >"$tmp/build-lb.log" 2>&1 ||
        { tail -n 40 "$tmp/build-lb.log"; return 1; }
}
check "podman build docker/Dockerfile.nginx" build_lb

lb_port=$(free_port)
compose_up() {
    compose_up=1
    LB_PORT=$lb_port podman-compose -p "$project" -f docker/compose.yaml up -d >"$tmp/compose.log" 2>&1 ||
        { tail -n 30 "$tmp/compose.log"; return 1; }
    local running
    running=$(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | sort)
    echo "$running"
    [[ $(grep -c . <<<"$running") == 4 ]]
}
check "compose: up (3 tripletd replicas + nginx)" compose_up
replicas_ready() {
    local c i n=0
    for c in $(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | grep '_tripletd-[0-9]'); do
        n=$((n + 1))
        for ((i = 0; i < 300; i++)); do
            podman exec "$c" /usr/local/bin/tripletd-healthcheck /readyz 2>/dev/null && break
            sleep 0.2
        done
        ((i < 300)) || { echo "$c: not ready"; podman logs --tail 10 "$c"; return 1; }
        echo "$c: /readyz 200"
    done
    ((n == 3)) || { echo "expected 3 tripletd replicas, found $n"; return 1; }
}
check "compose: every replica ready (healthcheck script, /readyz)" replicas_ready
through_lb() {
    wait_ready "http://127.0.0.1:$lb_port" 60 && embed "http://127.0.0.1:$lb_port" "$tmp/lb.json" &&
        same_embeddings "$tmp/local.json" "$tmp/lb.json"
}
check "compose: a request through nginx gets the right answer" through_lb
one_down() {
    local c i
    c=$(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | grep '_tripletd-1')
    local t0=$SECONDS
    podman stop -t 25 "$c" >/dev/null
    echo "stopped $c in $((SECONDS - t0)) s (exit status $(podman inspect --format '{{.State.ExitCode}}' "$c"))"
    t0=$SECONDS
    for ((i = 0; i < 30; i++)); do
        embed "http://127.0.0.1:$lb_port" "$tmp/lb-$i.json" && same_embeddings "$tmp/local.json" "$tmp/lb-$i.json" >/dev/null ||
            { echo "request $i failed"; return 1; }
    done
    echo "30 requests answered right with one replica down in $((SECONDS - t0)) s"
}
check "compose: one replica stopped, nginx still answers right" one_down
compose_down() {
    LB_PORT=$lb_port podman-compose -p "$project" -f docker/compose.yaml down -t 25 >"$tmp/compose-down.log" 2>&1 ||
        { tail -n 30 "$tmp/compose-down.log"; return 1; }
    compose_up=
    local left
    left=$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}')
    [[ -z $left ]] || { echo "left behind: $left"; return 1; }
}
check "compose: down" compose_down
finish
