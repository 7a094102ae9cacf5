#!/usr/bin/env bash
# tests/console/browser.sh - the web console in headless Chromium (tests/console/browser.js,
# puppeteer-core from tests/node_modules) against tripletd with the shipped model and a
# Fashion-MNIST gallery with its images (index --keep-images), without and with --api-key, and an
# ONNX CNN with image metadata (files sent as {"image": base64}). Screenshots: tests/out/.
. "$(dirname "$0")/../lib.sh"
MODEL=$ROOT/models/fashion-mnist.safetensors
OUT=$ROOT/tests/out
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[[ -x $CHROMIUM ]] || skip "no $CHROMIUM (Debian package chromium)"
command -v node >/dev/null 2>&1 || skip "no node"
[[ -d $ROOT/tests/node_modules/puppeteer-core ]] || skip "tests/node_modules/puppeteer-core is missing (make test installs it with npm ci)"
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || skip "no Fashion-MNIST (Debian package dataset-fashion-mnist)"
mkdir -p "$OUT"

if ! "$TRIPLETCTL" index --model "$MODEL" --limit 3000 --keep-images --out "$tmp/g.safetensors" --quiet >"$tmp/index.log" 2>&1; then
    echo "FAIL tripletctl index"; cat "$tmp/index.log"; exit 1
fi
IMAGE_MODEL=$ROOT/tests/data/onnx/fashion_image.onnx # an ONNX CNN with `image` metadata
if ! "$TRIPLETCTL" index --model "$IMAGE_MODEL" --limit 1500 --keep-images --out "$tmp/gi.safetensors" --quiet >"$tmp/index.log" 2>&1; then
    echo "FAIL tripletctl index (image model)"; cat "$tmp/index.log"; exit 1
fi
# start NAME MODEL GALLERY ARGS...: tripletd on port 0; sets ${NAME}_url
start() {
    local name=$1 model=$2 gallery=$3; shift 3
    "$TRIPLETD" --model "$model" --gallery "$gallery" --host 127.0.0.1 --port 0 --port-file "$tmp/$name.port" \
        --log-format off --threads 2 "$@" >"$tmp/$name.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do [[ -s $tmp/$name.port ]] && break; sleep 0.05; done
    [[ -s $tmp/$name.port ]] || { echo "FAIL tripletd ($name) did not start"; cat "$tmp/$name.out"; exit 1; }
    printf -v "${name}_url" 'http://127.0.0.1:%s' "$(cat "$tmp/$name.port")"
}
start open "$MODEL" "$tmp/g.safetensors"
start keyed "$MODEL" "$tmp/g.safetensors" --api-key "$KEY"
start image "$IMAGE_MODEL" "$tmp/gi.safetensors"
HOME=$tmp node "$(dirname "$0")/browser.js" "$open_url" "$keyed_url" "$KEY" "$OUT" "$image_url"
