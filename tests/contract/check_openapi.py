#!/usr/bin/env python3
"""check_openapi.py - validate real tripletd replies against its own /openapi.json.

Usage: check_openapi.py PORT [API_KEY]
Sends one good and a few bad requests per route and checks every reply body
against the schema the document declares for that path, method and status
(OpenAPI 3.0 schema objects, checked with python3-jsonschema). Exit 0 when
all match, 1 otherwise; 77 when jsonschema is missing."""
import json
import sys
import urllib.error
import urllib.request

try:
    import jsonschema
except ImportError:
    print("skipped: python3-jsonschema is not installed")
    sys.exit(77)

PORT, KEY = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")


def call(method, path, body=None, ctype="application/json"):
    headers = {"Authorization": "Bearer " + KEY} if KEY else {}
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = ctype
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def to_jsonschema(s):
    """OpenAPI 3.0 schema object -> JSON Schema (nullable -> type list)."""
    if isinstance(s, list):
        return [to_jsonschema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: to_jsonschema(v) for k, v in s.items() if k not in ("nullable", "example", "format")}
    if isinstance(s.get("properties"), dict):  # member names are not keywords: a member may be called "format"
        out["properties"] = {k: to_jsonschema(v) for k, v in s["properties"].items()}
    if s.get("nullable") and "type" in s:
        out["type"] = [s["type"], "null"]
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/definitions/")
    return out


status, _, raw = call("GET", "/openapi.json")
if status != 200:
    sys.exit(f"GET /openapi.json: status {status}")
doc = json.loads(raw)
defs = to_jsonschema(doc.get("components", {}).get("schemas", {}))
failures = checks = 0


def schema_for(path, method, status):
    op = doc["paths"].get(path, {}).get(method.lower())
    if op is None:  # 404/405 for what the document does not list: the Error shape
        if status in (404, 405) and "Error" in doc["components"]["schemas"]:
            return {"$ref": "#/components/schemas/Error"}, None
        return None, f"{method} {path} is not in the document"
    resp = op["responses"].get(str(status)) or op["responses"].get("default")
    if resp is None:
        return None, f"{method} {path}: status {status} is not documented"
    if "$ref" in resp:
        resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    sch = resp.get("content", {}).get("application/json", {}).get("schema")
    return sch, None


def check(method, path, body=None, want=None, ctype="application/json"):
    global failures, checks
    checks += 1
    status, headers, raw = call(method, path, body, ctype)
    route = path.split("?")[0]
    where = f"{method} {path} -> {status}"
    if want is not None and status != want:
        failures += 1
        print(f"FAIL {where}: want status {want}: {raw[:300]!r}")
        return None
    sch, why = schema_for(route, method, status)
    if why:
        failures += 1
        print(f"FAIL {where}: {why}")
        return None
    if route == "/metrics" or sch is None:
        return raw
    reply = json.loads(raw)
    full = dict(to_jsonschema(sch))
    full["definitions"] = defs
    try:
        jsonschema.validate(reply, full, cls=jsonschema.Draft4Validator)
    except jsonschema.ValidationError as e:
        failures += 1
        print(f"FAIL {where}: reply does not match the documented schema: {e.message} at {list(e.absolute_path)}")
        return None
    print(f"ok   {where}")
    return reply


model = check("GET", "/v1/model", want=200)
# every member of the reply is documented (whichever format the served model is), and the
# document says what it serves
documented = set(doc["components"]["schemas"]["ModelInfo"].get("properties", {}))
undocumented = sorted(set(model or {}) - documented)
checks += 1
if undocumented:
    failures += 1
    print(f"FAIL GET /v1/model: members not in the ModelInfo schema: {', '.join(undocumented)}")
if model:
    checks += 1
    if model.get("format") == "onnx" and "ONNX" not in doc["info"].get("description", ""):
        failures += 1
        print("FAIL info.description does not say that ONNX models are served")
D = model["input_dim"] if model else 784
x = [[float((i * 7 + j) % 5) for j in range(D)] for i in range(6)]
y = [0, 0, 1, 1, 2, 2]
check("GET", "/healthz", want=200)
check("GET", "/readyz", want=200)
check("GET", "/metrics", want=200)
check("POST", "/v1/embed", {"inputs": x[:2]}, 200)
check("POST", "/v1/embed", {"inputs": x[0], "encoding_format": "base64"}, 200)
check("POST", "/v1/embeddings", {"input": x[:2], "model": "m", "user": "u"}, 200)
check("POST", "/v1/embeddings", {"input": x[:2], "encoding_format": "base64"}, 200)
check("POST", "/v1/embeddings", {"input": "some text"}, 422)
check("POST", "/v1/distance", {"a": x[:2], "b": x[2:4]}, 200)
check("POST", "/v1/distance", {"a": [[1, 2]], "b": [[3, 4], [5, 6]], "embed": False, "pairwise": True, "metric": "cosine"}, 200)
check("POST", "/v1/loss/triplet", {"anchors": x[:2], "positives": x[2:4], "negatives": x[4:6], "swap": True}, 200)
check("POST", "/v1/loss/triplet", {"anchors": [[1, 0]], "positives": [[1, 1]], "negatives": [[0, 1]], "embed": False,
                                   "loss": "triplet-soft", "reduction": "sum"}, 200)
check("POST", "/v1/loss/pair", {"a": x[:2], "b": x[2:4], "labels": [1, 0]}, 200)
check("POST", "/v1/loss/infonce", {"a": x[:3], "b": x[3:6]}, 200)
for strategy in ("batch-hard", "semi-hard", "batch-all"):
    check("POST", "/v1/mine", {"inputs": x, "labels": y, "strategy": strategy}, 200)
gal_status = call("GET", "/v1/gallery")[0]
check("GET", "/v1/gallery", want=gal_status)
check("POST", "/v1/search", {"queries": x[:2], "k": 3}, 200 if gal_status == 200 else 409)
check("GET", "/v1/gallery/projection?n=25", want=200 if gal_status == 200 else 409)
check("GET", "/v1/gallery/projection?n=0", want=422 if gal_status == 200 else 409)
check("GET", "/v1/stats", want=200)
check("GET", "/v1/stats?window=600", want=200)
check("GET", "/v1/stats?window=601", want=422)
# errors: every one must have the Error shape of its documented status
check("POST", "/v1/embed", "{", 400)
check("POST", "/v1/embed", {"inputs": x[:1]}, 415, ctype="text/plain")
check("POST", "/v1/embed", {"inputs": [[1, 2]]}, 422)
check("POST", "/v1/embed", {"inputs": x[:1], "bogus": 1}, 422)
check("GET", "/v1/embed", want=405)
check("GET", "/v1/nothing-here", want=404)
check("POST", "/v1/distance", {"a": [[1]], "b": [[1]], "embed": False, "metric": "manhattan"}, 422)
print(f"{checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
