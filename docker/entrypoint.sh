#!/bin/bash
# docker/entrypoint.sh - container entrypoint: adds the shipped gallery when the
# served model is the one it was built from (as `make run` does), then execs
# tripletd, which stays PID 1 and gets the signals.
#
# The gallery's metadata names its model's sha256; tripletd refuses to start
# on a gallery built with another model. So with your own model mounted the
# shipped gallery is left out (/v1/search answers 409) rather than stopping
# the container. An explicit gallery (TRIPLETD_GALLERY, even empty, or
# --gallery) is passed through untouched.
set -u
shipped=/opt/tripletd/gallery.safetensors

model=${TRIPLETD_MODEL:-}
explicit=${TRIPLETD_GALLERY+yes}
prev=
for a in "$@"; do
    case $prev in --model) model=$a ;; esac
    case $a in
    --model=*) model=${a#--model=} ;;
    --gallery | --gallery=*) explicit=yes ;;
    --help | -h | --version) explicit=yes ;;
    esac
    prev=$a
done

if [[ -z $explicit && -f $shipped && -n $model && -r $model ]]; then
    want=$(head -c 65536 "$shipped" | grep -ao '"model_sha256": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{64\}')
    have=$(sha256sum <"$model" | cut -d' ' -f1)
    if [[ -n $want && $want == "$have" ]]; then
        export TRIPLETD_GALLERY=$shipped
    else
        echo "tripletd-entrypoint: $model is not the model $shipped was built from;" \
            "serving without a gallery (/v1/search answers 409; TRIPLETD_GALLERY names your own)" >&2
    fi
fi
exec /usr/local/bin/tripletd "$@"
