#!/usr/bin/env python3
"""manifests.py - check docker/ (Dockerfile, compose, nginx.conf, k8s/) for consistency.

    manifests.py DOCKER_DIR [--help-text FILE]

Exits 0 when every check passes, else prints one line per problem and exits 1.
--help-text is `tripletd --help` output: then every TRIPLETD_* option in the
ConfigMap must name one of its flags.
"""
import os
import re
import sys

import yaml

problems = []


def bad(msg):
    problems.append(msg)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def dockerfile_facts(path):
    text = open(path).read()
    final = text.split("\nFROM ")[-1]  # the final stage
    facts = {"expose": [int(p.split("/")[0]) for m in re.finditer(r"^EXPOSE\s+(.+)$", final, re.M)
                        for p in m.group(1).split()],
             "user": None, "healthcheck": "HEALTHCHECK" in final, "env": {}}
    m = re.search(r"^USER\s+(\S+)", final, re.M)
    if m:
        facts["user"] = m.group(1).split(":")[0]
    for m in re.finditer(r"(TRIPLETD_[A-Z_]+)=(\S+)", final):
        facts["env"][m.group(1)] = m.group(2)
    if not final.startswith("debian:bookworm-slim"):
        bad("Dockerfile: final stage must run on debian:bookworm-slim")
    if re.search(r"apt-get install[^\n]*(\\\n[^\n]*)*\bcurl\b", final):
        bad("Dockerfile: final stage installs curl")
    if re.search(r"-dev\b", final):
        bad("Dockerfile: final stage installs -dev packages")
    return facts


def named_port(container, ref):
    if isinstance(ref, int):
        return ref
    for p in container.get("ports", []):
        if p.get("name") == ref:
            return p.get("containerPort")
    bad(f"Deployment: port name {ref!r} is not declared by the container")
    return None


def check_k8s(d, docker):
    kdir = os.path.join(d, "k8s")
    kust = load_all(os.path.join(kdir, "kustomization.yaml"))[0]
    listed = kust.get("resources", [])
    files = sorted(f for f in os.listdir(kdir) if f.endswith(".yaml") and f != "kustomization.yaml")
    for f in files:
        if f not in listed:
            bad(f"kustomization.yaml: {f} is not listed in resources")
    objs = {}
    for f in listed:
        p = os.path.join(kdir, f)
        if not os.path.exists(p):
            bad(f"kustomization.yaml: resource {f} does not exist")
            continue
        for o in load_all(p):
            if not isinstance(o, dict) or "kind" not in o or "apiVersion" not in o:
                bad(f"{f}: a document without kind/apiVersion")
                continue
            objs.setdefault(o["kind"], []).append(o)
    want = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
            "PodDisruptionBudget": "policy/v1", "ConfigMap": "v1", "PersistentVolumeClaim": "v1"}
    for kind, api in want.items():
        if len(objs.get(kind, [])) != 1:
            bad(f"k8s: expected exactly one {kind}, found {len(objs.get(kind, []))}")
        elif objs[kind][0]["apiVersion"] != api:
            bad(f"k8s: {kind} apiVersion {objs[kind][0]['apiVersion']}, expected {api}")
    if problems:
        return
    dep, svc = objs["Deployment"][0], objs["Service"][0]
    hpa, pdb = objs["HorizontalPodAutoscaler"][0], objs["PodDisruptionBudget"][0]
    cm, pvc = objs["ConfigMap"][0], objs["PersistentVolumeClaim"][0]
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    if dep["spec"]["selector"]["matchLabels"].items() - labels.items():
        bad("Deployment: selector does not match the pod template labels")
    if dep["spec"].get("replicas", 1) < 2:
        bad("Deployment: fewer than 2 replicas")
    cs = spec["containers"]
    if len(cs) != 1:
        bad("Deployment: expected one container")
        return
    c = cs[0]
    cfg = cm.get("data", {})
    for k in cfg:
        if not k.startswith("TRIPLETD_"):
            bad(f"ConfigMap: key {k} is not a TRIPLETD_* option")
    if not any(e.get("configMapRef", {}).get("name") == cm["metadata"]["name"] for e in c.get("envFrom", [])):
        bad("Deployment: the container does not take its environment from the ConfigMap")
    # Ports: the image's EXPOSE, the ConfigMap's TRIPLETD_PORT, probes, Service.
    exposed = docker["expose"]
    cports = [p["containerPort"] for p in c.get("ports", [])]
    if not exposed or cports != exposed:
        bad(f"Deployment: container ports {cports} do not match the image's EXPOSE {exposed}")
    if str(cfg.get("TRIPLETD_PORT", docker["env"].get("TRIPLETD_PORT"))) not in map(str, exposed):
        bad(f"ConfigMap: TRIPLETD_PORT {cfg.get('TRIPLETD_PORT')} is not the exposed port {exposed}")
    if cfg.get("TRIPLETD_HOST", docker["env"].get("TRIPLETD_HOST")) not in ("0.0.0.0", "::"):
        bad("ConfigMap: TRIPLETD_HOST must listen on all addresses in a pod")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        pr = c.get(probe)
        if not pr or "httpGet" not in pr:
            bad(f"Deployment: no {probe} with httpGet")
            continue
        if pr["httpGet"].get("path") != path:
            bad(f"Deployment: {probe} path {pr['httpGet'].get('path')}, expected {path}")
        if named_port(c, pr["httpGet"].get("port")) not in exposed:
            bad(f"Deployment: {probe} port does not resolve to the exposed port")
    if svc["spec"].get("selector", {}).items() - labels.items() or not svc["spec"].get("selector"):
        bad("Service: selector does not match the pods")
    for p in svc["spec"].get("ports", []):
        if named_port(c, p.get("targetPort", p.get("port"))) not in exposed:
            bad(f"Service: targetPort {p.get('targetPort')} is not the container's exposed port")
    # Resources, security.
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(part, {}):
                bad(f"Deployment: resources.{part}.{r} missing")
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
        bad("Deployment: runAsNonRoot is not true")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    if uid in (None, 0) or (docker["user"] and str(uid) != docker["user"]):
        bad(f"Deployment: runAsUser {uid} does not match the image's USER {docker['user']}")
    if docker["user"] in (None, "0", "root"):
        bad("Dockerfile: no non-root numeric USER in the final stage")
    if csc.get("readOnlyRootFilesystem") is not True:
        bad("Deployment: readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        bad("Deployment: allowPrivilegeEscalation is not false")
    # Shutdown: grace period covers the preStop pause plus the drain.
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else None
    if pause is None:
        bad("Deployment: preStop must be [\"sleep\", N]")
    drain = cfg.get("TRIPLETD_DRAIN_TIMEOUT")
    grace = spec.get("terminationGracePeriodSeconds")
    if drain is None or grace is None or pause is None or grace < pause + float(drain):
        bad(f"Deployment: terminationGracePeriodSeconds {grace} < preStop {pause} + drain {drain}")
    # The model comes from a volume mounted where TRIPLETD_MODEL points.
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    model = cfg.get("TRIPLETD_MODEL", "")
    mv = [n for n, m in mounts.items() if model.startswith(m["mountPath"].rstrip("/") + "/")]
    if not mv:
        bad(f"Deployment: TRIPLETD_MODEL {model!r} is not on a mounted volume")
    elif mv[0] not in vols:
        bad(f"Deployment: volume {mv[0]} is mounted but not defined")
    else:
        claim = vols[mv[0]].get("persistentVolumeClaim", {}).get("claimName")
        if claim is not None and claim != pvc["metadata"]["name"]:
            bad(f"Deployment: model volume claims {claim}, but the PVC is {pvc['metadata']['name']}")
        if not mounts[mv[0]].get("readOnly"):
            bad("Deployment: the model volume is not mounted read-only")
    # Autoscaler and disruption budget point at the Deployment and its pods.
    ref = hpa["spec"]["scaleTargetRef"]
    if ref.get("kind") != "Deployment" or ref.get("name") != dep["metadata"]["name"]:
        bad("HorizontalPodAutoscaler: scaleTargetRef is not the Deployment")
    if not 1 <= hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"]:
        bad("HorizontalPodAutoscaler: minReplicas/maxReplicas out of order")
    if not hpa["spec"].get("metrics"):
        bad("HorizontalPodAutoscaler: no metrics")
    if pdb["spec"].get("selector", {}).get("matchLabels", {}).items() - labels.items():
        bad("PodDisruptionBudget: selector does not match the pods")
    if ("minAvailable" in pdb["spec"]) == ("maxUnavailable" in pdb["spec"]):
        bad("PodDisruptionBudget: set exactly one of minAvailable/maxUnavailable")
    return cfg


def check_compose_nginx(d, docker, cfg):
    comp = load_all(os.path.join(d, "compose.yaml"))[0]
    svcs = comp.get("services", {})
    replicas = sorted(n for n, s in svcs.items() if "Dockerfile" == os.path.basename(s.get("build", {}).get("dockerfile", "")))
    if len(replicas) != 3:
        bad(f"compose.yaml: expected 3 tripletd replicas, found {replicas}")
    lb = [n for n, s in svcs.items() if "nginx" in n]
    if len(lb) != 1:
        bad("compose.yaml: expected one nginx service")
    else:
        for p in svcs[lb[0]].get("ports", []):
            if not str(p).startswith("127.0.0.1:"):
                bad(f"compose.yaml: nginx port {p} is not bound to 127.0.0.1")
        if sorted(svcs[lb[0]].get("depends_on", [])) != replicas:
            bad("compose.yaml: nginx does not depend on every replica")
    conf = open(os.path.join(d, "nginx.conf")).read()
    ups = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.M)
    if sorted(h for h, _ in ups) != replicas:
        bad(f"nginx.conf: upstream servers {ups} are not the compose replicas {replicas}")
    if any(int(p) not in docker["expose"] for _, p in ups):
        bad("nginx.conf: an upstream port is not the image's exposed port")
    if not re.search(r"^\s*proxy_next_upstream\s+error timeout http_502 http_503 non_idempotent;", conf, re.M):
        bad("nginx.conf: proxy_next_upstream must retry error timeout http_502 http_503 non_idempotent")
    if not re.search(r"^\s*keepalive\s+\d+;", conf, re.M) or 'proxy_set_header Connection "";' not in conf:
        bad("nginx.conf: no keep-alive to the upstreams")
    m = re.search(r"client_max_body_size\s+(\d+)([kKmM]?);", conf)
    mult = {"": 1, "k": 1024, "m": 1024 * 1024}
    limit = int(m.group(1)) * mult[m.group(2).lower()] if m else None
    if limit != int(cfg.get("TRIPLETD_MAX_BODY", 8 << 20)):
        bad(f"nginx.conf: client_max_body_size {limit} does not match tripletd's max body")


def check_flags(cfg, help_text):
    env = set(cfg) | set()
    for k in sorted(env):
        flag = "--" + k[len("TRIPLETD_"):].lower().replace("_", "-")
        if not re.search(re.escape(flag) + r"\b", help_text):
            bad(f"ConfigMap: {k} names no tripletd option ({flag} is not in tripletd --help)")


def main():
    if len(sys.argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    docker = dockerfile_facts(os.path.join(d, "Dockerfile"))
    if not docker["healthcheck"]:
        bad("Dockerfile: no HEALTHCHECK")
    cfg = check_k8s(d, docker) or {}
    check_compose_nginx(d, docker, cfg)
    if len(sys.argv) == 4:
        check_flags(cfg, open(sys.argv[3]).read())
    for p in problems:
        print("manifests:", p)
    if not problems:
        print("manifests: ok (Dockerfile, compose.yaml, nginx.conf, k8s/)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
