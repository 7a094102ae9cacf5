#!/usr/bin/env bash
# tests/lb/k8s.sh - lint and check docker/ manifests: yamllint, the
# consistency checker tests/lb/manifests.py (kinds, probes, ports against the
# image's EXPOSE, resources, non-root, read-only root, drain timing, nginx
# retries), proof that the checker catches broken copies, and
# `kubectl kustomize` (make deps installs kubectl; without it that part is
# skipped, a failure under REQUIRE_ALL=1).
set -euo pipefail
root=${TRIPLET_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

yamllint -s -c docker/yamllint.yaml docker/compose.yaml docker/compose.tls.yaml docker/k8s docker/k8s-tls
echo "yamllint: ok"

args=()
if [[ -x ${TRIPLETD:-} ]]; then
    "$TRIPLETD" --help >"$tmp/help.txt" 2>&1 || true
    args=(--help-text "$tmp/help.txt")
fi
python3 tests/lb/manifests.py docker "${args[@]}"

# Each broken copy must be refused (a checker that passes anything is no test).
mutations=(
    "k8s/deployment.yaml|s#path: /readyz#path: /healthz#"
    "k8s/deployment.yaml|s#readOnlyRootFilesystem: true#readOnlyRootFilesystem: false#"
    "k8s/deployment.yaml|s#runAsNonRoot: true#runAsNonRoot: false#"
    "k8s/deployment.yaml|s#terminationGracePeriodSeconds: 30#terminationGracePeriodSeconds: 10#"
    "k8s/deployment.yaml|/memory: 512Mi/d"
    "k8s/deployment.yaml|s#containerPort: 8080#containerPort: 8081#"
    "k8s/service.yaml|s#targetPort: http#targetPort: 9000#"
    "k8s/configmap.yaml|s#TRIPLETD_MODEL: /models/#TRIPLETD_MODEL: /data/#"
    "k8s/kustomization.yaml|/pdb.yaml/d"
    "Dockerfile|s#^EXPOSE 8080#EXPOSE 9090#"
    "Dockerfile|s#^USER 10001:10001#USER root#"
    "nginx.conf|s# non_idempotent;#;#"
    "nginx.conf|s#client_max_body_size 8m#client_max_body_size 1m#"
    "compose.yaml|s#127.0.0.1:##"
)
# The TLS override: each replica mounts both secrets and TRIPLETD_TLS_* name them.
python3 - docker/compose.yaml docker/compose.tls.yaml <<'PY'
import sys, yaml
base, tls = (yaml.safe_load(open(f)) for f in sys.argv[1:3])
reps = [n for n in base["services"] if n.startswith("tripletd-")]
for n in reps:
    svc = tls["services"][n]
    env, sec = svc["environment"], set(svc["secrets"])
    for var in ("TRIPLETD_TLS_CERT", "TRIPLETD_TLS_KEY"):
        name = env[var].removeprefix("/run/secrets/")
        assert env[var].startswith("/run/secrets/") and name in sec and name in tls["secrets"], (n, var)
assert set(tls["services"]) == set(base["services"]), "compose.tls.yaml services differ"
assert all(s["file"].startswith("./tls/") for s in tls["secrets"].values())
print(f"compose.tls.yaml: ok ({len(reps)} replicas with TLS secrets)")
PY
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=tripletd \
    -addext subjectAltName=DNS:tripletd -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
if command -v nginx >/dev/null; then
    mkdir -p "$tmp/ngx"
    sed -e "s#/run/secrets/tripletd_tls_cert#$tmp/tls.crt#; s#/run/secrets/tripletd_tls_key#$tmp/tls.key#" \
        -e "s#server tripletd-[0-9]:8080#server 127.0.0.1:9#" docker/nginx.tls.conf >"$tmp/ngx/nginx.conf"
    nginx -t -q -p "$tmp/ngx/" -c "$tmp/ngx/nginx.conf" -g "pid $tmp/ngx/pid; error_log stderr;"
    echo "nginx -t nginx.tls.conf: ok"
fi

# With tripletd's --help at hand, a misspelt option must be caught too.
((${#args[@]})) && mutations+=("k8s/configmap.yaml|s#TRIPLETD_THREADS:#TRIPLETD_THREDS:#")
for m in "${mutations[@]}"; do
    file=${m%%|*} expr=${m#*|}
    rm -rf "$tmp/docker" && cp -r docker "$tmp/docker"
    sed -i "$expr" "$tmp/docker/$file"
    if cmp -s "docker/$file" "$tmp/docker/$file"; then
        echo "mutation '$expr' did not change docker/$file: update this test" >&2
        exit 1
    fi
    if python3 tests/lb/manifests.py "$tmp/docker" "${args[@]}" >"$tmp/out" 2>&1; then
        echo "checker accepted a broken copy: $file: $expr" >&2
        exit 1
    fi
    echo "refused ($file: $expr): $(head -n 1 "$tmp/out")"
done

if command -v kubectl >/dev/null; then
    kubectl kustomize docker/k8s >"$tmp/all.yaml"
    python3 - "$tmp/all.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
want = sorted(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
               "PodDisruptionBudget", "Service"])
assert kinds == want, f"kustomize built {kinds}, expected {want}"
dep = next(d for d in docs if d["kind"] == "Deployment")
img = dep["spec"]["template"]["spec"]["containers"][0]["image"]
assert img == "localhost/tripletd:latest", f"kustomize image {img}"
print(f"kubectl kustomize: ok ({len(docs)} objects, image {img})")
PY
    # The TLS overlay, on a copy holding a throwaway certificate.
    cp -r docker/k8s docker/k8s-tls "$tmp/" && cp "$tmp/tls.crt" "$tmp/tls.key" "$tmp/k8s-tls/"
    kubectl kustomize "$tmp/k8s-tls" >"$tmp/tls.yaml"
    python3 - "$tmp/tls.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sec = [d for d in docs if d["kind"] == "Secret"]
assert len(sec) == 1 and sec[0]["type"] == "kubernetes.io/tls", "expected one kubernetes.io/tls Secret"
assert set(sec[0]["data"]) == {"tls.crt", "tls.key"}
pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
vol = next(v for v in pod["volumes"] if "secret" in v)
assert vol["secret"]["secretName"] == sec[0]["metadata"]["name"], "volume does not name the Secret"
c = pod["containers"][0]
mnt = next(m for m in c["volumeMounts"] if m["name"] == vol["name"])
assert mnt.get("readOnly"), "TLS mount is writable"
env = {e["name"]: e["value"] for e in c["env"]}
for var, f in (("TRIPLETD_TLS_CERT", "tls.crt"), ("TRIPLETD_TLS_KEY", "tls.key")):
    assert env[var] == mnt["mountPath"] + "/" + f, f"{var}={env.get(var)}"
for p in ("startupProbe", "livenessProbe", "readinessProbe"):
    assert c[p]["httpGet"]["scheme"] == "HTTPS", f"{p} is not HTTPS"
print(f"kubectl kustomize k8s-tls: ok (Secret {sec[0]['metadata']['name']} at {mnt['mountPath']})")
PY
elif [[ ${REQUIRE_ALL:-0} == 1 ]]; then
    echo "FAIL kubectl is not installed (make deps installs it) and REQUIRE_ALL=1"; exit 1
else
    echo "skipped: kubectl kustomize (kubectl is not installed)"
fi
echo "k8s: all checks passed"
