"""`services.common.server.ServiceServer` on `grpc.aio`: the scheduler's server.

Why asyncio for the scheduler: its calls are many and short (reads of the store), and the
threaded server hands each one between a polling thread and a worker thread under the GIL. With
the 256 worker threads that long WatchRun streams need, an open-loop load past what the process
answers put hundreds of threads on the GIL at once, and each call's CPU rose three- to fourfold
(1.6-2.2 ms to 5.3-7.3, bench/load/scenarios.py reads). On one event loop a waiting call costs a
coroutine, not a thread. The same settings as the threaded server: transport options, health (and
the plaintext health address), reflection, metrics / token / domain-error interceptors, TLS, a cap
on calls in flight (past it, RESOURCE_EXHAUSTED at once), graceful shutdown on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.aio_interceptors import AioDomainErrorInterceptor, AioRpcMetricsInterceptor
from services.common.loop_lag import time_gc_pauses, watch_loop_lag
from services.common.server import GRACE_SECONDS, SERVER_OPTIONS, reflect_and_bind

log = logging.getLogger(__name__)


class AsyncServiceServer:
    """A gRPC asyncio server with health and reflection; built, started and stopped on the loop
    that `serve_until_signal` (or a test's loop) runs."""

    def __init__(
        self,
        name: str,
        address: str,
        register: Callable[[grpc.aio.Server], None],
        service_names: list[str],
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
        health_address: str | None = None,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        """Arguments as `ServiceServer`'s (no worker threads: the handlers are coroutines)."""
        self.name = name
        self.server = grpc.aio.server(
            options=SERVER_OPTIONS,
            # Metrics outermost: they record the status the caller gets, refusals included.
            interceptors=[AioRpcMetricsInterceptor(), *interceptors, AioDomainErrorInterceptor()],
            maximum_concurrent_rpcs=max_concurrent_rpcs,
        )
        register(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = reflect_and_bind(self.server, name, address, service_names, credentials)
        self.health_server: grpc.aio.Server | None = None
        self.health_port = 0
        if health_address is not None:
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            self.health_port = self.health_server.add_insecure_port(health_address)
            if self.health_port == 0:
                raise RuntimeError(f"{name}: cannot bind the health address {health_address}")
        self._service_names = service_names
        self._stopped = False
        self._lag_watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The loop's lag and the collector's pauses, as metrics: what a call's tail waits for.
        time_gc_pauses()
        self._lag_watch = asyncio.ensure_future(watch_loop_lag())
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
        for service in ["", *self._service_names]:
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s listening on port %d", self.name, self.port)

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._lag_watch is not None:
            self._lag_watch.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(None)
        log.info("%s stopped", self.name)

    async def serve_until_signal(self, grace: float = GRACE_SECONDS) -> None:
        """Serves until SIGTERM or SIGINT, then stops gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            log.info("%s: signal %d, shutting down", self.name, signum)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        await self.start()
        await stop.wait()
        await self.stop(grace)
