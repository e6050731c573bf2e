"""The scheduler's metadata: datasets, datasources and runs, in SQLite (one host) or Postgres (a cluster).

One code path on SQLAlchemy Core for both; the schema is versioned by Alembic
(services/scheduler/store/migrations). Pool contents (frames, embeddings, tags) are not here:
they live in the pool datasource, whose manifests are the only source of truth for them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from datapool.errors import AlreadyExists, NotFound
from services.scheduler.store import migrate
from services.scheduler.store.engine import open_engine
from services.scheduler.store.rows import (
    DatasetRow,
    LeaseLost,
    RunRow,
    RunSummary,
    dataset_row,
    new_id,
    now_ms,
    run_columns,
    run_row,
    run_summary,
)
from services.scheduler.store.schema import datasets, datasources, pool_versions, runs

__all__ = ["DatasetRow", "LeaseLost", "MetadataDB", "RunRow", "RunSummary", "new_id", "now_ms"]

# RunSummary's columns, in its order: a read call's message needs neither config nor report.
RUN_SUMMARY_COLUMNS = tuple(
    runs.c[name]
    for name in (
        "id",
        "dataset_id",
        "state",
        "message",
        "progress",
        "tag_names",
        "pool_version",
        "created_unix_ms",
        "updated_unix_ms",
    )
)

# The read calls' statements, built once: building a statement costs more CPU than SQLite's
# answer to it, and a constant statement also skips SQLAlchemy's cache-key walk of a new one.
_DATASET_BY_ID = select(datasets).where(datasets.c.id == bindparam("key"))
_DATASET_BY_NAME = select(datasets).where(datasets.c.name == bindparam("key"))
_DATASETS = select(datasets).order_by(datasets.c.created_unix_ms)
_DATASOURCE = select(datasources.c.location).where(
    (datasources.c.dataset_id == bindparam("dataset_id")) & (datasources.c.purpose == bindparam("purpose"))
)
_RUN = select(runs).where(runs.c.id == bindparam("run_id"))
_RUN_SUMMARY = select(*RUN_SUMMARY_COLUMNS).where(runs.c.id == bindparam("run_id"))
_POOL_VERSION = select(pool_versions.c.version).where(pool_versions.c.pool_key == bindparam("key"))


class MetadataDB:
    """Thread-safe access to the store named by a database URL (a Path is a SQLite file).

    `migrate=True` brings the schema to this code's version first; False only checks that it is
    (a chart whose hook Job ran `datapool migrate`). Either way a newer schema is refused.
    """

    def __init__(self, url: str | Path, *, migrate_schema: bool = True) -> None:
        self.engine = open_engine(url)
        # SQLite takes one writer at a time per file: queue this process's own transactions
        # here rather than on "database is locked" retries. Postgres needs no such lock.
        sqlite = self.engine.dialect.name == "sqlite"
        self._lock: threading.Lock | nullcontext[None] = threading.Lock() if sqlite else nullcontext()
        try:
            (migrate.upgrade if migrate_schema else migrate.check)(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as c:
            yield c

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read: without the writers' lock, since SQLite in WAL mode (and Postgres) reads the
        last committed state while a writer works. The scheduler's event loop answers reads with
        these; behind the lock, each waited for a run's write and its fsync, and every call
        queued on the loop waited with it."""
        with self.engine.connect() as c:
            yield c

    # datasets

    def create_dataset(self, name: str, dataset_type: int) -> DatasetRow:
        row = DatasetRow(id=new_id(), name=name, type=dataset_type, created_unix_ms=now_ms())
        try:
            with self._tx() as c:
                c.execute(insert(datasets).values(**row.__dict__))
        except IntegrityError:
            raise AlreadyExists(f"a dataset named {name!r} already exists") from None
        return row

    def get_dataset(self, *, dataset_id: str | None = None, name: str | None = None) -> DatasetRow:
        by_id = dataset_id is not None
        with self._read() as c:
            query = _DATASET_BY_ID if by_id else _DATASET_BY_NAME
            r = c.execute(query, {"key": dataset_id if by_id else name}).mappings().first()
        if r is None:
            raise NotFound(f"no dataset with id {dataset_id!r}" if by_id else f"no dataset named {name!r}")
        return dataset_row(r)

    def list_datasets(self) -> list[DatasetRow]:
        with self._read() as c:
            rows = c.execute(_DATASETS).mappings().all()
        return [dataset_row(r) for r in rows]

    # datasources

    def set_datasource(self, dataset_id: str, purpose: int, location: bytes) -> None:
        key = (datasources.c.dataset_id == dataset_id) & (datasources.c.purpose == purpose)
        with self._tx() as c:
            # Portable upsert: one row per (dataset, purpose), written under the transaction.
            changed = c.execute(update(datasources).where(key).values(location=location)).rowcount
            if not changed:
                row = {"dataset_id": dataset_id, "purpose": purpose, "location": location}
                c.execute(insert(datasources).values(**row))

    def get_datasource(self, dataset_id: str, purpose: int) -> bytes | None:
        with self._read() as c:
            r = c.execute(_DATASOURCE, {"dataset_id": dataset_id, "purpose": purpose}).first()
        return None if r is None else bytes(r[0])

    # runs

    def create_run(
        self,
        dataset_id: str,
        state: int,
        config: dict[str, Any],
        *,
        owner: str | None = None,
        lease_ms: int = 0,
    ) -> RunRow:
        """A new run, leased to `owner` for `lease_ms` when given (the replica that accepted it)."""
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
            owner=owner,
        )
        lease = {"lease_expires_unix_ms": t + lease_ms} if owner is not None else {}
        with self._tx() as c:
            c.execute(insert(runs).values(**run_columns(row), **lease))
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
        owner: str | None = None,
    ) -> RunRow:
        """With `owner`: only while that replica holds the run's lease (else LeaseLost), so a
        replica that lost a run to another never overwrites what the new owner wrote."""
        values: dict[str, Any] = {"updated_unix_ms": now_ms()}
        for column, value in (
            ("state", state),
            ("message", message),
            ("progress", None if progress is None else json.dumps(progress)),
            ("report", None if report is None else json.dumps(report)),
            ("tag_names", None if tag_names is None else json.dumps(tag_names)),
            ("pool_version", pool_version),
        ):
            if value is not None:
                values[column] = value
        where = runs.c.id == run_id
        if owner is not None:
            where &= runs.c.owner == owner
        with self._tx() as c:
            if not c.execute(update(runs).where(where).values(**values)).rowcount and owner is not None:
                raise LeaseLost(f"run {run_id} is no longer owned by {owner}")
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunRow:
        with self._tx() as c:
            r = c.execute(_RUN, {"run_id": run_id}).mappings().first()
        if r is None:
            raise NotFound(f"no run with id {run_id!r}")
        return run_row(r)

    def get_run_summary(self, run_id: str) -> RunSummary:
        """The run as GetRun and WatchRun show it (`get_run` also decodes its config and report)."""
        with self._read() as c:
            r = c.execute(_RUN_SUMMARY, {"run_id": run_id}).first()
        if r is None:
            raise NotFound(f"no run with id {run_id!r}")
        return run_summary(r)

    def run_summaries(
        self, *, dataset_id: str | None = None, states: tuple[int, ...] | None = None
    ) -> list[RunSummary]:
        """The runs of `dataset_id` / in `states` (each when given), oldest first, as ListRuns shows them."""
        query = select(*RUN_SUMMARY_COLUMNS).order_by(runs.c.created_unix_ms)
        if dataset_id is not None:
            query = query.where(runs.c.dataset_id == dataset_id)
        if states is not None:
            query = query.where(runs.c.state.in_(states))
        with self._read() as c:
            return [run_summary(r) for r in c.execute(query).all()]

    def runs_in_states(self, states: tuple[int, ...]) -> list[RunRow]:
        query = select(runs).where(runs.c.state.in_(states)).order_by(runs.c.created_unix_ms)
        with self._tx() as c:
            return [run_row(r) for r in c.execute(query).mappings().all()]

    def runs_of_dataset(self, dataset_id: str) -> list[RunRow]:
        query = select(runs).where(runs.c.dataset_id == dataset_id).order_by(runs.c.created_unix_ms)
        with self._tx() as c:
            return [run_row(r) for r in c.execute(query).mappings().all()]

    # pools: the newest version their commits reached (pool contents stay in the pool datasource)

    def record_pool_version(self, pool_key: str, version: int) -> None:
        """Raises the version recorded for the pool to `version`, never lowers it (a run that ends
        from an older commit, after a takeover, comes late)."""
        dialect = postgresql if self.is_postgres else sqlite
        new = dialect.insert(pool_versions).values(
            pool_key=pool_key, version=version, updated_unix_ms=now_ms()
        )
        upsert = new.on_conflict_do_update(
            index_elements=[pool_versions.c.pool_key],
            set_={"version": new.excluded.version, "updated_unix_ms": new.excluded.updated_unix_ms},
            where=pool_versions.c.version < new.excluded.version,
        )
        with self._tx() as c:
            c.execute(upsert)

    def pool_version(self, pool_key: str) -> int:
        """The newest version recorded for the pool; 0 when no commit was recorded."""
        with self._read() as c:
            version = c.execute(_POOL_VERSION, {"key": pool_key}).scalar()
        return 0 if version is None else int(version)
