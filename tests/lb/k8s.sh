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

yamllint -s -c docker/yamllint.yaml docker/compose.yaml docker/k8s
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
elif [[ ${REQUIRE_ALL:-0} == 1 ]]; then
    echo "FAIL kubectl is not installed (make deps installs it) and REQUIRE_ALL=1"; exit 1
else
    echo "skipped: kubectl kustomize (kubectl is not installed)"
fi
echo "k8s: all checks passed"
