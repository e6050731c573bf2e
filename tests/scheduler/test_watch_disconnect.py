"""A client that disconnects in the middle of WatchRun costs the scheduler nothing: the handler
notices within a poll and returns, its worker thread is free again, and later calls answer.

The server is the real one (ServiceServer, SchedulerServicer, a SQLite store) with as few worker
threads and calls in flight as there are streams, so a handler left spinning after its client went
away would keep its thread and the calls after it would be refused. The client is a separate
process killed with SIGKILL: its TCP connection closes under the open streams, as when a laptop
loses its network or a `datapool run` is killed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from datapool.channels import make_channel
from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.common.server import ServiceServer
from services.scheduler.db import MetadataDB
from services.scheduler.servicer import WATCH_POLL_S, SchedulerServicer

STREAMS = 4

# Opens STREAMS watches on one channel, says so once each has its first message, then waits to be killed.
CLIENT = textwrap.dedent(
    """
    import sys, time, grpc
    from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc
    address, run_id, streams = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stub = scheduler_pb2_grpc.SchedulerStub(grpc.insecure_channel(address))
    calls = [stub.WatchRun(scheduler_pb2.GetRunRequest(run_id=run_id), timeout=600) for _ in range(streams)]
    for call in calls:
        next(call)
    print("watching", flush=True)
    time.sleep(600)
    """
)


class RunChanges:
    """The one part of RunManager that WatchRun uses: a wait for the next change of any run
    (none comes here). Counts the waits, so a handler still looping shows as a growing count."""

    def __init__(self) -> None:
        self.waits = 0
        self._lock = threading.Lock()

    def wait_for_change(self, timeout: float) -> None:
        with self._lock:
            self.waits += 1
        time.sleep(timeout)


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[str, str, RunChanges]]:
    db = MetadataDB(f"sqlite:///{tmp_path / 'state' / 'datapool.sqlite3'}")
    dataset = db.create_dataset("watched", scheduler_pb2.VIDEOS)
    run = db.create_run(dataset.id, scheduler_pb2.EMBEDDING, {})
    changes = RunChanges()
    servicer = SchedulerServicer(db, changes, None, None)  # type: ignore[arg-type]
    server = ServiceServer(
        "scheduler",
        "127.0.0.1:0",
        lambda s: scheduler_pb2_grpc.add_SchedulerServicer_to_server(servicer, s),
        [],
        max_workers=STREAMS,
        max_concurrent_rpcs=STREAMS,
    )
    server.start()
    yield f"127.0.0.1:{server.port}", run.id, changes
    server.stop(0)
    db.close()


def _settled_waits(changes: RunChanges, within_s: float) -> tuple[int, int]:
    """The wait count once it stops growing for two polls (or after `within_s`), and again later."""
    deadline = time.monotonic() + within_s
    before = changes.waits
    while time.monotonic() < deadline:
        time.sleep(2 * WATCH_POLL_S + 0.1)
        now = changes.waits
        if now == before:
            break
        before = now
    time.sleep(2 * WATCH_POLL_S + 0.1)
    return before, changes.waits


def test_a_client_killed_mid_watch_frees_every_handler_and_later_calls_answer(
    scheduler: tuple[str, str, RunChanges],
) -> None:
    address, run_id, changes = scheduler
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, address, run_id, str(STREAMS)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "watching"
        time.sleep(2 * WATCH_POLL_S)
        assert changes.waits >= STREAMS  # every handler is in its loop, holding all the threads
        # Meanwhile a call past the server's cap is refused at once, not queued behind the streams.
        with make_channel(address) as channel, pytest.raises(grpc.RpcError) as refused:
            scheduler_pb2_grpc.SchedulerStub(channel).GetRun(
                scheduler_pb2.GetRunRequest(run_id=run_id), timeout=3
            )
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        client.kill()
        client.wait()
        if client.stdout is not None:
            client.stdout.close()

    settled, later = _settled_waits(changes, within_s=5.0)
    assert later == settled, f"WatchRun handlers still looping after their client died ({settled} -> {later})"

    # Every worker thread is free again: a unary call and a full set of new streams are answered.
    with make_channel(address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        assert stub.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id), timeout=3).id == run_id
        calls = [stub.WatchRun(scheduler_pb2.GetRunRequest(run_id=run_id), timeout=3) for _ in range(STREAMS)]
        firsts = [next(call) for call in calls]
        assert [m.state for m in firsts] == [scheduler_pb2.EMBEDDING] * STREAMS
        for call in calls:
            call.cancel()
    # A cancelled call (the client's own cancel rather than a dead connection) also ends its handler.
    settled, later = _settled_waits(changes, within_s=5.0)
    assert later == settled
