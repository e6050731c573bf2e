"""An embedder that closes an aged connection (the servers' max_connection_age) stays usable:
the scheduler's replica connects again by itself, so wait_ready finds it without any call made.

Found by bench/load/scenarios.py schedule: five minutes after `datapool up` every run failed
"no embedder answered within 120s" while the embedder answered its health checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from services.scheduler.remotes import EmbedderPool

AGE_MS = 1000


@pytest.fixture
def aging_server() -> Iterator[str]:
    """A gRPC server that closes every connection after AGE_MS, as ours do after 5 minutes."""
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.max_connection_age_ms", AGE_MS)])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_a_replica_whose_connection_aged_out_is_ready_again_without_a_call(aging_server: str) -> None:
    pool = EmbedderPool([aging_server])
    try:
        assert pool.wait_ready(timeout=10) is pool.replicas[0]
        # Past several connection ages, with no call in between, the replica is found ready.
        for _ in range(3):
            time.sleep(AGE_MS / 1000 + 0.5)
            assert pool.wait_ready(timeout=5) is pool.replicas[0]
    finally:
        pool.close()
