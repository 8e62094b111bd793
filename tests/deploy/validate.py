#!/usr/bin/env python3
"""Checks the deploy kit as an operator would apply it.

For every kustomization under deploy/ (each overlay, not the components):
  1. `kubectl kustomize` renders it;
  2. every rendered object is valid against the Kubernetes OpenAPI schemas of each
     version kubernetes-validate knows from 1.29 on, in --strict mode (unknown fields are
     errors);
  3. every ConfigMap key ending in .toml passes `clusterdns --config FILE --validate`;
  4. each clusterdns container's --config path is a file its mounted ConfigMap provides;
  5. a DaemonSet on the host network declares no ports (each would be a host port, and
     two pods with one host port cannot share a node) and rolls out by surge
     (maxSurge 1, maxUnavailable 0), as the NodeLocal mode's overlapping restart needs.
Exits non-zero, naming the overlay and the reason, on the first kind of failure.

Usage: tests/deploy/validate.py CLUSTERDNS_BINARY
Needs: kubectl (its built-in kustomize), kubernetes-validate (PyPI; .ci/run installs it).
"""

import pathlib
import subprocess
import sys
import tempfile

import yaml
from kubernetes_validate import utils as kv

ROOT = pathlib.Path(__file__).resolve().parents[2]
OLDEST = (1, 29)


def overlays():
    for k in sorted(ROOT.glob("deploy/**/kustomization.yaml")):
        doc = yaml.safe_load(k.read_text())
        if doc.get("kind", "Kustomization") == "Kustomization":
            yield k.parent


def versions():
    def key(v):
        return tuple(int(x) for x in v.split(".")[:2])

    picked = sorted({v for v in kv.all_versions() if key(v) >= OLDEST}, key=key)
    if len(picked) < 2:
        sys.exit(f"kubernetes-validate knows too few versions from 1.29 on: {picked}")
    return picked


def render(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"{overlay}: kubectl kustomize failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def check_schemas(name, objects, version):
    failed = []
    for obj in objects:
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as e:
            at = ".".join(str(p) for p in e.path)
            failed.append(f"{obj['kind']}/{obj['metadata']['name']} {at}: {e.message}")
        except kv.SchemaNotFoundError as e:
            failed.append(e.message)
    return [f"{name} @ {version}: {f}" for f in failed]


def check_configs(name, objects, binary):
    failed, checked = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for obj in objects:
            if obj["kind"] != "ConfigMap":
                continue
            for key, text in (obj.get("data") or {}).items():
                if not key.endswith(".toml"):
                    continue
                path = pathlib.Path(tmp) / key
                path.write_text(text)
                out = subprocess.run(
                    [binary, "--config", str(path), "--validate"],
                    capture_output=True,
                    text=True,
                )
                checked += 1
                if out.returncode != 0:
                    failed.append(
                        f"{name}: ConfigMap {obj['metadata']['name']} key {key}: "
                        f"{out.stderr.strip() or out.stdout.strip()}"
                    )
    if checked == 0:
        failed.append(f"{name}: no ConfigMap holds a clusterdns config")
    return failed


def check_mounts(name, objects):
    """The --config path of each clusterdns container is a key of a mounted ConfigMap."""
    maps = {
        o["metadata"]["name"]: set((o.get("data") or {}).keys())
        for o in objects
        if o["kind"] == "ConfigMap"
    }
    failed = []
    for obj in objects:
        if obj["kind"] not in ("Deployment", "DaemonSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            args = c.get("args", [])
            if "--config" not in args:
                continue
            config = args[args.index("--config") + 1]
            provided = set()
            for m in c.get("volumeMounts", []):
                cm = volumes.get(m["name"], {}).get("configMap")
                if not cm:
                    continue
                keys = maps.get(cm["name"], set())
                items = cm.get("items") or [{"key": k, "path": k} for k in keys]
                provided |= {
                    f"{m['mountPath'].rstrip('/')}/{i['path']}"
                    for i in items
                    if i["key"] in keys
                }
            if config not in provided:
                failed.append(
                    f"{name}: {obj['metadata']['name']}/{c['name']} reads {config}, "
                    f"but its ConfigMap mounts provide {sorted(provided) or 'nothing'}"
                )
    return failed


def check_host_network(name, objects):
    failed = []
    for obj in objects:
        if obj["kind"] != "DaemonSet":
            continue
        pod = obj["spec"]["template"]["spec"]
        if not pod.get("hostNetwork"):
            continue
        where = f"{name}: DaemonSet {obj['metadata']['name']}"
        for c in pod["containers"]:
            if c.get("ports"):
                failed.append(f"{where}/{c['name']}: declares ports (host ports on the host network)")
        rolling = (obj["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        if (rolling.get("maxSurge"), rolling.get("maxUnavailable")) != (1, 0):
            failed.append(f"{where}: rollingUpdate is {rolling}, not maxSurge 1, maxUnavailable 0")
    return failed


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    vs = versions()
    names, bad = [], 0
    for overlay in overlays():
        name = str(overlay.relative_to(ROOT))
        names.append(name)
        objects = render(overlay)
        failed = []
        for v in vs:
            failed += check_schemas(name, objects, v)
        failed += check_configs(name, objects, binary)
        failed += check_mounts(name, objects)
        failed += check_host_network(name, objects)
        for f in failed:
            print(f"FAILED: {f}", file=sys.stderr)
        bad += bool(failed)
        print(f"deploy kit: {name}: {len(objects)} objects, {'FAILED' if failed else 'ok'}")
    if not names:
        sys.exit("no kustomization found under deploy/")
    print(f"deploy kit: {len(names)} overlays x {len(vs)} Kubernetes versions "
          f"({vs[0]} to {vs[-1]}), strict")
    print(f"deploy: {len(names) - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
