"""TLS in the chart: one Secret (tls.crt, tls.key, ca.crt) mounted by reference in every service, the
flags that turn TLS on, probes on the plaintext health port, and `helm test` over TLS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from chart import NAMESPACE, ROOT, RenderError, Settings, arg, containers, of_kind, pod_spec, render, workload
from tls_support import PKI, make_pki

from datapool.tls import CA_ENV, server_credentials
from services.common.server import ServiceServer

TLS: Settings = {"tls.enabled": True, "tls.existingSecret": "dp-tls", "tls.serverName": "datapool-internal"}
SERVICES = ("scheduler", "selector", "embedder")


def test_without_tls_no_service_gets_tls_flags_and_probes_ask_the_grpc_port() -> None:
    manifests = render()
    for name in SERVICES:
        (c,) = containers(workload(manifests, name))
        assert not [a for a in c["args"] if a.startswith(("--tls", "--health-port"))]
        assert c["readinessProbe"]["grpc"]["port"] == c["ports"][0]["containerPort"]
        assert "tls" not in [v["name"] for v in pod_spec(workload(manifests, name))["volumes"]]


def test_with_tls_every_service_mounts_the_secret_and_probes_ask_the_health_port() -> None:
    manifests = render(settings=TLS)
    assert of_kind(manifests, "Secret") == []
    for name in SERVICES:
        d = workload(manifests, name)
        (c,) = containers(d)
        (volume,) = [v for v in pod_spec(d)["volumes"] if v["name"] == "tls"]
        assert volume["secret"]["secretName"] == "dp-tls"
        assert {i["key"] for i in volume["secret"]["items"]} == {"tls.crt", "tls.key", "ca.crt"}
        (mount,) = [m for m in c["volumeMounts"] if m["name"] == "tls"]
        assert mount["readOnly"] is True
        for flag, file in (("--tls-cert", "tls.crt"), ("--tls-key", "tls.key"), ("--tls-ca", "ca.crt")):
            assert arg(c, flag) == f"{mount['mountPath']}/{file}"
        assert arg(c, "--health-port") == "8086"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == 8086
        server_name = [a for a in c["args"] if a.startswith("--tls-server-name")]
        assert server_name == (["--tls-server-name=datapool-internal"] if name == "scheduler" else [])


def test_tls_without_a_secret_is_refused_naming_the_value() -> None:
    with pytest.raises(RenderError, match=r"tls\.existingSecret"):
        render(settings={"tls.enabled": True})


def test_the_gateway_trusts_the_secrets_ca() -> None:
    (c,) = containers(workload(render(settings={**TLS, "gateway.enabled": True}), "gateway"))
    (ca,) = [e["value"] for e in c["env"] if e["name"] == CA_ENV]
    assert ca.endswith("/ca.crt")


def test_helm_test_asks_the_scheduler_over_tls_trusting_the_secrets_ca(tmp_path: Path) -> None:
    pki: PKI = make_pki(tmp_path)
    (pod,) = of_kind(render(settings=TLS), "Pod")
    (c,) = containers(pod)
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "tls"]
    (ca,) = [e["value"] for e in c["env"] if e["name"] == CA_ENV]
    assert ca == f"{mount['mountPath']}/ca.crt"
    _, flag, script = c["command"]
    service = f"dp-datapool-scheduler.{NAMESPACE}.svc.cluster.local:50051"
    server = ServiceServer(
        "scheduler",
        "127.0.0.1:0",
        lambda s: None,
        [],
        credentials=server_credentials(pki.good.cert, pki.good.key),
    )
    server.start()
    try:
        local = script.replace(service, f"127.0.0.1:{server.port}")
        env = {**os.environ, CA_ENV: str(pki.good.ca_cert)}
        done = subprocess.run(
            [sys.executable, flag, local], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
        )
    finally:
        server.stop(0)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SERVING" in done.stdout
