"""Channels to a name that stands for several servers spread calls over all of them.

In Kubernetes the scheduler dials one headless Service (`dns:///embedder-headless…:50053`) that
resolves to every embedder pod; with gRPC's default policy (pick_first) every call would go to
the first pod. Here two real servers stand behind one `ipv4:` target (the same resolver path
as `dns:`, without needing a DNS name with two addresses).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from datapool.channels import make_channel


class _CountingInterceptor(grpc.ServerInterceptor):
    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        with self._lock:
            self.calls += 1
        return continuation(handler_call_details)


@pytest.fixture
def two_servers() -> Iterator[list[tuple[int, _CountingInterceptor]]]:
    started = []
    for _ in range(2):
        counter = _CountingInterceptor()
        server = grpc.server(ThreadPoolExecutor(max_workers=2), interceptors=[counter])
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        started.append((server, port, counter))
    yield [(port, counter) for _, port, counter in started]
    for server, _, _ in started:
        server.stop(None)


def _check(channel: grpc.Channel, times: int) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for _ in range(times):
        reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_target_resolving_to_several_servers_sends_calls_to_each_in_turn(
    two_servers: list[tuple[int, _CountingInterceptor]],
) -> None:
    (p1, c1), (p2, c2) = two_servers
    with make_channel(f"ipv4:127.0.0.1:{p1},127.0.0.1:{p2}") as channel:
        # round_robin connects to both before it has a ready pick; wait so the count is exact.
        grpc.channel_ready_future(channel).result(timeout=10)
        _check(channel, 20)
    assert c1.calls + c2.calls == 20
    assert min(c1.calls, c2.calls) >= 8, (c1.calls, c2.calls)


def test_a_dns_target_reaches_its_server(two_servers: list[tuple[int, _CountingInterceptor]]) -> None:
    (port, counter), _ = two_servers
    with make_channel(f"dns:///127.0.0.1:{port}") as channel:
        _check(channel, 3)
    assert counter.calls == 3
