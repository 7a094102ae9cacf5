# bench/lib.sh - shared by the bench scripts (sourced): a work folder whose
# servers are stopped on exit, a free port, starting tripletd or a static nginx
# and waiting for a URL to answer, wrk's POST script and figures, a server's CPU
# time, a trainer's fastest epoch, a report section, building a C bench program.
# Set BENCH_NAME before sourcing (it prefixes messages and the folder).

work=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
chmod 755 "$work" # nginx workers run as another user
pids=()            # servers to stop on exit
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL [SECONDS]: until URL answers 2xx (TLS certificates not checked), up to SECONDS (30).
wait_http() {
    local i
    for ((i = 0; i < ${2:-30} * 10; i++)); do
        curl -skf -o /dev/null -m 1 "$1" && return 0
        sleep 0.1
    done
    echo "$BENCH_NAME: $1 did not come up" >&2
    return 1
}

# wrk_post_lua BODY_FILE CONTENT_TYPE [DONE]: prints a wrk script that POSTs BODY_FILE's bytes with
# CONTENT_TYPE; DONE, if given, is the Lua body of wrk's done hook (summary, latency, requests in scope).
wrk_post_lua() {
    cat <<L
local f = io.open("$1", "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "$2"
L
    [[ -z ${3:-} ]] || wrk_done_lua "$3"
}
# wrk_done_lua DONE: prints wrk's done hook with the Lua body DONE
wrk_done_lua() { printf 'done = function(summary, latency, requests)\n    %s\nend\n' "$1"; }

# wrk_figures FORMAT < wrk --latency output: printf FORMAT of "req/s p50_ms p99_ms requests p99.9_ms"
# (a format may use the first few; p99.9 comes from a done hook printing "p99.9_us N")
wrk_figures() {
    awk -v fmt="$1" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        / requests in / { n = $1 }
        $1 == "p99.9_us" { p999 = $2 / 1000 }
        END { printf fmt, rps, p50, p99, n, p999 }'
}

tck=$(getconf CLK_TCK)
# cpu_ticks PID: CPU ticks (user + system, $tck a second) used so far by a server: its process and
# its children (nginx workers)
cpu_ticks() {
    local t=0 p
    for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t"
}

# fastest_epoch FILE [STEPS]: the fastest epoch's seconds ("%.3f") in a trainer's per-epoch record,
# tripletctl train's --csv or bench/train_*torch.py's --json (FILE ends in .json); with STEPS, the
# epochs were STEPS steps long and the time is scaled to a whole epoch of 375 steps.
fastest_epoch() {
    "${PY:-python3}" - "$@" <<'PYEOF'
import csv, json, sys
f = sys.argv[1]
if f.endswith(".json"):
    m = min(e["seconds"] for e in json.load(open(f))["epochs"])
else:
    m = min(float(r["seconds"]) for r in csv.DictReader(open(f)))
if len(sys.argv) > 2:
    m = m * 375 / int(sys.argv[2])
print("%.3f" % m)
PYEOF
}

# md_section FILE TITLE TEXT COLUMNS ROWS COMMAND...: writes a report section to FILE: "## TITLE",
# the paragraph TEXT, a table with the columns "a | b | ..." and ROWS ("| ... |" lines, each ending
# in a newline), then the COMMANDs as an indented block; says so on stderr.
md_section() {
    local file=$1 title=$2 text=$3 cols=$4 rows=$5 c
    shift 5
    {
        echo "## $title"
        echo
        echo "$text"
        echo
        echo "| $cols |"
        awk -F'|' '{ for (i = 1; i <= NF; i++) printf "|---"; print "|" }' <<<"$cols"
        printf '%s' "$rows"
        echo
        echo "Commands:"
        echo
        for c in "$@"; do echo "    $c"; done
    } >"$file"
    echo "wrote $file" >&2
}

# bench_cc NAME: builds bench/NAME.c against libtriplet (build-san's when B is build-san) with
# the Makefile's LIBS into $B/bench/NAME (B: build).
bench_cc() {
    local liba=lib/libtriplet.a
    [[ ${B:-build} == build-san ]] && liba=build-san/libtriplet.a
    mkdir -p "${B:-build}/bench"
    # shellcheck disable=SC2046 # flags split into words
    cc -std=c11 -D_GNU_SOURCE -O2 -Ilib $(pkg-config --cflags openblas 2>/dev/null) "bench/$1.c" "$liba" \
        -o "${B:-build}/bench/$1" $(pkg-config --libs-only-L openblas 2>/dev/null) $(sed -n 's/^LIBS *:= *//p' Makefile)
}

# nginx_start NAME WORKERS SCHEME [SED_ARG...]: $NGINX serving $work/www (bench/nginx_static.conf, its
# config further edited by the sed arguments, e.g. -e EXPR for TLS) with WORKERS workers from
# $work/NAME on a free port; sets URL[NAME] (SCHEME://127.0.0.1:PORT/v1/embed) and PID[NAME] (the
# caller declares both associative) and waits until it answers.
nginx_start() {
    local name=$1 workers=$2 scheme=$3 p
    shift 3
    p=$(free_port)
    mkdir -p "$work/$name"
    sed -e "s|@PORT@|$p|" -e "s|@ROOT@|$work/www|" -e "s|@WORKERS@|$workers|" "$@" bench/nginx_static.conf \
        >"$work/$name/nginx.conf"
    "$NGINX" -p "$work/$name" -c "$work/$name/nginx.conf" -g "pid $work/$name/nginx.pid; error_log $work/$name/error.log;" &
    pids+=($!)
    PID[$name]=$!
    URL[$name]="$scheme://127.0.0.1:$p/v1/embed"
    wait_http "${URL[$name]}"
}

# tripletd_start NAME MODEL SCHEME [FLAG...]: $TRIPLETD serving MODEL on a free port with the FLAGs
# (OpenBLAS 1 thread, the JSON access log into $work/NAME.log); sets URL[NAME]
# (SCHEME://127.0.0.1:PORT/v1/embed) and PID[NAME] and waits until it is ready.
tripletd_start() {
    local name=$1 model=$2 scheme=$3 p
    shift 3
    p=$(free_port)
    OPENBLAS_NUM_THREADS=1 "$TRIPLETD" --model "$model" --host 127.0.0.1 --port "$p" --log-format json "$@" \
        >/dev/null 2>"$work/$name.log" &
    pids+=($!)
    PID[$name]=$!
    URL[$name]="$scheme://127.0.0.1:$p/v1/embed"
    wait_http "$scheme://127.0.0.1:$p/readyz" 60
}
