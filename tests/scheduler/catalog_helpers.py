"""A datasource catalog over a fresh SQLite metadata store with one VIDEOS dataset, for the
tests of which locations `set_*_config` accepts (pool inside input, INPUT_OUTPUT)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB

INPUT, POOL = scheduler_pb2.INPUT, scheduler_pb2.LIGHTLY


def videos_catalog(tmp_path: Path) -> Iterator[tuple[DatasourceCatalog, str]]:
    """The catalog and the dataset's id; a test module makes it its `catalog` fixture."""
    db = MetadataDB(tmp_path / "state" / "datapool.sqlite3")
    yield DatasourceCatalog(db, None), db.create_dataset("videos", scheduler_pb2.VIDEOS).id
    db.close()
