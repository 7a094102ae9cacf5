#!/usr/bin/env bash
# tests/contract/readme_images.sh - the commands of README.md's "Images" section run as written: from a copy of
# the repository's layout (bin/, models/, tests/ linked), against a real tripletd serving the model `make run`
# serves (its localhost:8080 is this server's port), each must exit 0; every model file the README names exists.
. "$(dirname "$0")/../lib.sh"

readme=$ROOT/README.md
# every models/... file README.md names is in the repository (paths inside containers, /models/..., are not)
for f in $(grep -o '\(^\|[ `(@]\)models/[A-Za-z0-9._-]*\.\(onnx\|safetensors\)' "$readme" | sed 's/^[ `(@]//' | sort -u); do
    [[ $f == *.gallery.safetensors ]] && continue # built by make run / the image, not shipped
    [[ -f $ROOT/$f ]] && ok "README names $f, which exists" || bad "README names $f, which does not exist"
done

# the indented lines of the Images section
awk '/^## /{on = ($0 == "## Images")} on && /^    [^ ]/{sub(/^    /, ""); print}' "$readme" >"$tmp/cmds"
[[ -s $tmp/cmds ]] || { bad "no commands in README's Images section"; finish; }

MODEL=$ROOT/models/fashion-mnist-cnn.onnx start_server
mkdir -p "$tmp/root"
ln -s "$(dirname "$TRIPLETCTL")" "$tmp/root/bin"
ln -s "$ROOT/models" "$tmp/root/models"
ln -s "$ROOT/tests" "$tmp/root/tests"
while IFS= read -r cmd; do
    run=${cmd//localhost:8080/127.0.0.1:$port}
    [[ $run == curl\ * ]] && run="curl -f -H \"Authorization: Bearer $KEY\" ${run#curl }" # the server has lib.sh's key
    if (cd "$tmp/root" && bash -c "$run") >"$tmp/out" 2>"$tmp/err"; then ok "runs: $cmd"
    else bad "README command fails: $cmd: $(head -c 300 "$tmp/err") $(head -c 200 "$tmp/out")"; fi
done <"$tmp/cmds"
finish
