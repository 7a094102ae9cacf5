#!/usr/bin/env bash
# keys.sh - --api-keys-file: several named keys valid at once; SIGHUP reloads the file (a removed key stops
# working at once, an added one starts); the key's name (never the key) in the access log; a per-key
# counter in /metrics; bad files refused; a file readable by others warned about; --api-key keeps working.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
kf=$tmp/keys
printf '# comment\nalice:alice-secret-123\nbob:bob-secret-4567\n\nplain-key-no-name\n' >"$kf"
chmod 600 "$kf"
rm -f "$tmp/port"
"$TRIPLETD" --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$tmp/port" --api-keys-file "$kf" \
    --log-format text --log-flush 0 --threads 2 >"$tmp/srv.out" 2>"$tmp/srv.err" &
pids+=($!)
srv=$!
for _ in $(seq 200); do [[ -s $tmp/port ]] && break; sleep 0.05; done
url=http://127.0.0.1:$(cat "$tmp/port")
status() { curl -s -o /dev/null -w '%{http_code}' ${1:+-H "Authorization: Bearer $1"} "$url/v1/model"; }
[[ $(status alice-secret-123) == 200 ]] && ok "alice's key works" || bad "alice's key"
[[ $(status bob-secret-4567) == 200 ]] && ok "bob's key works" || bad "bob's key"
[[ $(status plain-key-no-name) == 200 ]] && ok "an unnamed key works" || bad "unnamed key"
[[ $(status wrong-secret-000) == 401 ]] && ok "a wrong key -> 401" || bad "wrong key"
[[ $(status "") == 401 ]] && ok "no key -> 401" || bad "no key"
[[ $(status alice-secret-12) == 401 ]] && ok "a prefix of a key -> 401" || bad "prefix accepted"
curl -sf "$url/healthz" >/dev/null && ok "/healthz needs no key" || bad "/healthz"
sleep 0.2
grep -q "/v1/model 200 .* key=alice" "$tmp/srv.err" && ok "access log names alice's key" || bad "no key=alice in the log: $(grep v1/model "$tmp/srv.err" | head -2)"
grep -q "key=line5" "$tmp/srv.err" && ok "an unnamed key is named by its line" || bad "no key=line5"
! grep -q "alice-secret\|bob-secret\|plain-key-no-name" "$tmp/srv.err" && ok "no key in the log" || bad "a key is in the log"
curl -sf "$url/metrics" >"$tmp/m"
grep -q 'tripletd_requests_by_key_total{key="alice"} 1' "$tmp/m" && ok "per-key counter for alice" || bad "per-key counter: $(grep by_key "$tmp/m")"
! grep -q 'secret' "$tmp/m" && ok "no key in /metrics" || bad "key in /metrics"
# rotation: bob removed, carol added, alice kept
printf 'alice:alice-secret-123\ncarol:carol-secret-89\n' >"$kf"
kill -HUP "$srv"
for _ in $(seq 50); do [[ $(status carol-secret-89) == 200 ]] && break; sleep 0.1; done
[[ $(status carol-secret-89) == 200 ]] && ok "after SIGHUP carol's key works" || bad "carol's key after SIGHUP"
[[ $(status bob-secret-4567) == 401 ]] && ok "after SIGHUP bob's removed key -> 401" || bad "bob's key still works"
[[ $(status alice-secret-123) == 200 ]] && ok "alice's kept key still works" || bad "alice's key after SIGHUP"
# a broken file on SIGHUP keeps the old keys
printf 'bad name:short\n' >"$kf"
kill -HUP "$srv"; sleep 0.5
[[ $(status carol-secret-89) == 200 ]] && ok "a bad keys file on SIGHUP keeps the old keys" || bad "keys lost after a bad reload"
grep -q "API keys reload failed" "$tmp/srv.err" && ok "the bad reload is logged" || bad "bad reload not logged"
# refusals at start, and the warning for a file others can read
printf 'x:1234567\n' >"$tmp/short"; chmod 600 "$tmp/short"
expect "a short key refused" 2 "$TRIPLETD" --model "$MODEL" --port 0 --api-keys-file "$tmp/short"
has "short key message" "$tmp/err" "line 1: a key needs at least 8 characters"
printf 'a:12345678\na:87654321\n' >"$tmp/dup"; chmod 600 "$tmp/dup"
expect "a duplicate name refused" 2 "$TRIPLETD" --model "$MODEL" --port 0 --api-keys-file "$tmp/dup"
has "duplicate name message" "$tmp/err" 'the name "a" is used twice'
expect "--api-keys-file with --api-key refused" 2 "$TRIPLETD" --model "$MODEL" --port 0 --api-keys-file "$tmp/dup" --api-key k12345678
printf 'open:open-secret-1\n' >"$tmp/open"; chmod 644 "$tmp/open"
rm -f "$tmp/port2"
"$TRIPLETD" --model "$MODEL" --host 127.0.0.1 --port 0 --port-file "$tmp/port2" --api-keys-file "$tmp/open" --threads 1 \
    >/dev/null 2>"$tmp/open.err" &
pids+=($!)
for _ in $(seq 200); do [[ -s $tmp/port2 ]] && break; sleep 0.05; done
grep -q "readable by others than its owner (mode 644)" "$tmp/open.err" && ok "a file others can read is warned about" || bad "no warning: $(head -3 "$tmp/open.err")"
finish
