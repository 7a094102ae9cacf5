#!/usr/bin/env python3
"""overload.py - twice the sustainable load: excess requests get a quick 429 with Retry-After.

    overload.py --url http://127.0.0.1:PORT --pid PID --max-concurrent M
                [--seconds 20] [--calibrate 8] [--batch 64] [--connections 96]

tripletd runs with more HTTP threads than --max-concurrent M (so that requests
beyond M are seen, counted and refused instead of waiting unseen in the
kernel). Each request is POST /v1/embed with BATCH 784-d vectors.

1. Calibration: M closed-loop clients (exactly the admitted concurrency) for
   CALIBRATE seconds give the sustainable rate X and its latency.
2. Overload: an open-loop schedule of 2X requests a second for SECONDS,
   sent by CONNECTIONS keep-alive clients. Every answer must be 200 or 429;
   a 429 must carry Retry-After and the JSON error; latency is measured per
   request from send to the last byte, for 200s and 429s separately.

Prints the figures (one JSON line last); exit 1 on a 5xx, a transport
failure, any other status, a 429 without Retry-After, no 429 at all, or the
process gone. Latency figures are reported, not asserted (shared machine).
"""
import argparse, http.client, json, os, random, threading, time
from urllib.parse import urlparse


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


class Client:
    def __init__(self, host, port, body):
        self.host, self.port, self.body = host, port, body
        self.c = None

    def post(self):
        """(status, seconds, headers, body) or raises on a transport failure."""
        if self.c is None:
            self.c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        t0 = time.perf_counter()
        try:
            self.c.request("POST", "/v1/embed", self.body, {"Content-Type": "application/json"})
            r = self.c.getresponse()
            data = r.read()
        except Exception:
            self.c.close()
            self.c = None
            raise
        dt = time.perf_counter() - t0
        if r.getheader("Connection", "").lower() == "close":
            self.c.close()
            self.c = None
        return r.status, dt, r, data


def calibrate(args, host, port, body):
    done, lat, bad, stop = [0], [], [], time.time() + args.calibrate
    lock = threading.Lock()

    def run():
        cl = Client(host, port, body)
        while time.time() < stop:
            try:
                st, dt, _, _ = cl.post()
            except Exception as e:
                with lock:
                    bad.append(repr(e))
                continue
            with lock:
                if st == 200:
                    done[0] += 1
                    lat.append(dt)
                else:
                    bad.append(st)

    t0 = time.time()
    ths = [threading.Thread(target=run) for _ in range(args.max_concurrent)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return done[0] / (time.time() - t0), lat, bad


def overload(args, host, port, body, rate):
    n = int(rate * args.seconds)
    ticks = [i / rate for i in range(n)]
    nxt, lock = [0], threading.Lock()
    res = {"200": [], "429": [], "other": {}, "fail": [], "no_retry_after": 0, "bad_json": 0, "lag": []}
    t0 = time.perf_counter() + 0.2

    def run():
        cl = Client(host, port, body)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            wait = t0 + ticks[i] - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            lag = max(0.0, -wait)
            try:
                st, dt, r, data = cl.post()
            except Exception as e:
                with lock:
                    res["fail"].append(repr(e))
                continue
            with lock:
                res["lag"].append(lag)
                if st == 200:
                    res["200"].append(dt)
                elif st == 429:
                    res["429"].append(dt)
                    ra = r.getheader("Retry-After")
                    if not ra or not ra.isdigit() or int(ra) < 1:
                        res["no_retry_after"] += 1
                    try:
                        err = json.loads(data)["error"]
                        ok = err["code"] == 429 and err["type"] == "too_many_requests"
                    except Exception:
                        ok = False
                    res["bad_json"] += not ok
                else:
                    res["other"][st] = res["other"].get(st, 0) + 1

    ths = [threading.Thread(target=run) for _ in range(args.connections)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    res["seconds"] = time.perf_counter() - t0
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--max-concurrent", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--calibrate", type=float, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--connections", type=int, default=96)
    args = ap.parse_args()
    u = urlparse(args.url)
    rng = random.Random(1)
    body = json.dumps({"inputs": [[round(rng.random(), 2) for _ in range(784)] for _ in range(args.batch)]}).encode()
    x, lat, bad = calibrate(args, u.hostname, u.port, body)
    ms = lambda v: round(v * 1000, 1)
    print(f"calibration: {args.max_concurrent} closed-loop clients, {x:.0f} req/s sustained "
          f"({args.batch} vectors each), latency p50 {ms(pct(lat, 50))} ms, p99 {ms(pct(lat, 99))} ms, "
          f"{len(bad)} not 200")
    res = overload(args, u.hostname, u.port, body, 2 * x)
    a, q = res["200"], res["429"]
    total = len(a) + len(q) + sum(res["other"].values()) + len(res["fail"])
    print(f"overload: {2 * x:.0f} req/s offered for {args.seconds:.0f} s from {args.connections} connections: "
          f"{total} sent, {len(a)} x 200 ({len(a) / res['seconds']:.0f}/s), {len(q)} x 429, "
          f"other {res['other']}, {len(res['fail'])} transport failures")
    print(f"  200 latency p50 {ms(pct(a, 50))} ms, p99 {ms(pct(a, 99))} ms, max {ms(max(a) if a else 0)} ms")
    print(f"  429 latency p50 {ms(pct(q, 50))} ms, p99 {ms(pct(q, 99))} ms, max {ms(max(q) if q else 0)} ms; "
          f"{res['no_retry_after']} without Retry-After, {res['bad_json']} without the JSON error")
    print(f"  client schedule lag p99 {ms(pct(res['lag'], 99))} ms (the client's own delay before sending)")
    alive = os.path.exists(f"/proc/{args.pid}")
    fails = []
    if bad:
        fails.append(f"calibration: {len(bad)} answers not 200, e.g. {bad[:3]}")
    if res["other"]:
        fails.append(f"statuses other than 200/429: {res['other']}")
    if res["fail"]:
        fails.append(f"{len(res['fail'])} transport failures, e.g. {res['fail'][:3]}")
    if not q:
        fails.append("no 429 at twice the sustainable load")
    if res["no_retry_after"] or res["bad_json"]:
        fails.append("a 429 without Retry-After or the JSON error")
    if not alive:
        fails.append("tripletd is gone")
    print(json.dumps({"sustained_rps": round(x, 1), "calib_p99_ms": ms(pct(lat, 99)), "offered_rps": round(2 * x, 1),
                      "ok": len(a), "r429": len(q), "ok_p50_ms": ms(pct(a, 50)), "ok_p99_ms": ms(pct(a, 99)),
                      "r429_p50_ms": ms(pct(q, 50)), "r429_p99_ms": ms(pct(q, 99)), "fail": len(res["fail"]),
                      "other": res["other"], "alive": alive}))
    for f in fails:
        print("FAIL " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
