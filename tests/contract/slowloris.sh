#!/usr/bin/env bash
# slowloris.sh - the whole-request deadline: headers trickled a byte at a time, a body trickled the same
# way and idle connections are all cut once --timeout passes (libmicrohttpd's own timeout is an idle one:
# it never cuts a trickle), while an ordinary client keeps getting answers; the RSS the held connections
# cost is printed. No timing bound is asserted but the cut itself (within --timeout plus a generous slack).
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
start_server --timeout 2
spid=${pids[-1]}
if python3 - "$port" "$spid" <<'PY'; then ok "trickled headers, trickled bodies and idle connections cut after --timeout"; else bad "slow clients not cut"; fi
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
def conn():
    s = socket.socket(); s.settimeout(5); s.connect(("127.0.0.1", port)); s.setblocking(False); return s
before = rss_kib()
head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
body_head = b"POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
tricklers = [[conn(), head, 0] for _ in range(40)]
bodies = [conn() for _ in range(20)]
for s in bodies: s.send(body_head)
bodies = [[s, b"[" * 4000, 0] for s in bodies]
idle = [conn() for _ in range(200)]
time.sleep(0.3)
held = rss_kib()
print(f"RSS {before} KiB before, {held} KiB with 260 slow or idle connections "
      f"({(held - before) / 260:.1f} KiB each)")
def closed(s):
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
lat, t0, cut_at = [], time.time(), {}
ordinary = socket.create_connection(("127.0.0.1", port), timeout=10)
while time.time() - t0 < 15:
    for i, t in enumerate(tricklers + bodies):
        if id(t) in cut_at: continue
        s, data, k = t
        try:
            if k < len(data): s.send(data[k:k + 1]); t[2] += 1
        except OSError:
            cut_at[id(t)] = time.time() - t0; continue
        if closed(s): cut_at[id(t)] = time.time() - t0
    for s in idle:
        if id(s) not in cut_at and closed(s): cut_at[id(s)] = time.time() - t0
    a = time.time()
    ordinary.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = ordinary.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200"), f"ordinary client got {reply[:40]!r}"
    lat.append(time.time() - a)
    if len(cut_at) == len(tricklers) + len(bodies) + len(idle): break
    time.sleep(0.25)
n = len(tricklers) + len(bodies) + len(idle)
lat.sort()
print(f"{len(cut_at)} of {n} cut, the last after {max(cut_at.values(), default=0):.1f} s; "
      f"ordinary client: {len(lat)} answers, p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms")
assert len(cut_at) == n, f"{n - len(cut_at)} slow or idle connections still open after 15 s (--timeout 2)"
assert min(cut_at.values()) > 1.0, "a connection was cut before --timeout"
PY
curl -sf "$url/healthz" >/dev/null && ok "still serving" || bad "not serving after the slow clients"
cut=$(curl -sf "$url/metrics" | awk '$1 == "tripletd_connections_cut_total" {print $2}')
[[ ${cut:-0} -ge 60 ]] && ok "/metrics counts $cut cut connections" || bad "tripletd_connections_cut_total is '${cut}', not >= 60 (the tricklers; libmicrohttpd cuts the idle ones itself)"
finish
