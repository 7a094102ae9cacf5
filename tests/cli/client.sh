#!/usr/bin/env bash
# tests/cli/client.sh - `tripletctl client` against a real tripletd on port 0:
# GET and POST routes, body from argument/@file/stdin, API key, HTTP errors
# (exit 1 with the error JSON), unreachable and silent servers (exit 2).
KEY=sesame
. "$(dirname "$0")/../lib.sh"

# Run the client: sets $rc, $out (stdout) and $err (stderr).
cl() {
    "$TRIPLETCTL" client "$@" >"$tmp/out" 2>"$tmp/err" <"${CL_STDIN:-/dev/null}"
    rc=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}
# Evaluate a Python expression over the JSON in $out (bound to j): exit 0 when true.
jtrue() { python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" <<<"$out" 2>/dev/null; }
check() { # name, condition (shell command)
    if eval "$2"; then ok "$1"; else bad "$1 (rc=$rc) stdout: ${out:0:300} stderr: ${err:0:300}"; fi
}

start_server
K=(--url "$url" --api-key sesame)

cl --url "$url" healthz
check "GET healthz (no key needed)" '[[ $rc == 0 ]] && jtrue "j == {\"status\": \"ok\"}"'
cl --url "$url/" /readyz
check "GET /readyz with slashes on both sides" '[[ $rc == 0 ]]'

cl --api-key sesame "$url/v1/model?pretty=1"
check "ROUTE as a whole URL with a query string: GET" '[[ $rc == 0 ]] && jtrue "j[\"input_dim\"] == 784"'
cl "${K[@]}" v1/model
check "GET v1/model with the key" '[[ $rc == 0 ]] && jtrue "j[\"input_dim\"] == 784 and j[\"output_dim\"] == 32"'
[[ $out == *$'\n'* ]] && ok "JSON answers are indented" || bad "JSON answers are indented: $out"
TRIPLETD_URL=$url TRIPLETD_API_KEY=sesame cl v1/model
check "TRIPLETD_URL and TRIPLETD_API_KEY from the environment" '[[ $rc == 0 ]] && jtrue "j[\"output_dim\"] == 32"'

cl --url "$url" v1/model
check "missing key: exit 1 and the 401 error JSON on stdout" \
    '[[ $rc == 1 ]] && jtrue "j[\"error\"][\"code\"] == 401 and j[\"error\"][\"type\"] == \"unauthorized\"" && [[ $err == *"HTTP 401"* ]]'
cl --url "$url" --api-key wrong v1/model
check "wrong key: exit 1 with 401" '[[ $rc == 1 ]] && jtrue "j[\"error\"][\"code\"] == 401"'

cl --url "$url" --raw metrics
check "GET metrics: Prometheus text printed as is" '[[ $rc == 0 && $out == *"# TYPE"* ]]'

# A 784-value input; its embedding from the server must equal `tripletctl embed` on the same row.
vec=$(python3 -c 'print("[" + ",".join("%.3f" % ((i * 37 % 101) / 101.0) for i in range(784)) + "]")')
body="{\"inputs\": [$vec]}"
local_emb=$("$TRIPLETCTL" embed --model "$MODEL" <<<"$vec" 2>"$tmp/embed.err")
cl "${K[@]}" v1/embed "$body"
check "POST v1/embed inline: one 32-d embedding" \
    '[[ $rc == 0 ]] && jtrue "j[\"dim\"] == 32 and len(j[\"embeddings\"]) == 1 and len(j[\"embeddings\"][0]) == 32"'
if [[ -n $local_emb ]]; then
    export LOCAL_EMB=$local_emb
    check "server embedding equals tripletctl embed (1e-5)" \
        'jtrue "(lambda e: len(e) == 32 and all(abs(x - y) <= 1e-5 for x, y in zip(j[\"embeddings\"][0], e)))(json.loads(__import__(\"os\").environ[\"LOCAL_EMB\"]))"'
else
    bad "tripletctl embed produced nothing: $(cat "$tmp/embed.err")"
fi
first=$out
printf '%s' "$body" >"$tmp/body.json"
cl "${K[@]}" v1/embed "@$tmp/body.json"
check "POST v1/embed @file gives the same answer" '[[ $rc == 0 && $out == "$first" ]]'
CL_STDIN=$tmp/body.json cl "${K[@]}" v1/embed -
check "POST v1/embed from stdin (-) gives the same answer" '[[ $rc == 0 && $out == "$first" ]]'
cl "${K[@]}" --raw "v1/embed" "$body"
check "--raw prints the body unindented" '[[ $rc == 0 && $out != *$'"'"'\n'"'"'* ]] && jtrue "j[\"dim\"] == 32"'

cl "${K[@]}" v1/distance '{"a": [1, 0], "b": [0, 1], "embed": false, "metric": "sqeuclidean"}'
check "POST v1/distance (embed false): distance 2" '[[ $rc == 0 ]] && jtrue "abs(j[\"distances\"][0] - 2) < 1e-9"'

cl "${K[@]}" v1/embed '{"inputs": [[1, 2, 3]]}'
check "wrong dimension: exit 1, 422 invalid_input naming the field" \
    '[[ $rc == 1 ]] && jtrue "j[\"error\"][\"code\"] == 422 and j[\"error\"][\"type\"] == \"invalid_input\" and j[\"error\"][\"field\"].startswith(\"inputs\")"'
cl "${K[@]}" v1/embed
check "POST without a body sends {}: 422 from the server" '[[ $rc == 1 ]] && jtrue "j[\"error\"][\"code\"] == 422"'
cl "${K[@]}" v1/no-such-route '{}'
check "unknown route: exit 1 with 404" '[[ $rc == 1 ]] && jtrue "j[\"error\"][\"code\"] == 404"'
cl "${K[@]}" --method GET v1/embed
check "--method GET on a POST route: 405" '[[ $rc == 1 ]] && jtrue "j[\"error\"][\"code\"] == 405"'

cl "${K[@]}" v1/embed '{"inputs": [1, 2'
check "invalid JSON body: usage error 2, nothing sent" '[[ $rc == 2 && -z $out && $err == *"not valid JSON"* ]]'
cl "${K[@]}" v1/embed "@$tmp/missing.json"
check "missing @file: exit 2 naming it" '[[ $rc == 2 && $err == *missing.json* ]]'
cl "${K[@]}"
check "no route: usage, exit 2" '[[ $rc == 2 && $err == *usage* ]]'
cl "${K[@]}" --timeout soon healthz
check "bad --timeout: exit 2" '[[ $rc == 2 && $err == *--timeout* ]]'
cl --url ftp://x healthz
check "non-http URL: exit 2" '[[ $rc == 2 && $err == *--url* ]]'
cl "${K[@]}" --bogus healthz
check "unknown option: exit 2" '[[ $rc == 2 && $err == *--bogus* ]]'
cl --help
check "--help: exit 0, usage on stdout" '[[ $rc == 0 && $out == *"tripletctl client"* ]]'

# A server that accepts connections but never answers: --timeout gives up, exit 2.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(30)' "$tmp/silent.port" &
pids+=($!)
for _ in $(seq 50); do [[ -s $tmp/silent.port ]] && break; sleep 0.1; done
t0=$SECONDS
cl --url "http://127.0.0.1:$(cat "$tmp/silent.port")" --timeout 1 healthz
check "silent server: --timeout 1 gives up with exit 2" '[[ $rc == 2 && $((SECONDS - t0)) -le 5 && $err == *"timed out"* ]]'

# Stop tripletd: its port now refuses connections.
kill "${pids[0]}" 2>/dev/null
wait "${pids[0]}" 2>/dev/null
cl --url "$url" healthz
check "server gone: connection failure is exit 2" '[[ $rc == 2 && -z $out && $err == *"$url"* ]]'

finish
