"""`helm template` of deploy/helm/datapool, parsed, for the chart tests in this folder.

helm is the pinned build scripts/setup.sh puts in .tools/bin (or $HELM). Without it the tests
skip, except in CI (`$CI` set), where a missing helm fails them: setup installs it there.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "datapool"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
NAMESPACE = "datapool"
RELEASE = "dp"
# Stated, not taken from helm: a `go install`ed helm has no Kubernetes version built in (v1.20).
KUBE_VERSION = "1.37.0"

Manifest = dict[str, Any]
# --set key=value pairs; a str is set as a string, a bool or int as itself.
Settings = Mapping[str, str | int | bool]

# The least a render needs: the chart refuses to install without these two Secrets named.
REQUIRED = {
    "secrets.internalToken.existingSecret": "dp-internal",
    "secrets.apiToken.existingSecret": "dp-api",
}


class RenderError(Exception):
    """`helm template` refused the values; the message is helm's."""


def _helm() -> str | None:
    for candidate in (os.environ.get("HELM"), str(ROOT / ".tools" / "bin" / "helm"), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_helm() -> str:
    helm = _helm()
    if helm is None:
        if os.environ.get("CI"):
            pytest.fail("helm is missing: scripts/setup.sh builds it into .tools/bin (needs Go)")
        pytest.skip("helm is missing: scripts/setup.sh builds it into .tools/bin when Go is installed")
    return helm


@functools.lru_cache(maxsize=64)
def _template(values_file: str | None, settings: tuple[tuple[str, str | int | bool], ...]) -> str:
    args = [require_helm(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--kube-version", KUBE_VERSION]
    if values_file:
        args += ["-f", values_file]
    for key, value in settings:
        if isinstance(value, str):
            args += ["--set-string", f"{key}={value}"]
        else:
            args += ["--set", f"{key}={str(value).lower()}"]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


def render_text(values_file: Path | None = None, settings: Settings | None = None) -> str:
    """The rendered manifests as helm prints them (REQUIRED unless a values file names the Secrets)."""
    merged: dict[str, str | int | bool] = dict(REQUIRED) if values_file is None else {}
    merged.update(settings or {})
    return _template(str(values_file) if values_file else None, tuple(sorted(merged.items())))


def render(values_file: Path | None = None, settings: Settings | None = None) -> list[Manifest]:
    return [d for d in yaml.safe_load_all(render_text(values_file, settings)) if d]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def component(m: Manifest) -> str:
    return str(m["metadata"]["labels"]["app.kubernetes.io/component"])


def workload(manifests: list[Manifest], name: str) -> Manifest:
    (found,) = [m for m in of_kind(manifests, "Deployment") if component(m) == name]
    return found


def pod_spec(workload: Manifest) -> dict[str, Any]:
    """The pod spec of a Deployment, or of a Pod (the `helm test` hook)."""
    if workload["kind"] == "Pod":
        return dict(workload["spec"])
    return dict(workload["spec"]["template"]["spec"])


def containers(deployment: Manifest) -> Iterator[dict[str, Any]]:
    spec = pod_spec(deployment)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def arg(container: Mapping[str, Any], flag: str) -> str:
    """The value of `--flag=value` among the container's args."""
    (value,) = [str(a).split("=", 1)[1] for a in container["args"] if str(a).startswith(f"{flag}=")]
    return value


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
