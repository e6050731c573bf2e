"""The servers' half of the transport settings, shared by the three services.

Every server gets: explicit message-size limits, keepalive, the standard health
service, reflection, the RPC metrics and domain-error interceptors, and graceful
shutdown on SIGTERM/SIGINT (health turns NOT_SERVING, in-flight calls get `grace`
seconds). Clients open channels with `datapool.channels`; logging is set up by
`services.common.logging_setup`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from datapool.channels import COMMON_OPTIONS
from services.common.rpc_metrics import RpcMetricsInterceptor
from services.common.status import DomainErrorInterceptor

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0

# A client balancing over a DNS name (round_robin) re-resolves it only when a connection
# closes; closing each connection after this age (calls in flight finish first: no grace limit)
# lets it find pods added since, e.g. embedders the autoscaler started.
MAX_CONNECTION_AGE_MS = 300_000

SERVER_OPTIONS: list[tuple[str, Any]] = [
    *COMMON_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.so_reuseport", 0),
    ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
]


def reflect_and_bind(
    server: grpc.Server | grpc.aio.Server,
    name: str,
    address: str,
    service_names: Sequence[str],
    credentials: grpc.ServerCredentials | None,
) -> int:
    """Reflection for `service_names` and health, then `address` bound (TLS with `credentials`,
    plaintext without); the port bound. Shared by the threaded and the asyncio server."""
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    if credentials is not None:
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"{name}: cannot bind {address}")
    return port


class ServiceServer:
    """A started gRPC server with health and reflection, stoppable gracefully."""

    def __init__(
        self,
        name: str,
        address: str,
        register: Callable[[grpc.Server], None],
        service_names: list[str],
        max_workers: int = 16,
        interceptors: Sequence[grpc.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
        health_address: str | None = None,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        """`credentials`: TLS on `address` (plaintext callers are refused), from
        `services.common.tls_args`. `health_address`: also answer health checks, and nothing
        else, in plaintext there (Kubernetes' gRPC probes cannot speak TLS).
        `max_concurrent_rpcs`: a call beyond it is refused RESOURCE_EXHAUSTED at once, rather
        than queued until a worker thread is free (None: queued)."""
        self.name = name
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name),
            options=SERVER_OPTIONS,
            # Metrics outermost: they record the status the caller gets, refusals included.
            interceptors=[RpcMetricsInterceptor(), *interceptors, DomainErrorInterceptor()],
            maximum_concurrent_rpcs=max_concurrent_rpcs,
        )
        register(self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = reflect_and_bind(self.server, name, address, service_names, credentials)
        self.health_server: grpc.Server | None = None
        self.health_port = 0
        if health_address is not None:
            self.health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_port = self.health_server.add_insecure_port(health_address)
            if self.health_port == 0:
                raise RuntimeError(f"{name}: cannot bind the health address {health_address}")
        self._service_names = service_names
        self._stopped = threading.Event()

    def start(self) -> None:
        self.server.start()
        if self.health_server is not None:
            self.health_server.start()
        for service in ["", *self._service_names]:
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s listening on port %d", self.name, self.port)

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(None)
        log.info("%s stopped", self.name)

    def serve_until_signal(self, grace: float = GRACE_SECONDS) -> None:
        """Blocks until SIGTERM or SIGINT, then stops gracefully."""
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("%s: signal %d, shutting down", self.name, signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        stop.wait()
        self.stop(grace)
