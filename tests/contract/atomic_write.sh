#!/usr/bin/env bash
# atomic_write.sh - `tripletctl index` and `tripletctl train` killed (SIGKILL) at every write, fsync and
# rename of their output and at random times, then tripletd reloaded on the target path: the target is
# always the old complete file or the new complete one (byte for byte), the server serves exactly that
# file after SIGHUP, no reload fails, and a killed writer leaves at most a hidden temporary file that
# nothing loads. The kill points come from strace's syscall fault injection, so they are exact.
. "$(dirname "$0")/../lib.sh"
set -o pipefail
# LeakSanitizer stops the world with ptrace, which a traced process cannot do (SANITIZE=1 builds)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
FASHION=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
FMODEL=$ROOT/models/fashion-mnist.safetensors
[[ -f $FASHION/train-images-idx3-ubyte.gz ]] || skip "Fashion-MNIST is missing (apt-get install dataset-fashion-mnist)"
command -v strace >/dev/null || skip "strace is missing (apt-get install strace)"
strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace refused)"
dir=$tmp/out
mkdir -p "$dir"
sha() { sha256sum "$1" | cut -d' ' -f1; }
reloads() { grep -c "SIGHUP: reload" "$tmp/srv.err"; }

# start_on FILE ARGS...: tripletd serving the file(s) named in ARGS; $srv, $url
start_on() {
    rm -f "$tmp/port"
    : >"$tmp/srv.err"
    "$TRIPLETD" --host 127.0.0.1 --port 0 --port-file "$tmp/port" --log-format text --log-flush 0 --threads 1 "$@" \
        >/dev/null 2>"$tmp/srv.err" &
    srv=$!
    pids+=($srv)
    for _ in $(seq 200); do [[ -s $tmp/port ]] && break; sleep 0.05; done
    [[ -s $tmp/port ]] || { bad "tripletd did not start: $(head -3 "$tmp/srv.err")"; finish; }
    url=http://127.0.0.1:$(cat "$tmp/port")
}

# check_after WHAT TARGET ROUTE: the target is the old or the new file; after SIGHUP the server reports
# that file's sha256 on ROUTE and logged no failed reload.
check_after() {
    local what=$1 target=$2 route=$3 h before got=""
    h=$(sha "$target")
    if [[ $h == "$old_sha" ]]; then
        ok "$what: the target is the old complete file"
    elif [[ $h == "$new_sha" ]]; then
        ok "$what: the target is the new complete file"
    else
        bad "$what: the target is neither the old nor the new file (torn: $(stat -c %s "$target") bytes)"
    fi
    before=$(reloads)
    kill -HUP "$srv"
    for _ in $(seq 200); do (($(reloads) > before)) && break; sleep 0.05; done
    got=$(curl -s "$url$route" | grep -o "\"sha256\":\"[0-9a-f]*\"" | head -1 | cut -d'"' -f4)
    [[ $got == "$h" ]] && ok "$what: after SIGHUP the server serves exactly that file" ||
        bad "$what: the server serves $got, the file is $h"
    ! grep -q "reload failed" "$tmp/srv.err" && ok "$what: no failed reload" ||
        bad "$what: $(grep "reload failed" "$tmp/srv.err" | tail -1)"
}

# kill_runs NAME TARGET ROUTE CMD...: runs CMD (which writes TARGET) killed at each write, fsync and
# rename a complete run makes, and at three random times; after each, check_after. TARGET starts as
# the old file each time.
kill_runs() {
    local name=$1 target=$2 route=$3 nw points=() p k
    shift 3
    strace -f -qq -e trace=write -o "$tmp/trace" "$@" >/dev/null 2>&1 || bad "$name: a traced complete run failed"
    nw=$(grep -c "write(" "$tmp/trace")
    for k in $(seq "$nw"); do points+=("write:$k"); done
    points+=("fsync:1" "rename:1" "random" "random" "random")
    for p in "${points[@]}"; do
        cp "$old" "$dir/.restore" && mv "$dir/.restore" "$target"
        rm -f "$dir"/.*.tmp-*
        if [[ $p == random ]]; then
            "$@" >/dev/null 2>&1 &
            k=$!
            sleep "$(awk -v s="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + (s % 200) / 100 }')"
            kill -KILL "$k" 2>/dev/null
            wait "$k" 2>/dev/null
        else
            (strace -f -qq -o /dev/null -e trace="${p%%:*}" -e inject="${p%%:*}:signal=KILL:when=${p##*:}" "$@") \
                >/dev/null 2>&1
        fi
        check_after "$name killed at $p" "$target" "$route"
        if [[ $p == fsync:1 ]]; then
            # killed after the whole temporary file was written, before it was renamed
            compgen -G "$dir/.$(basename "$target").tmp-*" >/dev/null && ok "$name killed at fsync left a hidden temporary file" ||
                bad "$name killed at fsync: no temporary file, so the kill was not mid-write"
        fi
    done
    # a complete run renames its temporary file away and leaves nothing behind
    rm -f "$dir"/.*.tmp-*
    "$@" >/dev/null 2>&1 || bad "$name: a complete run failed"
    [[ $(sha "$target") == "$new_sha" ]] && ok "$name: a complete run writes the new file" || bad "$name: complete run"
    [[ -z $(ls -A "$dir" | grep -v "^$(basename "$target")$") ]] && ok "$name: a complete run leaves no temporary file" ||
        bad "$name: left $(ls -A "$dir")"
    [[ $(stat -c %a "$target") == 644 ]] && ok "$name: the file is mode 644" || bad "$name: mode $(stat -c %a "$target")"
}

# tripletctl index: a 1,000-row gallery replaced by a 10,000-row one with images (about 13 MB)
IDX=("$TRIPLETCTL" index --model "$FMODEL" --data "$FASHION" --keep-images --quiet)
old=$tmp/old.gallery new=$tmp/new.gallery
"${IDX[@]}" --limit 1000 --out "$old" && "${IDX[@]}" --limit 10000 --out "$new" || { bad "tripletctl index failed"; finish; }
old_sha=$(sha "$old") new_sha=$(sha "$new")
cp "$old" "$dir/gallery.safetensors"
start_on --model "$FMODEL" --gallery "$dir/gallery.safetensors"
kill_runs index "$dir/gallery.safetensors" /v1/gallery "${IDX[@]}" --limit 10000 --out "$dir/gallery.safetensors"
kill "$srv"
wait "$srv" 2>/dev/null

# tripletctl train: a 784-1024-256 model (4 MB) replaced by one trained with another seed
rm -rf "$dir" && mkdir -p "$dir"
TRN=("$TRIPLETCTL" train --data "$FASHION" --arch 784-1024-256 --epochs 1 --steps-per-epoch 1 --quiet)
old=$tmp/old.model new=$tmp/new.model
"${TRN[@]}" --seed 1 --out "$old" && "${TRN[@]}" --seed 2 --out "$new" || { bad "tripletctl train failed"; finish; }
old_sha=$(sha "$old") new_sha=$(sha "$new")
cp "$old" "$dir/model.safetensors"
start_on --model "$dir/model.safetensors"
kill_runs train "$dir/model.safetensors" /v1/model "${TRN[@]}" --seed 2 --out "$dir/model.safetensors"
finish
