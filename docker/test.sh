#!/usr/bin/env bash
# docker/test.sh - `make test-docker`: build the tripletd image with podman
# from the unchanged docker/Dockerfile and check it for real (the shipped CNN
# and its gallery answer as the local binary does on the same files; mounted
# models override them), then bring up docker/compose.yaml (3 replicas +
# nginx) and send a request through it.
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
MODEL=models/fashion-mnist-cnn.onnx
ALT_MODEL=tests/data/e2e-model.safetensors
ALT_ONNX=tests/data/onnx/fashion_image.onnx
FASHION=/usr/share/datasets/fashion-mnist
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

start_local() { # NAME TRIPLETD-ARGS...: the local binary on port 0; sets local_url
    rm -f "$tmp/$1.port"
    "$TRIPLETD" --host 127.0.0.1 --port 0 --port-file "$tmp/$1.port" "${@:2}" >"$tmp/$1.log" 2>&1 &
    local_pid=$!
    local i
    for ((i = 0; i < 200; i++)); do [[ -s $tmp/$1.port ]] && break; sleep 0.1; done
    local_url=http://127.0.0.1:$(tr -dc 0-9 <"$tmp/$1.port")
    wait_ready "$local_url" 30 || { tail -n 5 "$tmp/$1.log"; return 1; }
}
stop_local() {
    [[ -n $local_pid ]] || return 0
    kill "$local_pid" 2>/dev/null; wait "$local_pid" 2>/dev/null || true; local_pid=
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
assert env.get("TRIPLETD_MODEL") == "/opt/tripletd/model.onnx", env
print("user", user, "healthcheck", hc["Test"], "entrypoint", c.get("Entrypoint"))
EOF
}
check "image: non-root USER, EXPOSE 8080, HEALTHCHECK" image_config

runtime_only() {
    podman run --rm "${RUNARGS[@]}" --entrypoint /bin/sh "$IMAGE" -c '
        if command -v curl gcc make; then echo "build tools or curl in the image"; exit 1; fi
        if dpkg-query -W -f "\${Package}\n" | grep -- "-dev$"; then echo "-dev packages in the image"; exit 1; fi
        ldd /usr/local/bin/tripletd | grep "not found" && exit 1
        ls -l /opt/tripletd/model.onnx /opt/tripletd/gallery.safetensors || exit 1
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

# The same model and request on the local binary, with the gallery taken out
# of the image: tripletd refuses a gallery built with another model.
local_embed() {
    podman cp "$cname:/opt/tripletd/gallery.safetensors" "$tmp/gallery.safetensors" &&
        start_local local --model "$MODEL" --gallery "$tmp/gallery.safetensors" &&
        embed "$local_url" "$tmp/local.json" && embed "http://127.0.0.1:$port" "$tmp/container.json" &&
        same_embeddings "$tmp/local.json" "$tmp/container.json"
}
check "container: embeddings equal the local tripletd's (the CNN)" local_embed

# /v1/search out of the box: the first 20 test images (random pixels without
# the Debian dataset) against the shipped gallery of the 60,000 training images.
search_req() {
    python3 - "$FASHION" >"$tmp/search.json" <<'EOF'
import gzip, json, os, random, sys
d = sys.argv[1]
if os.path.exists(f"{d}/t10k-images-idx3-ubyte.gz"):
    px = gzip.open(f"{d}/t10k-images-idx3-ubyte.gz").read()[16:16 + 20 * 784]
    labels = list(gzip.open(f"{d}/t10k-labels-idx1-ubyte.gz").read()[8:28])
    queries = [list(px[i * 784:(i + 1) * 784]) for i in range(20)]
else:
    r = random.Random(7)
    queries, labels = [[r.randrange(256) for _ in range(784)] for _ in range(20)], None
print(json.dumps({"queries": queries, "k": 5, "labels": labels}))
EOF
}
same_search() { # A.json B.json REQ.json: same hits, distances within 1e-5; labels right
    python3 - "$@" <<'EOF'
import json, sys
a, b, req = (json.load(open(p)) for p in sys.argv[1:4])
ra, rb = a["results"], b["results"]
assert len(ra) == len(rb) == len(req["queries"]), "result counts differ"
worst = 0.0
for x, y in zip(ra, rb):
    assert [h["index"] for h in x] == [h["index"] for h in y], f"hits differ: {x} vs {y}"
    worst = max([worst] + [abs(h["distance"] - g["distance"]) for h, g in zip(x, y)])
assert worst <= 1e-5, f"distances differ by {worst}"
msg = f"{len(ra)} queries x {len(ra[0])} hits equal, max |diff| {worst:.2e}"
if req["labels"]:
    right = sum(p == l for p, l in zip(a["predicted_labels"], req["labels"]))
    msg += f"; predicted labels {right}/{len(ra)} right"
    assert right >= 16, msg
print(msg)
EOF
}
container_search() {
    search_req || return 1
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r.pop("labels"); print(json.dumps(r))' \
        "$tmp/search.json" >"$tmp/search-req.json"
    curl -sf -m 10 -H 'Content-Type: application/json' --data-binary @"$tmp/search-req.json" "$local_url/v1/search" \
        >"$tmp/search-local.json" || return 1
    curl -sf -m 10 -H 'Content-Type: application/json' --data-binary @"$tmp/search-req.json" \
        "http://127.0.0.1:$port/v1/search" >"$tmp/search-container.json" || return 1
    same_search "$tmp/search-container.json" "$tmp/search-local.json" "$tmp/search.json"
}
check "container: /v1/search on the shipped gallery, as the local tripletd" container_search
stop_local

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

# Own models: a safetensors file mounted elsewhere with TRIPLETD_MODEL naming
# it, and an ONNX file mounted over the shipped one. Either way the shipped
# gallery is left out (it belongs to the shipped model) and the server starts.
mounted_model() { # NAME MODEL-FILE CONTAINER-PATH [podman run args...]
    [[ -f $2 ]] || { echo "missing $2"; return 1; }
    local p2 c2=tripletd-test-$1-$$
    p2=$(free_port)
    containers+=("$c2")
    podman run -d --name "$c2" "${RUNARGS[@]}" -p "127.0.0.1:$p2:8080" -v "$root/$2:$3:ro" "${@:4}" "$IMAGE" \
        >"$tmp/run-$1.log" 2>&1 || { cat "$tmp/run-$1.log"; return 1; }
    wait_ready "http://127.0.0.1:$p2" 60 "$c2" || return 1
    start_local "$1" --model "$2" || return 1
    embed "$local_url" "$tmp/$1-local.json" && embed "http://127.0.0.1:$p2" "$tmp/$1-container.json" &&
        same_embeddings "$tmp/$1-local.json" "$tmp/$1-container.json" || return 1
    stop_local
    curl -s -m 5 "http://127.0.0.1:$p2/v1/model" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["path"] == sys.argv[1], m["path"]
print("model", m["name"], "from", m["path"])' "$3" || return 1
    local code
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$tmp/search-req.json" "http://127.0.0.1:$p2/v1/search")
    [[ $code == 409 ]] || { echo "/v1/search without a gallery: HTTP $code, want 409"; return 1; }
    # The log read whole first: grep -q stops at its match, and podman logs,
    # still writing, would die of SIGPIPE and fail the pipeline (pipefail).
    local log
    log=$(podman logs "$c2" 2>&1)
    grep -q 'serving without a gallery' <<<"$log" || { echo "no entrypoint note in the log"; return 1; }
    echo "/v1/search: 409 (the shipped gallery left out, as the log says)"
}
check "container: a mounted safetensors model, TRIPLETD_MODEL naming it" mounted_model alt "$ALT_MODEL" \
    /models/model.safetensors -e TRIPLETD_MODEL=/models/model.safetensors
check "container: a mounted ONNX model over the shipped one" mounted_model onnx "$ALT_ONNX" /opt/tripletd/model.onnx
stop_local

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
    local cm_model
    cm_model=$(sed -n 's/^TRIPLETD_MODEL=//p' "$tmp/k8s.env")
    [[ $cm_model == /models/* ]] || { echo "ConfigMap TRIPLETD_MODEL=$cm_model, not on the /models volume"; return 1; }
    mkdir -p "$tmp/models" && cp "$MODEL" "$tmp/models/${cm_model#/models/}" && chmod -R a+rX "$tmp/models"
    podman run -d --name "$c3" "${RUNARGS[@]}" -p "127.0.0.1:$p3:8080" --env-file "$tmp/k8s.env" \
        --read-only --cap-drop ALL --security-opt no-new-privileges --tmpfs /tmp --user 10001:10001 --memory 256m \
        -v "$tmp/models:/models:ro" "$IMAGE" >"$tmp/run3.log" 2>&1 || { cat "$tmp/run3.log"; return 1; }
    local u=http://127.0.0.1:$p3
    wait_ready "$u" 60 "$c3" || return 1
    embed "$u" "$tmp/k8s.json" && same_embeddings "$tmp/local.json" "$tmp/k8s.json" || return 1
    curl -sf -m 5 "$u/v1/model" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert m["path"] == sys.argv[1], m["path"]
print("model from", m["path"])' "$cm_model" || return 1
    # the shipped CNN on the volume: the image's gallery goes with it
    curl -sf -m 10 -H 'Content-Type: application/json' --data-binary @"$tmp/search-req.json" "$u/v1/search" \
        >"$tmp/k8s-search.json" && same_search "$tmp/k8s-search.json" "$tmp/search-local.json" "$tmp/search.json" ||
        return 1
    # Inside the 256 MiB limit, the largest requests the default limits let through get answers and
    # too-large ones a 4xx, never an OOM kill: a 20 MB body (over --max-body), 1,025 vectors in a
    # 2.9 MB body (over --max-batch), 1,024 vectors through the CNN (--max-batch), two images of
    # 16,777,216 pixels at once (--max-image-pixels; one per HTTP thread) and one pixel row more.
    local code
    post() { # FILE CONTENT-TYPE: prints the HTTP status
        curl -s -m 60 -o /dev/null -w '%{http_code}' -H "Content-Type: $2" --data-binary @"$1" "$u/v1/embed"
    }
    head -c 20000000 /dev/zero | tr '\0' '1' >"$tmp/big.body"
    code=$(post "$tmp/big.body" application/json)
    [[ $code == 413 ]] || { echo "20 MB body: HTTP $code, want 413"; return 1; }
    python3 - "$tmp" <<'EOF'
import json, struct, sys, zlib
tmp = sys.argv[1]
for name, n in (("batch-over", 1025), ("batch-max", 1024)):
    rows = [[(i * 7 + j) % 256 for j in range(784)] for i in range(n)]
    open(f"{tmp}/{name}.json", "w").write(json.dumps({"inputs": rows}, separators=(",", ":")))
def png(w, h):  # 8-bit RGB, all black: a few kB that decode to w*h*3 bytes
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(bytes((w * 3 + 1) * h), 9)) + chunk(b"IEND", b""))
open(f"{tmp}/img-max.png", "wb").write(png(4096, 4096))
open(f"{tmp}/img-over.png", "wb").write(png(4096, 4097))
EOF
    code=$(post "$tmp/batch-over.json" application/json)
    [[ $code == 422 ]] || { echo "1,025 vectors: HTTP $code, want 422"; return 1; }
    code=$(post "$tmp/batch-max.json" application/json)
    [[ $code == 200 ]] || { echo "1,024 vectors: HTTP $code, want 200"; return 1; }
    post "$tmp/img-max.png" image/png >"$tmp/img1.code" &
    local bg=$!
    post "$tmp/img-max.png" image/png >"$tmp/img2.code"
    wait "$bg"
    [[ $(cat "$tmp/img1.code" "$tmp/img2.code") == 200200 ]] ||
        { echo "two 4096x4096 images: HTTP $(cat "$tmp/img1.code" "$tmp/img2.code"), want 200 200"; return 1; }
    code=$(post "$tmp/img-over.png" image/png)
    [[ $code == 422 ]] || { echo "a 4096x4097 image: HTTP $code, want 422"; return 1; }
    [[ $(podman inspect -f '{{.State.OOMKilled}} {{.State.Running}}' "$c3") == "false true" ]] ||
        { echo "after the large requests: $(podman inspect -f '{{.State.OOMKilled}} {{.State.Running}}' "$c3")"; return 1; }
    local peak
    peak=$(podman exec "$c3" cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes /sys/fs/cgroup/memory.peak 2>/dev/null | head -n 1)
    echo "20 MB body: 413; 1,025 vectors: 422; 1,024 vectors: 200; two 16 Mpixel images: 200 200; one row more: 422"
    echo "still running, not OOM-killed (--memory 256m); peak cgroup memory $((${peak:-0} / 1048576)) MiB"
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
