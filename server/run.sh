#!/usr/bin/env bash
# server/run.sh - `make run`: start tripletd in the foreground on the shipped
# model and print example curl commands first.
# Env: BIN (binary dir), MODEL, GALLERY, PORT (8080), HOST (127.0.0.1),
# TRIPLETD_* (any option; see bin/tripletd --help).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
MODEL=${MODEL:-models/fashion-mnist-cnn.onnx}
GALLERY=${GALLERY:-models/fashion-mnist-cnn.gallery.safetensors}
PORT=${PORT:-8080}
HOST=${HOST:-127.0.0.1}

if [[ ! -f $MODEL ]]; then
    echo "run.sh: model $MODEL not found (make model trains it; MODEL=path picks another)" >&2
    exit 2
fi
args=(--model "$MODEL" --host "$HOST" --port "$PORT")
# The gallery for /v1/search: embed the Fashion-MNIST training set with the
# model when the gallery is missing or was built with another model (its
# metadata names the model's sha256; tripletd refuses a mismatch). A few seconds.
gallery_model() { head -c 65536 "$GALLERY" 2>/dev/null | grep -ao '"model_sha256": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}'; }
model_sha=$(sha256sum "$MODEL" | cut -d' ' -f1)
if [[ -x $BIN/tripletctl && "$(gallery_model)" != "$model_sha" ]]; then
    echo "run.sh: building the gallery $GALLERY (tripletctl index)" >&2
    "$BIN/tripletctl" index --model "$MODEL" --out "$GALLERY" ||
        echo "run.sh: could not build $GALLERY; serving without a gallery (/v1/search answers 409)" >&2
fi
if [[ "$(gallery_model)" == "$model_sha" ]]; then args+=(--gallery "$GALLERY"); fi

url="http://$HOST:$PORT"
[[ $HOST == 0.0.0.0 ]] && url="http://127.0.0.1:$PORT"
ex=proto/examples
auth=""
[[ -n ${TRIPLETD_API_KEY:-} ]] && auth=" -H 'Authorization: Bearer \$TRIPLETD_API_KEY'"
cat <<MSG
tripletd on $url  (model $MODEL)
Try, from $(pwd):
  curl -s $url/healthz
  curl -s '$url/v1/model?pretty=1'$auth
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/embed.json $url/v1/embed
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/embed-base64.json $url/v1/embed
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/embeddings-openai.json $url/v1/embeddings
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/distance.json $url/v1/distance
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/distance-raw.json '$url/v1/distance?pretty=1'
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/triplet.json '$url/v1/loss/triplet?pretty=1'
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/pair.json $url/v1/loss/pair
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/infonce.json $url/v1/loss/infonce
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/mine.json '$url/v1/mine?pretty=1'
  curl -s$auth -H 'Content-Type: application/json' -d @$ex/search.json '$url/v1/search?pretty=1'
  curl -s$auth $url/v1/gallery
  curl -s$auth -X POST $url/v1/admin/reload        # or: kill -HUP <pid>
  curl -s $url/metrics
  curl -s$auth $url/openapi.json
Ctrl-C drains in-flight requests and exits.
MSG
exec "$BIN/tripletd" "${args[@]}"
