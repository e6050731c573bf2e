"""The scheduler's metadata store, on SQLite and on Postgres: it survives a restart, refuses
duplicates, migrates its schema (Alembic) and refuses a schema newer than the code."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from postgres_server import PostgresServer
from sqlalchemy import text

from datapool.cli import main as datapool_main
from datapool.errors import AlreadyExists, InvalidArgument, NotFound
from datapool.v1 import scheduler_pb2
from services.scheduler.__main__ import main as scheduler_main
from services.scheduler.db import MetadataDB
from services.scheduler.store.engine import open_engine
from services.scheduler.store.migrate import SchemaError, code_head, upgrade
from services.scheduler.store.schema import metadata


def test_datasets_and_runs_persist_across_a_restart(make_db: Callable[[], MetadataDB]) -> None:
    db = make_db()
    ds = db.create_dataset("videos", scheduler_pb2.VIDEOS)
    with pytest.raises(AlreadyExists, match="'videos' already exists"):
        db.create_dataset("videos", scheduler_pb2.VIDEOS)
    db.set_datasource(ds.id, scheduler_pb2.INPUT, b"loc-1")
    db.set_datasource(ds.id, scheduler_pb2.INPUT, b"loc-2")
    run = db.create_run(ds.id, scheduler_pb2.OPEN, {"a": 1})
    db.update_run(run.id, state=scheduler_pb2.EMBEDDING, progress={"files_done": 2}, tag_names=["t"])
    db.close()

    again = make_db()
    assert again.get_dataset(name="videos").id == ds.id
    assert again.get_datasource(ds.id, scheduler_pb2.INPUT) == b"loc-2"
    assert again.get_datasource(ds.id, scheduler_pb2.LIGHTLY) is None
    row = again.get_run(run.id)
    assert row.state == scheduler_pb2.EMBEDDING
    assert row.progress == {"files_done": 2}
    assert row.tag_names == ["t"]
    assert row.config == {"a": 1}
    assert row.created_unix_ms > 2**31  # milliseconds: BIGINT on Postgres
    assert [r.id for r in again.runs_in_states((scheduler_pb2.EMBEDDING,))] == [run.id]
    with pytest.raises(NotFound, match="no dataset named 'other'"):
        again.get_dataset(name="other")
    with pytest.raises(NotFound, match="no run with id"):
        again.get_run("missing")


def test_a_run_summary_is_the_run_without_its_config_and_report(make_db: Callable[[], MetadataDB]) -> None:
    db = make_db()
    videos, images = (db.create_dataset(n, scheduler_pb2.VIDEOS).id for n in ("videos", "images"))
    first = db.create_run(videos, scheduler_pb2.OPEN, {"a": 1})
    second = db.create_run(images, scheduler_pb2.OPEN, {})
    third = db.create_run(videos, scheduler_pb2.OPEN, {})
    db.update_run(third.id, state=scheduler_pb2.COMPLETED, message="done", progress={"files_done": 3})
    row = db.update_run(
        first.id, state=scheduler_pb2.SELECTING, report={"files": [1, 2]}, tag_names=["t"], pool_version=4
    )
    summary = db.get_run_summary(first.id)
    shown = {f: getattr(row, f) for f in summary.__dataclass_fields__}
    assert summary.__dict__ == shown
    assert summary.tag_names == ["t"] and summary.pool_version == 4
    # Runs created within one millisecond have no order between them: compared as sets.
    assert {r.id for r in db.run_summaries(dataset_id=videos)} == {first.id, third.id}
    assert [r.id for r in db.run_summaries(states=(scheduler_pb2.COMPLETED,))] == [third.id]
    assert {r.id for r in db.run_summaries()} == {first.id, second.id, third.id}
    assert db.run_summaries(dataset_id=videos, states=(scheduler_pb2.OPEN,)) == []
    with pytest.raises(NotFound, match="no run with id 'missing'"):
        db.get_run_summary("missing")


def test_the_migrated_schema_is_the_one_the_code_reads(make_db: Callable[[], MetadataDB]) -> None:
    db = make_db()
    with db.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
        assert MigrationContext.configure(c).get_current_revision() == code_head()


def test_a_schema_newer_than_the_code_is_refused(
    make_db: Callable[[], MetadataDB], database_url: str
) -> None:
    db = make_db()
    with db.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    for migrate_schema in (True, False):
        with pytest.raises(SchemaError, match="'9999_from_the_future', newer than this scheduler knows"):
            MetadataDB(database_url, migrate_schema=migrate_schema)


def test_a_scheduler_refuses_to_start_on_a_newer_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'meta.sqlite3'}"
    MetadataDB(url).close()
    with sqlite3.connect(tmp_path / "meta.sqlite3") as c:
        c.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    c.close()
    args = ["--state-dir", str(tmp_path), "--database-url", url, "--selector", "x:1", "--embedder", "x:2"]
    with pytest.raises(SystemExit) as exit_:
        scheduler_main([*args, "--insecure-no-internal-token"])
    assert exit_.value.code == 2
    assert "scheduler: the database sqlite:///" in capsys.readouterr().err


def test_no_migrate_refuses_an_unmigrated_store_until_datapool_migrate_ran(
    database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SchemaError, match=r"at schema none, .* run `datapool migrate"):
        MetadataDB(database_url, migrate_schema=False)
    with pytest.raises(SystemExit) as exit_:
        datapool_main(["migrate", "--database-url", database_url])
    assert exit_.value.code == 0
    assert f"is at schema {code_head()}" in capfd.readouterr().out
    MetadataDB(database_url, migrate_schema=False).close()


def _migrate_in_a_new_process(url: str) -> None:
    engine = open_engine(url)
    upgrade(engine)
    engine.dispose()


def test_replicas_migrating_one_postgres_at_once_all_succeed(postgres: PostgresServer) -> None:
    # Three processes, as replicas starting together: they take turns on an advisory lock
    # instead of racing to CREATE TABLE alembic_version (forked: no second import of everything).
    url = postgres.new_database()
    procs = [
        multiprocessing.get_context("fork").Process(target=_migrate_in_a_new_process, args=(url,))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    MetadataDB(url, migrate_schema=False).close()


def test_a_state_directory_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "datapool.sqlite3"
    with sqlite3.connect(path) as c:
        c.executescript(
            "CREATE TABLE datasets (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, type INTEGER NOT NULL,"
            " created_unix_ms INTEGER NOT NULL);"
            "INSERT INTO datasets VALUES ('abc', 'old', 1, 5);"
            "CREATE TABLE datasources (dataset_id TEXT NOT NULL REFERENCES datasets(id), purpose INTEGER"
            " NOT NULL, location BLOB NOT NULL, PRIMARY KEY (dataset_id, purpose));"
        )
    c.close()
    db = MetadataDB(path)
    try:
        assert db.get_dataset(name="old").id == "abc"
        assert db.runs_of_dataset("abc") == []
    finally:
        db.close()


def test_a_bad_database_url_names_the_option_and_hides_the_password() -> None:
    with pytest.raises(InvalidArgument, match=r"--database-url .*unsupported database 'mysql'") as err:
        open_engine("mysql://user:hunter2@db/x")
    assert "hunter2" not in str(err.value)
    with pytest.raises(InvalidArgument, match="--database-url '<unparseable>' is not a database URL"):
        open_engine("not a url")


def test_a_pool_version_only_rises_and_every_replica_reads_it(make_db: Callable[[], MetadataDB]) -> None:
    one, two = make_db(), make_db()
    assert one.pool_version("pool-a") == 0
    one.record_pool_version("pool-a", 3)
    assert two.pool_version("pool-a") == 3
    two.record_pool_version("pool-a", 2)  # a run that ends late, from an older commit
    assert one.pool_version("pool-a") == 3
    two.record_pool_version("pool-a", 5)
    one.record_pool_version("pool-b", 1)
    assert (one.pool_version("pool-a"), two.pool_version("pool-b")) == (5, 1)
