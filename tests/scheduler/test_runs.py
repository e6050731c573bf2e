"""Run lifecycle in the scheduler: a restart fails the runs it interrupted, with a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datapool.v1 import scheduler_pb2
from services.scheduler.db import MetadataDB
from services.scheduler.runs import RunManager


def test_restart_fails_interrupted_runs_and_keeps_ended_ones(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "state.sqlite3")
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
