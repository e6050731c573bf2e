"""The asyncio scheduler server (as `services.scheduler` serves it) on a loop in a thread of its own,
for tests and benchmarks that call it from blocking code. Shared by test_servicer_async.py,
test_servicer_async_shedding.py and bench/load/read_cost.py."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence

import grpc

from datapool.v1 import scheduler_pb2_grpc
from services.common.aio_server import AsyncServiceServer
from services.scheduler.async_servicer import AsyncSchedulerServicer


@contextlib.contextmanager
def aio_scheduler(
    servicer: AsyncSchedulerServicer,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_concurrent_rpcs: int | None = None,
) -> Iterator[AsyncServiceServer]:
    """The started server on a free loopback port; stopped, with its loop, at the end."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> AsyncServiceServer:
        server = AsyncServiceServer(
            "scheduler",
            "127.0.0.1:0",
            lambda s: scheduler_pb2_grpc.add_SchedulerServicer_to_server(servicer, s),
            ["datapool.v1.Scheduler"],
            interceptors=interceptors,
            max_concurrent_rpcs=max_concurrent_rpcs,
        )
        await server.start()
        return server

    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
