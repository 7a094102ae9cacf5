#!/usr/bin/env bash
# tests/cli/top.sh - `tripletctl top` against a real tripletd: stdout not a terminal gives one
# key=value line per refresh with the server's figures, a terminal a redrawn screen; a wrong key
# is exit 1 with the 401 message, no server exit 2.
. "$(dirname "$0")/../lib.sh"
start_server
for _ in $(seq 25); do curl -sf -o /dev/null -H "Authorization: Bearer $KEY" "$url/v1/model" || bad "GET /v1/model"; done
curl -s -o /dev/null "$url/v1/model" # one 401
sleep 1.1                            # the requests above are in a complete second now
expect "top --count 2" 0 "$TRIPLETCTL" top --url "$url" --api-key "$KEY" --count 2 --interval 0.2
lines=$(wc -l <"$tmp/out")
[[ $lines == 2 ]] && ok "two refreshes, two lines" || bad "want 2 lines, got $lines: $(cat "$tmp/out")"
first=$(head -1 "$tmp/out")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$first"; }
[[ $(field requests) -ge 26 ]] && ok "requests=$(field requests) counts the 26 sent" || bad "requests: $first"
[[ $(field status) == *"200:"* && $(field status) == *"401:1"* ]] && ok "status=$(field status)" || bad "status: $first"
[[ $(field errors) -ge 1 ]] && ok "errors=$(field errors)" || bad "errors: $first"
[[ $first =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\ rps=[0-9.]+\ p50_ms=[0-9.]+\ p99_ms=[0-9.]+\ in_flight=[0-9]+ ]] \
    && ok "line format" || bad "line format: $first"
# on a terminal (script(1) gives it one): the screen is cleared and redrawn, with the routes table
if command -v script >/dev/null 2>&1; then
    script -qc "'$TRIPLETCTL' top --url '$url' --api-key '$KEY' --count 1" /dev/null >"$tmp/tty" 2>&1
    if grep -q $'\e\[H\e\[2J' "$tmp/tty" && grep -q "ROUTE" "$tmp/tty" && grep -q "/v1/model" "$tmp/tty"; then
        ok "terminal: redrawn in place with the routes table"
    else
        bad "terminal output: $(head -c 300 "$tmp/tty" | cat -v)"
    fi
else
    skip_part "terminal mode (no script(1))"
fi
expect "top --count 1 (no key)" 1 "$TRIPLETCTL" top --url "$url" --count 1
has "a 401 names the problem" "$tmp/err" "HTTP 401"
expect "top against no server" 2 "$TRIPLETCTL" top --url "http://127.0.0.1:1" --count 1
expect "top --interval 0" 2 "$TRIPLETCTL" top --interval 0
expect "top --help" 0 "$TRIPLETCTL" top --help
has "help names --count" "$tmp/out" "--count N"
finish
