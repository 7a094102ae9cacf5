#!/usr/bin/env bash
# tests/contract/metrics.sh - GET /metrics parsed by real Prometheus parsers:
# `promtool check metrics` (package prometheus, when installed) and
# python3-prometheus-client's text parser, after traffic on several routes;
# the families proto/openapi.yaml documents for /metrics are present with
# the right types and labels.
. "$(dirname "$0")/../lib.sh"
PROMTOOL=${PROMTOOL:-$(command -v promtool)}
have_py=0; pick_python prometheus_client && have_py=1
[[ -n $PROMTOOL || $have_py == 1 ]] || skip "neither promtool nor python3-prometheus-client is installed"
start_server
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")
curl -s "${H[@]}" "$url/v1/distance" -d '{"a":[[1,2],[3,4]],"b":[[1,2],[3,5]],"embed":false}' >/dev/null
curl -s "${H[@]}" "$url/v1/loss/triplet" -d '{"anchors":[[0,0],[0,0]],"positives":[[1,0],[1,0]],"negatives":[[2,0],[0.5,0]],"embed":false}' >/dev/null
curl -s "${H[@]}" "$url/v1/distance" -d '{"a":[[1]],"b":[[1,2]],"embed":false}' >/dev/null
curl -s "$url/v1/model" >/dev/null
ctype=$(curl -s -o "$tmp/metrics.txt" -w '%{content_type}' "$url/metrics")
[[ $ctype == text/plain*version=0.0.4* ]] && ok "Content-Type $ctype" || bad "Content-Type: $ctype"

if [[ -n $PROMTOOL ]]; then
    if out=$("$PROMTOOL" check metrics <"$tmp/metrics.txt" 2>&1); then ok "promtool check metrics${out:+: $out}"
    else bad "promtool check metrics: $out"; fi
else
    skip_part "promtool check metrics: promtool (package prometheus) is not installed"
fi

if ((have_py)); then
    if out=$("$PY" - "$tmp/metrics.txt" 2>&1 <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
want = {"tripletd_requests": "counter", "tripletd_request_duration_seconds": "histogram",
        "tripletd_in_flight_requests": "gauge", "tripletd_batch_size": "histogram",
        "tripletd_model_info": "gauge", "tripletd_triplets_scored": "counter"}
errs = [f"{n}: missing or not a {t}" for n, t in want.items() if n not in fams or fams[n].type != t]
def samples(name, suffix=""):
    return [s for s in fams[name].samples if s.name == name + suffix] if name in fams else []
req = {(s.labels.get("route"), s.labels.get("status")): s.value for s in samples("tripletd_requests", "_total")}
for key, n in {("/v1/distance", "200"): 1, ("/v1/distance", "422"): 1, ("/v1/loss/triplet", "200"): 1, ("/v1/model", "401"): 1}.items():
    if req.get(key) != n: errs.append(f"requests_total{key}: {req.get(key)}, want {n}")
cnt = {s.labels.get("route"): s.value for s in samples("tripletd_request_duration_seconds", "_count")}
if not cnt.get("/v1/distance", 0) >= 2: errs.append(f"latency histogram count for /v1/distance: {cnt.get('/v1/distance')}")
inf = [s for s in samples("tripletd_request_duration_seconds", "_bucket") if s.labels.get("le") == "+Inf" and s.labels.get("route") == "/v1/distance"]
if not inf or inf[0].value != cnt.get("/v1/distance"): errs.append("latency +Inf bucket != count")
tri = {s.labels.get("category"): s.value for s in samples("tripletd_triplets_scored", "_total")}
if tri.get("hard") != 1 or tri.get("easy") != 1 or tri.get("semi-hard") != 0: errs.append(f"triplets by category: {tri}")
bs = {s.labels.get("route"): s.value for s in samples("tripletd_batch_size", "_sum")}
if bs.get("/v1/distance") != 3: errs.append(f"batch size sum for /v1/distance: {bs.get('/v1/distance')}, want 3")
info = samples("tripletd_model_info")
if len(info) != 1 or info[0].labels.get("name") != "e2e-test" or len(info[0].labels.get("sha256", "")) != 64: errs.append(f"model_info: {info}")
print("; ".join(errs) if errs else f"{len(fams)} families parsed, {sum(len(f.samples) for f in fams.values())} samples")
sys.exit(1 if errs else 0)
PY
    ); then ok "prometheus_client parser: $out"; else bad "prometheus_client parser: $out"; fi
else
    skip_part "prometheus_client parser: python3-prometheus-client is not installed"
fi
finish
