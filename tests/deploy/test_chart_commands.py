"""The commands the chart runs are the services' real ones: every flag it passes exists.

Each container's args are `python -m` arguments (the image's entrypoint); the module's own
`--help` lists the flags it takes, so a flag renamed in the code fails here, not in a cluster.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys

import pytest
from chart import ROOT, Settings, arg, component, containers, of_kind, render, workload

from datapool.internal_token import TOKEN_FILE_ENV
from datapool.secret_key import KEY_FILE_OPTION

EVERYTHING_ON: Settings = {
    "gateway.enabled": True,
    "secrets.secretKey.existingSecret": "dp-fernet",
    "embedder.threads": 4,
    "tls.enabled": True,
    "tls.existingSecret": "dp-tls",
    "tls.serverName": "datapool-internal",
}


@functools.lru_cache(maxsize=8)
def _options(module: str) -> frozenset[str]:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", proc.stdout))


# The gateway (services/gateway, issue 16) may land after the chart's template for it.
_GATEWAY = pytest.param(
    "gateway",
    marks=pytest.mark.skipif(
        not (ROOT / "services" / "gateway" / "__main__.py").exists(), reason="no services/gateway here yet"
    ),
)


@pytest.mark.parametrize("name", ["scheduler", "selector", "embedder", _GATEWAY])
def test_every_flag_the_chart_passes_is_one_the_service_takes(name: str) -> None:
    (c,) = containers(workload(render(settings=EVERYTHING_ON), name))
    module, *flags = c["args"]
    assert module == f"services.{name}"
    taken = _options(module)
    for flag in flags:
        assert flag.split("=", 1)[0] in taken, (name, flag)


def test_secret_files_are_named_the_way_the_services_read_them() -> None:
    manifests = render(settings=EVERYTHING_ON)
    (scheduler,) = containers(workload(manifests, "scheduler"))
    assert arg(scheduler, KEY_FILE_OPTION).startswith("/var/run/secrets/")
    for d in of_kind(manifests, "Deployment"):
        if component(d) == "gateway":
            continue
        (c,) = containers(d)
        assert TOKEN_FILE_ENV in {e["name"] for e in c["env"]}, component(d)
