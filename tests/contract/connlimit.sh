#!/usr/bin/env bash
# connlimit.sh - --max-connections-per-ip and --max-connections: connections over a limit are closed at
# once (before any byte is read), other addresses keep getting answers, and closed connections give their
# places back. Clients use source addresses 127.0.0.1, .2 and .3 on loopback.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
start_server --max-connections-per-ip 4 --max-connections 6
if python3 - "$port" "$KEY" <<'PY'; then ok "per-address and total limits"; else bad "connection limits"; fi
import socket, sys, time
port, key = int(sys.argv[1]), sys.argv[2]
def conn(src):
    s = socket.socket(); s.settimeout(3); s.bind((src, 0)); s.connect(("127.0.0.1", port)); return s
def served(s):
    """One keep-alive request on s: True when a 200 comes back, False when the server closed it."""
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(4096)
        return data.startswith(b"HTTP/1.1 200")
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return False
a = [conn("127.0.0.1") for _ in range(4)]
assert all(served(s) for s in a), "the first 4 from 127.0.0.1"
extra = conn("127.0.0.1")
assert not served(extra), "a 5th connection from 127.0.0.1 was served"
b = [conn("127.0.0.2") for _ in range(2)]
assert all(served(s) for s in b), "127.0.0.2 under its own limit"
c = conn("127.0.0.3")
assert not served(c), "a 7th connection in total was served"
for s in a + [extra, c]: s.close()
time.sleep(0.5)
d = [conn("127.0.0.1") for _ in range(3)]
assert all(served(s) for s in d), "closed connections did not give their places back"
print("ok: 4 per address, 6 in total, places given back")
PY
curl -sf "$url/healthz" >/dev/null && ok "still serving after the refusals" || bad "not serving after the refusals"
finish
