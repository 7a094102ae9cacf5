#!/usr/bin/env bash
# tests/e2e/gallery_lease.sh - a gallery file written while tripletd maps it:
# truncated, or rewritten in place at the same size, the server keeps
# answering from a private copy of what it loaded (a read lease, lib/fmap.h)
# until a reload maps the new file; untouched, replicas share its pages.
# Exits 77 when the read lease cannot be taken here (the old rule applies).
. "$(dirname "$0")/../lib.sh"
pick_python json || skip "no python3"
command -v curl >/dev/null || skip "no curl"

# Two data sets of the same shape (300 rows, same ids and labels), so their
# galleries have the same size and differ only in the embeddings.
$PY - "$tmp" <<'EOF'
import random, sys
d = sys.argv[1]
for name, seed in (("a", 1), ("b", 2)):
    rnd = random.Random(seed)
    with open(f"{d}/{name}.csv", "w") as f:
        f.write("id," + ",".join(f"p{i}" for i in range(784)) + ",label\n")
        for i in range(300):
            f.write(f"item{i}," + ",".join(str(rnd.randint(0, 255)) for _ in range(784)) + f",{i % 4}\n")
rnd = random.Random(3)
qs = [[rnd.randint(0, 255) for _ in range(784)] for _ in range(3)]
open(f"{d}/q.json", "w").write('{"queries": %s, "k": 5}' % qs)
EOF
for g in a b; do
    "$TRIPLETCTL" index --model "$MODEL" --data "$tmp/$g.csv" --out "$tmp/$g.safetensors" --quiet >/dev/null ||
        { bad "tripletctl index $g"; finish; }
done
[[ $(stat -c %s "$tmp/a.safetensors") == "$(stat -c %s "$tmp/b.safetensors")" ]] ||
    { bad "the two galleries differ in size"; finish; }

declare -A pid_of url_of
serve() { # NAME GALLERY: a tripletd whose stderr is $tmp/NAME.err
    rm -f "$tmp/$1.port"
    "$TRIPLETD" --model "$MODEL" --gallery "$2" --host 127.0.0.1 --port 0 --port-file "$tmp/$1.port" \
        --api-key "$KEY" --log-format off --threads 2 >/dev/null 2>"$tmp/$1.err" &
    pids+=($!)
    pid_of[$1]=$!
    for _ in $(seq 200); do [[ -s $tmp/$1.port ]] && break; sleep 0.05; done
    [[ -s $tmp/$1.port ]] || { bad "tripletd $1 did not start: $(head -c 300 "$tmp/$1.err")"; finish; }
    url_of[$1]=http://127.0.0.1:$(cat "$tmp/$1.port")
    local why
    why=$(grep -o 'no read lease ([^)]*)' "$tmp/$1.err")
    [[ -z $why ]] || skip "tripletd could not take a read lease on $2 here: $why"
}
# search NAME: the results (ids and distances) of the queries, one line
search() {
    curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d @"$tmp/q.json" \
        "${url_of[$1]}/v1/search" | $PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["results"]))' 2>/dev/null
}
healthy() { [[ $(curl -s "${url_of[$1]}/healthz") == *'"ok"'* ]]; }
maps_file() { grep -qF " $2" "/proc/${pid_of[$1]}/maps" 2>/dev/null; } # NAME PATH: is PATH mapped?
# smaps NAME PATH FIELD: the FIELD (kB) of PATH's mapping in NAME's smaps
smaps() {
    $PY - "/proc/${pid_of[$1]}/smaps" "$2" "$3" <<'EOF'
import sys
path, field, inside, total = sys.argv[2], sys.argv[3] + ":", False, 0
for line in open(sys.argv[1]):
    parts = line.split()
    if "-" in parts[0] and len(parts) >= 5:
        inside = len(parts) >= 6 and parts[5] == path
    elif inside and parts[0] == field:
        total += int(parts[1])
print(total)
EOF
}
logged() { # NAME TEXT: wait (up to 10 s) for TEXT in NAME's log
    for _ in $(seq 100); do grep -qF -- "$2" "$tmp/$1.err" && return 0; sleep 0.1; done
    return 1
}
MSG="is being written: serving a private copy of the old one; reload to map the new file"

# (c) Untouched: two replicas map the same file, share its page-cache pages
# and hold no private copy; readers of the file break nothing.
cp "$tmp/a.safetensors" "$tmp/g1.safetensors"
serve r1 "$tmp/g1.safetensors"
serve r2 "$tmp/g1.safetensors"
serve ref_b "$tmp/b.safetensors"
want_a=$(search r1)
want_b=$(search ref_b)
[[ -n $want_a && $want_a != "$want_b" ]] && ok "search answers (gallery a differs from b)" || bad "search: '$want_a' / '$want_b'"
cat "$tmp/g1.safetensors" >/dev/null
cp "$tmp/g1.safetensors" "$tmp/g1.read"
for r in r1 r2; do
    if maps_file $r "$tmp/g1.safetensors"; then ok "$r maps the gallery file"; else bad "$r: the gallery file is not mapped"; fi
    # Shared_*: pages mapped by both replicas (dirty while the new file is not written back yet)
    shared=$(($(smaps $r "$tmp/g1.safetensors" Shared_Clean) + $(smaps $r "$tmp/g1.safetensors" Shared_Dirty)))
    anon=$(smaps $r "$tmp/g1.safetensors" Anonymous) priv=$(smaps $r "$tmp/g1.safetensors" Private_Dirty)
    if ((shared > 0 && anon == 0 && priv == 0)); then ok "$r shares the file's pages (${shared} kB, no private copy)"; else
        bad "$r: shared $shared kB, Anonymous $anon kB, Private_Dirty $priv kB"; fi
done
[[ $(search r2) == "$want_a" ]] && ok "r2 answers as r1" || bad "r2 answers differently"
grep -qF "$MSG" "$tmp/r1.err" && bad "a reader of the file broke the lease" || ok "readers leave the lease alone"

# (a) Truncated under both replicas. truncate(1) opens without blocking, so
# it fails (EAGAIN) while the leases are broken; retried, it runs once both
# servers have moved to their copies.
tries=0
until truncate -s 1000 "$tmp/g1.safetensors" 2>"$tmp/trunc.err"; do
    tries=$((tries + 1))
    ((tries < 300)) || break
    sleep 0.1
done
[[ $(stat -c %s "$tmp/g1.safetensors") == 1000 ]] && ok "truncate ran (after $tries refusals)" ||
    bad "the file was not truncated: $(cat "$tmp/trunc.err")"
for r in r1 r2; do
    if logged $r "gallery file $tmp/g1.safetensors $MSG"; then ok "$r logged the break"; else bad "$r: no break line: $(tail -n 3 "$tmp/$r.err")"; fi
    [[ $(search $r) == "$want_a" ]] && ok "$r: same answers after the truncation" || bad "$r: answers changed or failed"
    healthy $r && ok "$r: /healthz ok" || bad "$r: /healthz failed"
    maps_file $r "$tmp/g1.safetensors" && bad "$r still maps the truncated file" || ok "$r serves its private copy"
done
kill -HUP "${pid_of[r1]}"
logged r1 "SIGHUP: reload failed" && ok "reload of the truncated file refused" || bad "no reload failure logged"
[[ $(search r1) == "$want_a" ]] && ok "r1 still serves its copy after the refused reload" || bad "r1 after the refused reload"

# (b) Rewritten in place at the same size (cp opens with O_TRUNC and blocks
# until the server has moved to its copy): the old rows until a reload.
cp "$tmp/a.safetensors" "$tmp/g2.safetensors"
serve r3 "$tmp/g2.safetensors"
[[ $(search r3) == "$want_a" ]] && ok "r3 serves gallery a" || bad "r3 before the rewrite"
cp "$tmp/b.safetensors" "$tmp/g2.safetensors" && ok "cp over the mapped file" || bad "cp over the mapped file"
logged r3 "gallery file $tmp/g2.safetensors $MSG" && ok "r3 logged the break" || bad "r3: no break line"
[[ $(search r3) == "$want_a" ]] && ok "r3: old answers after the rewrite" || bad "r3: answers changed before a reload"
kill -HUP "${pid_of[r3]}"
logged r3 "SIGHUP: reloaded" && ok "r3 reloaded" || bad "r3: no reload: $(tail -n 3 "$tmp/r3.err")"
[[ $(search r3) == "$want_b" ]] && ok "r3 serves the new rows after SIGHUP" || bad "r3 after SIGHUP"
maps_file r3 "$tmp/g2.safetensors" && ok "r3 maps the new file" || bad "r3 does not map the new file"
# The lease taken by a reload over HTTP (another thread) signals the main thread too.
code=$(curl -s -o "$tmp/reload.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{}' "${url_of[r3]}/v1/admin/reload")
[[ $code == 200 ]] && ok "POST /v1/admin/reload" || bad "POST /v1/admin/reload: $code $(cat "$tmp/reload.json")"
n_before=$(grep -cF "$MSG" "$tmp/r3.err")
cp "$tmp/a.safetensors" "$tmp/g2.safetensors"
for _ in $(seq 100); do (($(grep -cF "$MSG" "$tmp/r3.err") > n_before)) && break; sleep 0.1; done
(($(grep -cF "$MSG" "$tmp/r3.err") > n_before)) && ok "the reloaded mapping's lease broke too" || bad "no second break line"
[[ $(search r3) == "$want_b" ]] && ok "r3: rows of the reload until the next one" || bad "r3 after the second rewrite"
healthy r3 && ok "r3: /healthz ok" || bad "r3: /healthz failed"
finish
