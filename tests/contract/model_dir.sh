#!/usr/bin/env bash
# model_dir.sh - POST /v1/admin/reload naming files: only paths relative to --model-dir; traversal,
# absolute paths, symlinks out of the folder, folders, FIFOs, devices and files that are not models get
# 403 or 422 with nothing of the file in the reply, and the old model keeps serving. Also: without
# --model-dir no path is accepted, and --allow-model-path alone is refused at start.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
pick_python numpy || skip "python3 with numpy is missing"
dir=$tmp/models
mkdir -p "$dir/sub" "$tmp/outside"
cp "$MODEL" "$dir/a.safetensors"
cp "$MODEL" "$dir/sub/b.safetensors"
# A secret outside the folder: its first 8 bytes read as a little-endian number would be 3472328296227680304.
printf '00000000 secret-line\n' >"$tmp/outside/secret.txt"
ln -s "$tmp/outside/secret.txt" "$dir/link-out"
ln -s "$dir/a.safetensors" "$dir/link-in.safetensors"
ln -s /etc/passwd "$dir/passwd-link"
mkfifo "$dir/fifo"
ln -s /dev/zero "$dir/zero-link"
mknod "$dir/null" c 1 3 2>/dev/null || ln -s /dev/null "$dir/null"
printf 'root:x:0:0:root:/root:/bin/bash\n' >"$dir/not-a-model.safetensors"
printf '\x08\x00\x00\x00\x00\x00\x00\x00{"a":1}' >"$dir/tiny.safetensors"

MODEL=$dir/a.safetensors start_server --model-dir "$dir"
auth=(-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json')
sha=$(sha256sum "$dir/a.safetensors" | cut -d' ' -f1)
reload() { # BODY: status in $code, reply in $tmp/r.json
    code=$(curl -s -m 10 -o "$tmp/r.json" -w '%{http_code}' "${auth[@]}" --data-binary "$1" "$url/v1/admin/reload")
}
still_serving() {
    curl -sf "${auth[@]}" "$url/v1/model" | grep -c "\"sha256\":\"$sha\"" >/dev/null
}
# case: NAME|BODY|STATUS|TEXT the message must contain
while IFS='|' read -r name body want text; do
    [[ -z $name ]] && continue
    reload "$body"
    if [[ $code == "$want" ]] && grep -qF -- "$text" "$tmp/r.json"; then ok "$name -> $code"; else bad "$name: $code, want $want with \"$text\": $(head -c 300 "$tmp/r.json")"; fi
    if grep -q 'secret\|3472328296227680304\|root:x\|/bin/bash' "$tmp/r.json"; then bad "$name: the reply shows file contents"; fi
    still_serving && ok "$name: the old model keeps serving" || bad "$name: the old model is gone"
done <<'CASES'
absolute path|{"model": "/etc/passwd"}|403|absolute paths are refused
dot-dot|{"model": "../outside/secret.txt"}|403|is refused: name a file inside
dot-dot inside a path|{"model": "sub/../a.safetensors"}|403|is refused: name a file inside
dot-dot deep|{"model": "sub/../../../../etc/passwd"}|403|is refused: name a file inside
symlink out of the folder|{"model": "link-out"}|403|resolves outside --model-dir
symlink to the password file|{"model": "passwd-link"}|403|resolves outside --model-dir
symlink to a device out of the folder|{"model": "zero-link"}|403|resolves outside --model-dir
gallery traversal|{"gallery": "../outside/secret.txt"}|403|is refused: name a file inside
gallery absolute|{"gallery": "/etc/passwd"}|403|absolute paths are refused
empty path|{"model": ""}|403|the path is empty
the folder itself|{"model": "."}|422|not a regular file
a sub-folder|{"model": "sub"}|422|not a regular file
a FIFO|{"model": "fifo"}|422|not a regular file
a character device|{"model": "null"}|422|not a regular file
a missing file|{"model": "missing.safetensors"}|422|no such file
a text file|{"model": "not-a-model.safetensors"}|422|not a safetensors file
a tiny file|{"model": "tiny.safetensors"}|422|
CASES
reload "{\"model\": \"$dir/a.safetensors\"}"
[[ $code == 403 ]] && ok "absolute path to a file inside the folder -> 403" || bad "absolute path inside -> $code"
still_serving && ok "still serving after the absolute path" || bad "not serving after the absolute path"

# A file that changes while it is read: a writer rewrites it with garbage in a loop during reloads.
cp "$dir/sub/b.safetensors" "$dir/changing.safetensors"
( for _ in $(seq 200); do head -c 4096 /dev/urandom >"$dir/changing.safetensors"; cp "$MODEL" "$dir/changing.safetensors"; done ) &
writer=$!
fivexx=0 other=0
for _ in $(seq 20); do
    reload '{"model": "changing.safetensors"}'
    case $code in 200|422) ;; 5*) fivexx=$((fivexx + 1)) ;; *) other=$((other + 1)) ;; esac
done
wait "$writer"
((fivexx == 0 && other == 0)) && ok "a file changing during reloads: only 200 or 422" || bad "changing file: $fivexx 5xx, $other other"
curl -sf "${auth[@]}" "$url/readyz" >/dev/null && ok "healthy after the changing file" || bad "not healthy after the changing file"

# Relative paths inside the folder work, through a symlink that stays inside too.
reload '{"model": "sub/b.safetensors"}'
[[ $code == 200 ]] && ok "relative path in a sub-folder -> 200" || bad "sub/b.safetensors -> $code $(head -c 200 "$tmp/r.json")"
reload '{"model": "link-in.safetensors"}'
[[ $code == 200 ]] && ok "symlink inside the folder -> 200" || bad "link-in -> $code $(head -c 200 "$tmp/r.json")"

# Without --model-dir no file may be named; --allow-model-path alone is refused at start.
MODEL=$dir/a.safetensors start_server
reload '{"model": "a.safetensors"}'
[[ $code == 403 ]] && grep -q -- "--model-dir" "$tmp/r.json" && ok "no --model-dir: 403 naming the flag" || bad "no --model-dir: $code $(head -c 200 "$tmp/r.json")"
expect "--allow-model-path alone refused" 2 "$TRIPLETD" --model "$dir/a.safetensors" --port 0 --allow-model-path
has "--allow-model-path message" "$tmp/err" "--allow-model-path is deprecated"
expect "--model-dir must be a folder" 2 "$TRIPLETD" --model "$dir/a.safetensors" --port 0 --model-dir "$dir/a.safetensors"
has "--model-dir message" "$tmp/err" "not a folder"
finish
