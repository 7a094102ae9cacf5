#!/usr/bin/env python3
"""soak.py - drive a running tripletd for a while and watch its resources.

    soak.py --url http://127.0.0.1:PORT --pid PID --seconds 600 --out DIR
            [--connections 64] [--reload-every 30] [--hostile 0.01]
            [--warmup 60] [--max-growth 0.05] [--images DIR]

CONNECTIONS threads, each with one keep-alive connection, send a mix of
requests over every route (GET and POST); about HOSTILE of them are hostile
(malformed JSON, a body over --max-body, undecodable images, wrong types)
and must get a 4xx. Every RELOAD_EVERY seconds the daemon gets SIGHUP.
Every second RSS, open fds and threads are read from /proc/PID.

Writes DIR/soak.csv (one row a second) and DIR/soak.svg (plain SVG), prints
a summary; exit 1 on any 5xx, transport failure, unexpected status, RSS
growth after the warm-up over MAX_GROWTH (a fraction of the RSS at its end),
or if the process died.
"""
import argparse, base64, http.client, json, os, random, signal, sys, threading, time
from urllib.parse import urlparse

D_IN = 784


def vec(rng, n=D_IN):
    return [round(rng.random(), 3) for _ in range(n)]


def good_requests(rng, images, n_gallery):
    """(method, path, body or None) for every route with a valid request."""
    v = lambda: vec(rng)
    reqs = [
        ("GET", "/healthz", None), ("GET", "/readyz", None), ("GET", "/metrics", None),
        ("GET", "/openapi.json", None), ("GET", "/", None), ("GET", "/console.js", None),
        ("GET", "/v1/model", None), ("GET", "/v1/stats", None), ("GET", "/v1/gallery", None),
        ("GET", "/v1/gallery/projection", None),
        ("GET", f"/v1/gallery/items/{rng.randrange(n_gallery)}", None),
        ("GET", f"/v1/gallery/items/{rng.randrange(n_gallery)}/image", None),
        ("POST", "/v1/embed", {"inputs": [v(), v()]}),
        ("POST", "/v1/embeddings", {"input": [v()], "model": "m"}),
        ("POST", "/v1/distance", {"a": [v()], "b": [v()], "metric": "cosine"}),
        ("POST", "/v1/loss/triplet", {"anchors": [v()], "positives": [v()], "negatives": [v()]}),
        ("POST", "/v1/loss/pair", {"a": [v(), v()], "b": [v(), v()], "labels": [1, 0]}),
        ("POST", "/v1/loss/infonce", {"a": [v(), v()], "b": [v(), v()], "temperature": 0.5}),
        ("POST", "/v1/mine", {"inputs": [v(), v(), v(), v()], "labels": [0, 1, 0, 1], "strategy": "batch-hard"}),
        ("POST", "/v1/search", {"queries": [v()], "k": 5}),
    ]
    for name, data in images[:3]:
        reqs.append(("POST", "/v1/embed", {"inputs": [{"image": data}]}))
        reqs.append(("POST", "/v1/search", {"queries": [{"image": data}], "k": 3}))
    return reqs


def hostile_requests(rng, bad_images, max_body):
    junk = [
        b'{"inputs": [[1, 2, 3', b'{"inputs": "\\', b"\xff\xfe\x00garbage", b'[' * 5000,
        b'{"inputs": [[1e999]]}', b'{"anchors": {}, "positives": 1}', b'{"k": -1, "queries": []}',
        b'{"inputs": [' + b"[0]," * 2000 + b"[0]]}",
    ]
    reqs = [("POST", rng.choice(["/v1/embed", "/v1/search", "/v1/mine", "/v1/distance"]), j) for j in junk]
    reqs.append(("POST", "/v1/embed", b'{"inputs": [' + b"0," * (max_body // 2 + 16) + b"0]}"))
    for name, data in bad_images:
        reqs.append(("POST", "/v1/embed", json.dumps({"inputs": [{"image": data}]}).encode()))
    reqs.append(("GET", "/v1/gallery/items/999999999", None))
    reqs.append(("GET", "/v1/no-such-route", None))
    return reqs


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_status, self.fail, self.unexpected, self.n5xx = {}, 0, 0, 0
        self.near_reload_fail, self.examples = 0, []
        self.total = self.hostile = 0

    def note(self, ex):
        if len(self.examples) < 10:
            self.examples.append(ex)


def worker(args, st, stop, reload_times, seed):
    rng = random.Random(seed)
    u = urlparse(args.url)
    conn = None
    pool = good_requests(rng, args.image_data, args.n_gallery)
    bad = hostile_requests(rng, args.bad_image_data, args.max_body)
    n = 0
    while not stop.is_set():
        if n % 200 == 0:
            pool = good_requests(rng, args.image_data, args.n_gallery)
        n += 1
        hostile = rng.random() < args.hostile
        method, path, body = rng.choice(bad if hostile else pool)
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        t = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            hdr = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=hdr)
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:  # transport failure: connection refused, reset, timeout
            if conn is not None:
                conn.close(); conn = None
            # A hostile oversized body may be answered (413) and the connection closed before
            # the whole body is sent; that is the server refusing it, not a failure.
            if hostile and path == "/v1/embed" and body is not None and len(body) > args.max_body:
                with st.lock:
                    st.total += 1; st.hostile += 1
                continue
            status = None
            err = f"{method} {path}: {type(e).__name__}: {e}"
        with st.lock:
            st.total += 1
            st.hostile += hostile
            st.by_status[status] = st.by_status.get(status, 0) + 1
            near = any(abs(t - rt) < 5 for rt in reload_times)
            if status is None:
                st.fail += 1; st.near_reload_fail += near; st.note(err)
            elif status >= 500:
                st.n5xx += 1; st.near_reload_fail += near; st.note(f"{method} {path} -> {status}")
            elif hostile != (400 <= status < 500):
                st.unexpected += 1; st.note(f"{'hostile' if hostile else 'valid'} {method} {path} -> {status}")


def sample(pid):
    with open(f"/proc/{pid}/status") as f:
        kv = dict(line.split(":", 1) for line in f if ":" in line)
    rss = int(kv["VmRSS"].split()[0])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), int(kv["Threads"])


def svg(rows, reloads, path, warm):
    W, H, L, R, T, B = 900, 520, 70, 20, 30, 40
    panels = [("RSS (MiB)", 2, lambda x: x / 1024), ("open fds", 3, float), ("threads", 4, float)]
    ph = (H - T - B) / len(panels)
    tmax = max(r[0] for r in rows) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="18">tripletd soak: {tmax:.0f} s, RSS / fds / threads each second; '
           f'grey lines: SIGHUP reloads, dashed: end of warm-up</text>']
    X = lambda t: L + (W - L - R) * t / tmax
    for i, (name, col, f) in enumerate(panels):
        y0 = T + i * ph + 10
        vals = [f(r[col]) for r in rows]
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
        Y = lambda v: y0 + (ph - 25) * (1 - (v - lo) / (hi - lo))
        out.append(f'<rect x="{L}" y="{y0:.1f}" width="{W - L - R}" height="{ph - 25:.1f}" fill="none" stroke="#999"/>')
        for rt in reloads:
            out.append(f'<line x1="{X(rt):.1f}" x2="{X(rt):.1f}" y1="{y0:.1f}" y2="{y0 + ph - 25:.1f}" stroke="#ddd"/>')
        out.append(f'<line x1="{X(warm):.1f}" x2="{X(warm):.1f}" y1="{y0:.1f}" y2="{y0 + ph - 25:.1f}" '
                   'stroke="#888" stroke-dasharray="4 3"/>')
        pts = " ".join(f"{X(r[0]):.1f},{Y(v):.1f}" for r, v in zip(rows, vals))
        out.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1.2"/>')
        out.append(f'<text x="5" y="{y0 + 12:.1f}">{name}</text>')
        out.append(f'<text x="{L - 5}" y="{y0 + 10:.1f}" text-anchor="end">{hi:.0f}</text>')
        out.append(f'<text x="{L - 5}" y="{y0 + ph - 25:.1f}" text-anchor="end">{lo:.0f}</text>')
    out.append(f'<text x="{L}" y="{H - 12}">0 s</text><text x="{W - R}" y="{H - 12}" text-anchor="end">{tmax:.0f} s</text>')
    out.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--out", required=True)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--reload-every", type=float, default=30)
    ap.add_argument("--hostile", type=float, default=0.01)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--max-growth", type=float, default=0.05)
    ap.add_argument("--max-body", type=int, default=1 << 20)
    ap.add_argument("--n-gallery", type=int, default=1000)
    ap.add_argument("--images", default="")
    ap.add_argument("--good-images", type=int, default=1, help="0: the model takes no images, send only bad ones")
    args = ap.parse_args()
    args.image_data, args.bad_image_data = [], []
    if args.images:
        for f in sorted(os.listdir(args.images)):
            if f.endswith((".png", ".jpg")) and os.path.getsize(os.path.join(args.images, f)) < 65536:
                data = base64.b64encode(open(os.path.join(args.images, f), "rb").read()).decode()
                if f.startswith("bad_"):
                    args.bad_image_data.append((f, data))
                elif args.good_images:
                    args.image_data.append((f, data))

    os.makedirs(args.out, exist_ok=True)
    st, stop, reloads = Stats(), threading.Event(), []
    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(args, st, stop, reloads, i), daemon=True)
               for i in range(args.connections)]
    for t in threads:
        t.start()
    rows, next_reload, died = [], args.reload_every, False
    while time.time() - t0 < args.seconds:
        time.sleep(max(0.0, 1 - (time.time() - t0) % 1))
        el = time.time() - t0
        try:
            rss, fds, thr = sample(args.pid)
        except (FileNotFoundError, ProcessLookupError):
            died = True
            break
        with st.lock:
            rows.append((round(el, 1), st.total, rss, fds, thr, st.n5xx + st.fail))
        if el >= next_reload:
            reloads.append(time.time())
            os.kill(args.pid, signal.SIGHUP)
            next_reload += args.reload_every
    stop.set()
    for t in threads:
        t.join(timeout=35)
    with open(os.path.join(args.out, "soak.csv"), "w") as fh:
        fh.write("seconds,requests,rss_kib,fds,threads,failures\n")
        fh.writelines(",".join(map(str, r)) + "\n" for r in rows)
    rel = [r - t0 for r in reloads]
    warm = min(args.warmup, rows[-1][0] / 2) if rows else 0
    if rows:
        svg(rows, rel, os.path.join(args.out, "soak.svg"), warm)

    after = [r for r in rows if r[0] >= warm]
    el = rows[-1][0] if rows else 0
    print(f"soak: {el:.0f} s, {args.connections} connections, {len(reloads)} reloads (SIGHUP every "
          f"{args.reload_every:.0f} s), {st.total} requests ({st.total / max(el, 1):.0f}/s), {st.hostile} hostile")
    print("  statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(st.by_status.items(), key=lambda kv: str(kv[0]))))
    grew = False
    if after:
        g = (after[-1][2] - after[0][2]) / 1024
        grew = g * 1024 > args.max_growth * after[0][2]
        print(f"  RSS after warm-up ({warm:.0f} s): {after[0][2] / 1024:.1f} -> {after[-1][2] / 1024:.1f} MiB "
              f"(growth {g:+.1f} MiB = {100 * g * 1024 / after[0][2]:+.1f}%, max {max(r[2] for r in after) / 1024:.1f}); fds {after[0][3]} -> {after[-1][3]} "
              f"(max {max(r[3] for r in rows)}); threads {after[0][4]} -> {after[-1][4]} (max {max(r[4] for r in rows)})")
    print(f"  5xx: {st.n5xx}; transport failures: {st.fail}; failures within 5 s of a reload: "
          f"{st.near_reload_fail}; unexpected statuses: {st.unexpected}")
    for ex in st.examples:
        print("  e.g. " + ex)
    if died:
        print("  FAIL: tripletd exited during the soak")
    if grew:
        print(f"  FAIL: RSS grew over {100 * args.max_growth:.0f}% after the warm-up")
    return 1 if died or grew or st.n5xx or st.fail or st.unexpected or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
