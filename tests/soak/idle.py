#!/usr/bin/env python3
"""idle.py - thousands of idle connections: their memory, an ordinary client meanwhile, and the cut.

    idle.py --url http://127.0.0.1:PORT --pid PID --timeout T [--connections 5000] [--hold 20]

Opens CONNECTIONS TCP connections that send nothing, checks that they are
all held, then for HOLD seconds an ordinary client (one keep-alive
connection, GET /healthz and POST /v1/embed in turn) measures its latency.
RSS is read from /proc/PID before, while held, and after tripletd cut them
(it must, once --timeout T passes). Raises RLIMIT_NOFILE as far as allowed.

Prints the figures (one JSON line last); exit 1 if a connection was refused,
the ordinary client failed or got p99 >= 100 ms, the idle connections were
not all cut within T + 15 s, or the process is gone.
"""
import argparse, http.client, json, os, resource, select, socket, time
from urllib.parse import urlparse


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--hold", type=float, default=20)
    args = ap.parse_args()
    u = urlparse(args.url)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    fails = []
    time.sleep(1)
    rss0, fd0 = rss_kib(args.pid), fds(args.pid)
    socks, refused, t_open = [], 0, time.time()
    for _ in range(args.connections):
        try:
            s = socket.create_connection((u.hostname, u.port), timeout=10)
            socks.append(s)
        except OSError:
            refused += 1
    t_open = time.time() - t_open
    # the server has accepted them all once its fd count says so
    for _ in range(100):
        if fds(args.pid) - fd0 >= len(socks):
            break
        time.sleep(0.1)
    held = fds(args.pid) - fd0
    rss1 = rss_kib(args.pid)
    per = (rss1 - rss0) * 1024 / max(1, held)
    print(f"idle: {len(socks)} connections opened in {t_open:.1f} s ({refused} refused), {held} held by tripletd; "
          f"RSS {rss0 / 1024:.1f} MiB -> {rss1 / 1024:.1f} MiB, {per / 1024:.1f} KiB per idle connection")
    if refused:
        fails.append(f"{refused} connections refused")
    # an ordinary client meanwhile
    body = json.dumps({"inputs": [[0.5] * 784]})
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    lat, errors, n = [], 0, 0
    stop = time.time() + args.hold
    while time.time() < stop:
        t0 = time.perf_counter()
        try:
            if n % 2:
                c.request("POST", "/v1/embed", body, {"Content-Type": "application/json"})
            else:
                c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors += 1
        except OSError:
            errors += 1
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        lat.append(time.perf_counter() - t0)
        n += 1
        time.sleep(0.01)
    c.close()
    p50, p99, mx = (round(v * 1000, 2) for v in (pct(lat, 50), pct(lat, 99), max(lat)))
    print(f"ordinary client meanwhile: {n} requests, {errors} failed, latency p50 {p50} ms, p99 {p99} ms, max {mx} ms")
    if errors:
        fails.append(f"the ordinary client had {errors} failures")
    if not p99 < 100:
        fails.append(f"the ordinary client's p99 is {p99} ms (want < 100)")
    # tripletd cuts them once --timeout passes with nothing received
    t_cut, deadline = time.time(), time.time() + args.timeout + 15
    pending = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending and time.time() < deadline:
        for fd, _ in poller.poll(500):
            try:
                gone = pending[fd].recv(1) == b""
            except OSError:
                gone = True
            if gone:
                poller.unregister(fd)
                del pending[fd]
    cut_s = time.time() - t_cut
    time.sleep(1)
    rss2, fd2 = rss_kib(args.pid), fds(args.pid)
    print(f"cut: {len(socks) - len(pending)} of {len(socks)} closed by tripletd {cut_s:.1f} s after the client "
          f"stopped ({args.hold + cut_s:.1f} s after they opened; --timeout {args.timeout:.0f}); "
          f"RSS then {rss2 / 1024:.1f} MiB, fds {fd2} (before: {fd0})")
    if pending:
        fails.append(f"{len(pending)} idle connections not cut within --timeout + 15 s")
    for s in socks:
        s.close()
    alive = os.path.exists(f"/proc/{args.pid}")
    if not alive:
        fails.append("tripletd is gone")
    print(json.dumps({"connections": len(socks), "held": held, "rss_before_kib": rss0, "rss_held_kib": rss1,
                      "kib_per_conn": round(per / 1024, 2), "rss_after_kib": rss2, "ordinary_n": n,
                      "ordinary_p50_ms": p50, "ordinary_p99_ms": p99, "ordinary_max_ms": mx, "cut": len(socks) - len(pending)}))
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
