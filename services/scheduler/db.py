"""The scheduler's metadata: datasets, datasources and runs in an embedded SQLite database.

Pool contents (frames, embeddings, tags) are not here: they live in the pool
datasource, whose manifests are the only source of truth for them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datapool.errors import AlreadyExists, NotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS datasources (
    dataset_id TEXT NOT NULL REFERENCES datasets(id),
    purpose INTEGER NOT NULL,
    location BLOB NOT NULL,
    PRIMARY KEY (dataset_id, purpose)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets(id),
    state INTEGER NOT NULL,
    message TEXT NOT NULL,
    config TEXT NOT NULL,
    progress TEXT NOT NULL,
    report TEXT,
    tag_names TEXT NOT NULL,
    pool_version INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    updated_unix_ms INTEGER NOT NULL
);
"""


def new_id() -> str:
    """24 hex digits (96 random bits): the shape of Lightly's object ids, so the REST gateway
    (services/gateway) passes dataset and run ids through unchanged."""
    return uuid.uuid4().hex[:24]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class DatasetRow:
    id: str
    name: str
    type: int
    created_unix_ms: int


@dataclass(frozen=True)
class RunRow:
    id: str
    dataset_id: str
    state: int
    message: str
    config: dict[str, Any]
    progress: dict[str, int]
    report: dict[str, Any] | None
    tag_names: list[str]
    pool_version: int
    created_unix_ms: int
    updated_unix_ms: int


class MetadataDB:
    """Thread-safe access to the scheduler's SQLite file (WAL mode, one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        # Outside a transaction: journal_mode cannot change inside one, and
        # executescript commits on its own.
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    # datasets

    def create_dataset(self, name: str, dataset_type: int) -> DatasetRow:
        row = DatasetRow(id=new_id(), name=name, type=dataset_type, created_unix_ms=now_ms())
        with self._tx() as c:
            try:
                c.execute(
                    "INSERT INTO datasets (id, name, type, created_unix_ms) VALUES (?, ?, ?, ?)",
                    (row.id, row.name, row.type, row.created_unix_ms),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"a dataset named {name!r} already exists") from None
        return row

    def get_dataset(self, *, dataset_id: str | None = None, name: str | None = None) -> DatasetRow:
        with self._tx() as c:
            if dataset_id is not None:
                r = c.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
                missing = f"no dataset with id {dataset_id!r}"
            else:
                r = c.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
                missing = f"no dataset named {name!r}"
        if r is None:
            raise NotFound(missing)
        return DatasetRow(*r)

    def list_datasets(self) -> list[DatasetRow]:
        with self._tx() as c:
            rows = c.execute("SELECT * FROM datasets ORDER BY created_unix_ms").fetchall()
        return [DatasetRow(*r) for r in rows]

    # datasources

    def set_datasource(self, dataset_id: str, purpose: int, location: bytes) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO datasources (dataset_id, purpose, location) VALUES (?, ?, ?) "
                "ON CONFLICT (dataset_id, purpose) DO UPDATE SET location = excluded.location",
                (dataset_id, purpose, location),
            )

    def get_datasource(self, dataset_id: str, purpose: int) -> bytes | None:
        with self._tx() as c:
            r = c.execute(
                "SELECT location FROM datasources WHERE dataset_id = ? AND purpose = ?", (dataset_id, purpose)
            ).fetchone()
        return None if r is None else bytes(r[0])

    # runs

    def create_run(self, dataset_id: str, state: int, config: dict[str, Any]) -> RunRow:
        t = now_ms()
        row = RunRow(
            id=new_id(),
            dataset_id=dataset_id,
            state=state,
            message="scheduled",
            config=config,
            progress={},
            report=None,
            tag_names=[],
            pool_version=0,
            created_unix_ms=t,
            updated_unix_ms=t,
        )
        with self._tx() as c:
            c.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
                (
                    row.id,
                    row.dataset_id,
                    row.state,
                    row.message,
                    json.dumps(row.config),
                    json.dumps(row.progress),
                    json.dumps(row.tag_names),
                    row.pool_version,
                    row.created_unix_ms,
                    row.updated_unix_ms,
                ),
            )
        return row

    def update_run(
        self,
        run_id: str,
        *,
        state: int | None = None,
        message: str | None = None,
        progress: dict[str, int] | None = None,
        report: dict[str, Any] | None = None,
        tag_names: list[str] | None = None,
        pool_version: int | None = None,
    ) -> RunRow:
        sets: list[str] = ["updated_unix_ms = ?"]
        args: list[Any] = [now_ms()]
        for column, value in (
            ("state", state),
            ("message", message),
            ("progress", None if progress is None else json.dumps(progress)),
            ("report", None if report is None else json.dumps(report)),
            ("tag_names", None if tag_names is None else json.dumps(tag_names)),
            ("pool_version", pool_version),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        with self._tx() as c:
            c.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*args, run_id))
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRow:
        with self._tx() as c:
            r = c.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if r is None:
            raise NotFound(f"no run with id {run_id!r}")
        return _run_row(r)

    def runs_in_states(self, states: tuple[int, ...]) -> list[RunRow]:
        marks = ",".join("?" * len(states))
        with self._tx() as c:
            rows = c.execute(
                f"SELECT * FROM runs WHERE state IN ({marks}) ORDER BY created_unix_ms", states
            ).fetchall()
        return [_run_row(r) for r in rows]

    def runs_of_dataset(self, dataset_id: str) -> list[RunRow]:
        with self._tx() as c:
            rows = c.execute(
                "SELECT * FROM runs WHERE dataset_id = ? ORDER BY created_unix_ms", (dataset_id,)
            ).fetchall()
        return [_run_row(r) for r in rows]


def _run_row(r: tuple[Any, ...]) -> RunRow:
    return RunRow(
        id=r[0],
        dataset_id=r[1],
        state=r[2],
        message=r[3],
        config=json.loads(r[4]),
        progress=json.loads(r[5]),
        report=None if r[6] is None else json.loads(r[6]),
        tag_names=json.loads(r[7]),
        pool_version=r[8],
        created_unix_ms=r[9],
        updated_unix_ms=r[10],
    )
