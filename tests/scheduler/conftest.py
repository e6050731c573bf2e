"""The scheduler's store under test: every test that takes `database_url` runs against both stores.

- `postgres` (session): one real Postgres (tests/postgres_server.py) started from initdb on a
  free loopback port, stopped at the end of the session; it starts only when a test asks for it.
- `database_url` (parametrized "sqlite", "postgres"): a fresh, empty store per test: a SQLite file
  under tmp_path/state, or a new database on the session's Postgres.
- `make_db()`: a `MetadataDB` on that store (closed after the test); call it again for a second
  handle on the same store (a restart, a second replica).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from postgres_server import PostgresServer

from services.scheduler.db import MetadataDB

STORES = ["sqlite", "postgres"]


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'datapool.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def make_db(database_url: str) -> Iterator[Callable[[], MetadataDB]]:
    opened: list[MetadataDB] = []

    def make() -> MetadataDB:
        opened.append(MetadataDB(database_url))
        return opened[-1]

    yield make
    for db in opened:
        db.close()
