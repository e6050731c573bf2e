"""Scheduler replicas sharing one store: a run is leased to one replica, a replica that stops
renewing its leases loses its runs to another, which restarts them; a claim goes to exactly one."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datapool.config import parse_run_config
from datapool.run_report import PoolPoint, RunReport
from datapool.storage.locations import local_location
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import LeaseLost, MetadataDB
from services.scheduler.lease_keeper import LeaseKeeper
from services.scheduler.runs import ACTIVE_STATES, RunManager
from services.scheduler.store.run_leases import RunLeases

SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}
# Short, so that takeovers come quickly; long enough that a busy CI machine renews in time.
LEASE_S = 1.0


class Pipeline:
    """Counts executions; holds each run in EMBEDDING until `release` when `hold` is set."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.embedding = threading.Event()
        self.release = threading.Event()
        self.executed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def execute(self, spec: Any, observer: Any) -> RunReport:
        with self._lock:
            self.executed[spec.run_id] += 1
        observer.set_state(scheduler_pb2.EMBEDDING, "embedding 1 new file(s)")
        if self.hold:
            self.embedding.set()
            self.release.wait(30)
            observer.set_state(scheduler_pb2.SELECTING, "selecting")
        return RunReport(spec.run_id, pool_after=PoolPoint(version=1, frames=1))


def _dataset(db: MetadataDB, tmp_path: Path) -> tuple[DatasourceCatalog, str]:
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    catalog = DatasourceCatalog(db, None)
    for purpose, folder in ((scheduler_pb2.INPUT, "in"), (scheduler_pb2.LIGHTLY, "pool")):
        catalog.set(ds.id, purpose, local_location(str(tmp_path / folder)), verify=False)
    return catalog, ds.id


def _wait_ended(db: MetadataDB, run_ids: list[str], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(db.get_run(r).state in (scheduler_pb2.COMPLETED, scheduler_pb2.FAILED) for r in run_ids):
            return
        time.sleep(0.1)
    pytest.fail(f"runs did not end: {[(r, db.get_run(r).message) for r in run_ids]}")


def test_a_run_whose_replica_stops_its_heartbeat_is_finished_by_another_and_the_first_writes_nothing(
    make_db: Callable[[], MetadataDB], tmp_path: Path
) -> None:
    db_a, db_b = make_db(), make_db()
    catalog, dataset_id = _dataset(db_a, tmp_path)
    hung, healthy = Pipeline(hold=True), Pipeline()
    a = RunManager(db_a, hung, datasources=catalog, lease_s=LEASE_S)  # type: ignore[arg-type]
    b = RunManager(db_b, healthy, datasources=DatasourceCatalog(db_b, None), lease_s=LEASE_S)  # type: ignore[arg-type]
    try:
        run = a.schedule(dataset_id, scheduler_pb2.VIDEOS, parse_run_config({}, SELECTION))
        assert hung.embedding.wait(10)
        assert db_b.get_run(run.id).owner == a.owner
        a._keeper.stop()  # replica A hangs: its heartbeat stops, its run thread is stuck
        _wait_ended(db_b, [run.id])
        row = db_b.get_run(run.id)
        assert row.state == scheduler_pb2.COMPLETED, row.message
        assert row.owner == b.owner and row.attempt == 2
        assert healthy.executed == {run.id: 1}
        # A wakes up: its writes are refused (LeaseLost) and the run stays as B ended it.
        hung.release.set()
        time.sleep(0.5)
        assert db_b.get_run(run.id) == row
        with pytest.raises(LeaseLost):
            db_a.update_run(run.id, message="late", owner=a.owner)
    finally:
        hung.release.set()
        a.shutdown()
        b.shutdown()


def test_twenty_expired_runs_are_claimed_by_exactly_one_of_two_replicas(
    make_db: Callable[[], MetadataDB],
) -> None:
    db = make_db()
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    runs = [db.create_run(ds.id, scheduler_pb2.EMBEDDING, {}, owner="dead", lease_ms=-1) for _ in range(20)]
    replicas = [RunLeases(make_db(), f"replica-{i}", 60_000) for i in range(2)]
    claimed: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def claim(i: int) -> None:
        start.wait()
        while rows := replicas[i].claim_expired(ACTIVE_STATES, 3):
            claimed[i] += [r.id for r in rows]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for leases in replicas:
        leases.close()
    assert sorted(claimed[0] + claimed[1]) == sorted(r.id for r in runs)
    assert {db.get_run(r.id).owner for r in runs} <= {"replica-0", "replica-1"}
    for i in range(2):
        assert all(db.get_run(r).owner == f"replica-{i}" for r in claimed[i])


def _never_claimable(db: MetadataDB, run_id: str, seconds: float) -> None:
    """Another replica looks for expired leases every 0.1 s for `seconds`: it must never get `run_id`."""
    intruder = RunLeases(db, "intruder", 60_000)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            claimed = [r.id for r in intruder.claim_expired(ACTIVE_STATES, 10)]
            assert run_id not in claimed, "the lease of a run its live replica runs lapsed"
            time.sleep(0.1)
    finally:
        intruder.close()


def test_a_slow_takeover_does_not_hold_up_the_renewal_of_the_runs_a_replica_runs(
    make_db: Callable[[], MetadataDB],
) -> None:
    db = make_db()
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    taking_over, done = threading.Event(), threading.Event()

    def slow_take_over(row: Any) -> None:  # a loaded machine: reading and writing take seconds
        taking_over.set()
        done.wait(10)

    keeper = LeaseKeeper(
        make_db(), LEASE_S, lambda: {mine.id}, lambda: 4, slow_take_over, print, ACTIVE_STATES
    )
    mine = db.create_run(ds.id, scheduler_pb2.EMBEDDING, {}, owner=keeper.owner, lease_ms=int(LEASE_S * 1000))
    db.create_run(ds.id, scheduler_pb2.EMBEDDING, {}, owner="dead", lease_ms=-1)
    keeper.start()
    try:
        assert taking_over.wait(10)
        _never_claimable(db, mine.id, 3 * LEASE_S)
    finally:
        done.set()
        keeper.stop()


def test_a_slow_state_write_does_not_hold_up_the_renewal_of_the_other_runs(
    make_db: Callable[[], MetadataDB], tmp_path: Path
) -> None:
    db = make_db()
    catalog, dataset_id = _dataset(db, tmp_path)
    pipeline = Pipeline(hold=True)
    manager = RunManager(db, pipeline, datasources=catalog, lease_s=LEASE_S)  # type: ignore[arg-type]
    try:
        run = manager.schedule(dataset_id, scheduler_pb2.VIDEOS, parse_run_config({}, SELECTION))
        assert pipeline.embedding.wait(10)
        write = db.update_run

        def slow_write(run_id: str, **fields: Any) -> Any:  # one write stuck on a loaded machine
            if fields.get("message") == "slow":
                time.sleep(3 * LEASE_S)
            return write(run_id, **fields)

        db.update_run = slow_write  # type: ignore[method-assign]
        other = threading.Thread(target=manager.update, args=(run.id,), kwargs={"message": "slow"})
        other.start()
        _never_claimable(make_db(), run.id, 3 * LEASE_S)
        other.join(10)
    finally:
        pipeline.release.set()
        manager.shutdown()
