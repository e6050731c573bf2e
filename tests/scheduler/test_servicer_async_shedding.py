"""Load shedding on the scheduler's asyncio server (`AioUnaryCapInterceptor`, --max-inflight-calls):
past the cap a unary call is refused RESOURCE_EXHAUSTED at once, instead of queueing on the event
loop until it passes its deadline; a call that ends frees its place; streams are not counted.

ListTags waits for a selector (a real gRPC server) that answers only when the test lets it, so the
calls in flight are known.
"""

from __future__ import annotations

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
from services.common.aio_interceptors import AioUnaryCapInterceptor
from services.scheduler.async_servicer import AsyncSchedulerServicer
from services.scheduler.async_tags import AsyncPoolTags
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB
from services.scheduler.servicer import SchedulerServicer

CAP = 3


class HeldSelector:
    """The selector's GetPool, held until `release` is set; counts the calls waiting."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def get_pool(self, request: selector_pb2.GetPoolRequest, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.waiting += 1
        self.release.wait(20)
        return selector_pb2.PoolSummary(
            version=1, frame_count=1, tags=[selector_pb2.Tag(name="t", frame_count=1)]
        )

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self.get_pool,
            request_deserializer=selector_pb2.GetPoolRequest.FromString,
            response_serializer=selector_pb2.PoolSummary.SerializeToString,
        )
        return grpc.method_handlers_generic_handler("datapool.v1.Selector", {"GetPool": method})


class RunChanges:
    def wait_for_change(self, timeout: float) -> None:
        time.sleep(timeout)


@dataclass
class Served:
    address: str
    run_id: str
    dataset_id: str
    selector: HeldSelector
    cap: AioUnaryCapInterceptor
    db: MetadataDB


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    db = MetadataDB(f"sqlite:///{tmp_path / 'datapool.sqlite3'}")
    dataset = db.create_dataset("shed", scheduler_pb2.VIDEOS)
    run = db.create_run(dataset.id, scheduler_pb2.EMBEDDING, {})
    datasources = DatasourceCatalog(db, None)
    pool = common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(tmp_path / "pool")))
    datasources.set(dataset.id, scheduler_pb2.LIGHTLY, pool, verify=False)
    held = HeldSelector()
    selector = grpc.server(ThreadPoolExecutor(2 * CAP + 2))
    selector.add_generic_rpc_handlers((held.handler(),))
    selector_port = selector.add_insecure_port("127.0.0.1:0")
    selector.start()
    blocking, waits = ThreadPoolExecutor(2), ThreadPoolExecutor(4)
    servicer = AsyncSchedulerServicer(
        SchedulerServicer(db, RunChanges(), None, datasources),  # type: ignore[arg-type]
        blocking,
        waits,
        AsyncPoolTags(f"127.0.0.1:{selector_port}"),
    )
    cap = AioUnaryCapInterceptor(CAP, "--max-inflight-calls")
    try:
        with aio_scheduler(servicer, [cap], max_concurrent_rpcs=64) as server:
            try:
                yield Served(f"127.0.0.1:{server.port}", run.id, dataset.id, held, cap, db)
            finally:
                held.release.set()
    finally:
        blocking.shutdown(wait=False, cancel_futures=True)
        waits.shutdown(wait=False, cancel_futures=True)
        selector.stop(None)
        db.close()


def _refused(method: str) -> float:
    labels = {"method": f"/datapool.v1.Scheduler/{method}", "code": "RESOURCE_EXHAUSTED"}
    return REGISTRY.get_sample_value("datapool_rpc_requests_total", labels) or 0.0


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_unary_calls_past_the_cap_are_refused_at_once_and_counted(served: Served) -> None:
    before = _refused("GetRun")
    with make_channel(served.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        tags = scheduler_pb2.ListTagsRequest(dataset_id=served.dataset_id)
        held = [stub.ListTags.future(tags, timeout=20) for _ in range(CAP)]
        # All in flight, waiting for one GetPool (calls for one pool share it: async_tags.py).
        _wait_for(lambda: served.cap.in_flight == CAP, "the capped calls never arrived")
        _wait_for(lambda: served.selector.waiting == 1, "ListTags never reached the selector")
        started = time.monotonic()
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-inflight-calls" in (refused.value.details() or "")
        assert time.monotonic() - started < 5.0, "refused only near the deadline"
        # Counted (the server records a call's code just after the caller has it).
        _wait_for(
            lambda: _refused("GetRun") == before + 2, f"refusals counted: {_refused('GetRun') - before}"
        )
        assert served.selector.waiting == 1  # the refused calls cost the selector nothing
        served.selector.release.set()
        assert [[t.name for t in f.result().tags] for f in held] == [["t", "initial-tag"]] * CAP
        # The ended calls freed their places.
        _wait_for(lambda: served.cap.in_flight == 0, "the ended calls kept their places")
        assert stub.GetRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), timeout=10).id == served.run_id


def test_a_failed_call_frees_its_place_and_streams_are_not_counted(served: Served) -> None:
    with make_channel(served.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        request = scheduler_pb2.GetRunRequest(run_id=served.run_id)
        # Streams as many as the cap: not counted, so unary calls still answer.
        watches = [stub.WatchRun(request, timeout=20) for _ in range(CAP)]
        for watch in watches:
            assert next(watch).id == served.run_id
        for _ in range(3 * CAP):  # failed calls (NOT_FOUND) end their tasks too
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetRun(scheduler_pb2.GetRunRequest(run_id="no-such-run"), timeout=10)
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert stub.GetRun(request, timeout=10).id == served.run_id
        for watch in watches:
            watch.cancel()
    _wait_for(lambda: served.cap.in_flight == 0, "a failed call kept its place")


def test_reads_answer_while_a_run_holds_a_write_transaction_open(served: Served) -> None:
    # A writer of the scheduler's own store mid-transaction (as a run writing its progress, and its
    # fsync, would be): reads must not wait for it on the event loop, which every call waits behind.
    writing, done = threading.Event(), threading.Event()

    def write() -> None:
        with served.db._tx() as c:
            c.exec_driver_sql("UPDATE runs SET message = 'writing' WHERE id = ?", (served.run_id,))
            writing.set()
            done.wait(20)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        with make_channel(served.address) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            started = time.monotonic()
            run = stub.GetRun(scheduler_pb2.GetRunRequest(run_id=served.run_id), timeout=10)
            listed = stub.ListDatasets(scheduler_pb2.ListDatasetsRequest(), timeout=10)
            assert time.monotonic() - started < 3.0, "the reads waited for the writer"
        assert run.message != "writing"  # the last committed state
        assert [d.name for d in listed.datasets] == ["shed"]
    finally:
        done.set()
        writer.join(10)
