#!/usr/bin/env bash
# bench_start.sh - tripletd start-up time and memory with and without the
# Fashion-MNIST gallery (60,000 x 128, built here with tripletctl index):
# time from exec to the "listening" line (the socket is bound and serving),
# RSS split into private (anonymous) and file-backed pages, and the
# proportional share (PSS) of each of two replicas serving the same mapped
# gallery, and where the RSS of a started tripletd goes (/proc/PID/smaps, by
# mapping). Writes $RESULTS/start.md. Env: ROUNDS (default 5; the rounds
# alternate the configurations, the median is reported), MODEL (default: the
# shipped CNN, which `make run` serves; the gallery is built from it).
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/bench/results}
TRIPLETD=${TRIPLETD:-$PWD/bin/tripletd}
TRIPLETCTL=${TRIPLETCTL:-$PWD/bin/tripletctl}
MODEL=${MODEL:-models/fashion-mnist-cnn.onnx}
ROUNDS=${ROUNDS:-5}
mkdir -p "$RESULTS"
for exe in "$TRIPLETD" "$TRIPLETCTL"; do [[ -x $exe ]] || { echo "bench_start: missing $exe (make)"; exit 1; }; done

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-start.XXXXXX")
trap 'rm -rf "$work"' EXIT
gallery=$work/fashion-mnist.gallery.safetensors
"$TRIPLETCTL" index --model "$MODEL" --out "$gallery" >"$work/index.log" 2>&1 ||
    { cat "$work/index.log"; echo "bench_start: tripletctl index failed"; exit 1; }
cat "$gallery" >/dev/null # in the page cache, as on a host where it was just written or served

python3 - "$TRIPLETD" "$MODEL" "$gallery" "$ROUNDS" "$RESULTS/start.md" <<'EOF'
import os, statistics, subprocess, sys, time

tripletd, model, gallery, rounds, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
MiB = 1024 * 1024


def kib(path, keys):
    vals = {}
    for line in open(path):
        k, _, v = line.partition(":")
        if k in keys:
            vals[k] = int(v.split()[0]) * 1024
    return vals


def start(with_gallery):
    """Start one tripletd; return (process, seconds from exec to its listening line)."""
    args = [tripletd, "--model", model, "--host", "127.0.0.1", "--port", "0"]
    if with_gallery:
        args += ["--gallery", gallery]
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline()
    t = time.perf_counter() - t0
    if b"listening" not in line:
        p.kill()
        sys.exit("bench_start: tripletd did not start: %r" % line)
    return p, t


def memory(p):
    time.sleep(0.3)  # its threads have started and touched their stacks
    s = kib("/proc/%d/status" % p.pid, ("VmRSS", "RssAnon", "RssFile"))
    s.update(kib("/proc/%d/smaps_rollup" % p.pid, ("Pss",)))
    s["threads"] = len(os.listdir("/proc/%d/task" % p.pid))
    return s


GROUPS = (  # (label, test on the mapping's path): the first that matches
    ("the gallery file (mapped, shared)", lambda n: n == os.path.realpath(gallery)),
    ("tripletd (code, data; OpenBLAS linked in)", lambda n: n.endswith("/tripletd")),
    ("C library: libc, libm, ld.so", lambda n: any(x in n for x in ("/libc.so", "/libm.so", "/ld-linux"))),
    ("GnuTLS and its libraries (p11-kit, nettle, gmp, ...)", lambda n: any(
        x in n for x in ("gnutls", "p11-kit", "unistring", "idn2", "tasn1", "nettle", "hogweed", "gmp", "ffi"))),
    ("other shared libraries", lambda n: n.startswith("/")),
)


def stack_pointers(pid):
    """Each thread's stack pointer (/proc/PID/task/TID/syscall: ... sp pc), to find its stack."""
    sps = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            f = open("/proc/%d/task/%s/syscall" % (pid, tid)).read().split()
            sps.append(int(f[-2], 16))
        except (OSError, ValueError, IndexError):
            pass
    return sps


def breakdown(pid):
    """RSS by kind of mapping from /proc/PID/smaps: {label: [rss, anon]} in bytes."""
    out, cur, sps = {}, None, stack_pointers(pid)
    for line in open("/proc/%d/smaps" % pid):
        f = line.split()
        if not f[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
            name = f[5] if len(f) > 5 else ""
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if name == "[stack]" or (not name and any(lo <= sp < hi for sp in sps)):
                cur = "thread stacks (main and threads)"
            elif not name or name == "[heap]":
                cur = "heap and anonymous memory (model weights, gallery norms, ...)"
            else:
                cur = next((g for g, ok in GROUPS if ok(name)), "other mappings")
            out.setdefault(cur, [0, 0])
        elif f[0] in ("Rss:", "Anonymous:"):
            out[cur][f[0] == "Anonymous:"] += int(f[1]) * 1024
    return out


def stop(p):
    p.terminate()
    p.wait()


load0 = os.getloadavg()[0]
runs = {False: [], True: []}
for r in range(rounds):
    for g in (False, True):
        p, t = start(g)
        runs[g].append((t, memory(p)))
        stop(p)
# two replicas on one host, the same gallery file: PSS splits the shared pages
a, _ = start(True)
b, _ = start(True)
ma, mb = memory(a), memory(b)
parts = breakdown(a.pid)
stop(a)
stop(b)
load1 = os.getloadavg()[0]


def med(g, f):
    return statistics.median(f(x) for x in runs[g])


def ms(g):
    return med(g, lambda x: x[0] * 1000)


def mem(g, k):
    return med(g, lambda x: x[1][k]) / MiB


msize, gsize = os.path.getsize(model) / MiB, os.path.getsize(gallery) / MiB
bound = msize + gsize + 8
rss = mem(True, "VmRSS")
with open(out, "w") as f:
    w = lambda s="": f.write(s + "\n")
    w("## Start-up with a gallery (tripletd, mapped gallery file)")
    w()
    w("Time from exec to tripletd's \"listening\" line (model loaded, gallery mapped and validated,")
    w("socket serving) and its memory 0.3 s later, median of %d rounds alternating the two" % rounds)
    w("configurations. Model `%s` (%.1f MiB); gallery: the Fashion-MNIST training set" % (model, msize))
    w("embedded by `tripletctl index` (60,000 x 128 F32 + labels, %.1f MiB), in the page cache." % gsize)
    w("RSS = private (anonymous) pages + file pages (shared libraries, the mapped gallery);")
    w("file pages are shared with every other process mapping the same file.")
    w("Load average (1 min) at the start %.2f, at the end %.2f (2 cores, shared)." % (load0, load1))
    w()
    w("| gallery | start-up ms | RSS MiB | private (anon) MiB | file-backed MiB | PSS MiB |")
    w("|---|---:|---:|---:|---:|---:|")
    for g, label in ((False, "none"), (True, "Fashion-MNIST, 31 MB")):
        w("| %s | %.1f | %.1f | %.1f | %.1f | %.1f |" % (label, ms(g), mem(g, "VmRSS"), mem(g, "RssAnon"),
                                                       mem(g, "RssFile"), mem(g, "Pss")))
    w("| same, 2 replicas (each) | - | %.1f, %.1f | %.1f, %.1f | %.1f, %.1f | %.1f, %.1f |" % tuple(
        v / MiB for k in ("VmRSS", "RssAnon", "RssFile", "Pss") for v in (ma[k], mb[k])))
    w()
    w("Every round, start-up ms without / with the gallery: %s / %s." % (
        ", ".join("%.1f" % (x[0] * 1000) for x in runs[False]), ", ".join("%.1f" % (x[0] * 1000) for x in runs[True])))
    w()
    w("Goals: start-up with the gallery < 50 ms: **%.1f ms** (%s); RSS <= model + gallery + 8 MiB" % (
        ms(True), "met" if ms(True) < 50 else "**missed**"))
    w("(%.1f MiB): **%.1f MiB** (%s). The gallery adds %.1f MiB of RSS, all of it file pages" % (
        bound, rss, "met" if rss <= bound else "**missed**", rss - mem(False, "VmRSS")))
    w("shared between replicas, and %.2f MiB of private memory (the row norms and, when the" % (
        mem(True, "RssAnon") - mem(False, "RssAnon")))
    w("file stores them so, converted embeddings or labels); without a gallery the process")
    w("already holds %.1f MiB, %.1f MiB of it shared-library pages." % (mem(False, "VmRSS"), mem(False, "RssFile")))
    w()
    w("Where the RSS of one started tripletd with the gallery goes (/proc/PID/smaps; %d threads):" % ma["threads"])
    w()
    w("| mappings | RSS KiB | of which private (anon) KiB |")
    w("|---|---:|---:|")
    for label, (r, an) in sorted(parts.items(), key=lambda x: -x[1][0]):
        w("| %s | %d | %d |" % (label, r // 1024, an // 1024))
    w("| total | %d | %d |" % (sum(v[0] for v in parts.values()) // 1024, sum(v[1] for v in parts.values()) // 1024))
    w()
    w("Command: `bench/bench_start.sh` (or `make bench`).")
print(open(out).read())
EOF
