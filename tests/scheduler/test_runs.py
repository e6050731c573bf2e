"""Run lifecycle in the scheduler: a shutdown, and a restart, fail the runs they interrupt, with a message;
a run that committed records its pool version before it shows COMPLETED."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datapool.config import parse_run_config
from datapool.errors import NotFound
from datapool.run_report import PoolPoint, RunReport
from datapool.storage.locations import local_location, pool_key
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import DatasetRow, MetadataDB
from services.scheduler.runs import RunManager

SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


def test_restart_fails_interrupted_runs_and_keeps_ended_ones(make_db: Callable[[], MetadataDB]) -> None:
    db = make_db()
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    running = db.create_run(ds.id, scheduler_pb2.EMBEDDING, {})
    done = db.create_run(ds.id, scheduler_pb2.COMPLETED, {})
    pipeline: Any = None  # never reached: nothing is scheduled
    manager = RunManager(db, pipeline)
    try:
        row = db.get_run(running.id)
        assert row.state == scheduler_pb2.FAILED
        assert "interrupted" in row.message and "schedule the run again" in row.message
        assert db.get_run(done.id).state == scheduler_pb2.COMPLETED
    finally:
        manager.shutdown()
        db.close()


def _dataset_with_datasources(db: MetadataDB, root: Path) -> tuple[DatasetRow, DatasourceCatalog]:
    """A VIDEOS dataset with local input and pool folders under `root` (not verified)."""
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    datasources = DatasourceCatalog(db, None)
    for purpose, folder in ((scheduler_pb2.INPUT, "in"), (scheduler_pb2.LIGHTLY, "pool")):
        datasources.set(ds.id, purpose, local_location(str(root / folder)), verify=False)
    return ds, datasources


class HeldPipeline:
    """Holds the run in EMBEDDING until released, then fails as a closed channel makes it fail."""

    def __init__(self) -> None:
        self.embedding = threading.Event()
        self.release = threading.Event()

    def execute(self, spec: Any, observer: Any) -> dict[str, Any]:
        observer.set_state(scheduler_pb2.EMBEDDING, "embedding 1 new file(s)")
        self.embedding.set()
        self.release.wait(30)
        observer.set_state(scheduler_pb2.SELECTING, "selecting")
        raise ValueError("Cannot invoke RPC on closed channel!")


def test_shutdown_ends_runs_in_progress_failed_interrupted(
    make_db: Callable[[], MetadataDB], tmp_path: Path
) -> None:
    db = make_db()
    ds, datasources = _dataset_with_datasources(db, tmp_path)
    pipeline = HeldPipeline()
    manager = RunManager(db, pipeline, datasources=datasources)  # type: ignore[arg-type]
    run = manager.schedule(ds.id, scheduler_pb2.VIDEOS, parse_run_config({}, SELECTION))
    assert pipeline.embedding.wait(10)
    manager.shutdown()
    row = db.get_run(run.id)
    assert row.state == scheduler_pb2.FAILED and row.message.startswith("interrupted: the scheduler stopped")
    assert row.report is not None and row.report["error"] == row.message
    # The run's thread goes on and crashes on the closed channels: the end state stays.
    pipeline.release.set()
    time.sleep(0.3)
    assert db.get_run(run.id) == row
    db.close()


class FailingPipeline:
    def execute(self, spec: Any, observer: Any) -> dict[str, Any]:
        raise NotFound("the input folder 'in' is gone")


def test_a_run_logs_when_it_is_scheduled_starts_and_ends_with_why(
    make_db: Callable[[], MetadataDB], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = make_db()
    ds, datasources = _dataset_with_datasources(db, tmp_path)
    manager = RunManager(db, FailingPipeline(), datasources=datasources)  # type: ignore[arg-type]
    try:
        with caplog.at_level(logging.INFO, logger="services.scheduler.runs"):
            run = manager.schedule(ds.id, scheduler_pb2.VIDEOS, parse_run_config({}, SELECTION))
            deadline = time.monotonic() + 10
            while db.get_run(run.id).state != scheduler_pb2.FAILED and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.1)
    finally:
        manager.shutdown()
        db.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "services.scheduler.runs"]
    assert f"run {run.id} scheduled on dataset {ds.id}" in lines
    assert f"run {run.id} started" in lines
    assert f"run {run.id} ended FAILED: the input folder 'in' is gone" in lines


class CommittingPipeline:
    """Ends as a run that committed pool version 7 as its tag."""

    def execute(self, spec: Any, observer: Any) -> RunReport:
        observer.set_state(scheduler_pb2.COMMITTING, "committing")
        return RunReport(spec.run_id, tag="run-1", pool_after=PoolPoint(version=7, frames=3))


def test_a_completed_run_has_recorded_its_pool_version_when_it_shows_completed(
    make_db: Callable[[], MetadataDB], tmp_path: Path
) -> None:
    db = make_db()
    ds, datasources = _dataset_with_datasources(db, tmp_path)
    pool = pool_key(local_location(str(tmp_path / "pool")))
    manager = RunManager(db, CommittingPipeline(), datasources=datasources)  # type: ignore[arg-type]
    try:
        run = manager.schedule(ds.id, scheduler_pb2.VIDEOS, parse_run_config({}, SELECTION))
        deadline = time.monotonic() + 10
        while db.get_run_summary(run.id).state != scheduler_pb2.COMPLETED and time.monotonic() < deadline:
            time.sleep(0.002)
        # Read as soon as COMPLETED shows: a ListTags now must not answer from an older summary.
        assert db.pool_version(pool) == 7
        assert db.get_run(run.id).pool_version == 7
    finally:
        manager.shutdown()
        db.close()
