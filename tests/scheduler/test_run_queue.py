"""Runs beyond --max-concurrent-runs wait in state QUEUED with their position in the message,
move up as runs ahead of them start, and all complete in arrival order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datapool.config import parse_run_config
from datapool.run_report import PoolPoint, RunReport
from datapool.storage.locations import local_location
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB
from services.scheduler.run_queue import RunQueue
from services.scheduler.runs import RunManager

SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


class OneAtATime:
    """Each run holds in EMBEDDING until the test lets it go; records the order runs start in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.go = threading.Semaphore(0)

    def execute(self, spec: Any, observer: Any) -> RunReport:
        self.started.append(spec.run_id)
        observer.set_state(scheduler_pb2.EMBEDDING, "embedding")
        assert self.go.acquire(timeout=30)
        return RunReport(spec.run_id, pool_after=PoolPoint(version=1, frames=1))


def _state(db: MetadataDB, run_id: str, state: int, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while (row := db.get_run(run_id)).state != state:
        assert time.monotonic() < deadline, (row.state, row.message)
        time.sleep(0.05)
    return row.message


def test_runs_beyond_the_limit_wait_queued_with_their_position(
    make_db: Callable[[], MetadataDB], tmp_path: Path
) -> None:
    db = make_db()
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    catalog = DatasourceCatalog(db, None)
    for purpose, folder in ((scheduler_pb2.INPUT, "in"), (scheduler_pb2.LIGHTLY, "pool")):
        catalog.set(ds.id, purpose, local_location(str(tmp_path / folder)), verify=False)
    pipeline = OneAtATime()
    manager = RunManager(db, pipeline, max_concurrent_runs=1, datasources=catalog)  # type: ignore[arg-type]
    config = parse_run_config({}, SELECTION)
    try:
        first, second, third = (manager.schedule(ds.id, scheduler_pb2.VIDEOS, config) for _ in range(3))
        assert second.state == third.state == scheduler_pb2.QUEUED  # as ScheduleRun answers
        _state(db, first.id, scheduler_pb2.EMBEDDING)
        assert _state(db, second.id, scheduler_pb2.QUEUED).startswith("queued: position 1 in line;")
        assert "--max-concurrent-runs" in _state(db, third.id, scheduler_pb2.QUEUED)
        assert db.get_run(third.id).message.startswith("queued: position 2 in line;")
        pipeline.go.release()
        _state(db, second.id, scheduler_pb2.EMBEDDING)
        assert _state(db, third.id, scheduler_pb2.QUEUED).startswith("queued: position 1 in line;")
        pipeline.go.release(2)
        for run in (first, second, third):
            _state(db, run.id, scheduler_pb2.COMPLETED)
        assert pipeline.started == [first.id, second.id, third.id]
    finally:
        pipeline.go.release(3)
        manager.shutdown()


def test_a_late_queued_announcement_never_lands_after_the_run_has_started() -> None:
    # The write that tells run C its new place ("position 1") is slow; meanwhile B ends and C
    # starts and ends. The late write must not put C back into QUEUED: an ended run in an
    # active state has no heartbeat, so another scheduler replica would run it again.
    states: dict[str, list[str]] = {}
    slow_write = threading.Event()

    def announce(run_id: str, position: int) -> None:
        if run_id == "c" and position == 1:
            slow_write.wait(10)
        states.setdefault(run_id, []).append(f"QUEUED {position}")

    queue = RunQueue(1, announce)
    assert queue.admit("a") and not queue.admit("b") and not queue.admit("c")
    queue.done()  # A ends
    b_starts = threading.Thread(target=queue.start, args=("b",))  # announces C at position 1
    b_starts.start()
    time.sleep(0.2)

    def c_runs() -> None:
        assert queue.start("c")
        states["c"].append("COMPLETED")

    queue.done()  # B ends, C's thread starts
    c_thread = threading.Thread(target=c_runs)
    c_thread.start()
    c_thread.join(0.5)
    slow_write.set()
    for t in (b_starts, c_thread):
        t.join(10)
    assert states["c"] == ["QUEUED 2", "QUEUED 1", "COMPLETED"]
