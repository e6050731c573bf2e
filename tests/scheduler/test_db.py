"""The scheduler's SQLite metadata survives a restart and refuses duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from datapool.errors import AlreadyExists, NotFound
from datapool.v1 import scheduler_pb2
from services.scheduler.db import MetadataDB


def test_datasets_and_runs_persist(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "state.sqlite3")
    ds = db.create_dataset("videos", scheduler_pb2.VIDEOS)
    with pytest.raises(AlreadyExists, match="'videos' already exists"):
        db.create_dataset("videos", scheduler_pb2.VIDEOS)
    db.set_datasource(ds.id, scheduler_pb2.INPUT, b"loc-1")
    db.set_datasource(ds.id, scheduler_pb2.INPUT, b"loc-2")
    run = db.create_run(ds.id, scheduler_pb2.OPEN, {"a": 1})
    db.update_run(run.id, state=scheduler_pb2.EMBEDDING, progress={"files_done": 2}, tag_names=["t"])
    db.close()

    again = MetadataDB(tmp_path / "state.sqlite3")
    assert again.get_dataset(name="videos").id == ds.id
    assert again.get_datasource(ds.id, scheduler_pb2.INPUT) == b"loc-2"
    assert again.get_datasource(ds.id, scheduler_pb2.LIGHTLY) is None
    row = again.get_run(run.id)
    assert row.state == scheduler_pb2.EMBEDDING
    assert row.progress == {"files_done": 2}
    assert row.tag_names == ["t"]
    assert row.config == {"a": 1}
    assert [r.id for r in again.runs_in_states((scheduler_pb2.EMBEDDING,))] == [run.id]
    with pytest.raises(NotFound, match="no dataset named 'other'"):
        again.get_dataset(name="other")
    with pytest.raises(NotFound, match="no run with id"):
        again.get_run("missing")
