"""`helm test`: a pod that asks the scheduler's Service for its health, as a client would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from chart import NAMESPACE, ROOT, containers, of_kind, render
from grpc_health.v1 import health, health_pb2_grpc


@pytest.fixture
def serving_port() -> Iterator[int]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def test_the_helm_test_pod_checks_the_scheduler_service_and_passes_when_it_serves(serving_port: int) -> None:
    (pod,) = of_kind(render(), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (c,) = containers(pod)
    python, flag, script = c["command"]
    assert (python, flag) == ("python", "-c")
    service = f"dp-datapool-scheduler.{NAMESPACE}.svc.cluster.local:50051"
    assert service in script
    # The same script, pointed at a local server that answers SERVING, exits 0.
    local = script.replace(service, f"127.0.0.1:{serving_port}")
    proc = subprocess.run(
        [sys.executable, flag, local], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "SERVING" in proc.stdout
