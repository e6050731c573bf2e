"""The scheduler's gRPC face on an asyncio server (`services.common.aio_server`).

Each method does what `SchedulerServicer`'s does (it calls it); what differs is where it runs:
- a read of the metadata store answers on the event loop itself (a few hundred microseconds:
  SQLite in WAL mode and Postgres both read without waiting on writers), since handing each one
  to a thread cost more than the read (bench/load: the GIL handoff doubled a GetRun's CPU);
- ListTags reads the pool's location and recorded version so, and answers from the selector's
  summary, cached while no newer commit is recorded, or awaits it over an asyncio channel
  (async_tags.py);
- anything else that waits on the network (the selector, a cloud datasource) or writes runs in
  the `blocking` thread pool, so the loop never stalls on it;
- WatchRun waits for the next run change in `waits`, one thread per waiting watcher, blocked
  without the GIL; a client that goes away cancels the handler at that wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import grpc

from datapool.storage.locations import pool_key
from datapool.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.async_tags import AsyncPoolTags
from services.scheduler.runs import END_STATES
from services.scheduler.servicer import WATCH_POLL_S, SchedulerServicer, run_msg, worth_sending

T = TypeVar("T")
if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
_DONE = object()


@functools.lru_cache(maxsize=1024)
def _pool_key(location: bytes) -> str:
    """`pool_key` of a serialized location, remembered: ListTags asks it on every call."""
    return pool_key(common_pb2.StoreLocation.FromString(location))


def _close_quietly(stream: Iterator[Any]) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):  # still running in its thread: closed when collected
            close()


class AsyncSchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(
        self, servicer: SchedulerServicer, blocking: Executor, waits: Executor, tags: AsyncPoolTags
    ) -> None:
        self.servicer = servicer
        self._blocking = blocking
        self._waits = waits
        self._tags = tags

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._blocking, fn, *args)

    async def _stream(self, messages: Iterator[T]) -> AsyncIterator[T]:
        """A blocking stream's messages, each pulled in the thread pool."""
        loop = asyncio.get_running_loop()
        done = False
        try:
            while True:
                message = await loop.run_in_executor(self._blocking, next, messages, _DONE)
                if message is _DONE:
                    done = True
                    return
                yield message  # type: ignore[misc]
        finally:
            if not done:
                loop.run_in_executor(self._blocking, _close_quietly, messages)

    # Reads of the store, on the loop.
    async def GetDataset(self, request: Any, context: Context) -> scheduler_pb2.Dataset:
        return self.servicer.GetDataset(request, context)  # type: ignore[arg-type]

    async def ListDatasets(self, request: Any, context: Context) -> scheduler_pb2.ListDatasetsResponse:
        return self.servicer.ListDatasets(request, context)  # type: ignore[arg-type]

    async def GetRun(self, request: Any, context: Context) -> scheduler_pb2.Run:
        return self.servicer.GetRun(request, context)  # type: ignore[arg-type]

    async def ListRuns(self, request: Any, context: Context) -> scheduler_pb2.ListRunsResponse:
        return self.servicer.ListRuns(request, context)  # type: ignore[arg-type]

    async def ListTags(self, request: Any, context: Context) -> scheduler_pb2.ListTagsResponse:
        # The pool's location and the newest commit recorded for it from the store, on the loop;
        # its tags from the selector's summary (cached while no newer commit is recorded), awaited.
        pool = self.servicer.pool_location(request.dataset_id)
        recorded = self.servicer.db.pool_version(_pool_key(pool.SerializeToString()))
        return scheduler_pb2.ListTagsResponse(tags=await self._tags.all(pool, recorded))

    async def WatchRun(self, request: Any, context: Context) -> AsyncIterator[scheduler_pb2.Run]:
        db, runs = self.servicer.db, self.servicer.runs
        loop = asyncio.get_running_loop()
        last: scheduler_pb2.Run | None = None
        sent = 0.0
        while True:
            msg = run_msg(db.get_run_summary(request.run_id))
            if worth_sending(msg, last, sent):
                yield msg
                last, sent = msg, time.monotonic()
            if msg.state in END_STATES:
                return
            await loop.run_in_executor(self._waits, runs.wait_for_change, WATCH_POLL_S)

    # Writes, the selector, cloud datasources and large answers, in the thread pool.
    async def CreateDataset(self, request: Any, context: Context) -> scheduler_pb2.Dataset:
        return await self._in_thread(self.servicer.CreateDataset, request, context)

    async def SetDatasource(self, request: Any, context: Context) -> scheduler_pb2.Datasource:
        return await self._in_thread(self.servicer.SetDatasource, request, context)

    async def GetDatasource(self, request: Any, context: Context) -> scheduler_pb2.Datasource:
        return await self._in_thread(self.servicer.GetDatasource, request, context)

    async def ScheduleRun(self, request: Any, context: Context) -> scheduler_pb2.Run:
        return await self._in_thread(self.servicer.ScheduleRun, request, context)

    async def GetRunReport(self, request: Any, context: Context) -> scheduler_pb2.RunReport:
        return await self._in_thread(self.servicer.GetRunReport, request, context)

    async def GetRunReportHtml(self, request: Any, context: Context) -> scheduler_pb2.RunReportHtml:
        return await self._in_thread(self.servicer.GetRunReportHtml, request, context)

    async def ExportFilenames(self, request: Any, context: Context) -> scheduler_pb2.ExportFilenamesResponse:
        return await self._in_thread(self.servicer.ExportFilenames, request, context)

    async def ReadFrame(self, request: Any, context: Context) -> scheduler_pb2.FrameImage:
        return await self._in_thread(self.servicer.ReadFrame, request, context)

    # Async generator functions, as gRPC tells a streamed response's handler by its kind.
    async def ExportEmbeddings(
        self, request: Any, context: Context
    ) -> AsyncIterator[scheduler_pb2.EmbeddingRows]:
        async for rows in self._stream(self.servicer.ExportEmbeddings(request, context)):  # type: ignore[arg-type]
            yield rows

    async def ExportViewFrames(self, request: Any, context: Context) -> AsyncIterator[Any]:
        async for frames in self._stream(self.servicer.ExportViewFrames(request, context)):  # type: ignore[arg-type]
            yield frames
