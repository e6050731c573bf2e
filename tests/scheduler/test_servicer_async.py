"""The scheduler as it is served: AsyncSchedulerServicer on the asyncio AsyncServiceServer with the
user-token check, a SQLite store, a selector (a real gRPC server) for ListTags, a thread pool for
blocking calls and one for WatchRun's waits.

Reads answer on the event loop, so they go on while every watch thread waits and while every
blocking thread is busy (the threaded server needed a free worker thread for each); the token
check, domain errors, metrics and the cap on calls in flight behave as on the threaded server.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from aio_serving import aio_scheduler
from prometheus_client import REGISTRY

from datapool.channels import make_channel
from datapool.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc, selector_pb2
from services.common.aio_interceptors import AioTokenInterceptor
from services.scheduler.async_servicer import AsyncSchedulerServicer
from services.scheduler.async_tags import AsyncPoolTags
from services.scheduler.auth import MISSING, REFUSED, user_token_interceptor
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB
from services.scheduler.servicer import WATCH_POLL_S, SchedulerServicer

TOKEN = "async-scheduler-token-0123456789"
INTERNAL = "internal-token-0123456789"
MD = (("authorization", f"Bearer {TOKEN}"),)
STREAMS = 3
CAP = 8  # calls in flight at most
# Opens STREAMS watches, says so once each has its first message, then waits to be killed.
CLIENT = f"""
import sys, time, grpc
from datapool.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc, selector_pb2
stub = scheduler_pb2_grpc.SchedulerStub(grpc.insecure_channel(sys.argv[1]))
md = (("authorization", "Bearer {TOKEN}"),)
calls = [stub.WatchRun(scheduler_pb2.GetRunRequest(run_id=sys.argv[2]), metadata=md, timeout=600)
         for _ in range({STREAMS})]
for call in calls:
    next(call)
print("watching", flush=True)
time.sleep(600)
"""


class RunChanges:
    """WatchRun's wait for the next run change (none comes); counts the waits."""

    def __init__(self) -> None:
        self.waits = 0
        self._lock = threading.Lock()

    def wait_for_change(self, timeout: float) -> None:
        with self._lock:
            self.waits += 1
        time.sleep(timeout)


def _get_pool(request: selector_pb2.GetPoolRequest, context: grpc.ServicerContext) -> Any:
    """The selector's GetPool of a pool with one tag, answered only with the internal token."""
    if ("authorization", f"Bearer {INTERNAL}") not in context.invocation_metadata():
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "no internal token")
    tag = selector_pb2.Tag(name="run-1", run_id="r1", frame_count=7, created_unix_ms=5)
    return selector_pb2.PoolSummary(version=1, frame_count=7, tags=[tag])


SELECTOR = grpc.method_handlers_generic_handler(
    "datapool.v1.Selector",
    {
        "GetPool": grpc.unary_unary_rpc_method_handler(
            _get_pool,
            request_deserializer=selector_pb2.GetPoolRequest.FromString,
            response_serializer=selector_pb2.PoolSummary.SerializeToString,
        )
    },
)


@dataclass
class Served:
    address: str
    run_id: str
    dataset_id: str
    changes: RunChanges
    blocking: ThreadPoolExecutor


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    db = MetadataDB(f"sqlite:///{tmp_path / 'state' / 'datapool.sqlite3'}")
    dataset = db.create_dataset("watched", scheduler_pb2.VIDEOS)
    run = db.create_run(dataset.id, scheduler_pb2.EMBEDDING, {})
    datasources = DatasourceCatalog(db, None)
    pool = common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(tmp_path / "pool")))
    datasources.set(dataset.id, scheduler_pb2.LIGHTLY, pool, verify=False)
    selector = grpc.server(ThreadPoolExecutor(2))
    selector.add_generic_rpc_handlers((SELECTOR,))
    selector_port = selector.add_insecure_port("127.0.0.1:0")
    selector.start()
    changes = RunChanges()
    blocking = ThreadPoolExecutor(1)
    waits = ThreadPoolExecutor(STREAMS)
    servicer = AsyncSchedulerServicer(
        SchedulerServicer(db, changes, None, datasources),  # type: ignore[arg-type]
        blocking,
        waits,
        AsyncPoolTags(f"127.0.0.1:{selector_port}", token=INTERNAL),
    )
    try:
        with aio_scheduler(
            servicer, [AioTokenInterceptor(user_token_interceptor(TOKEN))], max_concurrent_rpcs=CAP
        ) as server:
            yield Served(f"127.0.0.1:{server.port}", run.id, dataset.id, changes, blocking)
    finally:
        blocking.shutdown(wait=False, cancel_futures=True)
        waits.shutdown(wait=False, cancel_futures=True)
        selector.stop(None)
        db.close()


def _calls(method: str, code: str) -> float:
    labels = {"method": f"/datapool.v1.Scheduler/{method}", "code": code}
    return REGISTRY.get_sample_value("datapool_rpc_requests_total", labels) or 0.0


def _counted(counts: Any, expected: tuple[float, ...]) -> tuple[float, ...]:
    """`counts()` once it equals `expected`, or after 5 s: the server records a call's code just
    after the caller has its status."""
    deadline = time.monotonic() + 5
    while (now := counts()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return tuple(now)


def _watching(served: Served) -> subprocess.Popen[str]:
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, served.address, served.run_id], stdout=subprocess.PIPE, text=True
    )
    assert client.stdout is not None
    assert client.stdout.readline().strip() == "watching"
    time.sleep(2 * WATCH_POLL_S)
    assert served.changes.waits >= STREAMS  # every watch thread is taken
    return client


def _kill(client: subprocess.Popen[str]) -> None:
    client.kill()
    client.wait()
    if client.stdout is not None:
        client.stdout.close()


def test_reads_answer_while_every_watch_thread_and_every_blocking_thread_is_taken(served: Served) -> None:
    client = _watching(served)
    release = threading.Event()
    served.blocking.submit(release.wait, 30)  # the one blocking thread, busy
    try:
        with make_channel(served.address) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            started = time.monotonic()
            futures = [
                stub.GetRun.future(scheduler_pb2.GetRunRequest(run_id=served.run_id), metadata=MD, timeout=5)
                for _ in range(CAP - STREAMS)
            ]
            assert [f.result().id for f in futures] == [served.run_id] * (CAP - STREAMS)
            listed = stub.ListDatasets(scheduler_pb2.ListDatasetsRequest(), metadata=MD, timeout=5)
            assert [d.name for d in listed.datasets] == ["watched"]
            # ListTags too: the pool's location from the store, its tags from the selector, awaited.
            tags = stub.ListTags(
                scheduler_pb2.ListTagsRequest(dataset_id=served.dataset_id), metadata=MD, timeout=5
            )
            assert [(t.name, t.frame_count) for t in tags.tags] == [("run-1", 7), ("initial-tag", 7)]
            assert time.monotonic() - started < 3.0
    finally:
        release.set()
        _kill(client)


def test_a_call_past_the_cap_is_refused_at_once_and_a_killed_watcher_frees_its_place(served: Served) -> None:
    client = _watching(served)
    try:
        with make_channel(served.address) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            more = [
                stub.WatchRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), metadata=MD, timeout=30)
                for _ in range(CAP - STREAMS)
            ]
            for call in more:
                next(call)
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), metadata=MD, timeout=3)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for call in more:
                call.cancel()
    finally:
        _kill(client)
    # The killed client's handlers end at their next wait: the waits stop growing, calls answer.
    time.sleep(3 * WATCH_POLL_S)
    settled = served.changes.waits
    time.sleep(3 * WATCH_POLL_S)
    assert served.changes.waits == settled, "WatchRun handlers still waiting after their client died"
    with make_channel(served.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        assert stub.GetRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), metadata=MD, timeout=3).id


def test_a_call_without_the_token_is_refused_unauthenticated_and_counted(served: Served) -> None:
    before = _calls("GetRun", "UNAUTHENTICATED"), _calls("WatchRun", "UNAUTHENTICATED")
    with make_channel(served.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        request = scheduler_pb2.GetRunRequest(run_id=served.run_id)
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetRun(request, timeout=5)
        with pytest.raises(grpc.RpcError) as wrong:
            list(stub.WatchRun(request, metadata=(("authorization", "Bearer wrong"),), timeout=5))
    assert (missing.value.code(), missing.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, MISSING)
    assert (wrong.value.code(), wrong.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, REFUSED)
    expected = (before[0] + 1, before[1] + 1)
    counts = lambda: (_calls("GetRun", "UNAUTHENTICATED"), _calls("WatchRun", "UNAUTHENTICATED"))  # noqa: E731
    assert _counted(counts, expected) == expected


def test_a_domain_error_reaches_the_caller_with_its_code_and_is_counted(served: Served) -> None:
    before = _calls("GetRun", "NOT_FOUND"), _calls("WatchRun", "NOT_FOUND"), _calls("GetRun", "OK")
    with make_channel(served.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        request = scheduler_pb2.GetRunRequest(run_id="no-such-run")
        with pytest.raises(grpc.RpcError) as unary:
            stub.GetRun(request, metadata=MD, timeout=5)
        with pytest.raises(grpc.RpcError) as streamed:
            list(stub.WatchRun(request, metadata=MD, timeout=5))
        stub.GetRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), metadata=MD, timeout=5)
    for error in (unary.value, streamed.value):
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert "no-such-run" in (error.details() or "")
    expected = (before[0] + 1, before[1] + 1, before[2] + 1)
    counts = lambda: (_calls("GetRun", "NOT_FOUND"), _calls("WatchRun", "NOT_FOUND"), _calls("GetRun", "OK"))  # noqa: E731
    assert _counted(counts, expected) == expected
